"""The Stepper: an ipywidgets app that walks through a trace one rule at a time.

Plain classes built from HBox/VBox; ``Play`` is jslinked to the step slider and Python observes
the slider only. All state lives in ``StepperModel``; the widgets read it. Every callback shows
errors inside the widget (never a traceback) and leaves the last good state in place.
"""
from __future__ import annotations

import functools
import html
import io
import re

import numpy as np

from .errors import BackpropError, shape_str
from . import modules as M
from .stepper import (MAX_EDITABLE_PARAMS, Settings, StepperModel, parse_array, parse_sizes,
                      same_network)
from .text import array_lines, exact
from .trace import pretty

_NAME = re.compile(r"([A-Za-z]\w*)\[(\d+)\]$")
_TEX_SPECIAL = {c: "\\" + c for c in "#$%&_{}"} | {"\\": r"\backslash ", "^": r"\hat{}",
                                                   "~": r"\sim "}
# text MathJax must leave alone (JupyterLab's MathJax 3 honours the first, Voilà's the second)
NO_MATH = 'class="tex2jax_ignore mathjax_ignore"'


def _latex_key(key: str) -> str:
    """'dJ/dW[2]' → \\frac{\\partial J}{\\partial W^{[2]}}; 'u[1]' → u^{[1]}; other names
    (a user's) as escaped \\text{…}."""
    grad = key.startswith("dJ/d")
    name = (key[4:] if grad else key).split(" via ")[0]
    m = _NAME.match(name)
    tex = f"{m[1]}^{{[{m[2]}]}}" if m else (
        r"\text{" + "".join(_TEX_SPECIAL.get(c, c) for c in html.escape(name)) + "}")
    return r"\frac{\partial J}{\partial " + tex + "}" if grad else "{" + tex + "}"


def shown_in_widget(handler):
    """Run a callback; a failure becomes a message in the widget, the last good state stays."""
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as e:          # noqa: BLE001 — a widget must never show a traceback
            self._say(f"{type(e).__name__ if not isinstance(e, BackpropError) else ''}"
                      f"{': ' if not isinstance(e, BackpropError) else ''}{e}", error=True)
    return run


