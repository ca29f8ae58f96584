"""The Stepper: an ipywidgets app that walks through a trace one rule at a time.

``Stepper`` is a VBox (so it nests in any layout, as ``interactive`` does) made of small parts,
each observing the one ``StepperModel``: the navigation bar (``Play`` jslinked to the slider;
Python observes the slider only), the equation panel, the graph, the inspector, the predict box
and the rebuild controls. Every callback shows its errors inside the widget (never a traceback)
and leaves the last good state in place.
"""
from __future__ import annotations

import functools
import html

import ipywidgets as W
import numpy as np

from ..core import keys as K
from ..core.keys import Key
from ..core import modules as M
from ..core.errors import BackpropError, shape_str
from ..display.draw import svg_img
from ..teach.hints import tolerance_text
from ..display.presentation import rhs
from ..teach.rebuild import MAX_EDITABLE_PARAMS, Settings, parse_array, parse_sizes, same_network
from ..teach.stepper import GRANULARITIES, StepperModel
from ..display.text import array_lines, exact, fnum, summary
from ..core.checks import whole

# text MathJax must leave alone (JupyterLab's MathJax 3 honours the first, Voilà's the second)
NO_MATH = 'class="tex2jax_ignore mathjax_ignore"'


def shown_in_widget(handler):
    """Run a callback; a failure becomes a message in the widget, the last good state stays."""
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as e:          # noqa: BLE001 — a widget must never show a traceback
            prefix = "" if isinstance(e, BackpropError) else type(e).__name__ + ": "
            self.say(prefix + str(e), error=True)
    return run


def _button(description, tooltip, cls, **kw):
    b = W.Button(description=description, tooltip=tooltip, layout=W.Layout(width="auto"), **kw)
    b.add_class(cls)
    return b


def _held(widget) -> list:
    """The widgets a widget holds in its traits: children, layout, style, a canvas's toolbar."""
    out = []
    for value in widget.trait_values().values():
        out += [w for w in (value if isinstance(value, (tuple, list)) else (value,))
                if isinstance(w, W.Widget)]
    return out


def close_tree(widget, seen: set):
    """Close a widget and every widget below it (ipywidgets' close() closes only the one, and a
    closed box keeps its children, layout and style open). ``seen``: ids already closed."""
    if id(widget) in seen:
        return
    seen.add(id(widget))
    for w in _held(widget):
        close_tree(w, seen)
    widget.close()


class ClosesParts:
    """A composite widget whose close() closes every widget it holds as an attribute, and that
    closes what it built if its constructor fails (nothing half-built stays in the kernel)."""

    def _parts(self) -> list:
        return [w for w in vars(self).values() if isinstance(w, W.Widget) and w is not self]

    def close(self):
        seen = {id(self)}
        for w in self._parts() + _held(self):
            close_tree(w, seen)
        super().close()


class _Part:
    """A part of the Stepper: it observes the model and reports through the Stepper's ``say``."""

    def _attach(self, stepper: "Stepper"):
        self.stepper, self.model = stepper, stepper.model
        self.model.observe(lambda what: self._safe_refresh(what))

    def say(self, text, error=False):
        self.stepper.say(text, error)

    @shown_in_widget
    def _safe_refresh(self, what):
        self.refresh(what)

    def refresh(self, what: str):
        raise NotImplementedError


class NavBar(W.HBox, _Part):
    """reset, ◀ step, step ▶, to backward pass, the counter, Play and the step slider."""

    def __init__(self, stepper, interval: int):
        n = stepper.model.n
        self.reset_btn = _button("reset", "back to step 0, before the first step", "bpv-reset")
        self.prev_btn = _button("◀ step", "previous step", "bpv-prev")
        self.next_btn = _button("step ▶", "next step: apply one rule", "bpv-next")
        self.back_btn = _button("to backward pass", "jump to the first backward step, "
                                "∂J/∂u[k] = 1", "bpv-to-backward")
        # the End key's target (Home is reset): not shown, the bar is full enough
        self.end_btn = _button("to the end", "last step: the whole pass done", "bpv-end")
        self.end_btn.layout.display = "none"
        self.counter = W.HTML().add_class("bpv-counter")
        self.play = W.Play(min=0, max=n, step=1, interval=interval, value=0,
                           description="play").add_class("bpv-play")
        self.slider = W.IntSlider(min=0, max=n, value=0, readout=False, description="step",
                                  continuous_update=True,
                                  layout=W.Layout(width="260px")).add_class("bpv-slider")
        self.link = W.jslink((self.play, "value"), (self.slider, "value"))
        super().__init__([self.reset_btn, self.prev_btn, self.next_btn, self.back_btn,
                          self.counter, self.play, self.slider, self.end_btn],
                         layout=W.Layout(align_items="center", flex_flow="row wrap"))
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

    @shown_in_widget

    def close(self):
        link = getattr(self, "link", None)      # the jslink is a widget too
        if link is not None:
            link.close()
        super().close()
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


class EquationPanel(W.HTMLMath, _Part):
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


class GraphView(W.HTML, _Part):
    """The graph as known after the current step (the renderer keeps one layout per graph)."""

    def __init__(self, stepper):
        super().__init__()              # a panel that scrolls (its size: _BEHAVIOUR)
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


