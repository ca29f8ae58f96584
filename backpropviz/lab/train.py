"""Training by gradient descent, θ ← θ − α ∂J/∂θ, with the backward functions of the trace.

``Training`` runs the network's compiled program (the same (F), (B1), (B2) functions that
``backprop`` records, vectorized over a batch: one example per column, J the batch mean) with no
Trace; ``trace_at(t)`` records iteration t's pass on request, with the numbers training used.

Iteration t (from 1) takes the parameters θ_{t−1}, the batch of iteration t and the learning rate
in force, computes ∂J/∂θ and sets θ_t = θ_{t−1} − α ∂J/∂θ. Everything is a function of the seed
and the settings, so any iteration can be replayed from the nearest checkpoint, exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import modules as M
from ..core.errors import BackpropError, shape_str
from ..core.keys import Key
from ..core.numerics import readonly
from ..core.networks import Sequential, mlp, mlp_shape
from ..core.checks import numeric, whole

CHECKPOINT_EVERY = 100          # iterations between stored copies of θ (replay cost ≤ this)
CHECKPOINT_BYTES = 64 * 2**20   # at most this much of them: past it, every other one is dropped
MAX_SEED = 2**32 - 1
NORM_EVERY = 10                 # iterations between recorded weight and gradient norms
MAX_ITERATIONS = 200_000        # a run (and a saved file) holds at most this many


@dataclass(frozen=True)
class Segment:
    """Settings in force from iteration ``start`` on (a change of α or batch starts a new one)."""

    start: int
    lr: float
    batch: int


def check_lr(lr) -> float:
    """α as a positive finite number, or a BackpropError saying what is wrong."""
    if isinstance(lr, str):
        try:
            lr = float(lr.strip())
        except ValueError:
            raise BackpropError(f"the learning rate must be a number such as 0.5; got {lr!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
        raise BackpropError(f"the learning rate must be a number such as 0.5; got {lr!r}")
    try:
        lr = float(lr)
    except OverflowError:
        raise BackpropError(f"the learning rate {str(lr)[:20]}… is too large to train with "
                            f"(at most 100)") from None
    if not math.isfinite(lr) or lr <= 0:
        raise BackpropError(f"the learning rate must be a positive number (α > 0); got {lr}")
    if lr > 100:
        raise BackpropError(f"the learning rate {lr} is too large to train with (at most 100)")
    return lr


def check_batch(batch, n: int) -> int:
    """The batch size B, 1 ≤ B ≤ n (None: all n examples)."""
    if batch is None or (isinstance(batch, str) and batch.strip().lower() in ("", "all")):
        return n
    if isinstance(batch, str):
        try:
            batch = int(batch.strip())
        except ValueError:
            raise BackpropError(f"the batch size must be a whole number from 1 to {n} (or 'all'); "
                                f"got {batch!r}")
    b = whole(batch, "the batch size")
    if not 1 <= b <= n:
        raise BackpropError(f"the batch size must be from 1 to {n} (the number of examples); got {b}")
    return b


def check_data(net: Sequential, X, Y) -> tuple[np.ndarray, np.ndarray]:
    """X as d × n (one example per column) and Y as the loss's labels for it."""
    if not isinstance(net, Sequential) or net.loss is None:
        raise BackpropError("training needs a network with a loss, e.g. bpv.mlp([2, 16, 16, 1], "
                            "loss='logistic')")
    X = numeric(X, "the data X")
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise BackpropError(f"the data X must be d × n (one example per column); got {shape_str(X)}")
    first = next((m for m in net.layers if isinstance(m, M.MM)), None)
    if first is not None and X.shape[0] != first.n_in:
        hint = (f" (it is {X.shape[1]} × {X.shape[0]} the other way round: pass X.T)"
                if X.shape[1] == first.n_in else "")
        raise BackpropError(f"the data X has {X.shape[0]} rows but the network's first layer "
                            f"M_1 takes {first.n_in} inputs; X is {shape_str(X)}{hint}")
    Y = numeric(Y, "the labels Y")
    n = X.shape[1]
    if Y.ndim == 2 and Y.shape[1] != n or Y.ndim == 1 and Y.size != n or Y.ndim > 2:
        raise BackpropError(f"the labels Y must give one label per example (column of X): X has "
                            f"{n} examples but Y is {shape_str(Y)}")
    t = np.empty(net.output_shape(X))
    where = f"M_{len(net.modules)} = {net.loss.label}: the labels Y"
    Y = net.loss.check_label(t, Y, where)
    return readonly(X), readonly(Y)