class Stepper:
    """Step through the forward and backward passes of ``Stepper(net, x, y)`` or ``Stepper(trace)``.

    Parts: the graph as known after the current step; ◀ ▶, Play, reset, jump to the backward
    pass and a counter; the equation panel; an inspector for one node; controls that rebuild the
    trace (input, label, architecture, seed, weights, loss); and predict-then-reveal.
    """

    def __init__(self, net_or_trace, x=None, y=None, predict: bool = False, interval: int = 900):
        import ipywidgets as W
        self.W = W
        self.model = StepperModel(net_or_trace, x, y)
        m = self.model
        self._busy = False

        self.graph = W.HTML(layout=W.Layout(overflow="auto"))
        self.graph.add_class("bpv-graph")
        btn = lambda d, tip, cls: W.Button(description=d, tooltip=tip,
                                           layout=W.Layout(width="auto")).add_class(cls)
        self.prev_btn = btn("◀ step", "previous step", "bpv-prev")
        self.next_btn = btn("step ▶", "next step: apply one rule", "bpv-next")
        self.reset_btn = btn("reset", "back to before the first step", "bpv-reset")
        self.back_btn = btn("to backward pass", "jump to the first backward step, ∂J/∂u[k] = 1",
                            "bpv-to-backward")
        self.play = W.Play(min=-1, max=m.n - 1, step=1, interval=interval, value=m.step,
                           description="play").add_class("bpv-play")
        self.slider = W.IntSlider(min=-1, max=m.n - 1, value=m.step, readout=False,
                                  description="step", continuous_update=True,
                                  layout=W.Layout(width="260px")).add_class("bpv-slider")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.counter = W.HTML().add_class("bpv-counter")
        self.equation = W.HTMLMath().add_class("bpv-equation")
        self.message = W.HTML().add_class("bpv-message")

        self.prev_btn.on_click(self._on_prev)
        self.next_btn.on_click(self._on_next)
        self.reset_btn.on_click(self._on_reset)
        self.back_btn.on_click(self._on_backward)
        self.slider.observe(self._on_slider, names="value")
        self.play.observe(self._on_play, names="playing")

        self._build_inspector()
        self._build_predict(predict)
        self._build_controls()

        bar = W.HBox([self.reset_btn, self.prev_btn, self.next_btn, self.back_btn,
                      self.counter, self.play, self.slider],
                     layout=W.Layout(align_items="center", flex_flow="row wrap"))
        parts = [bar, self.equation, self.predict_box, self.message, self.graph, self.inspector]
        if self.controls is not None:
            parts.append(self.controls)
        self.box = W.VBox(parts).add_class("bpv-stepper")
        self._refresh()

    # --- parts ------------------------------------------------------------------------------------
    def _build_inspector(self):
        W = self.W
        self.node_pick = W.Dropdown(options=self._node_options(), description="inspect",
                                    layout=W.Layout(width="260px")).add_class("bpv-inspect")
        self.follow = W.Checkbox(value=True, description="follow the current step",
                                 indent=False).add_class("bpv-follow")
        self.follow.observe(self._on_toggle, names="value")
        self.node_info = W.HTML().add_class("bpv-node-info")
        self.heatmap = W.Image(format="png", layout=W.Layout(max_width="520px"))
        self.heatmap.add_class("bpv-heatmap")
        self.node_pick.observe(self._on_pick, names="value")
        self.inspector = W.VBox([W.HBox([self.node_pick, self.follow]),
                                 W.HBox([self.node_info, self.heatmap])])
        self._heat = (None, None, b"")       # (trace, what was drawn, png): drawn once

    @shown_in_widget
    def _on_play(self, change):
        if change["new"] and self.predict_toggle.value:
            self.play.playing = False             # Play ignores `disabled`; predictions come first

    @shown_in_widget
    def _on_toggle(self, change):
        self._refresh()

    @shown_in_widget
    def _on_pick(self, change):
        if not self._busy:               # the learner chose a node: stop following the step
            self.follow.value = False
        self._update_inspector()

    def _node_options(self):
        return [n.name for n in self.model.trace.nodes]

    def _build_predict(self, on: bool):
        W = self.W
        self.predict_toggle = W.Checkbox(value=on, description="predict, then reveal",
                                         indent=False).add_class("bpv-predict-toggle")
        self.answer = W.Text(placeholder="e.g. [[0.1, -0.2]]", layout=W.Layout(width="320px"))
        self.answer.add_class("bpv-answer")
        self.check_btn = W.Button(description="check").add_class("bpv-check")
        self.reveal_btn = W.Button(description="reveal").add_class("bpv-reveal")
        self.prompt = W.HTML().add_class("bpv-prompt")
        self.feedback = W.HTML().add_class("bpv-feedback")
        self.check_btn.on_click(self._on_check)
        self.reveal_btn.on_click(self._on_reveal)
        self.predict_toggle.observe(self._on_toggle, names="value")
        self.ask = W.HBox([self.prompt, self.answer, self.check_btn, self.reveal_btn],
                          layout=W.Layout(align_items="center", flex_flow="row wrap"))
        # feedback first: after a right answer it confirms the step just revealed, above the
        # question for the next one
        self.predict_box = W.VBox([self.predict_toggle, self.feedback, self.ask])

    def _build_controls(self):
        W = self.W
        st = self.model.settings
        if st is None:
            self.controls = None
            return
        text = lambda v, d, cls, w="200px": W.Text(value=v, description=d,
                                                  layout=W.Layout(width=w)).add_class(cls)
        self.x_in = text("", "x", "bpv-x")
        self.y_in = text("", "y", "bpv-y")
        self.sizes_in = text("", "sizes", "bpv-sizes")
        self.act_in = W.Dropdown(options=list(M.ACTIVATIONS), value=st.activation,
                                 description="σ", layout=W.Layout(width="200px"))
        self.act_in.add_class("bpv-activation")
        self.seed_in = W.IntText(value=st.seed, description="seed", layout=W.Layout(width="160px"))
        self.seed_in.add_class("bpv-seed")
        self.loss_in = W.ToggleButtons(options=list(M.LOSSES), value=st.loss,
                                       description="loss").add_class("bpv-loss")
        self.weights_in = W.Textarea(value="", description="θ",
                                     layout=W.Layout(width="520px", height="110px"))
        self.weights_in.add_class("bpv-weights")
        self.rebuild_btn = W.Button(description="rebuild", button_style="primary")
        self.rebuild_btn.add_class("bpv-rebuild")
        self.new_weights_btn = W.Button(description="new random weights (seed)")
        self.new_weights_btn.add_class("bpv-reinit")
        self.compare = W.HTML().add_class("bpv-loss-compare")
        self.rebuild_btn.on_click(self._on_rebuild)
        self.new_weights_btn.on_click(self._on_reinit)
        self.loss_in.observe(self._on_loss, names="value")
        self.controls = W.VBox([
            W.HTML("<b>change the example or the network</b>"),
            W.HBox([self.x_in, self.y_in, self.sizes_in]),
            W.HBox([self.act_in, self.seed_in, self.new_weights_btn]),
            self.weights_in, self.rebuild_btn, self.loss_in, self.compare])
        self._update_controls()

    # --- handlers (each shows its errors in the widget) ---------------------------------------------
    @shown_in_widget
    def _on_prev(self, _):
        self._set_step(self.model.step - 1)

    @shown_in_widget
    def _on_next(self, _):
        if self.predict_toggle.value and self.model.needs_prediction(self.model.step + 1):
            self._refresh()
            self._say("Type your prediction first, then check (or reveal).")
            return
        self._set_step(self.model.step + 1)

    @shown_in_widget
    def _on_reset(self, _):
        self._set_step(-1)

    @shown_in_widget
    def _on_backward(self, _):
        self._set_step(self.model.n_forward)

    @shown_in_widget
    def _on_slider(self, change):
        if self._busy:
            return
        k = change["new"]
        if self.predict_toggle.value:
            # no skipping past an unrevealed prediction by dragging or playing
            for j in range(self.model.step + 1, k + 1):
                if self.model.needs_prediction(j):
                    k = j - 1
                    break
        if k != change["new"]:
            self.play.playing = False             # Play ignores `disabled`: stop it here
            self._set_step(k)                     # and put the slider back where the model is
            return
        self.model.go(k)
        self._refresh()

    @shown_in_widget
    def _on_check(self, _):
        self._say("")
        ok, msg = self.model.check_prediction(self.answer.value)
        self.feedback.value = (f'<span style="color:{"#1a7f37" if ok else "#b3261e"}">'
                               f"{'✔' if ok else '✘'} {html.escape(msg)}</span>")
        if ok:
            self.answer.value = ""
            self._set_step(self.model.step + 1, keep_feedback=True)

    @shown_in_widget
    def _on_reveal(self, _):
        self.model.reveal()
        self.feedback.value = ""
        self._set_step(self.model.step + 1)

    @shown_in_widget
    def _on_rebuild(self, _):
        try:
            self._rebuild_from_controls()
        except BackpropError as e:
            self._update_controls()      # the controls go back to the last good settings
            self._say(str(e), error=True)

    def _rebuild_from_controls(self):
        st = self.model.settings
        changes = dict(x=tuple(parse_array(self.x_in.value, "x").ravel()),
                       y=tuple(parse_array(self.y_in.value, "y").ravel()),
                       sizes=parse_sizes(self.sizes_in.value), activation=self.act_in.value,
                       seed=int(self.seed_in.value), loss=self.loss_in.value)
        weights = None
        # only weights the learner edited, and only for the same network
        if self.weights_in.value != self.model.weights_text() and not self.weights_in.disabled \
                and same_network(Settings(**{**st.__dict__, **changes}), st):
            weights = self.model.parse_weights(self.weights_in.value)
        self._apply_rebuild(weights=weights, **changes)

    @shown_in_widget
    def _on_reinit(self, _):
        self._apply_rebuild(seed=int(self.seed_in.value), sizes=parse_sizes(self.sizes_in.value),
                            activation=self.act_in.value, fresh=True)

    @shown_in_widget
    def _on_loss(self, change):
        if self._busy:
            return
        self._apply_rebuild(loss=change["new"], keep_net=True)

    def _apply_rebuild(self, weights=None, keep_net=False, fresh=False, **changes):
        m = self.model
        ok = m.rebuild(weights=weights, keep_net=keep_net, fresh=fresh, **changes)
        if not ok:
            self._say(m.error, error=True)
            self._update_controls()      # the controls go back to the last good settings
            return
        self._busy = True
        try:
            self.slider.max = self.play.max = m.n - 1
            self.slider.value = self.play.value = m.step
            opts = self._node_options()
            if list(self.node_pick.options) != opts:
                keep = self.node_pick.value if self.node_pick.value in opts else opts[0]
                self.node_pick.options = opts
                self.node_pick.value = keep
        finally:
            self._busy = False
        self.feedback.value = ""                 # it was about the old trace
        self._update_controls()
        self._refresh()
        self._say("rebuilt: " + repr(m.trace)[1:-1])

    # --- view ----------------------------------------------------------------------------------------
    def _set_step(self, k: int, keep_feedback: bool = False):
        self.model.go(k)
        self._say("")                    # a message from before is stale once the learner moves
        if not keep_feedback:
            self.feedback.value = ""
        if self.slider.value != self.model.step:
            self._busy = True
            try:
                self.slider.value = self.model.step       # the Play follows through jslink
            finally:
                self._busy = False
        self._refresh()

    def _say(self, text: str, error: bool = False):
        colour = "#b3261e" if error else "#555555"
        cls = "bpv-error" if error else "bpv-info"
        self.message.value = (f'<div class="{cls}" style="color:{colour}">'
                              f"{'⚠ ' if error else ''}{html.escape(text)}</div>" if text else "")

    def _refresh(self):
        m = self.model
        if not self.message.value.startswith('<div class="bpv-error"'):
            self.message.value = ""
        try:
            self.graph.value = m.svg(caption=False)   # the equation panel shows the caption
        except BackpropError as e:     # no Graphviz engine: the text rendering instead
            self.graph.value = f"<pre>{html.escape(m.text())}</pre><i>{html.escape(str(e))}</i>"
        self.counter.value = f"<b>{html.escape(m.counter())}</b>"
        self.equation.value = self._equation_html()
        predicting = self.predict_toggle.value
        self.slider.disabled = self.play.disabled = predicting
        if predicting:
            self.play.playing = False
        ask = predicting and m.needs_prediction(m.step + 1)
        self.ask.layout.display = "flex" if ask else "none"
        if ask:
            spec = m.trace.specs[m.step + 1]
            self.prompt.value = (f"predict <b>{html.escape(spec.lhs)}</b> "
                                 f"[shape {html.escape(shape_str(m.trace[spec.writes]))}] "
                                 f"= {html.escape(spec.fill())} {html.escape(spec.tag)}:")
        self.prev_btn.disabled = m.step <= -1
        self.next_btn.disabled = m.step >= m.n - 1
        self._update_inspector()

    def _equation_html(self) -> str:
        m = self.model
        eq = m.equation()
        # only the $$…$$ line is maths; names and numbers elsewhere are text MathJax must skip
        if m.step < 0:
            return (f"<div {NO_MATH}><b>{html.escape(eq['header'])}</b><br>"
                    f"{html.escape(eq['symbolic'])}</div>")
        spec = m.trace.specs[m.step]
        tex = (_latex_key(spec.writes) + " = " + spec.fill(_latex_key)
               .replace("ᵀ", r"^{\top}").replace("⊙", r"\odot "))
        return (f"<div {NO_MATH}><b>{html.escape(eq['header'])}</b></div>"
                f"<div>$$ {tex} \\quad \\text{{{html.escape(spec.tag)}}} $$</div>"
                f"<div {NO_MATH} style='font-family:monospace'>"
                + (f"{html.escape(eq['numbers'])}<br>" if eq["numbers"] else "")
                + f"{html.escape(eq['result'])}</div>")

    def _update_inspector(self):
        m = self.model
        if self.follow.value and m.step >= 0 and self.node_pick.value != m.trace.specs[m.step].node:
            self._busy = True
            try:
                self.node_pick.value = m.trace.specs[m.step].node
            finally:
                self._busy = False
        name = self.node_pick.value
        if name is None:
            return
        info = self.model.inspect(name)

        def block(title, a):
            if a is None:
                return f"<b>{html.escape(title)}</b>: <i>not yet computed</i>"
            lines = "\n".join(array_lines(a))
            return f"<b>{html.escape(title)}</b> ({shape_str(a)}):<pre>{html.escape(lines)}</pre>"
        parts = [block(name, info["value"])]
        if info["has_grad"]:
            parts.append(block(pretty("dJ/d" + name), info["grad"]))
        self.node_info.value = "<div>" + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
        value, grad = info["value"], info["grad"]
        if value is not None and np.ndim(value) == 2 and np.size(value) > 1:
            drawn = (name, grad is not None)
            if self._heat[0] is not m.trace or self._heat[1] != drawn:
                self._heat = (m.trace, drawn, heatmap_png(name, value, grad))
            self.heatmap.value = self._heat[2]
            self.heatmap.layout.display = "block"
        else:
            self.heatmap.layout.display = "none"

    def _update_controls(self):
        st = self.model.settings
        self._busy = True
        try:
            # every digit: rebuilding from these fields must not round x or y
            self.x_in.value = exact(st.x)[1:-1]
            self.y_in.value = exact(st.y)[1:-1]
            self.sizes_in.value = ", ".join(map(str, st.sizes))
            self.act_in.value = st.activation
            self.seed_in.value = st.seed
            self.loss_in.value = st.loss
            n_params = sum(a.size for a in self.model.net.params.values())
            small = n_params <= MAX_EDITABLE_PARAMS
            self.weights_in.value = self.model.weights_text() if small else \
                f"({n_params} parameters: too many to edit here; change the seed instead)"
            self.weights_in.disabled = not small
        finally:
            self._busy = False
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td style='font-family:monospace'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self.model.loss_comparison())
        self.compare.value = ("<div>Same network, same x and y, each loss:</div>"
                              f"<table>{rows}</table>")

    # --- Jupyter display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        bundle = self.box._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        # a static viewer (no widget front end) still shows the graph and the text
        try:
            svg = self.model.svg()
        except BackpropError:
            svg = ""
        data["text/html"] = svg + f"<pre>{html.escape(self.model.text())}</pre>"
        data["text/plain"] = self.model.text()
        return data

    # --- driving it from code (tests, lessons) ----------------------------------------------------
    def click(self, which: str):
        """Press a button by name: prev, next, reset, backward, check, reveal, rebuild."""
        button = {"prev": self.prev_btn, "next": self.next_btn, "reset": self.reset_btn,
                  "backward": self.back_btn, "check": self.check_btn,
                  "reveal": self.reveal_btn}.get(which)
        if button is None and which == "rebuild" and self.controls is not None:
            button = self.rebuild_btn
        if button is None:
            raise BackpropError(f"no button {which!r}")
        button.click()

    @property
    def step(self) -> int:
        return self.model.step


def heatmap_png(name: str, value, grad) -> bytes:
    """A matrix and its gradient side by side, on one symmetric colour scale."""
    from matplotlib.figure import Figure      # no pyplot: the user's backend stays as it is
    arrays = [("value " + name, value)] + ([(pretty("dJ/d" + name), grad)] if grad is not None else [])
    vmax = max(float(np.max(np.abs(a))) for _, a in arrays) or 1.0
    fig = Figure(figsize=(2.3 * len(arrays) + 0.8, 2.4), dpi=80)
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, (title, a) in zip(axes, arrays):
        im = ax.imshow(np.asarray(a), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