class Inspector(W.VBox, _Part):
    """One node's value and gradient, with shapes; matrices also as a heatmap."""

    def __init__(self, stepper):
        self.node_pick = W.Dropdown(options=self._options(stepper.model),
                                    description="inspect",
                                    layout=W.Layout(width="260px")).add_class("bpv-inspect")
        self.follow = W.Checkbox(value=True, description="follow the current step",
                                 indent=False).add_class("bpv-follow")
        self.node_info = W.HTML().add_class("bpv-node-info")
        self.heatmap = W.HTML(layout=W.Layout(max_width="100%", overflow="auto"))
        self.heatmap.add_class("bpv-heatmap")
        wrap = W.Layout(flex_flow="row wrap", align_items="flex-start")
        super().__init__([W.HBox([self.node_pick, self.follow], layout=wrap),
                          W.HBox([self.node_info, self.heatmap], layout=wrap)])
        self.add_class("bpv-inspector")
        self._attach(stepper)
        self._busy = False
        self._heat = (None, None, b"")       # (trace, what was drawn, png): drawn once
        self.node_pick.observe(self._on_pick, names="value")
        self.follow.observe(lambda _: self._safe_refresh("follow"), names="value")

    @staticmethod
    def _options(model):
        return [n.name for n in model.trace.nodes]

    @shown_in_widget
    def _on_pick(self, change):
        # a pick made by refresh itself (following the step, new options after a rebuild) is
        # drawn by that refresh; refreshing here too would end its _busy early, and its last
        # pick would then count as the learner's and switch following off
        if self._busy:
            return
        self.follow.value = False        # the learner chose a node: stop following the step
        self.refresh("pick")

    def refresh(self, what):
        m = self.model
        self._busy = True
        try:
            opts = self._options(m)
            if list(self.node_pick.options) != opts:
                keep = self.node_pick.value if self.node_pick.value in opts else opts[0]
                self.node_pick.options = opts
                self.node_pick.value = keep
            if self.follow.value and m.step > 0:
                self.node_pick.value = m.trace.specs[m.step - 1].node
        finally:
            self._busy = False
        name = self.node_pick.value
        if name is None:
            return
        info = m.inspect(name)

        def block(title, a):
            if a is None:
                return f"<b>{html.escape(title)}</b>: <i>not yet computed</i>"
            lines = "\n".join(array_lines(a))
            return f"<b>{html.escape(title)}</b> ({shape_str(a)}):<pre>{html.escape(lines)}</pre>"
        parts = [block(name, info["value"])]
        if info["has_grad"]:
            parts.append(block(K.text(K.Key.gradient(name)), info["grad"]))
        self.node_info.value = "<div>" + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
        value, grad = info["value"], info["grad"]
        if value is not None and np.ndim(value) == 2 and np.size(value) > 1:
            drawn = (name, grad is not None)
            if self._heat[0] is not m.trace or self._heat[1] != drawn:
                self._heat = (m.trace, drawn, heatmap_html(name, value, grad))
            self.heatmap.value = self._heat[2]
            self.heatmap.layout.display = "block"
        else:
            self.heatmap.layout.display = "none"


class PredictBox(W.VBox, _Part):
    """Predict, then reveal: the learner types the next backward step before it is shown.

    The prompt names what to predict and its shape; the rule itself appears after a wrong try.
    """

    def __init__(self, stepper, on: bool):
        self.predict_toggle = W.Checkbox(value=on, description="predict, then reveal",
                                         indent=False).add_class("bpv-predict-toggle")
        self.answer = W.Text(placeholder="e.g. [0.1, -0.2]",
                             layout=W.Layout(width="100%", max_width="320px"),
                             description="your answer").add_class("bpv-answer")
        self.check_btn = _button("check", "check your prediction", "bpv-check")
        self.reveal_btn = _button("reveal", "show this step without predicting", "bpv-reveal")
        self.prompt = W.HTML().add_class("bpv-prompt")
        self.feedback = W.HTML().add_class("bpv-feedback")
        self.ask = W.HBox([self.prompt, self.answer, self.check_btn, self.reveal_btn],
                          layout=W.Layout(align_items="center", flex_flow="row wrap"))
        # feedback first: after a right answer it confirms the step just revealed, above the
        # question for the next one
        super().__init__([self.predict_toggle, self.feedback, self.ask])
        self._attach(stepper)
        self.tries: dict[int, int] = {}
        self.outcome: dict[int, str] = {}     # step → "first", "hint" (after a wrong try), "revealed"
        self.check_btn.on_click(self._on_check)
        self.reveal_btn.on_click(self._on_reveal)
        self.predict_toggle.observe(lambda _: self.stepper.refresh_all(), names="value")

    @shown_in_widget
    def _on_check(self, _):
        self.say("")
        m = self.model
        k = m.step + 1
        ok, msg = m.check_prediction(self.answer.value)
        if not ok:
            self.tries[k] = self.tries.get(k, 0) + 1
        else:
            self.outcome.setdefault(k, "first" if not self.tries.get(k) else "hint")
        self.feedback.value = (f'<span style="color:{"#1a7f37" if ok else "#b3261e"}">'
                               f"{'✔' if ok else '✘'} {html.escape(msg)}</span>")
        if ok:
            self.answer.value = ""
            self.stepper.move(k, keep_feedback=True)
        else:
            self.refresh("tried")

    @shown_in_widget
    def _on_reveal(self, _):
        self.outcome.setdefault(self.model.step + 1, "revealed")
        self.model.reveal()
        self.answer.value = ""
        self.feedback.value = ""
        self.stepper.move(self.model.step + 1)

    def score_html(self) -> str:
        return (f'<div class="bpv-score" role="status" style="font-weight:bold">'
                f"{html.escape(_score(self.outcome))}</div>")

    def refresh(self, what):
        m = self.model
        if what == "trace":
            self.feedback.value = ""             # it was about the old trace
            self.tries, self.outcome = {}, {}
        if self.predict_toggle.value and m.step == m.n and self.outcome and \
                "bpv-score" not in self.feedback.value:
            self.feedback.value += self.score_html()
        ask = self.predict_toggle.value and m.needs_prediction(m.step + 1)
        self.ask.layout.display = "flex" if ask else "none"
        if not ask:
            return
        k = m.step + 1
        spec = m.trace.specs[k - 1]
        want = m.trace[spec.writes]
        lhs = html.escape(K.text(spec.writes))
        # the rule is shown after a first wrong try: first the learner recalls it
        rule = (f" = {html.escape(rhs(m.trace, spec))} {html.escape(spec.tag)}"
                if self.tries.get(k) else f" {html.escape(spec.rule.label)}")
        self.prompt.value = (f"<span {NO_MATH}>predict <b>{lhs}</b>{rule} "
                             f"(shape {html.escape(shape_str(want))}; "
                             f"{html.escape(tolerance_text())}):</span>")
        self.answer.placeholder = "e.g. " + _example(want)


