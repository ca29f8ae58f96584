"""Predict, then reveal: the Stepper's part in which the learner types each backward step before
it is shown, and the score at the end."""
from __future__ import annotations

import html

import ipywidgets as ipw
import numpy as np

from ..core import keys as K
from ..core.errors import shape_str
from ..display.presentation import algorithm3_line, rhs
from ..teach.hints import tolerance_text
from ..teach.stepper import OUTCOMES
from .base import NO_MATH, button, shown_in_widget
from .classjoin import ClassJoin
from .parts import StepperPart


class PredictBox(ipw.VBox, StepperPart):
    """Predict, then reveal: the learner types the next backward step before it is shown.

    The prompt names what to predict and its shape; the rule itself appears after a wrong try.
    """

    def __init__(self, stepper, on: bool):
        self.predict_toggle = ipw.Checkbox(value=on, description="predict, then reveal",
                                           indent=False).add_class("bpv-predict-toggle")
        self.answer = ipw.Text(placeholder="e.g. [0.1, -0.2]",
                               layout=ipw.Layout(width="100%", max_width="320px"),
                               description="your answer").add_class("bpv-answer")
        self.check_btn = button("check", "check your prediction", "bpv-check")
        self.reveal_btn = button("reveal", "show this step without predicting", "bpv-reveal")
        self.prompt = ipw.HTML().add_class("bpv-prompt")
        self.feedback = ipw.HTML().add_class("bpv-feedback")
        self.ask = ipw.HBox([self.prompt, self.answer, self.check_btn, self.reveal_btn],
                            layout=ipw.Layout(align_items="center", flex_flow="row wrap"))
        # feedback first: after a right answer it confirms the step just revealed, above the
        # question for the next one
        self._attach(stepper)
        self.join = ClassJoin(self.model)      # shown only where the server keeps a class
        super().__init__([self.predict_toggle, self.join, self.feedback, self.ask])
        self.add_class("bpv-predict")
        self.check_btn.on_click(self._on_check)
        # the answer reaches the kernel on Enter (or when the box is left): it is checked then,
        # once; the check button checks what is typed if that was not checked yet
        self.answer.continuous_update = False
        self.answer.observe(self._on_typed, names="value")
        self._checked = None                   # (step, text) last checked
        self.reveal_btn.on_click(self._on_reveal)
        self.predict_toggle.observe(lambda _: self.stepper.refresh_all(), names="value")

    @shown_in_widget
    def _on_typed(self, change):
        if change["new"].strip() and self.predict_toggle.value and \
                self.model.needs_prediction(self.model.step + 1):
            self._on_check(None)

    @shown_in_widget
    def _on_check(self, _):
        m = self.model
        k = m.step + 1
        if self._checked == (k, self.answer.value) or \
                (not self.answer.value.strip() and self._checked and self._checked[0] == k - 1):
            return      # checked already (Enter, then the button), or right a moment ago
        self._checked = (k, self.answer.value)
        self.say("")
        ok, msg = m.check_prediction(self.answer.value)     # the model keeps tries and outcomes
        self.feedback.value = (f'<span style="color:{"#1a7f37" if ok else "#b3261e"}">'
                               f"{'✔' if ok else '✘'} {html.escape(msg)}</span>")
        if ok:
            self.answer.value = ""
            self.stepper.move(k, keep_feedback=True)
        else:
            self.refresh("tried")

    @shown_in_widget
    def _on_reveal(self, _):
        self.model.reveal()
        self.answer.value = ""
        self.feedback.value = ""
        self.stepper.move(self.model.step + 1)

    def score_html(self) -> str:
        return (f'<div class="bpv-score" role="status" style="font-weight:bold">'
                f"{html.escape(_score(self.model.predictions.outcome))}</div>")

    def refresh(self, what):
        m = self.model
        if what == "trace":
            self.feedback.value = ""             # it was about the old trace
        if self.predict_toggle.value and m.step == m.n and m.predictions.outcome and \
                "bpv-score" not in self.feedback.value:
            self.feedback.value += self.score_html()
        # joining a class is for a student predicting (not for the teacher's own Stepper)
        joinable = self.join.destination is not None and self.predict_toggle.value
        self.join.layout.display = "flex" if joinable else "none"
        if joinable != ("bpv-with-class" in self._dom_classes):   # one line taller (stepper.css)
            (self.add_class if joinable else self.remove_class)("bpv-with-class")
        ask = self.predict_toggle.value and m.needs_prediction(m.step + 1)
        self.ask.layout.display = "flex" if ask else "none"
        if not ask:
            return
        k = m.step + 1
        spec = m.trace.specs[k - 1]
        want = m.trace[spec.writes]
        line = algorithm3_line(m.trace, k) if m.shown_notation == "algorithm3" else None
        if line is not None:            # in the notation shown: ∂J/∂z[2] and (7.80), k = 2
            lhs = html.escape(line.writes)
            at = f", k = {line.k}" if line.k is not None else ""
            rule = (f" = {html.escape(line.formula.split(' = ', 1)[-1])} {html.escape(line.tag)}"
                    if m.tries(k) else f" (Algorithm 3 {html.escape(line.tag)}{at})")
        else:
            lhs = html.escape(K.text(spec.writes))
            # the rule is shown after a first wrong try: first the learner recalls it
            rule = (f" = {html.escape(rhs(m.trace, spec))} {html.escape(spec.tag)}"
                    if m.tries(k) else f" {html.escape(spec.rule.label)}")
        self.prompt.value = (f"<span {NO_MATH}>predict <b>{lhs}</b>{rule} "
                             f"(shape {html.escape(shape_str(want))}; "
                             f"{html.escape(tolerance_text())}):</span>")
        self.answer.placeholder = "e.g. " + _example(want)


def _score(outcome: dict) -> str:
    """The end of a pass in predict mode: how many steps went each way (StepperModel outcomes)."""
    n = len(outcome)
    c = {o: sum(1 for v in outcome.values() if v == o) for o in OUTCOMES if o != "wrong"}
    return (f"Done: {n} prediction{'s' * (n != 1)}: {c[OUTCOMES[0]]} right first time, "
            f"{c[OUTCOMES[1]]} after a hint, {c[OUTCOMES[3]]} revealed.")


def _example(a) -> str:
    """A placeholder with the shape of the answer asked for."""
    a = np.asarray(a)
    if a.ndim == 0:
        return "0.5"
    if a.ndim == 1:
        return "[" + ", ".join(["0.1", "-0.2", "0.3"][:a.size] + ["…"] * (a.size > 3)) + "]"
    row = "[" + ", ".join(["0.1", "-0.2", "0.3"][:a.shape[1]] + ["…"] * (a.shape[1] > 3)) + "]"
    return "[" + ", ".join([row] * min(a.shape[0], 2) + ["…"] * (a.shape[0] > 2)) + "]"
