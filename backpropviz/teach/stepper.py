"""The stepper's model: a trace and the step a learner is at, in plain Python.

Steps are numbered as on screen: 0 is before the first step, k is after step k, len(trace) is all
done. The model knows nothing of drawing: the widget (widgets/stepper.py) observes it and draws. The rules
about what may happen (clamping the step, keeping the last good trace on a bad rebuild, checking
a prediction) live here and in rebuild.py and hints.py, where they are tested without a browser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import keys as K
from ..core.errors import BackpropError, brief, shape_str
from ..core.numerics import close
from .hints import diagnose
from ..core.networks import Sequential
from ..display.presentation import NOTATIONS, StepView, check_notation, node_details, present
from .rebuild import Rebuilder, parse_array
from ..core.trace import Trace
from ..display.text import inline

__all__ = ["StepperModel", "Predictions", "parse_array", "step_number", "GRANULARITIES", "OUTCOMES",
           "PREDICTED"]

GRANULARITIES = ("modules", "scalar circuit")
PREDICTED = ("B1", "B2", "acc")       # the kinds of step a learner predicts
# how an attempt at a step went (a class's events carry it: live/events.py)
OUTCOMES = ("right first time", "right after a hint", "wrong", "revealed")


@dataclass
class Predictions:
    """Predict mode in one view: the steps revealed (checked right or shown), the wrong tries per
    step, and how each revealed step went (an outcome other than "wrong")."""
    revealed: set = field(default_factory=set)
    wrong: dict = field(default_factory=dict)
    outcome: dict = field(default_factory=dict)


def step_number(k, n: int) -> int:
    """A step asked for: a whole number (3, 3.0 or "3"; −inf and inf are the ends), clamped to
    −1 … n + 1 (a step out of range stays out of range), or a BackpropError (2.5, NaN, True)."""
    if isinstance(k, str):
        try:
            k = int(k.strip())
        except ValueError:
            raise BackpropError(f"the step: give a whole number; got {brief(k)}") from None
    if isinstance(k, (float, np.floating)) and (math.isinf(k) or float(k).is_integer()):
        return -1 if k < 0 else n + 1 if k > n else int(k)
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise BackpropError(f"the step: give a whole number; got {brief(k)}")
    return max(-1, min(n + 1, int(k)))


class StepperModel:
    """A trace and the position in it; rebuilds keep the last good trace when input is bad.

    ``observe(fn)`` calls fn(what) after a change: "step" (the position moved), "trace" (a new
    trace, or the other granularity of the same pass), "revealed" (a prediction was checked
    right or revealed).

    Granularity: ``module_trace`` is the module-level pass; ``circuit_trace`` the same pass as a
    scalar circuit (Theorem 7.4.1), built when first shown; ``trace`` is the one shown
    (``granularity`` "modules" or "scalar circuit"). Switching maps the step to the matching
    place in the other view (``to_circuit``/``to_modules``); rebuilds change the module network
    and, in the circuit view, the circuit is rebuilt from the new pass.

    Notation (``notation``, one of ``notations``): "modules" (u[i], M_i), or "algorithm3" for an
    MLP on one example, each step written as its line of the notes' Algorithm 3 with z[k], a[k]
    (display/presentation.py); it applies to the module-level view (the scalar circuit and an
    expanded module are shown in the tool's names).
    """

    def __init__(self, net_or_trace, x=None, y=None, notation: str = "modules"):
        self.error = ""
        self.step = 0
        self.notation = NOTATIONS[0]
        self._predicted: dict = {}    # view (a trace) → its Predictions
        self._observers = []
        self._attempt_listeners = []
        self.rebuilder: Rebuilder | None = None
        self.granularity = GRANULARITIES[0]
        self.circuit_trace = None
        self._came_from = None       # (kind of switch, (trace, step) switched to, step left)
        self.expanded = None                       # the module shown expanded in place, if any
        from ..theory.circuit import Circuit
        if isinstance(net_or_trace, Circuit):      # a circuit: its module-level pass beside it
            self.trace = self.circuit_trace = net_or_trace
            self.module_trace = net_or_trace.source
            self.granularity = GRANULARITIES[1]
            self._fixed = "build the stepper from a network to change it"
            return
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
        self.module_trace = self.trace
        if notation != NOTATIONS[0]:
            self.notation = check_notation(self.module_trace, notation)

    # --- notation: the tool's names, or Algorithm 3's ------------------------------------------------
    @property
    def notations(self) -> tuple[str, ...]:
        """The notations this pass can be written in: "modules", and "algorithm3" for an MLP."""
        ok = []
        for n in NOTATIONS:
            try:
                ok.append(check_notation(self.module_trace, n))
            except BackpropError:
                pass
        return tuple(ok)

    @property
    def shown_notation(self) -> str:
        """The notation of the view shown: ``notation`` where it applies (the module-level view
        of a pass it fits), else "modules"."""
        if self.notation == NOTATIONS[0] or self.trace is not self.module_trace or \
                self.notation not in self.notations:
            return NOTATIONS[0]
        return self.notation

    def set_notation(self, notation: str) -> bool:
        """Write the steps in ``notation`` (see ``notations``); on failure ``error`` says why, the
        notation stays and False is returned."""
        try:
            notation = check_notation(self.module_trace, notation)
        except BackpropError as e:
            self.error = str(e)
            return False
        self.error = ""
        if notation != self.notation:
            self.notation = notation
            self._changed("notation")
        return True

    # --- granularity: modules ↔ scalar circuit -----------------------------------------------------
    @property
    def circuit_reason(self) -> str:
        """Why this pass has no scalar circuit ('' if it has one: every module decomposes)."""
        from ..theory.circuit import decomposition_reason
        return decomposition_reason(self.module_trace)

    @property
    def in_circuit(self) -> bool:
        return self.granularity == GRANULARITIES[1]

    def _circuit(self, trace: Trace):
        from ..theory.circuit import circuit
        return circuit(trace)

    def module_step(self) -> int:
        """The module-level step matching the current step (the step itself in the module view)."""
        if self.expanded is not None:
            from ..theory.expand import unexpanded_step
            return unexpanded_step(self.trace, self.step)
        if not self.in_circuit:
            return self.step
        from ..theory.circuit import to_modules
        return to_modules(self.trace, self.step)

    def set_granularity(self, granularity: str) -> bool:
        """Show the pass as modules or as a scalar circuit, at the matching step; on failure
        (no decomposition, an overflow in a literal formula) ``error`` says why, the view stays
        and False is returned."""
        from ..theory.circuit import to_circuit
        if not isinstance(granularity, str) or granularity not in GRANULARITIES:
            self.error = (f"granularity: choose one of {', '.join(GRANULARITIES)}; "
                          f"got {brief(granularity)}")
            return False
        if granularity == self.granularity:
            return True
        try:
            if granularity == GRANULARITIES[1]:
                reason = self.circuit_reason
                if reason:
                    raise BackpropError(reason)
                if self.circuit_trace is None or self.circuit_trace.source is not self.module_trace:
                    self.circuit_trace = self._circuit(self.module_trace)
                trace = self.circuit_trace
                # all done stays all done (the last module step, ∂J/∂b[1], completes before the
                # last entries of ∂J/∂W[1] in the circuit)
                step = len(trace) if self.step == self.n else \
                    to_circuit(trace, self.module_step())
            else:
                trace = self.module_trace
                back = self._came_from
                step = back[2] if back and back[:2] == ("granularity", (self.trace, self.step)) \
                    else len(trace) if self.step == self.n else self.module_step()
        except BackpropError as e:
            self.error = str(e)
            return False
        self.error = ""
        self._came_from = ("granularity", (trace, step),
                           self.module_step() if self.expanded else self.step)
        self.expanded = None                           # switching back without moving: same step
        self.granularity, self.trace, self.step = granularity, trace, step
        self._forget_other_views()
        self._changed("trace")
        return True

    # --- one module expanded in place -----------------------------------------------------------------
    def expandable(self) -> list:
        """The modules of the pass that can be expanded in place (ModuleInfo, in order)."""
        from ..theory.expand import expandable
        return expandable(self.module_trace)

    def set_expanded(self, module: str | None) -> bool:
        """Show the pass at module level with ``module`` ("M_1") expanded into its atomic
        operations, or (None, "none") every module closed, at the matching step; on failure
        ``error`` says why, the view stays and False is returned."""
        from ..theory.expand import expand, expanded_step
        if module is not None and not isinstance(module, str):
            self.error = f"expand: name a module such as 'M_1' (or None); got {brief(module)}"
            return False
        module = None if module in (None, "", "none") else module
        if module == self.expanded and (module is not None or not self.in_circuit):
            return True
        try:
            back = self._came_from
            k = back[2] if back and back[:2] == ("expand", (self.trace, self.step)) \
                and not self.in_circuit else self.n_module if self.step == self.n \
                else self.module_step()
            if module is None:
                trace, step = self.module_trace, k
            else:
                trace = expand(self.module_trace, module)
                step = len(trace) if self.step == self.n else expanded_step(trace, k)
        except BackpropError as e:
            self.error = str(e)
            return False
        self.error = ""
        # closing or opening again without moving: back at the same module step
        self._came_from = ("expand", (trace, step), k)
        self.granularity, self.expanded = GRANULARITIES[0], module
        self.trace, self.step = trace, step
        self._forget_other_views()
        self._changed("trace")
        return True

    @property
    def n_module(self) -> int:
        return len(self.module_trace)

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
        """Move to step k, clamped to 0 … n (see ``step_number``)."""
        k = max(0, min(self.n, step_number(k, self.n)))
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
        """The current step's presentation, made once per step (the equation panel, the graph
        and the screen reader all read it)."""
        kept = getattr(self, "_view", None)
        notation = self.shown_notation
        if kept is None or kept[0] is not self.trace or kept[1] != self.step or \
                kept[2].notation != notation:
            kept = self._view = (self.trace, self.step, present(self.trace, self.step, notation))
        return kept[2]

    @property
    def net(self) -> Sequential | None:
        return self.rebuilder.net if self.rebuilder else None

    @property
    def settings(self):
        return self.rebuilder.settings if self.rebuilder else None

    def inspect(self, name: str, entry=None) -> dict:
        """A node's value and gradient (None until known at this step), with its shape, and
        ``details``: the lines of ``display.presentation.node_details`` (its names in the notes,
        how its gradient was computed entry by entry, with the numbers of ``entry``, a 0-based
        index, default the first)."""
        tr, k = self.trace, self.step
        if not isinstance(name, str):
            raise BackpropError(f"inspect: a node is named by text such as 'u[1]'; "
                                f"got {brief(name)}")
        tr.node(name)           # none by this name: a BackpropError naming the first nodes
        vkey, gkey = K.Key(name), K.Key.gradient(name)
        return {"name": name, "value": tr[vkey] if tr.is_known(vkey, k) else None,
                "grad": tr[gkey] if tr.is_known(gkey, k) else None,
                "shape": shape_str(tr[vkey]), "has_grad": gkey in tr,
                "details": node_details(tr, name, k, entry)}

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
        step = min(self.module_step(), len(trace))   # the position, where the new trace allows
        self.module_trace, self.circuit_trace = trace, None
        if self.expanded is not None:                # the same module of the new pass, expanded
            from ..theory.expand import expand, expanded_step
            try:
                trace = expand(trace, self.expanded)
                step = expanded_step(trace, step)
            except BackpropError as e:
                self.expanded = None
                self.error = f"rebuilt, shown as modules: {e}"
        self._predicted = {}
        if self.in_circuit:                          # the circuit of the new pass
            from ..theory.circuit import to_circuit
            try:
                self.circuit_trace = self._circuit(trace)
                trace, step = self.circuit_trace, to_circuit(self.circuit_trace, step)
            except BackpropError as e:
                self.granularity = GRANULARITIES[0]
                self.error = f"rebuilt, shown as modules: {e}"
        self.trace, self.step = trace, step
        self._changed("trace")
        return True

    # --- predict, then reveal -----------------------------------------------------------------------
    @property
    def predictions(self) -> Predictions:
        """What the learner did in the view shown: each view (modules, the circuit, one module
        expanded) keeps its own, as its steps are its own."""
        return self._predicted.setdefault(self.trace, Predictions())

    @property
    def revealed(self) -> set[int]:
        """The steps of the view shown whose prediction was checked right or revealed."""
        return self.predictions.revealed

    def tries(self, k: int) -> int:
        """Wrong predictions of step k so far, in the view shown."""
        return self.predictions.wrong.get(k, 0)

    def _forget_other_views(self):
        """Keep the predictions of the views one can switch back to, and drop the rest."""
        keep = (self.module_trace, self.circuit_trace, self.trace)
        self._predicted = {t: p for t, p in self._predicted.items() if any(t is k for k in keep)}

    def needs_prediction(self, k: int) -> bool:
        """Steps a learner predicts before they are shown: the backward rules (B1), (B2), sums."""
        k = step_number(k, self.n)
        return 1 <= k <= self.n and self.trace.specs[k - 1].kind in PREDICTED \
            and k not in self.revealed

    def check_prediction(self, text: str, k: int | None = None) -> tuple[bool, str]:
        """(right, message) for a prediction of step k (default: the next step)."""
        k = self.step + 1 if k is None else step_number(k, self.n)
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
            first = k not in self.revealed
            self.revealed.add(k)
            self._changed("revealed")
            if first:
                self._attempt(k, OUTCOMES[1] if self.tries(k) else OUTCOMES[0], None, got)
            return True, f"Right: {K.text(spec.writes)} = {inline(want)} {spec.tag}"
        slip, said = diagnose(self.trace, spec, got)
        if k not in self.revealed:
            self.predictions.wrong[k] = self.tries(k) + 1
            self._attempt(k, OUTCOMES[2], slip, got)
        return False, said

    def reveal(self, k: int | None = None):
        k = self.step + 1 if k is None else step_number(k, self.n)
        if 1 <= k <= self.n:
            first = k not in self.revealed
            self.revealed.add(k)
            self._changed("revealed")
            if first and self.trace.specs[k - 1].kind in PREDICTED:
                self._attempt(k, OUTCOMES[3], None, None)

    # --- attempts, for a class's live view (live/): what was predicted where, and how it went ------
    def on_attempt(self, fn) -> None:
        """Call fn(attempt) after each checked prediction or reveal of a step not yet revealed:
        a dict with the view, step, what it writes, the rule's kind and tag, the outcome (one of
        OUTCOMES), the slip the hints recognised (wrong answers) and the numbers typed."""
        self._attempt_listeners.append(fn)

    def _attempt(self, k: int, outcome: str, slip: str | None, got) -> None:
        if outcome != OUTCOMES[2]:
            self.predictions.outcome[k] = outcome
        spec = self.trace.specs[k - 1]
        attempt = {"view": self.granularity if self.expanded is None else "expanded",
                   "step": k, "writes": K.text(spec.writes), "kind": spec.kind,
                   "tag": spec.tag, "outcome": outcome, "slip": slip,
                   "answer": None if got is None else np.asarray(got, dtype=float).ravel()
                   .tolist()}
        for fn in list(self._attempt_listeners):
            fn(attempt)             # a listener keeps its own errors (live/link.py: never raises)
