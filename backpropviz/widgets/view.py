"""The Stepper's parts that live in the page as anywidgets: the bar (navigation, Play, the step
slider, the view and expand choices, projector mode) and the graph panel. Their front end is
``stepper.js`` and ``stepper.css`` beside this file; here is what they show and what they do with
what the page asks ({move}, {granularity}, {expand}, {notation}, {inspect}, {hello}).

The graph panel receives a graph's drawing once (``Painter.drawing``) and then, per step, only the
entries of ``Painter.scene`` that changed: the renderer stays the one source of how each state
looks, for the exports and the widget alike."""
from __future__ import annotations

import html
from pathlib import Path

import anywidget
import traitlets as T

from ..core.errors import BackpropError
from ..teach.stepper import GRANULARITIES, step_number
from .base import shown_in_widget
from .parts import StepperPart

HERE = Path(__file__).parent
MOVES = ("button", "slider", "play")
NOTATION_LABELS = {"modules": "modules: u[i], M_i", "algorithm3": "Algorithm 3: z[k], a[k]"}


class StepperBar(anywidget.AnyWidget, StepperPart):
    """reset, ◀ step, step ▶, to backward pass, end, the counter, Play, repeat, the step slider;
    the view (modules | scalar circuit), expand one module, the notation (for an MLP: the tool's
    u[i], M_i or Algorithm 3's z[k], a[k]), projector mode; a message line."""

    _esm = HERE / "stepper.js"
    _css = HERE / "stepper.css"
    part = T.Unicode("bar").tag(sync=True)
    step = T.Int(0).tag(sync=True)
    n = T.Int(0).tag(sync=True)
    n_forward = T.Int(0).tag(sync=True)
    version = T.Int(0).tag(sync=True)               # bumped with every new trace in view
    counter = T.Unicode("").tag(sync=True)
    counter_chars = T.Int(0).tag(sync=True)         # its longest text: the controls never shift
    locked = T.Bool(False).tag(sync=True)           # predict mode: no slider, no Play
    playing = T.Bool(False).tag(sync=True)
    repeat = T.Bool(False).tag(sync=True)
    interval = T.Int(900).tag(sync=True)
    projector = T.Bool(False).tag(sync=True)
    granularity = T.Unicode("modules").tag(sync=True)
    granularities = T.List(T.Unicode(), list(GRANULARITIES)).tag(sync=True)
    circuit_ok = T.Bool(False).tag(sync=True)
    expand_options = T.List([["none", "none"]]).tag(sync=True)    # [value, label] pairs
    expanded = T.Unicode("none").tag(sync=True)
    notation = T.Unicode("modules").tag(sync=True)
    notation_options = T.List([["modules", "modules"]]).tag(sync=True)    # [value, label] pairs
    message = T.Unicode("").tag(sync=True)
    message_error = T.Bool(False).tag(sync=True)

    def __init__(self, stepper, interval: int = 900, projector: bool = False):
        super().__init__(interval=int(interval), projector=bool(projector))
        self.add_class("bpv-bar-view")
        self._attach(stepper)
        self.circuit_ok = not self.model.circuit_reason
        self.on_msg(lambda _w, content, _b: self.handle(content))
        self.observe(self._on_playing, names="playing")

    # --- what the page asks -------------------------------------------------------------------
    def handle(self, content: dict):
        """A request from the page (a click, a key, the slider, Play, a choice); if it changed
        nothing, {done}, so that every control shows the model's state again."""
        before = (self.step, self.n, self.granularity, self.expanded, self.notation, self.message)
        try:
            self._handle(content)
        finally:   # a change reaches the page as trait updates; a refusal or no-op as {done}
            if (self.step, self.n, self.granularity, self.expanded, self.notation,
                    self.message) == before:
                self.send({"done": 1})

    @shown_in_widget
    def _handle(self, content):
        if not isinstance(content, dict):
            return
        if "move" in content:
            k, how = content["move"], content.get("how")
            if content.get("v", self.version) != self.version:
                return          # asked for in a trace no longer shown (a view switch came first)
            if isinstance(k, int) and not isinstance(k, bool) and how in MOVES:
                self.stepper.move(k, from_slider=how != "button")
        elif content.get("granularity") in GRANULARITIES:
            self.set_granularity(content["granularity"])
        elif isinstance(content.get("expand"), str):
            self.set_expanded(content["expand"])
        elif isinstance(content.get("notation"), str):
            self.set_notation(content["notation"])

    def go(self, k: int, how: str = "slider"):
        """Move as the page would: ``how`` is "button" (refused before a prediction still to be
        made), "slider" or "play" (stop just before it)."""
        self.handle({"move": step_number(k, self.model.n), "how": how})

    def set_granularity(self, value: str):
        m = self.model
        ok = m.set_granularity(value)
        c = m.circuit_trace
        self._switched(ok, f"{m.granularity}: ", f" ({c.counts.forward} operations)"
                       if ok and m.in_circuit and c is not None else "")

    def set_expanded(self, value: str):
        m = self.model
        ok = m.set_expanded(None if value == "none" else value)
        self._switched(ok, f"{m.expanded} expanded: " if m.expanded else "modules: ")

    def set_notation(self, value: str):
        """Write the steps in the tool's names or as the lines of Algorithm 3 (an MLP)."""
        m = self.model
        if m.set_notation(value):
            self.say("" if m.shown_notation == m.notation else
                     f"{NOTATION_LABELS[m.notation]}: shown in the module view only")
        else:
            self.say(m.error, error=True)
            self.refresh("failed")

    def _switched(self, ok: bool, what: str, more: str = ""):
        """After a view switch: where the learner now is, or why it was refused (the controls
        then show the view in force)."""
        m = self.model
        if ok:
            self.stepper.predict_box.feedback.value = ""
            self.say(f"{what}{m.n} steps, now at step {m.step}{more}")
        else:
            self.say(m.error, error=True)
            self.refresh("failed")

    def say(self, text: str, error: bool = False):
        """A message beside the controls that caused it."""
        self.message, self.message_error = str(text), bool(error and text)

    @shown_in_widget
    def _on_playing(self, change):
        if change["new"] and self.stepper.predicting:
            self.playing = False                  # predictions come first

    # --- what the page shows --------------------------------------------------------------------
    def refresh(self, what):
        m = self.model
        predicting = self.stepper.predicting
        with self.hold_sync():
            self.n, self.n_forward, self.step = m.n, m.n_forward, m.step
            self.counter = m.counter()
            nf, nb = m.n_forward, m.n - m.n_forward
            self.counter_chars = len(f"step {m.n}/{m.n} · forward {nf}/{nf} · backward {nb}/{nb}")
            self.locked = predicting
            if predicting:
                self.playing = False
            self.granularity = m.granularity
            if what == "trace":
                self.version += 1
            if what in ("trace", "all", "failed"):
                self.expand_options = [["none", "none"]] + [
                    [mi.name, f"{mi.name} = {mi.label}"] for mi in m.expandable()]
            self.expanded = m.expanded or "none"
            self.notation = m.notation
            options = [[n, NOTATION_LABELS[n]] for n in m.notations]
            if options != self.notation_options:
                self.notation_options = options