def _score(outcome: dict) -> str:
    n = len(outcome)
    c = {k: sum(1 for v in outcome.values() if v == k) for k in ("first", "hint", "revealed")}
    return (f"Done: {n} prediction{'s' * (n != 1)}: {c['first']} right first time, "
            f"{c['hint']} after a hint, {c['revealed']} revealed.")


def _example(a) -> str:
    """A placeholder with the shape of the answer asked for."""
    a = np.asarray(a)
    if a.ndim == 0:
        return "0.5"
    if a.ndim == 1:
        return "[" + ", ".join(["0.1", "-0.2", "0.3"][:a.size] + ["…"] * (a.size > 3)) + "]"
    row = "[" + ", ".join(["0.1", "-0.2", "0.3"][:a.shape[1]] + ["…"] * (a.shape[1] > 3)) + "]"
    return "[" + ", ".join([row] * min(a.shape[0], 2) + ["…"] * (a.shape[0] > 2)) + "]"


MAX_FIELD = 16          # entries of x or y written into a field; larger ones are summarized
_FIELD_CSS = ("<style>.bpv-bad input, .bpv-bad textarea { outline: 2px solid #b3261e; "
              "background: #fff4f2; }</style>")


class RebuildControls(W.VBox, _Part):
    """Change the example or the network: x, y, sizes, σ, seed, weights, the loss."""

    def __init__(self, stepper):
        st = stepper.model.settings
        text = lambda d, cls, w="200px": W.Text(description=d,
                                                layout=W.Layout(width=w)).add_class(cls)
        self.x_in, self.y_in, self.sizes_in = text("x", "bpv-x"), text("y", "bpv-y"), \
            text("sizes", "bpv-sizes")
        self.act_in = W.Dropdown(options=list(M.ACTIVATIONS), value=st.activation,
                                 description="σ", layout=W.Layout(width="200px"))
        self.act_in.add_class("bpv-activation")
        self.seed_in = W.Text(value=str(st.seed), description="seed",
                                 layout=W.Layout(width="160px")).add_class("bpv-seed")
        self.loss_in = W.ToggleButtons(options=list(M.LOSSES), value=st.loss,
                                       description="loss").add_class("bpv-loss")
        self.weights_in = W.Textarea(description="θ", layout=W.Layout(width="520px",
                                                                      height="110px"))
        self.weights_in.add_class("bpv-weights")
        self.rebuild_btn = _button("rebuild", "rebuild the trace from these settings",
                                   "bpv-rebuild", button_style="primary")
        self.new_weights_btn = _button("new weights from seed", "draw new random weights "
                                       "from the seed", "bpv-reinit")
        self.compare = W.HTML().add_class("bpv-loss-compare")
        self.field_errors = W.HTML().add_class("bpv-field-errors")
        super().__init__([W.HTML("<b>change the example or the network</b>" + _FIELD_CSS),
                          W.HBox([self.x_in, self.y_in, self.sizes_in]),
                          W.HBox([self.act_in, self.seed_in, self.new_weights_btn]),
                          self.weights_in, self.field_errors, self.rebuild_btn, self.loss_in,
                          self.compare])
        self._attach(stepper)
        self._busy = False
        self.rebuild_btn.on_click(self._on_rebuild)
        self.new_weights_btn.on_click(self._on_reinit)
        self.loss_in.observe(self._on_loss, names="value")
        self.refresh("trace")

    def _fields(self) -> dict:
        return {"x": self.x_in, "y": self.y_in, "sizes": self.sizes_in, "seed": self.seed_in,
                "θ": self.weights_in}

    def _read(self) -> tuple[dict, dict]:
        """(changes from the fields that read well, {field: message} for those that do not)."""
        st, rb = self.model.settings, self.model.rebuilder
        parse = {
            "x": lambda: st.x if self.x_in.disabled else parse_array(self.x_in.value, "x").ravel(),
            "y": lambda: st.y if self.y_in.disabled else parse_array(self.y_in.value, "y").ravel(),
            "sizes": lambda: parse_sizes(self.sizes_in.value, keep=st.sizes),
            "seed": lambda: whole(self.seed_in.value, "seed"),
        }
        changes, bad = {}, {}
        for k, fn in parse.items():
            try:
                changes[k] = fn()
            except BackpropError as e:
                bad[k] = str(e)
        changes.update(activation=self.act_in.value, loss=self.loss_in.value)
        # only weights the learner edited, and only for the same network
        if self.weights_in.value != rb.weights_text() and not self.weights_in.disabled \
                and same_network(Settings(**{**st.__dict__, **changes}), st):
            try:
                changes["weights"] = rb.parse_weights(self.weights_in.value)
            except BackpropError as e:
                bad["θ"] = str(e)
        return changes, bad

    def _mark(self, bad: dict):
        """Mark the fields that could not be read, with the message beside them."""
        for k, field in self._fields().items():
            (field.add_class if k in bad else field.remove_class)("bpv-bad")
        self.field_errors.value = "".join(
            f'<div role="alert" style="color:#b3261e">⚠ {html.escape(k)}: {html.escape(msg)}</div>'
            for k, msg in bad.items())

    @shown_in_widget
    def _on_rebuild(self, _):
        changes, bad = self._read()
        self._mark(bad)
        weights = changes.pop("weights", None)
        st = self.model.settings
        if bad and weights is None and all(np.array_equal(v, getattr(st, k))
                                           for k, v in changes.items()):
            self.say("nothing was rebuilt: correct the marked field", error=True)
            return
        # the fields that read well still apply; what was typed in the others stays there
        self._apply(weights=weights, keep=set(bad), **changes)

    @shown_in_widget
    def _on_reinit(self, _):
        changes, bad = self._read()
        self._mark({k: v for k, v in bad.items() if k in ("sizes", "seed")})
        self._apply(fresh=True, keep=set(bad), **{k: changes[k] for k in ("sizes", "seed",
                                                                           "activation")
                                                  if k in changes})

    @shown_in_widget
    def _on_loss(self, change):
        if not self._busy:
            self._apply(loss=change["new"], keep_net=True)

    def _apply(self, keep=frozenset(), **kwargs):
        m = self.model
        self._keep = set(keep)
        try:
            if not m.rebuild(**kwargs):
                self.say(m.error, error=True)      # what was typed stays, to be corrected
                return
        finally:
            self._keep = set()
        if keep:
            self.say("rebuilt from the fields that could be read; the marked ones were not used",
                     error=True)
            return
        if m.error:                                # rebuilt, but not shown as a circuit
            self.say(m.error, error=True)
            return
        warn = m.rebuilder.warning()
        self.say(("⚠ " + warn) if warn else
                 f"rebuilt: {m.n} steps, J = {fnum(m.trace.loss)}; now at step {m.step}")

    def refresh(self, what):
        if what != "trace":
            if hasattr(self, "_comparison"):
                self._show_comparison()
            return
        rb = self.model.rebuilder
        st = rb.settings
        keep = getattr(self, "_keep", set())
        self._busy = True
        try:
            # every digit: rebuilding from these fields must not round x or y; a large input is
            # summarized and edited only where it is small
            for k, field, arr in (("x", self.x_in, st.x), ("y", self.y_in, st.y)):
                if k in keep:
                    continue
                small = np.size(arr) <= MAX_FIELD
                field.value = exact(arr)[1:-1] if small else summary(arr)
                field.disabled = not small
            if "sizes" not in keep:
                self.sizes_in.value = ", ".join(map(str, st.sizes))
            self.act_in.value = st.activation
            if "seed" not in keep:
                self.seed_in.value = str(st.seed)
            self.loss_in.value = st.loss
            small = rb.n_params <= MAX_EDITABLE_PARAMS
            if "θ" not in keep:
                self.weights_in.value = rb.weights_text() if small else \
                    f"({rb.n_params} parameters: too many to edit here; change the seed instead)"
            self.weights_in.disabled = not small
        finally:
            self._busy = False
        if not keep:
            self._mark({})
        self._comparison = rb.loss_comparison()
        self._show_comparison()

    def _show_comparison(self):
        """Each loss's ∂J/∂u[k−1], once the learner has seen that gradient (in predict mode it
        would give away the first answer)."""
        m, rb = self.model, self.model.rebuilder
        k = len(rb.net.layers)
        target = Key.gradient(f"u[{k}]")
        at = m.module_trace.known_at(target)      # in the circuit view too: a module-level key
        hidden = self.stepper.predicting and m.module_step() < at
        warn = rb.warning()
        head = (f'<div class="bpv-warning" role="note" style="color:#8a4b00">⚠ '
                f"{html.escape(warn)}</div>" if warn else "")
        if hidden:
            body = (f"<div>Each loss's {html.escape(K.text(target))} is compared here once you "
                    f"have reached step {at}.</div>")
        else:
            rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td style='font-family:"
                           f"monospace'>{html.escape(v)}</td></tr>" for k, v in self._comparison)
            body = f"<div>Same network, same x and y, each loss:</div><table>{rows}</table>"
        self.compare.value = head + body