@dataclass
class History:
    """What each iteration leaves behind: J of its batch; every NORM_EVERY: ‖W‖ and ‖∂J/∂W‖."""

    loss: list = field(default_factory=list)           # loss[t − 1] = J at iteration t
    norm_at: list = field(default_factory=list)        # iterations with norms
    weight_norms: list = field(default_factory=list)   # per entry: one ‖W[l]‖_F per layer
    grad_norms: list = field(default_factory=list)     # per entry: one ‖∂J/∂W[l]‖_F per layer


class Training:
    """Gradient descent on ``net`` with data X (d × n) and labels Y; see the module's docstring."""

    def __init__(self, net: Sequential, X, Y, lr=0.5, batch=None, seed: int = 0):
        X, Y = check_data(net, X, Y)
        self.X, self.Y, self.n = X, Y, X.shape[1]
        self.seed = whole(seed, "the training seed")
        if self.seed > MAX_SEED:
            raise BackpropError(f"the seed must be from 0 to {MAX_SEED}; got {self.seed}")
        self.net = net                     # θ_0, read-only, kept for replays
        self._live = net.with_params({p: v for p, v in net.params.items()})
        self.program = self._live.program(False)
        # The copy's parameters become arrays this object owns and updates in place, so the
        # compiled program (its functions read the modules' W and b) needs no recompiling.
        self.params: dict[str, np.ndarray] = {}
        for p, (m, local) in self.program.param_src.items():
            arr = np.array(getattr(m, local), dtype=float)
            setattr(m, local, arr)
            self.params[p] = arr
        self.names = list(self.params)
        self.layers = [p for p in self.names if p.startswith("W")]     # norms are drawn per W
        self._grad_slot = [self.program.slot(Key.gradient(p)) for p in self.names]
        # the plan's given values, and (θ array, slot of ∂J/∂θ) pairs for the update
        self._given = {p: self.params[p] for p in self.names}
        self._updates = [(self.params[p], i) for p, i in zip(self.names, self._grad_slot)]
        self._loss_slot = self.program.loss_slot
        self._last = None
        self.segments = [Segment(1, check_lr(lr), check_batch(batch, self.n))]
        self._epoch_order = (None, None)     # (seed, segment start, epoch, n), its shuffle
        self.t = 0
        self.history = History()
        self._every = CHECKPOINT_EVERY
        self._bytes = sum(v.nbytes for v in self.params.values())
        self.checkpoints = {0: self._copy()}

    # --- settings ---------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.segments[-1].lr

    @property
    def batch(self) -> int:
        return self.segments[-1].batch

    def set(self, lr=None, batch=None) -> None:
        """New α and/or B from the next iteration on; both are checked before either changes."""
        new_lr = self.lr if lr is None else check_lr(lr)
        new_b = self.batch if batch is None else check_batch(batch, self.n)
        if (new_lr, new_b) == (self.lr, self.batch):
            return
        if self.segments[-1].start == self.t + 1:          # nothing ran with the old settings
            self.segments.pop()
            if self.segments and (self.segments[-1].lr, self.segments[-1].batch) == (new_lr, new_b):
                return                                    # back to the settings before: one run
        self.segments.append(Segment(self.t + 1, new_lr, new_b))

    def segment_at(self, t: int) -> Segment:
        return next(s for s in reversed(self.segments) if s.start <= t)

    def batch_index(self, t: int):
        """The columns of iteration t (None: all n). An epoch is one seeded shuffle of the n
        examples cut into ⌈n/B⌉ batches, the last one smaller when B does not divide n, so every
        example is seen once per epoch."""
        i = next(j for j in range(len(self.segments) - 1, -1, -1) if self.segments[j].start <= t)
        B = self.segments[i].batch
        if B == self.n:
            return None
        while i > 0 and self.segments[i - 1].batch == B:    # a change of α alone keeps the epoch
            i -= 1
        start = self.segments[i].start
        per_epoch = -(-self.n // B)
        epoch, k = divmod(t - start, per_epoch)
        key = (self.seed, start, epoch, self.n)
        if self._epoch_order[0] != key:       # one shuffle per epoch, not one per iteration
            self._epoch_order = (key, np.random.default_rng([self.seed, start, epoch])
                                 .permutation(self.n))
        return self._epoch_order[1][k * B:(k + 1) * B]

    def batch_size_at(self, t: int) -> int:
        idx = self.batch_index(t)
        return self.n if idx is None else len(idx)

    def batch_at(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.batch_index(t)
        if idx is None:
            return self.X, self.Y
        return self.X[:, idx], (self.Y[:, idx] if self.Y.ndim == 2 else self.Y[idx])

    # --- training -----------------------------------------------------------------------------
    def step(self, n: int = 1) -> float:
        """n iterations of θ ← θ − α ∂J/∂θ; returns the last batch's J (before its update)."""
        n = whole(n, "the number of iterations")
        if self.t + n > MAX_ITERATIONS:
            raise BackpropError(f"a run holds at most {MAX_ITERATIONS} iterations; it is at "
                                f"{self.t}: press “new run” to start again")
        J = math.nan
        with np.errstate(all="ignore"):     # NaN/inf are caught below, with a clearer message
            try:
                for _ in range(n):
                    J = self._iterate()
            except BackpropError:
                try:
                    self._undo_bad_update()
                except BackpropError:      # the replay failed too: the first error is the news
                    pass
                raise
        return J

    def _undo_bad_update(self):
        """After a failed iteration: if the update before it wrote NaN or inf into θ (its
        gradients were not finite although its J was), take that update back, by replay."""
        if self.t == 0 or all(np.isfinite(v).all() for v in self.params.values()):
            return
        self._set_params(self.params_before(self.t))    # θ before the bad iteration, replayed
        self.t -= 1
        del self.history.loss[self.t:]
        h = self.history
        while h.norm_at and h.norm_at[-1] > self.t:
            h.norm_at.pop(), h.weight_norms.pop(), h.grad_norms.pop()
        for c in [c for c in self.checkpoints if c > self.t]:
            del self.checkpoints[c]
        self._last = None

    def _iterate(self) -> float:
        t = self.t + 1
        store, lr = self._pass(t)
        if t % NORM_EVERY == 0 or t == 1:
            self._record_norms(t, [store[i] for i in self._grad_slot])
        self._update(store, lr)
        J = float(store[self._loss_slot])
        self.history.loss.append(J)
        self.t = t
        if t % self._every == 0:
            self._checkpoint(t)
        # keep only ∂J/∂θ: the rest of the pass is freed now, so the next one reuses its memory
        self._last = [store[i] for i in self._grad_slot]
        return J

    def _pass(self, t: int) -> tuple[list, float]:
        """Iteration t's forward and backward pass on its batch with the current θ: every
        number of the pass (Program.values) and the α in force."""
        seg = self.segments[-1] if t >= self.segments[-1].start else self.segment_at(t)
        given = self._given
        if seg.batch == self.n:
            given["u[0]"], given["y"] = self.X, self.Y
        else:
            given["u[0]"], given["y"] = self.batch_at(t)
        try:
            store = self.program.values(given)
        except BackpropError as e:
            hint = (f" The learning rate α = {seg.lr:g} is probably too large: lower it and "
                    f"press “new run”." if "NaN or inf" in str(e) else "")
            raise BackpropError(f"iteration {t}: {e}.{hint}") from None
        return store, seg.lr

    def _update(self, store: list, lr: float):
        for theta, i in self._updates:
            theta -= lr * store[i]                      # θ_t = θ_{t−1} − α ∂J/∂θ

    def restore(self, theta: dict[str, np.ndarray]):
        """θ at the current iteration becomes ``theta`` (a lab file's own numbers, which a replay
        reproduced to rounding), and is kept as that iteration's checkpoint."""
        self._set_params(theta)
        self.checkpoints[self.t] = self._copy()

    def _set_params(self, values: dict[str, np.ndarray]):
        for p, v in values.items():
            self.params[p][...] = v

    def _record_norms(self, t, grads):
        gn = [math.sqrt(np.vdot(g, g)) for p, g in zip(self.names, grads) if p in self.layers]
        if not all(map(math.isfinite, gn)):
            raise BackpropError(f"iteration {t}: a gradient is NaN or inf (‖∂J/∂W‖ = "
                                f"{', '.join(f'{x:.3g}' for x in gn)}); lower the learning rate "
                                f"α and press “new run”")
        h = self.history
        h.norm_at.append(t)
        h.grad_norms.append(gn)
        h.weight_norms.append([math.sqrt(np.vdot(self.params[p], self.params[p]))
                               for p in self.layers])

    def grads_at_last(self) -> dict[str, np.ndarray]:
        """∂J/∂θ as the last iteration used them (by parameter name; empty before any)."""
        grads = getattr(self, "_last", None)
        return {} if grads is None else dict(zip(self.names, grads))

    def _checkpoint(self, t: int):
        self.checkpoints[t] = self._copy()
        if len(self.checkpoints) * self._bytes > CHECKPOINT_BYTES:   # thin out: replays get longer
            self._every *= 2
            for c in [c for c in self.checkpoints if c % self._every]:
                del self.checkpoints[c]

    def _copy(self) -> dict[str, np.ndarray]:
        return {p: v.copy() for p, v in self.params.items()}

    # --- looking back -----------------------------------------------------------------------
    def params_before(self, t: int) -> dict[str, np.ndarray]:
        """θ_{t−1}, the parameters iteration t used: replayed from the nearest checkpoint."""
        t = whole(t, "the iteration")
        if not 1 <= t <= max(self.t, 1):
            raise BackpropError(f"iteration {t} has not run: the run is at iteration {self.t} "
                                f"(choose 1 to {max(self.t, 1)})")
        if t - 1 == self.t:
            return self._copy()
        start = max(c for c in self.checkpoints if c <= t - 1)
        now = self._copy()
        try:            # the replay runs in this run's own arrays and program, then puts θ back
            self._set_params(self.checkpoints[start])
            with np.errstate(all="ignore"):
                for k in range(start + 1, t):
                    self._update(*self._pass(k))
            return self._copy()
        finally:
            self._set_params(now)

    @property
    def network(self) -> Sequential:
        """The network with the current θ (after the last iteration), read-only: a copy."""
        return self.net.with_params(self._copy())

    def network_at(self, t: int) -> Sequential:
        """The network as iteration t saw it (θ_{t−1}), read-only."""
        return self.net.with_params(self.params_before(t))

    def trace_at(self, t: int, example: int | None = None):
        """Iteration t's forward and backward pass, recorded: on its whole batch (the gradients
        training used, exactly), or on one example of it (``example`` = position in the batch;
        the batch's ∂J/∂θ is the mean of its examples' ones)."""
        net = self.network_at(t)
        X, Y = self.batch_at(t)
        if example is None:
            return net.backprop(X, Y)
        B = X.shape[1]
        i = whole(example, "the example")
        if not 0 <= i < B:
            raise BackpropError(f"iteration {t}'s batch has {B} examples: choose 0 to {B - 1}; got {i}")
        return net.backprop(X[:, i], Y[:, i] if Y.ndim == 2 else Y[i])

    def example_index(self, t: int, i: int) -> int:
        """The column of X that is example i of iteration t's batch."""
        idx = self.batch_index(t)
        return int(i if idx is None else idx[i])

    # --- reading the network ------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """The network's output u[k−1] for inputs X (d × m), with the current θ."""
        u = X
        for m in self._live.layers:
            u = m.forward(u)
        return u

    def evaluate(self) -> tuple[float, float | None]:
        """(J on all n examples, the fraction classified right or None for the squared loss),
        with the current θ, from one forward pass."""
        t = self.predict(self.X)
        loss = self._live.loss
        J = float(loss.forward(t, self.Y))
        if isinstance(loss, M.LogisticLoss):
            return J, float(np.mean((t > 0) == (self.Y > 0.5)))
        if isinstance(loss, M.CrossEntropyLoss):
            return J, float(np.mean(t.argmax(axis=0) == self.Y.argmax(axis=0)))
        return J, None

    def loss_all(self) -> float:
        """J on all n examples with the current θ."""
        return self.evaluate()[0]

    def accuracy(self) -> float | None:
        """The fraction of examples classified right (None for the squared loss)."""
        return self.evaluate()[1]


def work(segments, t: int, n_params: int, n_examples: int) -> float:
    """Operations of a run's t iterations, about: Σ over iterations of B × (parameters + 1), the
    pass and the batch's share of its epoch's shuffle, plus one shuffle of the n examples for each
    epoch begun (a segment starts a new epoch)."""
    ends = [s.start for s in segments[1:]] + [t + 1]
    total = 0.0
    for s, e in zip(segments, ends):
        if s.start > t:
            continue
        iters = min(e, t + 1) - s.start
        epochs = -(-iters * s.batch // max(1, n_examples))
        total += iters * s.batch * (n_params + 1) + epochs * n_examples
    return total


def describe(net: Sequential) -> dict | None:
    """An MLP's recipe {sizes, activation, loss} if ``mlp`` builds net with a standard loss and no
    output activation (what a lab can rebuild and save), else None (see networks.mlp_shape)."""
    shape = mlp_shape(net)
    if shape is None or shape.loss is None or shape.output_activation is not None:
        return None
    return {"sizes": list(shape.sizes), "activation": shape.activation, "loss": shape.loss}


__all__ = ["Training", "Segment", "History", "check_lr", "check_batch", "check_data", "describe",
           "mlp"]