class GraphPanel(anywidget.AnyWidget, StepperPart):
    """The graph as known after the current step: its drawing once per graph, then each step's
    changed scene entries (a message), so a step sends hundreds of bytes, not the whole SVG."""

    _esm = HERE / "stepper.js"
    part = T.Unicode("graph").tag(sync=True)
    drawing = T.Unicode("").tag(sync=True)
    fallback = T.Unicode("").tag(sync=True)      # HTML where there is no drawing
    projector = T.Bool(False).tag(sync=True)

    def __init__(self, stepper):
        super().__init__()
        self.add_class("bpv-graph-view")
        self._painter = None
        self._refused = (None, None)     # (trace, error): a graph too large is refused once
        self._sent: dict = {}            # the scene the page has
        self._attach(stepper)
        self.on_msg(lambda _w, content, _b: self.handle(content))

    def painter(self):
        """The renderer of the model's trace (the layout reused for every step)."""
        from ..display.draw import renderer
        trace = self.model.trace
        if self._refused[0] is trace:
            raise self._refused[1]
        if self._painter is None or self._painter.trace is not trace:
            try:
                self._painter = renderer(trace)
            except BackpropError as e:
                self._refused = (trace, e)
                raise
        return self._painter

    def svg(self, caption: bool = False, fit: bool = False) -> str:
        """The current step's SVG, as the exports draw it (the page shows the same scene)."""
        return self.painter().svg(self.model.step, caption, fit=fit,
                                  notation=self.model.shown_notation)

    def handle(self, content: dict):
        """A request from the page: {hello} (a new view wants the whole scene) or {inspect}."""
        if not isinstance(content, dict):
            return
        if "hello" in content:
            self._sent = {}
            self.refresh_safely("hello")
        elif isinstance(content.get("inspect"), str):
            self.stepper.inspector.pick(content["inspect"])

    def refresh(self, what):
        m = self.model
        try:
            painter = self.painter()
        except BackpropError as e:            # no Graphviz engine, or too large: text instead
            self._sent = {}
            with self.hold_sync():
                self.drawing = ""
                self.fallback = (f"<pre>{html.escape(m.view().text)}</pre>"
                                 f"<i>{html.escape(str(e))}</i>")
            return
        drawing = painter.drawing()
        if drawing != self.drawing:
            self._sent = {}
            self.drawing = drawing
        view = m.view()
        scene = painter.scene(m.step, view)
        changed = {k: v for k, v in scene.items() if self._sent.get(k) != v}
        self._sent = scene
        self.send({"k": m.step, "scene": changed, "title": view.header,
                   "desc": "\n".join(view.lines[1:]) or view.header})