class GranularityBar(W.HBox, _Part):
    """modules | scalar circuit: the same pass as modules or as atomic operations on single
    numbers (Theorem 7.4.1), at the matching step. Shown only where every module of the pass
    has a decomposition."""

    TOOLTIPS = ["the pass as modules M_i: one step per rule (F), (B1), (B2)",
                "the same pass as atomic operations on single numbers (Theorem 7.4.1): one step "
                "per +, ×, exp, …"]

    def __init__(self, stepper):
        m = stepper.model
        self.toggle = W.ToggleButtons(options=list(GRANULARITIES), value=m.granularity,
                                      description="view", tooltips=self.TOOLTIPS,
                                      tooltip="granularity of the steps: modules or the scalar "
                                              "circuit of Theorem 7.4.1")
        self.toggle.add_class("bpv-granularity")
        self.label = W.HTML(
            '<span class="bpv-granularity-help" style="font-size:12px;color:#555">switching '
            "keeps the place in the pass: a module step is the circuit steps that complete it"
            "</span>")
        self.expand = W.Dropdown(options=self._options(m), value="none", description="expand",
                                 tooltip="open one module into its multiplications, additions, "
                                         "… while the rest stays at module level",
                                 layout=W.Layout(width="auto"))
        self.expand.add_class("bpv-expand")
        super().__init__([self.toggle, self.expand, self.label],
                         layout=W.Layout(align_items="center", flex_flow="row wrap"))
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


