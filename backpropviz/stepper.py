"""The stepper's model: a trace and the step a learner is at, in plain Python.

Steps are numbered as on screen: 0 is before the first step, k is after step k, len(trace) is all
done. The model knows nothing of drawing: the widget (widgets.py) observes it and draws. The rules
about what may happen (clamping the step, keeping the last good trace on a bad rebuild, checking
a prediction) live here and in rebuild.py and hints.py, where they are tested without a browser.
"""
from __future__ import annotations

import numpy as np

from . import keys as K
from .errors import BackpropError, shape_str
from .hints import close, hint
from .networks import Sequential
from .presentation import StepView, present
from .rebuild import Rebuilder, parse_array
from .record import Trace
from .text import inline

__all__ = ["StepperModel", "parse_array"]


class StepperModel:
    """A trace and the position in it; rebuilds keep the last good trace when input is bad.

    ``observe(fn)`` calls fn(what) after a change: "step" (the position moved), "trace" (a new
    trace), "revealed" (a prediction was checked right or revealed).
    """

    def __init__(self, net_or_trace, x=None, y=None):
        self.error = ""
        self.step = 0
        self.revealed: set[int] = set()
        self._observers = []
        self.rebuilder: Rebuilder | None = None
        if isinstance(net_or_trace, Trace):
            self.trace = net_or_trace
            self._fixed = "build the stepper from a network to change it"
        elif isinstance(net_or_trace, Sequential):
            self.trace = net_or_trace.backprop(x, y)
            self.rebuilder = Rebuilder(net_or_trace, self.trace)
            self._fixed = self.rebuilder.reason
        else:
            raise BackpropError("Stepper: give a network and x, y (Stepper(net, x, y)) or a trace "
                                f"(Stepper(trace)); got {type(net_or_trace).__name__}")

    # --- observers --------------------------------------------------------------------------------
    def observe(self, fn) -> None:
        self._observers.append(fn)

    def _changed(self, what: str) -> None:
        for fn in list(self._observers):
            fn(what)

    # --- position -------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.trace)

    @property
    def n_forward(self) -> int:
        return self.trace.n_forward

    def go(self, k: int) -> int:
        k = max(0, min(self.n, int(k)))
        if k != self.step:
            self.step = k
            self._changed("step")
        return self.step

    def next(self):
        return self.go(self.step + 1)

    def prev(self):
        return self.go(self.step - 1)

    def reset(self):
        return self.go(0)

    def to_backward(self):
        """Jump to the first backward step: the seed ∂J/∂u[k] = 1."""
        return self.go(self.n_forward + 1)

    def counter(self) -> str:
        """'step 7/14 · forward 5/5 · backward 2/9': where the learner is, in both passes."""
        nf = self.n_forward
        f, b = min(self.step, nf), max(0, self.step - nf)
        return f"step {self.step}/{self.n} · forward {f}/{nf} · backward {b}/{self.n - nf}"

    def view(self) -> StepView:
        return present(self.trace, self.step)

    @property
    def net(self) -> Sequential | None:
        return self.rebuilder.net if self.rebuilder else None

    @property
    def settings(self):
        return self.rebuilder.settings if self.rebuilder else None

    def inspect(self, name: str) -> dict:
        """A node's value and gradient (None until known at this step), with its shape."""
        tr, k = self.trace, self.step
        vkey, gkey = K.Key(name), K.Key.gradient(name)
        return {"name": name, "value": tr[vkey] if tr.is_known(vkey, k) else None,
                "grad": tr[gkey] if tr.is_known(gkey, k) else None,
                "shape": shape_str(tr[vkey]), "has_grad": gkey in tr}

    # --- rebuilding ---------------------------------------------------------------------------------
    def rebuild(self, **kwargs) -> bool:
        """A new trace from changed settings (see Rebuilder.rebuild); on bad input the last good
        trace stays, ``error`` says why and False is returned."""
        if self.rebuilder is None or self.rebuilder.settings is None:
            self.error = f"this stepper shows a fixed trace: {self._fixed}"
            return False
        try:
            trace = self.rebuilder.rebuild(**kwargs)
        except BackpropError as e:
            self.error = str(e)
            return False
        self.error = ""
        self.trace = trace
        self.revealed = set()
        self.step = min(self.step, self.n)       # keep the position where the new trace allows
        self._changed("trace")
        return True

    # --- predict, then reveal -----------------------------------------------------------------------
    def needs_prediction(self, k: int) -> bool:
        """Steps a learner predicts before they are shown: the backward rules (B1), (B2), sums."""
        return 1 <= k <= self.n and self.trace.specs[k - 1].kind in ("B1", "B2", "acc") \
            and k not in self.revealed

    def check_prediction(self, text: str, k: int | None = None) -> tuple[bool, str]:
        """(right, message) for a prediction of step k (default: the next step)."""
        k = self.step + 1 if k is None else k
        if not 1 <= k <= self.n:
            return False, (f"There is no step {k} to predict: all {self.n} steps are done."
                           if k > self.n else f"There is no step {k}: steps are 1 to {self.n}.")
        spec = self.trace.specs[k - 1]
        want = np.asarray(self.trace[spec.writes], dtype=float)
        try:
            got = parse_array(text, K.text(spec.writes))
        except BackpropError as e:
            return False, str(e)
        if got.size == want.size and want.ndim <= 1 and (
                got.ndim <= 1 or got.shape == (want.size, 1)):
            # 0.5 and [0.5] mean the same for a 1-vector; a vector may be typed as a column
            got = got.reshape(want.shape)
        if close(got, want):
            self.revealed.add(k)
            self._changed("revealed")
            return True, f"Right: {K.text(spec.writes)} = {inline(want)} {spec.tag}"
        return False, hint(self.trace, spec, got)

    def reveal(self, k: int | None = None):
        k = self.step + 1 if k is None else k
        if 1 <= k <= self.n:
            self.revealed.add(k)
            self._changed("revealed")
