"""What every part of the Stepper is (``StepperPart``: it observes the one ``StepperModel`` and
refreshes itself), and the equation panel. The other parts: the bar and the graph (view.py, in the
page as anywidgets), the inspector, the predict box and the rebuild controls (inspector.py,
predict.py, controls.py)."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as ipw

from .base import NO_MATH, shown_in_widget

if TYPE_CHECKING:
    from .stepper import Stepper


class StepperPart:
    """A part of the Stepper: it observes the model and reports through the Stepper's ``say``."""

    def _attach(self, stepper: Stepper):
        self.stepper, self.model = stepper, stepper.model
        self.model.observe(lambda what: self.refresh_safely(what))

    def say(self, text, error=False):
        self.stepper.say(text, error)

    @shown_in_widget
    def refresh_safely(self, what):
        """refresh(), its errors shown in the Stepper (the last good state stays)."""
        self.refresh(what)

    def refresh(self, what: str):
        raise NotImplementedError


class EquationPanel(ipw.HTMLMath, StepperPart):
    """The step's header, its rule in TeX with the tag, and the numbers substituted."""

    def __init__(self, stepper):
        super().__init__()
        self.add_class("bpv-equation")
        self._attach(stepper)

    def refresh(self, what):
        view = self.model.view()
        head = f"<div {NO_MATH}><b>{html.escape(view.header)}</b></div>"
        if view.k == 0:
            body = head + f"<div {NO_MATH}>{html.escape(view.symbolic)}</div>"
        else:
            # only the $$…$$ line is maths; names and numbers elsewhere are text MathJax skips
            numbers = "" if view.numbers == view.result else f"= {html.escape(view.numbers)}<br>"
            # in Algorithm 3's names, the same rule in the tool's names beside it
            aside = f"<div {NO_MATH}>{html.escape(view.aside)}</div>" if view.aside else ""
            body = (head + f"<div>$$ {view.tex} \\quad \\text{{{html.escape(view.tag)}}} $$"
                    f"</div>{aside}<div {NO_MATH[:-1]} bpv-num\">{numbers}"
                    f"= {html.escape(view.result)}</div>")
        # a box of fixed height (the graph below never moves) that scrolls a long equation, and
        # can be reached by the keyboard to do so
        self.value = (f'<div class="bpv-eq-box" tabindex="0" role="region" '
                      f'aria-label="equation">{body}</div>')