class Stepper(ClosesParts, W.VBox):
    """Step through the forward and backward passes of ``Stepper(net, x, y)`` or ``Stepper(trace)``.

    Steps count as on screen: 0 is before the first step, ``len(trace)`` is all done. Parts: the
    navigation bar, the equation panel, predict-then-reveal, messages, the graph, the inspector,
    and (for an MLP on one example) controls that rebuild the trace.
    """

    def __init__(self, net_or_trace, x=None, y=None, predict: bool = False, interval: int = 900,
                 **kwargs):
        try:
            self._build(net_or_trace, x, y, predict, interval, kwargs)
        except BaseException:
            self.close()
            raise

    def _build(self, net_or_trace, x, y, predict, interval, kwargs):
        self.model = StepperModel(net_or_trace, x, y)
        self.message = W.HTML().add_class("bpv-message")
        self.granularity = GranularityBar(self)
        self.nav = NavBar(self, interval)
        self.equation_panel = EquationPanel(self)
        self.predict_box = PredictBox(self, predict)
        self.graph = GraphView(self)
        self.inspector = Inspector(self)
        rb = self.model.rebuilder
        self.controls = RebuildControls(self) if rb is not None and rb.settings else None
        # the stage: the equation (with predict and messages) and the inspector beside the
        # graph, or equation, graph, inspector one above the other on a narrow output; the graph
        # is a panel of fixed height that scrolls to the step's node
        self.side = W.VBox([self.equation_panel, self.predict_box, self.message])
        self.side.add_class("bpv-side")
        self.stage = W.Box([self.side, self.graph, self.inspector]).add_class("bpv-stage")
        self.behaviour = W.HTML(_BEHAVIOUR, layout=W.Layout(display="none"))
        self.behaviour.add_class("bpv-behaviour")
        parts = [self.behaviour, self.nav, self.stage, self.granularity] + \
            ([self.controls] if self.controls else [])
        super().__init__(parts, **kwargs)
        self.add_class("bpv-stepper")
        self.model.observe(self._on_model)
        self.refresh_all()

    # --- the one place that moves the step ----------------------------------------------------
    @property
    def predicting(self) -> bool:
        return self.predict_box.predict_toggle.value

    @shown_in_widget          # the buttons call it directly: their errors go in the widget too
    def move(self, k: int, from_slider: bool = False, keep_feedback: bool = False):
        """Go to step k, but not past a prediction still to be made in predict mode."""
        m = self.model
        k = max(0, min(m.n, int(k)))
        if self.predicting:
            for j in range(m.step + 1, k + 1):
                if m.needs_prediction(j):
                    if j == m.step + 1 and not from_slider:
                        self.say("Type your prediction first, then check (or reveal).")
                        return
                    k = j - 1
                    self.nav.play.playing = False     # Play ignores `disabled`: stop it here
                    break
        if not keep_feedback:
            self.predict_box.feedback.value = ""
        self.say("")                         # a message from before is stale once the learner moves
        if m.go(k) == k and from_slider and self.nav.slider.value != k:
            self.nav.refresh("step")         # the slider went past a prediction: put it back

    def _on_model(self, what):
        if what == "trace":
            self.nav.refresh(what)

    def refresh_all(self):
        parts = (self.granularity, self.nav, self.equation_panel, self.graph, self.inspector,
                 self.predict_box)
        for part in parts + ((self.controls,) if getattr(self, "controls", None) else ()):
            part._safe_refresh("all")

    def say(self, text: str, error: bool = False):
        colour = "#b3261e" if error else "#555555"
        cls = "bpv-error" if error else "bpv-info"
        self.message.value = (f'<div class="{cls}" role="{"alert" if error else "status"}" '
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
        buttons = {"prev": self.nav.prev_btn, "next": self.nav.next_btn,
                   "reset": self.nav.reset_btn, "backward": self.nav.back_btn,
                   "end": self.nav.end_btn,
                   "check": self.predict_box.check_btn, "reveal": self.predict_box.reveal_btn}
        if self.controls is not None:
            buttons["rebuild"] = self.controls.rebuild_btn
        if which not in buttons:
            raise BackpropError(f"no button {which!r}; buttons: {', '.join(buttons)}")
        buttons[which].click()

    @property
    def step(self) -> int:
        return self.model.step

    @property
    def equation(self):
        return self.equation_panel


_PART_ATTRS = {
    "nav": ("reset_btn", "prev_btn", "next_btn", "back_btn", "end_btn", "counter", "play",
            "slider"),
    "predict_box": ("predict_toggle", "answer", "check_btn", "reveal_btn", "prompt", "feedback",
                    "ask"),
    "inspector": ("node_pick", "follow", "node_info", "heatmap"),
    "controls": ("x_in", "y_in", "sizes_in", "act_in", "seed_in", "loss_in", "weights_in",
                 "rebuild_btn", "new_weights_btn", "compare", "field_errors"),
}


for _part, _names in _PART_ATTRS.items():      # stepper.slider, stepper.answer, … by name
    for _name in _names:
        setattr(Stepper, _name, property(lambda self, p=_part, n=_name: getattr(getattr(self, p), n),
                                         doc=f"the {_part}'s {_name}"))


def _cell_colour(t: float) -> tuple[str, str]:
    """(background, text colour) for t in [−1, 1] on one diverging scale: blue, white, red."""
    t = max(-1.0, min(1.0, t))
    end = (178, 24, 43) if t > 0 else (33, 102, 172)
    rgb = tuple(round(255 + (c - 255) * abs(t)) for c in end)
    return "#%02x%02x%02x" % rgb, ("#ffffff" if abs(t) > 0.6 else "#222222")


def heatmap_html(name: str, value, grad) -> str:
    """A matrix and its gradient as tables of numbers on one symmetric colour scale: readable
    from the back of a room, by a screen reader (the numbers are text), and cheap to draw (no
    plotting library in the kernel)."""
    arrays = [(f"value {name}", np.asarray(value, float))]
    if grad is not None:
        arrays.append((K.text(K.Key.gradient(name)), np.asarray(grad, float)))
    finite = [np.abs(a[np.isfinite(a)]) for _, a in arrays]
    vmax = max((float(f.max()) for f in finite if f.size), default=0.0) or 1.0
    tables = []
    for title, a in arrays:
        rows = []
        for row in np.atleast_2d(a)[:12]:
            cells = []
            for x in row[:12]:
                bg, fg = _cell_colour(x / vmax) if np.isfinite(x) else ("#ffffff", "#cc0000")
                cells.append(f'<td style="background:{bg};color:{fg};padding:2px 6px;'
                             f'text-align:right">{html.escape(fnum(x))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        more = " (first 12 × 12 shown)" if a.ndim == 2 and max(a.shape) > 12 else ""
        tables.append(f'<table class="bpv-heat" style="border-collapse:collapse;'
                      f'font-family:monospace;margin-right:12px"><caption style="font-weight:bold;'
                      f'text-align:left">{html.escape(title)} ({shape_str(a)}){more}</caption>'
                      + "".join(rows) + "</table>")
    return (f'<div style="display:flex;flex-wrap:wrap">{"".join(tables)}</div>'
            f'<div style="font-size:12px;color:#555">one colour scale for both: blue negative, '
            f'red positive, |x| up to {html.escape(fnum(vmax))}</div>')



# --- what the Stepper does in the page (no front-end extension: CSS and one small script) ---------
# The layout: the equation beside the graph (above it on a narrow output); the graph at its own
# size (labels 12 px, edge labels 11 px, never shrunk) in a panel as tall as the screen has room
# for below the navigation bar, scrolled to the node each step writes. The script also handles
# ← → Home End inside the widget (JupyterLab would move between cells), and gives the controls
# that ipywidgets leaves unnamed a name, pressed states and live regions.
_CSS = """
.bpv-stepper { container: bpv-stepper / inline-size; }
.bpv-stepper .bpv-graph g.node { cursor: pointer; }
.bpv-stepper .bpv-stage { display: grid; width: 100%; column-gap: 16px; align-items: start;
  grid-template-columns: minmax(270px, 340px) minmax(0, 1fr);
  grid-template-rows: auto 1fr; grid-template-areas: "side graph" "insp graph"; }
.bpv-stepper .bpv-side { grid-area: side; min-width: 0; }
.bpv-stepper .bpv-stage > .bpv-inspector { grid-area: insp; min-width: 0; }
.bpv-stepper .bpv-equation { min-height: 118px; }
.bpv-stepper .bpv-graph { grid-area: graph; min-width: 0; margin: 2px 0;
  height: clamp(240px, calc(100vh - 250px), 760px); overflow: auto; resize: vertical;
  border: 1px solid #c8c8c8; border-radius: 4px; }
.bpv-stepper .bpv-inspector .widget-dropdown { width: auto !important; max-width: 100%; }
.bpv-stepper .bpv-graph > .widget-html-content,
.bpv-stepper .bpv-inspector .widget-html-content { line-height: normal; }
.bpv-stepper .bpv-counter { min-width: 310px; font-variant-numeric: tabular-nums; }
.bpv-stepper .bpv-answer { flex: 1 1 200px; }
@container bpv-stepper (max-width: 759px) {
  .bpv-stepper .bpv-stage { grid-template-columns: minmax(0, 1fr); grid-template-rows: none;
    grid-template-areas: "side" "graph" "insp"; }
  .bpv-stepper .bpv-side { min-height: 180px; }
  .bpv-stepper .bpv-equation { min-height: 110px; }
}
.bpv-stepper button:focus-visible, .bpv-stepper input:focus-visible,
.bpv-stepper select:focus-visible, .bpv-stepper textarea:focus-visible,
.bpv-stepper .noUi-handle:focus-visible, .bpv-stepper .bpv-graph:focus-visible,
.bpv-stepper .bpv-heatmap:focus-visible {
  outline: 3px solid #0072B2 !important; outline-offset: 2px !important;
  box-shadow: 0 0 0 5px #ffffff !important; }
"""

_SCRIPT = r"""(function (img) {
  var tries = 0;
  function start() {
    var root = img.closest('.bpv-stepper');
    if (!root || !root.querySelector('.bpv-graph') || !root.querySelector('.bpv-next')
        || !root.querySelector('.bpv-slider .noUi-handle') || !root.querySelector('.bpv-play button')) {
      if (tries++ < 1200) setTimeout(start, 50);
      return;
    }
    if (root.bpvInstalled) return;
    root.bpvInstalled = true;
    install(root);
  }
  function install(root) {
    var $ = function (s) { return root.querySelector(s); };
    var $$ = function (s) { return Array.prototype.slice.call(root.querySelectorAll(s)); };
    function attr(el, k, v) { if (el && el.getAttribute(k) !== v) el.setAttribute(k, v); }
    var KEYS = {ArrowLeft: '.bpv-prev', ArrowRight: '.bpv-next', Home: '.bpv-reset', End: '.bpv-end'};
    root.addEventListener('keydown', function (e) {
      var sel = KEYS[e.key], t = e.target, tag = t.tagName;
      if (!sel || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.stopPropagation();              /* never to the notebook around the widget */
      if (t.closest('.noUi-target') || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable
          || (tag === 'INPUT' && !/^(checkbox|radio|button|submit)$/.test(t.type))) return;
      e.preventDefault();
      var b = $(sel);
      if (b && !b.disabled) b.click();
    });
    var PLAY = [[/fa-pause/, 'pause'], [/fa-stop/, 'stop'], [/fa-(retweet|repeat)/, 'repeat'],
                [/fa-play/, 'play']];
    var lastSvg = null, lastH = -1, lastW = -1, queued = false, lastFocus = null;
    root.addEventListener('focusin', function (e) { lastFocus = e.target; });
    root.addEventListener('click', function (e) {   /* a click on a node: open it in the inspector */
      var n = e.target.closest ? e.target.closest('.bpv-graph g.node[data-node]') : null;
      var sel = $('.bpv-inspect select');
      if (!n || !sel) return;
      var name = n.getAttribute('data-node');
      for (var i = 0; i < sel.options.length; i++) {
        if (sel.options[i].textContent === name) {
          sel.selectedIndex = i;
          sel.dispatchEvent(new Event('change', {bubbles: true}));
          break;
        }
      }
    });
    function keepFocus() {      /* ▶ disabled at the end (◀ at the start) would drop the focus */
      var a = document.activeElement;
      if (!lastFocus || !lastFocus.disabled || (a && a !== document.body && a !== lastFocus)) return;
      var other = lastFocus.classList.contains('bpv-next') ? $('.bpv-prev') : $('.bpv-next');
      (other && !other.disabled ? other : $('.bpv-graph')).focus({preventScroll: true});
    }
    function apply() {
      queued = false;
      keepFocus();
      attr(root, 'role', 'group');
      attr(root, 'aria-label', 'backpropagation stepper');
      $$('.bpv-play button').forEach(function (b) {
        var i = b.querySelector('i'), c = (i ? i.className : '') + ' ' + b.className;
        for (var j = 0; j < PLAY.length; j++) {
          if (PLAY[j][0].test(c)) {
            var name = PLAY[j][1];
            attr(b, 'aria-label', name);
            attr(b, 'title', name === 'repeat' ? 'repeat: start again after the last step' : name);
            if (name === 'repeat')
              attr(b, 'aria-pressed', b.classList.contains('mod-active') ? 'true' : 'false');
            break;
          }
        }
      });
      $$('.widget-toggle-buttons').forEach(function (g) {
        var l = g.querySelector('.widget-label');
        attr(g, 'role', 'group');
        if (l && l.textContent.trim()) attr(g, 'aria-label', l.textContent.trim());
        Array.prototype.forEach.call(g.querySelectorAll('button'), function (b) {
          attr(b, 'aria-pressed', b.classList.contains('mod-active') ? 'true' : 'false');
        });
      });
      var counter = $('.bpv-counter');
      $$('.bpv-slider .noUi-handle').forEach(function (h) {
        attr(h, 'aria-label', 'step');
        if (counter) attr(h, 'aria-valuetext', counter.textContent.trim());
      });
      attr(counter, 'aria-live', 'polite'); attr(counter, 'aria-atomic', 'true');
      ['.bpv-equation', '.bpv-feedback', '.bpv-message'].forEach(function (s) {
        attr($(s), 'aria-live', 'polite');
      });
      attr($('.bpv-prev'), 'aria-keyshortcuts', 'ArrowLeft');
      attr($('.bpv-next'), 'aria-keyshortcuts', 'ArrowRight');
      attr($('.bpv-reset'), 'aria-keyshortcuts', 'Home');
      var g = $('.bpv-graph');
      attr(g, 'tabindex', '0'); attr(g, 'role', 'region');
      attr(g, 'aria-label', 'the computation graph (scrolls; ← → step)');
      var hm = $('.bpv-heatmap');
      attr(hm, 'tabindex', '0'); attr(hm, 'role', 'region'); attr(hm, 'aria-label', 'heatmap');
      follow(g);
    }
    function viewport() {       /* the part of the screen the notebook or page shows */
      var top = 0, bottom = window.innerHeight;
      var sc = root.closest('.jp-WindowedPanel-outer, .jp-Notebook');
      if (sc) { var r = sc.getBoundingClientRect(); top = Math.max(top, r.top);
                bottom = Math.min(bottom, r.bottom); }
      return bottom - top;
    }
    function size(g, svg) {     /* the graph's panel: what fits below the navigation bar */
      var nav = $('.bpv-nav') || root;
      var above = g.getBoundingClientRect().top - nav.getBoundingClientRect().top;
      var h = Math.floor(viewport() - above - 16);
      if (svg) h = Math.min(h, Math.ceil(svg.getBoundingClientRect().height) + 20);
      g.style.height = Math.max(240, h) + 'px';
    }
    function follow(g) {        /* a new drawing: keep the node this step writes in view */
      var svg = g && g.querySelector('svg[data-step]');
      if (!svg || svg === lastSvg) return;
      lastSvg = svg;
      var h = svg.getAttribute('height');
      if (h !== lastH) { lastH = h; size(g, svg); }
      var cur = svg.querySelector('rect.cur-F, rect.cur-B');
      if (!cur) { if (svg.getAttribute('data-step') === '0') { g.scrollTop = 0; g.scrollLeft = 0; } return; }
      var gr = g.getBoundingClientRect(), c = cur.getBoundingClientRect(), m = 6;
      var top = gr.top + g.clientTop, left = gr.left + g.clientLeft;
      if (c.top >= top + m && c.bottom <= top + g.clientHeight - m && c.left >= left + m
          && c.right <= left + g.clientWidth - m) return;        /* in view: no jump */
      var u = {t: c.top, b: c.bottom, l: c.left, r: c.right};
      var mod = svg.querySelector('ellipse.cur-F, ellipse.cur-B');
      if (mod) {                 /* with its module, if both fit */
        var o = mod.getBoundingClientRect();
        var w = {t: Math.min(u.t, o.top), b: Math.max(u.b, o.bottom),
                 l: Math.min(u.l, o.left), r: Math.max(u.r, o.right)};
        if (w.b - w.t <= g.clientHeight - 2 * m && w.r - w.l <= g.clientWidth - 2 * m) u = w;
      }
      g.scrollTop += (u.t + u.b) / 2 - (top + g.clientHeight / 2);
      g.scrollLeft += (u.l + u.r) / 2 - (left + g.clientWidth / 2);
    }
    function later() { if (!queued) { queued = true; requestAnimationFrame(apply); } }
    new MutationObserver(later).observe(root, {subtree: true, childList: true, attributes: true,
                                               attributeFilter: ['class', 'disabled']});
    function resized() {
      var g = $('.bpv-graph');
      if (g && g.offsetParent !== null) size(g, g.querySelector('svg'));
    }
    if (window.ResizeObserver) new ResizeObserver(function () {
      var w = root.getBoundingClientRect().width;
      if (w !== lastW) { lastW = w; resized(); }
    }).observe(root);
    window.addEventListener('resize', resized);
    apply();
  }
  start();
})(this)"""

_BEHAVIOUR = (f"<style>{_CSS}</style>"
              f'<img src="data:," alt="" style="display:none" '
              f'onerror="{html.escape(_SCRIPT, quote=True)}">')
