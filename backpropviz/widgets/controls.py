"""The Stepper's rebuild controls: change the example or the network (x, y, sizes, σ, seed,
weights, the loss) and see each loss's gradient for the same network.

Two kinds of control: the form (x, y, sizes, σ, seed, θ), applied by "rebuild", keeps what was
typed when it is refused, outlined as not in force, to be corrected; the loss toggle applies at
once, and when the model refuses a loss it goes back to the loss in force, the refusal beside it.
Either way no control shows a refused value as if it were in force, so nothing refused before is
read again by a later change."""
from __future__ import annotations

import html

import ipywidgets as ipw
import numpy as np

from ..core import keys as K
from ..core import modules as M
from ..core.checks import whole
from ..core.errors import BackpropError
from ..core.keys import Key
from ..display.text import exact, fnum, summary
from ..teach.rebuild import MAX_EDITABLE_PARAMS, Settings, parse_array, parse_sizes, same_network
from .base import button, shown_in_widget
from .fields import FieldErrors
from .parts import StepperPart


MAX_FIELD = 16          # entries of x or y written into a field; larger ones are summarized


class RebuildControls(ipw.VBox, StepperPart):
    """Change the example or the network: x, y, sizes, σ, seed, weights, the loss."""

    def __init__(self, stepper):
        st = stepper.model.settings
        text = lambda d, cls, w="200px": ipw.Text(description=d,
                                                  layout=ipw.Layout(width=w)).add_class(cls)
        self.x_in, self.y_in, self.sizes_in = text("x", "bpv-x"), text("y", "bpv-y"), \
            text("sizes", "bpv-sizes")
        self.act_in = ipw.Dropdown(options=list(M.ACTIVATIONS), value=st.activation,
                                   description="σ", layout=ipw.Layout(width="200px"))
        self.act_in.add_class("bpv-activation")
        self.seed_in = ipw.Text(value=str(st.seed), description="seed",
                                layout=ipw.Layout(width="160px")).add_class("bpv-seed")
        # radio buttons: a group of native inputs, each named by its label
        self.loss_in = ipw.RadioButtons(options=list(M.LOSSES), value=st.loss,
                                        description="loss").add_class("bpv-loss")
        self.weights_in = ipw.Textarea(description="θ", layout=ipw.Layout(width="520px",
                                                                          height="110px"))
        self.weights_in.add_class("bpv-weights")
        self.rebuild_btn = button("rebuild", "rebuild the trace from these settings",
                                  "bpv-rebuild", button_style="primary")
        self.new_weights_btn = button("new weights from seed", "draw new random weights "
                                      "from the seed", "bpv-reinit")
        self.compare = ipw.HTML().add_class("bpv-loss-compare")
        self.note = ipw.HTML().add_class("bpv-controls-message")   # beside the rebuild button
        self.field_errors = FieldErrors([self.x_in, self.y_in, self.sizes_in, self.act_in,
                                         self.seed_in, self.weights_in])  # x, y, sizes, σ, seed, θ
        self.loss_errors = FieldErrors([self.loss_in])     # a refused loss, beside the toggle
        super().__init__([ipw.HTML("<b>change the example or the network</b>"),
                          ipw.HBox([self.x_in, self.y_in, self.sizes_in]),
                          ipw.HBox([self.act_in, self.seed_in, self.new_weights_btn]),
                          self.weights_in, self.field_errors, self.rebuild_btn, self.note,
                          self.loss_in, self.loss_errors, self.compare])
        self._attach(stepper)
        self._busy = False
        self.rebuild_btn.on_click(self._on_rebuild)
        self.new_weights_btn.on_click(self._on_reinit)
        self.loss_in.observe(self._on_loss, names="value")
        self.refresh("trace")

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

    def say(self, text, error=False):
        """A message beside the rebuild button, where the learner is looking."""
        self.note.value = self.stepper.message_html(text, error)

    @shown_in_widget
    def _on_rebuild(self, _):
        changes, bad = self._read()
        self.field_errors.mark_all(bad)
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
        self.field_errors.mark_all({k: v for k, v in bad.items() if k in ("sizes", "seed")})
        self._apply(fresh=True, keep=set(bad), **{k: changes[k] for k in ("sizes", "seed",
                                                                           "activation")
                                                  if k in changes})

    @shown_in_widget
    def _on_loss(self, change):
        if self._busy:
            return
        in_force = self.model.settings.loss
        if not self._apply(loss=change["new"], keep_net=True):
            # refused: the toggle shows the loss in force again (a later change would read it)
            error = self.model.error
            self._busy = True
            try:
                self.loss_in.value = in_force
            finally:
                self._busy = False
            self.loss_errors.mark(self.loss_in, f"{change['new']} not used: {error}; the loss "
                                  f"stays {in_force}", outline=False)

    def _apply(self, keep=frozenset(), **kwargs) -> bool:
        """Rebuild with these settings; False if the model refused them (nothing changed)."""
        m = self.model
        st = m.settings
        self._keep = set(keep)
        try:
            if not m.rebuild(**kwargs):
                self.say(m.error, error=True)
                self._mark_refused(st, kwargs, m.error)
                return False
        finally:
            self._keep = set()
        if keep:
            self.say("rebuilt from the fields that could be read; the marked ones were not used",
                     error=True)
            return True
        if m.error:                                # rebuilt, but not shown as a circuit
            self.say(m.error, error=True)
            return True
        warn = m.rebuilder.warning()
        self.say(("⚠ " + warn) if warn else
                 f"rebuilt: {m.n} steps, J = {fnum(m.trace.loss)}; now at step {m.step}")
        return True

    def _mark_refused(self, st: Settings, tried: dict, error: str):
        """The form's fields that held a refused change keep what was typed, to be corrected,
        outlined as not in force (the model's settings are ``st``)."""
        names = {"x": self.x_in, "y": self.y_in, "sizes": self.sizes_in, "seed": self.seed_in,
                 "activation": self.act_in}
        for k, field in names.items():
            if k in tried and not np.array_equal(tried[k], getattr(st, k)):
                self.field_errors.mark(field, f"not used: {error}")
        if tried.get("weights"):
            self.field_errors.mark(self.weights_in, f"not used: {error}")

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
            self.field_errors.mark_all({})
        self.loss_errors.mark_all({})               # the loss in force is shown again
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
