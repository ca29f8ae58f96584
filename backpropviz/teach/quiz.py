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


def as_typed(a) -> str:
    """An array as a learner types it, %.6g numbers: [1.5, 1] or [[2, 0, -2], [-1, 0, 1]]."""
    if a.ndim == 0:
        return f"{float(a) + 0.0:.6g}"        # + 0.0: -0 is typed 0
    return "[" + ", ".join(as_typed(x) for x in a) + "]"


def _sentence(text: str) -> str:
    """A hint begins as a sentence does, unless it begins with maths ('g′(z) = …', 'v zᵀ …')."""
    first = text.split(" ", 1)[0]
    return text[0].upper() + text[1:] if len(first) > 1 and first.isalpha() and \
        first.islower() else text


def _shown(a) -> str:
    """A right answer as the question would print it: a whole number in full (20000, not 2e+04)."""
    if a.ndim == 0 and float(a).is_integer() and abs(float(a)) < 1e15:
        return str(int(a))
    return inline(a)


class Question:
    """A question with a right answer: numbers (any shape) or one of ``choices``."""

    def __init__(self, prompt: str, answer, choices: list[str] | None = None, why: str = "",
                 hint: str = "", wrong: dict[str, str] | None = None):
        for what, text in (("the prompt", prompt), ("why", why), ("the hint", hint)):
            if not isinstance(text, str):
                raise BackpropError(f"Question: {what} is text; got {brief(text)}")
        self.prompt = prompt
        self.why, self.hint = (_sentence(t) if t else t for t in (why, hint))
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
        self.wrong = self._typical(wrong or {})

    def _typical(self, wrong) -> list[tuple[str, str]]:
        """Typical wrong answers (as typed) and their hints: each must parse and be wrong."""
        if not isinstance(wrong, dict) or not all(isinstance(k, str) and isinstance(v, str) and
                                                  v.strip() for k, v in wrong.items()):
            raise BackpropError(f"Question: wrong maps a typical wrong answer (text) to its hint "
                                f"(text); got {brief(wrong)}")
        for typed in wrong:
            if self._judge(typed)[0] is not False:
                raise BackpropError(f"Question: the typical wrong answer {typed!r} is "
                                    f"{'right' if self._judge(typed)[0] else 'not an answer'}")
        return [(typed, _sentence(hint)) for typed, hint in wrong.items()]

    @property
    def typed_answer(self) -> str:
        """The right answer as a learner would type it: a choice, or [1.5, 1] / [[2, 0], …]."""
        return self.answer if self.choices is not None else as_typed(self.answer)

    def check(self, text) -> tuple[bool, str]:
        """(right, message) for an answer typed as text; a typical wrong answer gets its hint."""
        ok, msg = self._judge(text)
        if ok is None:
            return False, msg
        if not ok:
            for typed, hint in self.wrong:
                if self._same(text, typed):
                    return False, ("Not this one. " if self.choices else "Not quite. ") + hint
        return ok, msg

    def _same(self, text, typed: str) -> bool:
        """Whether the answer typed is this typical wrong one (as close as a right one would be)."""
        if self.choices is not None:
            return self._choice(text) == typed
        try:
            got, want = parse_array(text, "your answer"), parse_array(typed, "a wrong answer")
        except BackpropError:
            return False
        return got.shape == want.shape and bool(close(got, want))

    def _choice(self, text) -> str | None:
        got = _plain(text if isinstance(text, str) else brief(text))
        match = [c for c in self.choices if got in (_plain(c), _plain(c.split()[0]))]
        return match[0] if got and match else None

    def _judge(self, text) -> tuple[bool | None, str]:
        """(True, …) right, (False, …) wrong, (None, why) not an answer to this question."""
        if self.choices is not None:
            choice = self._choice(text)
            if choice is None:
                return None, "Choose one of: " + "; ".join(self.choices)
            ok = choice == self.answer
            return ok, ("Right. " + self.why if ok else "Not this one. " + self.hint).strip()
        try:
            got = parse_array(text, "your answer")
        except BackpropError as e:
            return None, str(e)
        want = self.answer
        if got.size == want.size and want.ndim <= 1 and (got.ndim <= 1 or
                                                         got.shape == (want.size, 1)):
            got = got.reshape(want.shape)
        if got.shape != want.shape:
            return False, (f"Wrong shape: you gave {shape_words(got)}; the answer is "
                           f"{shape_words(want)}.")
        if close(got, want):
            return True, f"Right: {_shown(want)}. {self.why}".strip()
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


__all__ = ["ATOL", "RTOL", "Question", "as_typed"]
