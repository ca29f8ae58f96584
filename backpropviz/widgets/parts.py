"""The Stepper's parts that show the step and move it: the navigation bar, the equation panel,
the graph and the granularity bar (modules or the scalar circuit). Each observes the one
``StepperModel`` and refreshes itself; the inspector, the predict box and the rebuild controls are
parts too (inspector.py, predict.py, controls.py)."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as ipw

from ..core.errors import BackpropError
from ..teach.stepper import GRANULARITIES
from .base import NO_MATH, button, shown_in_widget

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


class NavBar(ipw.HBox, StepperPart):
    """reset, ◀ step, step ▶, to backward pass, the counter, Play and the step slider."""

    def __init__(self, stepper, interval: int):
        n = stepper.model.n
        self.reset_btn = button("reset", "back to step 0, before the first step", "bpv-reset")
        self.prev_btn = button("◀ step", "previous step", "bpv-prev")
        self.next_btn = button("step ▶", "next step: apply one rule", "bpv-next")
        self.back_btn = button("to backward pass", "jump to the first backward step, "
                               "∂J/∂u[k] = 1", "bpv-to-backward")
        # the End key's target (Home is reset): not shown, the bar is full enough
        self.end_btn = button("to the end", "last step: the whole pass done", "bpv-end")
        self.end_btn.layout.display = "none"
        self.counter = ipw.HTML().add_class("bpv-counter")
        self.play = ipw.Play(min=0, max=n, step=1, interval=interval, value=0,
                             description="play").add_class("bpv-play")
        self.slider = ipw.IntSlider(min=0, max=n, value=0, readout=False, description="step",
                                    continuous_update=True,
                                    layout=ipw.Layout(width="260px")).add_class("bpv-slider")
        self.link = ipw.jslink((self.play, "value"), (self.slider, "value"))
        super().__init__([self.reset_btn, self.prev_btn, self.next_btn, self.back_btn,
                          self.counter, self.play, self.slider, self.end_btn],
                         layout=ipw.Layout(align_items="center", flex_flow="row wrap"))
        self.add_class("bpv-nav")
        self._attach(stepper)
        self._busy = False
        self.reset_btn.on_click(lambda _: stepper.move(0))
        self.prev_btn.on_click(lambda _: stepper.move(self.model.step - 1))
        self.next_btn.on_click(lambda _: stepper.move(self.model.step + 1))
        self.back_btn.on_click(lambda _: stepper.move(self.model.n_forward + 1))
        self.end_btn.on_click(lambda _: stepper.move(self.model.n))
        self.slider.observe(self._on_slider, names="value")
        self.play.observe(self._on_play, names="playing")

    def close(self):
        link = getattr(self, "link", None)      # the jslink is a widget too
        if link is not None:
            link.close()
        super().close()

    @shown_in_widget
    def _on_slider(self, change):
        if not self._busy:
            self.stepper.move(change["new"], from_slider=True)

    @shown_in_widget
    def _on_play(self, change):
        if change["new"] and self.stepper.predicting:
            self.play.playing = False             # Play ignores `disabled`; predictions come first

    def refresh(self, what):
        m = self.model
        self._busy = True
        try:
            if self.slider.max != m.n:
                self.slider.max = self.play.max = m.n
            if self.slider.value != m.step:
                self.slider.value = m.step        # the Play follows through jslink
        finally:
            self._busy = False
        self.counter.value = f"<b>{html.escape(m.counter())}</b>"
        self.prev_btn.disabled = m.step <= 0
        self.next_btn.disabled = self.end_btn.disabled = m.step >= m.n
        predicting = self.stepper.predicting
        self.slider.disabled = self.play.disabled = predicting
        if predicting:
            self.play.playing = False


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
            self.value = head + f"<div {NO_MATH}>{html.escape(view.symbolic)}</div>"
            return
        # only the $$…$$ line is maths; names and numbers elsewhere are text MathJax must skip
        numbers = "" if view.numbers == view.result else f"= {html.escape(view.numbers)}<br>"
        self.value = (head + f"<div>$$ {view.tex} \\quad \\text{{{html.escape(view.tag)}}} $$</div>"
                      f"<div {NO_MATH} style='font-family:monospace'>{numbers}"
                      f"= {html.escape(view.result)}</div>")


class GraphView(ipw.HTML, StepperPart):
    """The graph as known after the current step (the renderer keeps one layout per graph)."""

    def __init__(self, stepper):
        super().__init__()              # a panel that scrolls (its size: behaviour.py)
        self.add_class("bpv-graph")
        self._renderer = None
        self._refused = (None, None)     # (trace, error): a graph too large is refused once
        self._attach(stepper)

    def svg(self, caption: bool = False, fit: bool = False) -> str:
        from ..display.draw import renderer
        trace = self.model.trace
        if self._refused[0] is trace:
            raise self._refused[1]
        if self._renderer is None or self._renderer.trace is not trace:
            try:
                self._renderer = renderer(trace)
            except BackpropError as e:
                self._refused = (trace, e)
                raise
        return self._renderer.svg(self.model.step, caption, fit=fit)

    def refresh(self, what):
        try:
            self.value = self.svg()       # the equation panel shows the caption; full size
        except BackpropError as e:        # no Graphviz engine: the text rendering instead
            self.value = (f"<pre>{html.escape(self.model.view().text)}</pre>"
                          f"<i>{html.escape(str(e))}</i>")


class GranularityBar(ipw.HBox, StepperPart):
    """modules | scalar circuit: the same pass as modules or as atomic operations on single
    numbers (Theorem 7.4.1), at the matching step. Shown only where every module of the pass
    has a decomposition."""

    TOOLTIPS = ["the pass as modules M_i: one step per rule (F), (B1), (B2)",
                "the same pass as atomic operations on single numbers (Theorem 7.4.1): one step "
                "per +, ×, exp, …"]

    def __init__(self, stepper):
        m = stepper.model
        self.toggle = ipw.ToggleButtons(options=list(GRANULARITIES), value=m.granularity,
                                        description="view", tooltips=self.TOOLTIPS,
                                        tooltip="granularity of the steps: modules or the scalar "
                                                "circuit of Theorem 7.4.1")
        self.toggle.add_class("bpv-granularity")
        self.label = ipw.HTML(
            '<span class="bpv-granularity-help" style="font-size:12px;color:#555">switching '
            "keeps the place in the pass: a module step is the circuit steps that complete it"
            "</span>")
        self.expand = ipw.Dropdown(options=self._options(m), value="none", description="expand",
                                   tooltip="open one module into its multiplications, additions, "
                                           "… while the rest stays at module level",
                                   layout=ipw.Layout(width="auto"))
        self.expand.add_class("bpv-expand")
        super().__init__([self.toggle, self.expand, self.label],
                         layout=ipw.Layout(align_items="center", flex_flow="row wrap"))
        self._attach(stepper)
        self._busy = False
        available = not m.circuit_reason
        self.layout.display = "flex" if available else "none"
        self.toggle.observe(self._on_toggle, names="value")
        self.expand.observe(self._on_expand, names="value")

    @staticmethod
    def _options(m):
        return [("none", "none")] + [(f"{mi.name} = {mi.label}", mi.name)
                                     for mi in m.expandable()]

    @shown_in_widget
    def _on_expand(self, change):
        if self._busy:
            return
        m = self.model
        if m.set_expanded(change["new"]):
            self.stepper.predict_box.feedback.value = ""
            self.say(f"{m.expanded} expanded: {m.n} steps, now at step {m.step}"
                     if m.expanded else f"modules: {m.n} steps, now at step {m.step}")
        else:
            self.say(m.error, error=True)
            self.refresh("failed")

    @shown_in_widget
    def _on_toggle(self, change):
        if self._busy:
            return
        m = self.model
        if m.set_granularity(change["new"]):
            self.stepper.predict_box.feedback.value = ""
            c = m.circuit_trace
            self.say(f"{m.granularity}: {m.n} steps, now at step {m.step}"
                     + (f" ({c.counts.forward} operations)" if m.in_circuit and c is not None
                        else ""))
        else:
            self.say(m.error, error=True)
            self.refresh("failed")

    def refresh(self, what):
        m = self.model
        self._busy = True
        try:
            if self.toggle.value != m.granularity:
                self.toggle.value = m.granularity
            if what == "trace":
                options = self._options(m)
                if list(self.expand.options) != options:
                    self.expand.options = options
            want = m.expanded or "none"
            if self.expand.value != want:
                self.expand.value = want
        finally:
            self._busy = False
