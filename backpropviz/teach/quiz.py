"""Exit questions a lesson asks and the tool checks: a number, an array, or one of some choices.

    q = bpv.Question("What is ∂J/∂b[2]?", answer=trace.grad("b[2]"))
    q                      # in Jupyter: a box to type into and a check button
    q.check("[-0.1404]")   # (True, "Right: …"); the same check from code (tests, nbval)
"""
from __future__ import annotations

import html

from ..core.checks import numeric
from ..core.errors import BackpropError, brief, shape_words
from ..core.numerics import ATOL, RTOL, close
from .hints import tolerance_text
from .rebuild import parse_array
from ..display.text import inline


def _plain(text) -> str:
    """Answers compared as typed on any keyboard: 4x5 is 4×5, - is −, case and spaces ignored."""
    return "".join(str(text).lower().replace("×", "x").replace("−", "-").replace("ᵀ", "^t")
                   .split())


class Question:
    """A question with a right answer: numbers (any shape) or one of ``choices``."""

    def __init__(self, prompt: str, answer, choices: list[str] | None = None, why: str = "",
                 hint: str = ""):
        for what, text in (("the prompt", prompt), ("why", why), ("the hint", hint)):
            if not isinstance(text, str):
                raise BackpropError(f"Question: {what} is text; got {brief(text)}")
        self.prompt, self.why, self.hint = prompt, why, hint
        if choices is not None and (isinstance(choices, str) or not isinstance(
                choices, (list, tuple)) or not all(isinstance(c, str) and c.strip()
                                                   for c in choices)):
            raise BackpropError(f"Question: the choices are a list of texts, e.g. ['4×5', '5×4']; "
                                f"got {brief(choices)}")
        self.choices = list(choices) if choices is not None else None
        if self.choices is not None:
            if not isinstance(answer, str) or answer not in self.choices:
                raise BackpropError(f"Question: the answer {brief(answer)} is not one of the "
                                    f"choices")
            self.answer = answer
        else:
            self.answer = numeric(answer, "Question: the answer")

    def check(self, text) -> tuple[bool, str]:
        """(right, message) for an answer typed as text."""
        if self.choices is not None:
            got = _plain(text if isinstance(text, str) else brief(text))
            match = [c for c in self.choices if got in (_plain(c), _plain(c.split()[0]))]
            if not got or not match:
                return False, "Choose one of: " + "; ".join(self.choices)
            ok = match[0] == self.answer
            return ok, ("Right. " + self.why if ok else "Not this one. " + self.hint).strip()
        try:
            got = parse_array(text, "your answer")
        except BackpropError as e:
            return False, str(e)
        want = self.answer
        if got.size == want.size and want.ndim <= 1 and (got.ndim <= 1 or
                                                         got.shape == (want.size, 1)):
            got = got.reshape(want.shape)
        if got.shape != want.shape:
            return False, (f"Wrong shape: you gave {shape_words(got)}; the answer is "
                           f"{shape_words(want)}.")
        if close(got, want):
            return True, f"Right: {inline(want)}. {self.why}".strip()
        return False, f"Not quite ({tolerance_text()}). {self.hint}".strip()

    def __repr__(self):
        return self.prompt + (" (" + " / ".join(self.choices) + ")" if self.choices else "")

    def widget(self):
        import ipywidgets as W
        prompt = W.HTML(f"<b>{html.escape(self.prompt)}</b>")
        box = W.Text(placeholder=" / ".join(self.choices) if self.choices else "your answer",
                     description="answer", layout=W.Layout(width="360px"))
        button = W.Button(description="check", tooltip="check your answer")
        feedback = W.HTML()
        feedback.add_class("bpv-feedback")

        def on_check(_):
            ok, msg = self.check(box.value)
            feedback.value = (f'<span role="status" style="color:{"#1a7f37" if ok else "#b3261e"}">'
                              f"{'✔' if ok else '✘'} {html.escape(msg)}</span>")
        button.on_click(on_check)
        box.on_submit(on_check)
        return W.VBox([prompt, W.HBox([box, button]), feedback]).add_class("bpv-question")

    def _repr_mimebundle_(self, **kwargs):
        data = self.widget()._repr_mimebundle_(**kwargs)
        data = dict(data[0] if isinstance(data, tuple) else data)
        data["text/plain"] = repr(self)
        return data


__all__ = ["Question", "RTOL", "ATOL"]
