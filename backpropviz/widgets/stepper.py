"""The Stepper: an ipywidgets app that walks through a trace one rule at a time.

``Stepper`` is a VBox (so it nests in any layout, as ``interactive`` does) made of small parts,
each observing the one ``StepperModel``: the bar and the graph (view.py: anywidgets, whose page
behaviour is stepper.js and stepper.css), the equation panel (parts.py), the inspector
(inspector.py), the predict box (predict.py) and the rebuild controls (controls.py). Every
callback shows its errors inside the widget (never a traceback) and leaves the last good state in
place.
"""
from __future__ import annotations

import html

import ipywidgets as ipw
import traitlets as T

from ..core.errors import BackpropError
from ..display.draw import svg_img
from ..teach.stepper import StepperModel, step_number
from .base import ClosesParts, shown_in_widget
from .controls import RebuildControls
from .inspector import Inspector
from .parts import EquationPanel
from .predict import PredictBox
from .view import GraphPanel, StepperBar

__all__ = ["Stepper"]


class Stepper(ClosesParts, ipw.VBox):
    """Step through the forward and backward passes of ``Stepper(net, x, y)`` or ``Stepper(trace)``.

    Steps count as on screen: 0 is before the first step, ``len(trace)`` is all done. Parts: the
    navigation bar, the equation panel, predict-then-reveal, messages, the graph, the inspector,
    and (for an MLP on one example) controls that rebuild the trace. ``notation="algorithm3"``
    (an MLP) writes each step as its line of the notes' Algorithm 3, in z[k], a[k], with the
    module form beside it; the bar's "notation" choice switches it.
    """

    def __init__(self, net_or_trace, x=None, y=None, predict: bool = False, interval: int = 900,
                 projector: bool = False, notation: str = "modules", **kwargs):
        try:
            self._build(net_or_trace, x, y, predict, interval, projector, notation, kwargs)
        except BaseException:
            self.close()
            raise

    def _build(self, net_or_trace, x, y, predict, interval, projector, notation, kwargs):
        self.model = StepperModel(net_or_trace, x, y, notation)
        self.message = ipw.HTML().add_class("bpv-message")
        # the graph and the bar first: parts refresh in the order they were made, and a step's
        # scene then leaves the kernel before the equation, which MathJax typesets in the page
        self.graph = GraphPanel(self)
        self.bar = StepperBar(self, interval, projector)
        self.equation_panel = EquationPanel(self)
        self.predict_box = PredictBox(self, predict)
        self.link = T.dlink((self.bar, "projector"), (self.graph, "projector"))
        self.inspector = Inspector(self)
        rb = self.model.rebuilder
        self.controls = RebuildControls(self) if rb is not None and rb.settings else None
        # the bar with every control that changes the graph, then the stage: the equation
        # (with predict and its messages beside it), the graph the width of the page in a panel
        # as tall as the window has room for; the inspector and the rebuild controls below
        self.stage = ipw.Box([self.equation_panel, self.predict_box, self.message, self.graph])
        self.stage.add_class("bpv-stage")
        parts = [self.bar, self.stage, self.inspector] + ([self.controls] if self.controls else [])
        super().__init__(parts, **kwargs)
        self.add_class("bpv-stepper")
        self.refresh_all()

    # --- the one place that moves the step ----------------------------------------------------
    @property
    def predicting(self) -> bool:
        return self.predict_box.predict_toggle.value

    @shown_in_widget          # the buttons call it directly: their errors go in the widget too
    def move(self, k: int, from_slider: bool = False, keep_feedback: bool = False):
        """Go to step k, but not past a prediction still to be made in predict mode."""
        m = self.model
        k = max(0, min(m.n, step_number(k, m.n)))
        if self.predicting:
            for j in range(m.step + 1, k + 1):
                if m.needs_prediction(j):
                    if j == m.step + 1 and not from_slider:
                        self.say("Type your prediction first, then check (or reveal).")
                        return
                    k = j - 1
                    self.bar.playing = False
                    break
        if not keep_feedback:
            self.predict_box.feedback.value = ""
        self.say("")                         # a message from before is stale once the learner moves
        self.bar.say("")
        m.go(k)             # a slider stopped before a prediction is put back by the bar's {done}

    def refresh_all(self):
        parts = (self.bar, self.equation_panel, self.graph, self.inspector, self.predict_box)
        for part in parts + ((self.controls,) if getattr(self, "controls", None) else ()):
            part.refresh_safely("all")

    def say(self, text: str, error: bool = False):
        """A message beside the equation (the bar and the rebuild controls have their own)."""
        self.message.value = self.message_html(text, error)

    @staticmethod
    def message_html(text: str, error: bool = False) -> str:
        colour = "#b3261e" if error else "#555555"
        cls = "bpv-error" if error else "bpv-info"
        return (f'<div class="{cls}" role="{"alert" if error else "status"}" '
                f'style="color:{colour}">{"⚠ " if error else ""}'
                f"{html.escape(text)}</div>" if text else "")

    # --- Jupyter display ------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        # a static viewer (no widget front end) still shows the graph and the text
        view = self.model.view()
        try:
            svg = self.graph.svg(caption=True, fit=True)
        except BackpropError:
            svg = ""
        # an <img> of the SVG: JupyterLab shows it in a notebook opened before Run All
        # (untrusted), where inline SVG would be sanitized to its text run together
        picture = svg_img(svg, "\n".join(view.lines)) if svg else \
            f"<pre>{html.escape(view.text)}</pre>"
        data["text/html"] = (f'<div class="bpv-static">{picture}<div style="font-size:12px;'
                             f'color:#555">(the stepper\'s controls appear when this cell runs)'
                             f"</div></div>")
        data["text/plain"] = view.text
        return data

    # --- driving it from code (tests, lessons) ----------------------------------------------------
    def click(self, which: str):
        """Press a button by name: prev, next, reset, backward, end, check, reveal, rebuild."""
        m = self.model
        moves = {"prev": lambda: m.step - 1, "next": lambda: m.step + 1, "reset": lambda: 0,
                 "backward": lambda: m.n_forward + 1, "end": lambda: m.n}
        buttons = {"check": self.predict_box.check_btn, "reveal": self.predict_box.reveal_btn}
        if self.controls is not None:
            buttons["rebuild"] = self.controls.rebuild_btn
        if which in moves:
            self.bar.go(moves[which](), how="button")
        elif which in buttons:
            buttons[which].click()
        else:
            raise BackpropError(f"no button {which!r}; buttons: {', '.join([*moves, *buttons])}")

    def go(self, k: int):
        """Move the step slider to k, as a learner would (stops before a prediction due)."""
        self.bar.go(k, how="slider")

    @property
    def step(self) -> int:
        return self.model.step

    @property
    def equation(self):
        return self.equation_panel


_PART_ATTRS = {
    "predict_box": ("predict_toggle", "answer", "check_btn", "reveal_btn", "prompt", "feedback",
                    "ask"),
    "inspector": ("node_pick", "entry_pick", "follow", "node_info", "node_rules", "heatmap"),
    "controls": ("x_in", "y_in", "sizes_in", "act_in", "seed_in", "loss_in", "weights_in",
                 "rebuild_btn", "new_weights_btn", "compare", "field_errors"),
}


for _part, _names in _PART_ATTRS.items():      # stepper.slider, stepper.answer, … by name
    for _name in _names:
        setattr(Stepper, _name, property(lambda self, p=_part, n=_name: getattr(getattr(self, p), n),
                                         doc=f"the {_part}'s {_name}"))
