"""Modules M_i with hand-written forward and backward functions, in the notes' notation (7.4.3).

Each rule is written beside its code with ``@rule(kind, tag, expression)``: ``forward`` computes
u = M(z) (F); ``backward(z, v)`` is the backward function B[M, z](v) of (7.57), the gradient with
respect to the input given v = ∂J/∂u (B1); a module with parameters θ has one method per
parameter, ``grad_W(z, v)`` = B[M, W](v) (B2). The expressions give the text, the TeX and the
numeric check of each rule (see rules.py and expr.py).

**Your own module** (the contract): subclass ``Module``; name the parameters in ``param_names``
and keep them as attributes of those names (the engine reads them there, and gradcheck swaps
them); write ``forward`` and ``backward``, and for each parameter p either a method ``grad_p``
or one ``param_grads(z, v)`` returning a dict. Decorate them with ``@rule`` to give the tag and
the expression that the graph, the text and the Stepper show; undecorated methods are shown as
B[M, z](v). See the README for a worked example (an affine a ⊙ z + c).

A single example is a vector z ∈ R^n. A batch of B examples is a matrix with one example per
*column*, z ∈ R^{n×B}, so that MM is still Wz + b and (7.63)/(7.65) read the same; losses then
average over the batch, J = (1/B) Σ_j ℓ(t^(j), y^(j)).
"""
from __future__ import annotations

import copy

import numpy as np

from . import expr as E
from . import rules as R
from .errors import BackpropError, shape_str
from .expr import W, a, b, t, v, y, z
from .rules import TAG_BACKWARD, TAG_CHAIN, Rule, rule
from .checks import name as checked_name, numeric

REGISTRY: dict[str, type] = {}      # class name → class, to read a trace file back


def frozen(x, what: str = "parameter") -> np.ndarray:
    """A read-only finite float copy: parameters are immutable so traces can share them."""
    return numeric(x, what)


def _stable_sigmoid(x):
    """σ(x) = 1/(1+e^{-x}) without overflow for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x))


def _batch_size(x) -> int:
    return x.shape[1] if x.ndim == 2 else 1


class Module:
    """A module M: forward u = M(z), backward function B[M, z](v) = ∂J/∂z (7.57).

    ``label`` is the notes' symbol drawn on the graph; ``inputs`` the symbols of its inputs in the
    rules (z; a, b for a binary op; t, y for a loss); ``rules`` its rule table (rules.py).
    """

    label = "M"
    inputs: tuple[str, ...] = ("z",)
    param_names: tuple[str, ...] = ()
    can_overflow = True         # False if finite inputs always give a finite output
    batched = False             # True: a 2-d input is a batch, one example per column
    rules: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.rules = R.collect(cls)
        REGISTRY[cls.__name__] = cls

    def __init__(self, name: str | None = None):
        self.name = None if name is None else checked_name(name, f"{type(self).__name__}: name")

    @property
    def arity(self) -> int:
        """How many inputs J is differentiated through (a loss's label y is not)."""
        return len(self.inputs)

    @property
    def consts(self) -> dict:
        """Numbers the rules show besides inputs and parameters (Power's exponent p)."""
        return {}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters θ of this module, by local name (W, b)."""
        return {p: getattr(self, p) for p in self.param_names}

    @classmethod
    def rule(cls, kind: str, which=None) -> Rule:
        """The rule table's entry, or a generic one for a module written without ``@rule``."""
        r = cls.rules.get((kind, which))
        if r is not None:
            return r
        if kind == "F":
            return Rule("F", "(F)", None, None, (), "forward")
        if kind == "B1":
            return Rule("B1", TAG_BACKWARD, None, which, (), "backward")
        if kind == "B2" and which in cls.param_names:
            method = "grad_" + which if callable(getattr(cls, "grad_" + which, None)) else None
            return Rule("B2", TAG_BACKWARD, None, which, (), method)
        raise BackpropError(f"{cls.__name__} has no rule {kind} for {which!r}")

    @classmethod
    def label_for(cls, consts: dict) -> str:
        """The symbol drawn for a module of this class with these constants."""
        return cls.label

    def function(self, kind: str, which=None):
        """The method that computes a rule (for a parameter without ``grad_p``: param_grads)."""
        r = self.rule(kind, which)
        if r.method is not None:
            return getattr(self, r.method)
        return lambda *args: self.param_grads(*args)[which]

    def forward(self, z):
        raise NotImplementedError(f"{type(self).__name__} has no forward function")

    def backward(self, z, v):
        raise NotImplementedError(f"{type(self).__name__} has no backward function")

    def param_grads(self, *args) -> dict[str, np.ndarray]:
        """B[M, θ](v) for each parameter θ of the module (B2); empty for a fixed operation."""
        return {p: self.function("B2", p)(*args) for p in self.param_names}

    def with_params(self, **params) -> "Module":
        """A copy with some parameters replaced (gradcheck's perturbations use it)."""
        new = copy.copy(self)
        for p, val in params.items():
            if p not in self.param_names:
                raise BackpropError(f"{type(self).__name__} has no parameter {p!r}")
            old = getattr(self, p)
            val = frozen(val, f"{type(self).__name__}: {p}")
            if val.shape != np.shape(old):
                raise BackpropError(f"{type(self).__name__}: {p} is {shape_str(old)}; the new "
                                    f"value is {shape_str(val)}")
            setattr(new, p, val)
        return new

    def check_input(self, z, where: str) -> None:
        """Raise BackpropError if z cannot be the input of this module."""

    def check_inputs(self, values, where: str) -> None:
        """Raise BackpropError if these inputs cannot go in (by default: the first input's check)."""
        self.check_input(values[0], where)

    def __call__(self, *args):
        # Applying a module to traced values records it; on arrays it is just the forward.
        for x in args:
            apply = getattr(x, "_bpv_apply", None)
            if apply is not None:
                return apply(self, args)
        return self.forward(*[np.asarray(x, dtype=float) for x in args])

    def __repr__(self):
        return f"{type(self).__name__}()"


# --- MM ------------------------------------------------------------------------------------------

class MM(Module):
    """MM[W, b](z) = Wz + b; B[MM, z](v) = Wᵀv (7.63), B[MM, W](v) = v zᵀ (7.65), B[MM, b](v) = v (7.66)."""

    label = "MM"
    param_names = ("W", "b")
    batched = True

    def __init__(self, W, b=None, name: str | None = None, param_names=("W", "b")):
        super().__init__(name)
        W = frozen(W, "MM: W")
        if W.ndim != 2 or 0 in W.shape:
            raise BackpropError(f"MM: W must be a non-empty matrix (m×n); got shape {shape_str(W)}")
        b = frozen(np.zeros(W.shape[0]) if b is None else b, "MM: b")
        if b.ndim != 1 or b.shape[0] != W.shape[0]:
            raise BackpropError(
                f"MM: b must be a vector with one entry per row of W; W is {shape_str(W)} "
                f"({W.shape[0]} rows) but b has shape {shape_str(b)}")
        self.W, self.b = W, b
        self.display_names = tuple(checked_name(p, "MM: a parameter name") for p in param_names)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def check_input(self, z, where):
        if z.ndim not in (1, 2) or z.shape[0] != self.W.shape[1]:
            raise BackpropError(
                f"{where}: W is {shape_str(self.W)} so its input must have {self.W.shape[1]} "
                f"entries (or {self.W.shape[1]} rows for a batch), but it is {shape_str(z)}")

    @rule("F", "(F)", W @ z + b)
    def forward(self, z):
        if z.ndim == 1:
            return self.W @ z + self.b
        if z.ndim != 2:     # matmul would broadcast a 3-d z silently
            raise ValueError(f"MM input must be a vector or a matrix; got shape {shape_str(z)}")
        # b added to every example (column); no cached copy of b that could go stale
        return self.W @ z + self.b[:, None]

    @rule("B1", "(7.63)", W.T @ v, slips=(R.TRANSPOSE,))
    def backward(self, z, v):
        return self.W.T @ v

    @rule("B2", "(7.65)", v @ z.T, param="W", slips=(R.OUTER_ORDER,))
    def grad_W(self, z, v):
        """B[MM, W](v) = v zᵀ (7.65), summed over the columns of a batch."""
        return v[:, None] * z if z.ndim == 1 else v @ z.T     # the outer product v zᵀ

    @rule("B2", "(7.66)", lambda c: E.batch_sum(v) if c.batch else v, param="b",
          slips=(R.FORGOT_BATCH_SUM,))
    def grad_b(self, z, v):
        """B[MM, b](v) = v (7.66), summed over the columns of a batch."""
        return v if v.ndim == 1 else v.sum(axis=1)

    def __repr__(self):
        return f"MM(W: {shape_str(self.W)}, b: {shape_str(self.b)})"


# --- elementwise activations: B[σ, z](v) = σ'(z) ⊙ v (7.69) --------------------------------------

class Activation(Module):
    """An elementwise σ; B[σ, z](v) = σ'(z) ⊙ v (7.69)."""

    can_overflow = False

    def derivative(self, z):
        raise NotImplementedError

    def backward(self, z, v):
        return self.derivative(z) * v


class ReLU(Activation):
    """ReLU(z) = max(0, z); σ'(z) = 1 where z > 0, else 0."""

    label = "ReLU"

    @rule("F", "(F)", E.relu(z))
    def forward(self, z):
        return np.maximum(z, 0.0)

    def derivative(self, z):
        return (z > 0).astype(float)

    @rule("B1", "(7.69)", E.positive(z) * v, slips=(R.FORGOT_SIGMA_PRIME,))
    def backward(self, z, v):
        return (z > 0) * v


class Sigmoid(Activation):
    """σ(z) = 1/(1 + e^{−z}); σ'(z) = σ(z)(1 − σ(z))."""

    label = "σ"

    @rule("F", "(F)", E.sigma(z))
    def forward(self, z):
        return _stable_sigmoid(z)

    def derivative(self, z):
        s = _stable_sigmoid(z)
        return s * (1.0 - s)

    @rule("B1", "(7.69)", E.sigma(z) * (1 - E.sigma(z)) * v, slips=(R.FORGOT_SIGMA_PRIME,))
    def backward(self, z, v):
        return self.derivative(z) * v


class Tanh(Activation):
    """tanh(z); σ'(z) = 1 − tanh²(z)."""

    label = "tanh"

    @rule("F", "(F)", E.tanh(z))
    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return 1.0 - np.tanh(z) ** 2

    @rule("B1", "(7.69)", (1 - E.tanh(z) ** 2) * v, slips=(R.FORGOT_SIGMA_PRIME,))
    def backward(self, z, v):
        return self.derivative(z) * v


class Identity(Activation):
    """id(z) = z; σ'(z) = 1."""

    label = "id"

    @rule("F", "(F)", z)
    def forward(self, z):
        return z

    def derivative(self, z):
        return np.ones_like(z)

    @rule("B1", "(7.69)", v)
    def backward(self, z, v):
        return v


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "identity": Identity}


# --- losses: modules with a label y; J = u[k] -----------------------------------------------------

def _mean(e):
    """The loss and its gradient for a batch carry 1/B (J is the mean over the examples)."""
    return lambda c: E.per_example(e) if c.batch else e


class Loss(Module):
    """A loss ℓ(t, y) as the last module M_k; backward(t, y, v=1) = ∂J/∂t."""

    inputs = ("t", "y")
    batched = True

    @property
    def arity(self) -> int:
        return 1        # t is differentiable; the label y is not

    def check_label(self, t, y, where) -> np.ndarray:
        return y

    def _label(self, t, y):
        """A label as the rules use it; called directly, a loss accepts what backprop accepts
        (a class index, a flat label) and says so if it cannot."""
        if np.shape(y) == np.shape(t):
            return y
        return self.check_label(np.asarray(t), np.asarray(y, dtype=float), self.label)

    def __call__(self, t, y=None):
        if getattr(t, "_bpv_apply", None) is not None:
            return t._bpv_apply(self, (t, y))
        t = np.asarray(t, dtype=float)
        return self.forward(t, self.check_label(t, np.asarray(y, dtype=float), self.label))


def _label_shape(t, y, where, what="output t"):
    """One rule: y has the output's shape (one example per column); a single example's label
    may be given flat (y = 1 for a one-entry t), and a batch with one output per example may
    give one number per example."""
    if y.shape == t.shape:
        return y
    if (t.ndim <= 1 and y.size == t.size) or (t.ndim == 2 and t.shape[0] == 1 and y.ndim <= 1
                                               and y.size == t.shape[1]):
        return y.reshape(t.shape)
    hint = (f" (a batch has one example per column: y must be {shape_str(t)} too)"
            if t.ndim == 2 else "")
    raise BackpropError(f"{where}: the label y has shape {shape_str(y)} but the {what} has "
                        f"shape {shape_str(t)}{hint}")


class SquaredLoss(Loss):
    """ℓ_sq(t, y) = ½‖t − y‖²; B[ℓ_sq, t](v) = (t − y) v (§7.4.3)."""

    label = "ℓ_sq"

    def check_label(self, t, y, where):
        return _label_shape(t, y, where)

    @rule("F", "(F)", _mean(E.half_sq_norm(t - y)))
    def forward(self, t, y):
        y = self._label(t, y)
        d = t - y
        return np.asarray(0.5 * np.vdot(d, d) / _batch_size(t))

    @rule("B1", "(§7.4.3)", _mean(E.juxt(t - y, v)), slips=(R.FORGOT_MEAN,))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        scale = float(v) / _batch_size(t)   # v = ∂J/∂J, one number
        return t - y if scale == 1.0 else (t - y) * scale


def _binary_labels(t, y, where):
    y = _label_shape(t, y, where, "logit t")
    # y(y − 1) is 0 exactly when y is 0 or 1 (NaN and inf give non-zero)
    ok = (float(y.flat[0]) in (0.0, 1.0)) if y.size == 1 else not np.count_nonzero(y * (y - 1.0))
    if not ok:
        bad = y[(y != 0) & (y != 1)] if y.size > 1 else y.ravel()
        raise BackpropError(f"{where}: logistic-loss labels must be 0 or 1; got {bad.ravel()[:5]}")
    return y


class LogisticLoss(Loss):
    """ℓ_logistic(t, y) = log(1 + e^t) − y t; B[ℓ_logistic, t](v) = (σ(t) − y) v (7.70)."""

    label = "ℓ_logistic"

    def check_label(self, t, y, where):
        return _binary_labels(t, y, where)

    @rule("F", "(F)", _mean(E.total(E.log(1 + E.exp(t)) - y * t)))
    def forward(self, t, y):
        y = self._label(t, y)
        # log(1+e^t) = logaddexp(0, t): no overflow for large t, no log(0) for very negative t.
        return np.asarray((np.logaddexp(0.0, t) - y * t).sum() / _batch_size(t))

    @rule("B1", "(7.70)", _mean(E.juxt(E.sigma(t) - y, v)),
          slips=(R.FORGOT_SQUASH, R.FORGOT_MEAN))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        g = _stable_sigmoid(t) - y
        scale = float(v) / _batch_size(t)   # v = ∂J/∂J, one number
        return g if scale == 1.0 else g * scale


def _softmax(x):
    e = np.exp(x - x.max(axis=0))
    return e / e.sum(axis=0)


class CrossEntropyLoss(Loss):
    """ℓ_ce(t, y) = −log softmax(t)_y on logits t; B[ℓ_ce, t](v) = (softmax(t) − y) v (7.71).

    y is one-hot (same shape as t) or a class index (an int, or one per column of a batch).
    """

    label = "ℓ_ce"

    def check_label(self, t, y, where):
        k = t.shape[0]
        if y.shape == t.shape:
            if (((y == 0) | (y == 1)).all() and (y.sum(axis=0) == 1).all()):
                return y
            raise BackpropError(f"{where}: cross-entropy labels of shape {shape_str(y)} must be "
                                f"one-hot (0/1 entries, exactly one 1 per example)")
        n = _batch_size(t)
        idx = y.ravel()
        if idx.size == n and np.all(idx == np.round(idx)) and np.all((idx >= 0) & (idx < k)):
            onehot = (np.arange(k)[:, None] == idx.astype(int)[None, :]).astype(float)
            return onehot[:, 0] if t.ndim == 1 else onehot
        bad = idx[(idx != np.round(idx)) | (idx < 0) | (idx >= k)] if idx.size == n else idx
        raise BackpropError(
            f"{where}: cross-entropy labels must be one-hot with the logits' shape {shape_str(t)} "
            f"or class indices in 0..{k - 1} (one per example); got {bad[:5]} "
            f"(labels of shape {shape_str(y)})")

    @rule("F", "(F)", _mean(-E.total(y * E.log(E.softmax(t)))))
    def forward(self, t, y):
        y = self._label(t, y)
        m = t.max(axis=0)
        lse = m + np.log(np.exp(t - m).sum(axis=0))
        return np.asarray((lse - (y * t).sum(axis=0)).sum() / _batch_size(t))

    @rule("B1", "(7.71)", _mean(E.juxt(E.softmax(t) - y, v)),
          slips=(R.FORGOT_SQUASH, R.FORGOT_MEAN))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        scale = float(v) / _batch_size(t)   # v = ∂J/∂J, one number
        return _softmax(t) - y if scale == 1.0 else (_softmax(t) - y) * scale


LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss, "cross_entropy": CrossEntropyLoss}


# --- ops of a differentiable circuit (Theorem 7.4.1); backward by the chain rule (7.58) ---------

class Op(Module):
    """An arithmetic operation or elementary function; backward by the chain rule (7.58)."""

    symbol = "?"


class BinaryOp(Op):
    """An op of two inputs a, b; ``backward`` gives both (B1) contributions, one per input."""

    inputs = ("a", "b")

    def backward(self, a, b, v):
        return self.function("B1", 0)(a, b, v), self.function("B1", 1)(a, b, v)


def _named(name, fn):
    fn.__name__ = name          # the rule table finds the method by this name
    return fn


def binary(name, label, symbol, forward, F, grad_a, B1a, grad_b, B1b, doc):
    """A binary op as one short entry: its forward and each input's rule, code beside math."""
    body = {
        "__doc__": doc, "label": label, "symbol": symbol,
        "forward": rule("F", "(F)", F)(_named("forward", lambda self, a, b: forward(a, b))),
        "grad_a": rule("B1", TAG_CHAIN, B1a, input=0)(
            _named("grad_a", lambda self, a, b, v: grad_a(a, b, v))),
        "grad_b": rule("B1", TAG_CHAIN, B1b, input=1)(
            _named("grad_b", lambda self, a, b, v: grad_b(a, b, v))),
    }
    return type(name, (BinaryOp,), body)


def elementwise(name, label, symbol, forward, F, backward, B1, doc, can_overflow=True):
    """A one-input elementwise op as one short entry."""
    body = {
        "__doc__": doc, "label": label, "symbol": symbol, "can_overflow": can_overflow,
        "forward": rule("F", "(F)", F)(_named("forward", lambda self, z: forward(z))),
        "backward": rule("B1", TAG_CHAIN, B1)(
            _named("backward", lambda self, z, v: backward(z, v))),
    }
    return type(name, (Op,), body)


Add = binary("Add", "+", "+", np.add, a + b,
             lambda a, b, v: v, v, lambda a, b, v: v, v, "a + b; backward v and v.")
Sub = binary("Sub", "−", "-", np.subtract, a - b,
             lambda a, b, v: v, v, lambda a, b, v: -v, -v, "a − b; backward v and −v.")
Mul = binary("Mul", "×", "*", np.multiply, a * b,
             lambda a, b, v: b * v, b * v, lambda a, b, v: a * v, a * v,
             "a ⊙ b; backward b ⊙ v and a ⊙ v.")
Div = binary("Div", "÷", "/", np.divide, a / b,
             lambda a, b, v: v / b, v / b, lambda a, b, v: -a * v / (b * b), -(a * v / b ** 2),
             "a / b; backward v / b and −a ⊙ v / b².")
Exp = elementwise("Exp", "exp", "exp", np.exp, E.exp(z), lambda z, v: np.exp(z) * v,
                  E.exp(z) * v, "exp(z); backward exp(z) ⊙ v.")
Sin = elementwise("Sin", "sin", "sin", np.sin, E.sin(z), lambda z, v: np.cos(z) * v,
                  E.cos(z) * v, "sin(z); backward cos(z) ⊙ v.", can_overflow=False)
Cos = elementwise("Cos", "cos", "cos", np.cos, E.cos(z), lambda z, v: -np.sin(z) * v,
                  -E.sin(z) * v, "cos(z); backward −sin(z) ⊙ v.", can_overflow=False)
_Log = elementwise("Log", "log", "log", np.log, E.log(z), lambda z, v: v / z, v / z,
                   "log(z) for z > 0; backward v / z.")


class Log(_Log):
    def check_input(self, z, where):
        if np.any(z <= 0):
            raise BackpropError(f"{where}: log needs positive inputs; got {z.ravel()[:5]} "
                                f"(shape {shape_str(z)})")


class MatMul(BinaryOp):
    """a @ b for matrices and vectors (vectors are columns: a·b of two vectors is aᵀb)."""

    label, symbol = "@", "@"

    def check_inputs(self, values, where):
        for side, val in zip("ab", values):
            if np.ndim(val) > 2:
                raise BackpropError(f"{where}: @ takes vectors and matrices; {side} has shape "
                                    f"{shape_str(val)} (batches are columns of a matrix here)")
        a_, b_ = values
        if np.ndim(a_) == 0 or np.ndim(b_) == 0:
            raise BackpropError(f"{where}: @ needs vectors or matrices, not single numbers "
                                f"(use * for a number times an array)")
        inner_a, inner_b = np.shape(a_)[-1], np.shape(b_)[0]
        if inner_a != inner_b:
            raise BackpropError(f"{where}: a is {shape_str(a_)} and b is {shape_str(b_)}: a's "
                                f"last size ({inner_a}) must equal b's first ({inner_b})")

    @rule("F", "(F)", lambda c: a.T @ b if c.ndim("a") == 1 else a @ b)
    def forward(self, a, b):
        return a @ b

    @rule("B1", TAG_CHAIN, lambda c: (E.juxt(v, b) if c.ndim("b") == 1 else b @ v)
          if c.ndim("a") == 1 else v @ b.T, input=0)
    def grad_a(self, a, b, v):
        if a.ndim == 1:
            return v * b if b.ndim == 1 else b @ v
        return np.outer(v, b) if b.ndim == 1 else v @ b.T

    @rule("B1", TAG_CHAIN, lambda c: (E.juxt(v, a) if c.ndim("b") == 1 else a @ v.T)
          if c.ndim("a") == 1 else a.T @ v, input=1)
    def grad_b(self, a, b, v):
        if a.ndim == 1:
            return v * a if b.ndim == 1 else np.outer(a, v)
        return a.T @ v


def _power_B1(c):
    p = c.consts["p"]
    if p == 0:
        return E.Const(0.0) * v
    return E.Const(p) * (z ** E.Const(p - 1)) * v


class Power(Op):
    """z^p for a constant p; backward p z^{p−1} ⊙ v (0 for p = 0, v for p = 1, also at z = 0)."""

    symbol = "**"

    def __init__(self, p, name=None):
        super().__init__(name)
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer,
                                                                  np.floating)):
            raise BackpropError(f"power: the exponent must be a constant number; got {p!r}")
        self.p = float(p)
        if not np.isfinite(self.p):
            raise BackpropError(f"power: the exponent must be finite; got {p!r}")
        self.label = self.label_for(self.consts)

    @classmethod
    def label_for(cls, consts):
        p = consts.get("p", 2.0)
        return "(·)²" if p == 2 else f"(·)^{p:g}"

    @property
    def consts(self):
        return {"p": self.p}

    @rule("F", "(F)", lambda c: z ** E.Const(c.consts["p"]))
    def forward(self, z):
        return z * z if self.p == 2 else z ** self.p

    @rule("B1", TAG_CHAIN, _power_B1)
    def backward(self, z, v):
        if self.p == 0:
            return np.zeros(np.broadcast(z, v).shape)     # z⁰ = 1 everywhere: no slope, even at 0
        if self.p == 1:
            return v * np.ones_like(z)
        return 2.0 * z * v if self.p == 2 else self.p * z ** (self.p - 1) * v

    def __repr__(self):
        return f"Power({self.p:g})"


class Sum(Op):
    """Σ_j z_j; backward v·1 (every entry gets v), as in the chain-rule example (7.53)."""

    label, symbol, can_overflow = "Σ", "sum", True

    @rule("F", "(F)", E.total(z))
    def forward(self, z):
        return np.asarray(z.sum())

    @rule("B1", TAG_CHAIN, E.juxt(v, E.ones_like("z")))
    def backward(self, z, v):
        return np.full(z.shape, float(v))


# --- indexing: z[i], z[:2], W[i, j], z[[0, 2, 2]]; backward: scatter into zeros (7.58) ----------

def _slice_text(p, n):
    """Positions p (≥ 2 of them, or one) written as a slice a:b:s if they are evenly spaced, else
    None; n is the axis length (None if unknown), so that ends can be left out as Python does."""
    s = 1 if p.size == 1 else int(p[1] - p[0])
    if s == 0 or np.any(np.diff(p) != s):
        return None
    first, stop = int(p[0]), int(p[-1]) + s
    start = "" if first == (0 if s > 0 else (n - 1 if n is not None else None)) else str(first)
    end = "" if (s > 0 and n is not None and stop >= n) or (s < 0 and stop < 0) else str(stop)
    return f"{start}:{end}" + ("" if s == 1 else f":{s}")


def _axis_text(p, n):
    """One axis of an index: a number, a slice (':' for the whole axis) or a list."""
    p = np.asarray(p).ravel()
    if p.size == 1 and np.ndim(p) == 0:
        return str(int(p))
    text = _slice_text(p, n)
    if text == f"0:{n}" or text == ":":
        return ":"
    return text if text is not None else "[" + ", ".join(str(int(x)) for x in p) + "]"


def index_text(shape, positions) -> str:
    """An index as NumPy would write it, from z's shape (None: a vector of unknown length) and the
    flat positions of the entries it selects: [0], [:2], [1, 0], [0] (a row), [[0, 2, 2]]."""
    pos = np.asarray(positions, dtype=np.int64)
    if shape is not None and len(shape) > 2:
        return ".flat[" + _list_text(pos) + "]"
    if shape is None or len(shape) <= 1:
        n = None if shape is None else (shape[0] if shape else 1)
        if pos.ndim == 0:
            return f"[{int(pos)}]"
        return "[" + ((_slice_text(pos, n) if pos.ndim == 1 else None) or _list_text(pos)) + "]"
    m, n = shape
    r, c = np.divmod(pos, n)
    if pos.ndim == 0:
        return f"[{int(r)}, {int(c)}]"
    if pos.ndim == 1 and np.all(r == r[0]):                       # part of a row
        cols = _axis_text(c, n)
        return f"[{int(r[0])}]" if cols == ":" else f"[{int(r[0])}, {cols}]"
    if pos.ndim == 1 and np.all(c == c[0]):                       # part of a column
        return f"[{_axis_text(r, m)}, {int(c[0])}]"
    if pos.ndim == 2 and np.all(r == r[:, :1]) and np.all(c == c[:1, :]):    # rows × columns
        rows, cols = _axis_text(r[:, 0], m), _axis_text(c[0], n)
        if rows.startswith("[") + cols.startswith("[") < 2:      # NumPy would zip two lists
            return f"[{rows}]" if cols == ":" else f"[{rows}, {cols}]"
    return f"[{_list_text(r)}, {_list_text(c)}]"                  # entry by entry: (r_k, c_k)


def _list_text(p):
    p = np.asarray(p)
    if p.ndim <= 1:
        return "[" + ", ".join(str(int(x)) for x in np.ravel(p)) + "]"
    return "[" + ", ".join(_list_text(row) for row in p) + "]"


def _index_consts(shape, positions) -> dict:
    """The index as numbers (what a trace file keeps): z's shape (zn = −1: a vector of unknown
    length), the output's shape, and the flat positions p0, p1, … of the selected entries."""
    c = {"zn": -1.0 if shape is None else float(len(shape))}
    c.update((f"z{i}", float(n)) for i, n in enumerate(shape or ()))
    c["on"] = float(np.ndim(positions))
    c.update((f"o{i}", float(n)) for i, n in enumerate(np.shape(positions)))
    c.update((f"p{i}", float(p)) for i, p in enumerate(np.ravel(positions)))
    return c


def _index_from_consts(c: dict):
    """(z's shape or None, positions) back from ``_index_consts``."""
    zn = int(c.get("zn", -1))
    shape = None if zn < 0 else tuple(int(c[f"z{i}"]) for i in range(zn))
    out = tuple(int(c[f"o{i}"]) for i in range(int(c.get("on", 0))))
    k = int(np.prod(out)) if out else 1
    pos = np.array([int(c[f"p{i}"]) for i in range(k)], dtype=np.int64).reshape(out)
    return shape, pos


class _Gather(E.Expr):
    """z[i] in a rule: the entries of z at the index (text: u[1][0], numbers: [1, 2, 3][0])."""

    prec = E.POSTFIX

    def __init__(self, a, text, positions):
        self.a, self.text, self.positions = a, text, positions

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        return self.a.render(fmt, E.ATOM) + (r"\text{" + self.text + "}" if fmt.tex else self.text)

    def eval(self, env):
        x = np.asarray(self.a.eval(env), dtype=float)
        return x.ravel()[self.positions]


class _Scatter(E.Expr):
    """v scattered into zeros of z's shape at the index; repeated positions add up (np.add.at)."""

    prec = E.SUM

    def __init__(self, v, text, positions, shape):
        self.v, self.text, self.positions, self.shape = v, text, positions, shape

    def children(self):
        return (self.v,) if not isinstance(self.shape, E.Expr) else (self.v, self.shape)

    def _render(self, fmt):
        arg = self.v.render(fmt, E.PRODUCT)
        if fmt.tex:
            return arg + r"\ \text{scattered into zeros at } \text{" + self.text + "}"
        return arg + " scattered into zeros at " + self.text

    def eval(self, env):
        shape = np.shape(self.shape.eval(env)) if isinstance(self.shape, E.Expr) else self.shape
        g = np.zeros(int(np.prod(shape)))
        vals = np.asarray(self.v.eval(env), dtype=float)      # a vector may come as a column
        vals = vals.ravel() if vals.size == self.positions.size else \
            np.broadcast_to(vals, self.positions.shape).ravel()
        np.add.at(g, self.positions.ravel(), vals)
        return g.reshape(shape)


def _gather_expr(c):
    shape, pos = _index_from_consts(c.consts)
    return _Gather(z, index_text(shape, pos), pos)


def _scatter_expr(c):
    shape, pos = _index_from_consts(c.consts)
    return _Scatter(v, index_text(shape, pos), pos, z if shape is None else shape)


class Index(Op):
    """z[i]: the entries of z at a constant index (a number, a slice, a tuple of them, an integer
    array or a boolean mask, as NumPy reads it). Backward by (7.58): ∂u_k/∂z_p is 1 where the
    k-th selected entry is z_p and 0 elsewhere, so B[z[i], z](v) is v scattered into zeros of z's
    shape, and an entry selected several times gets the sum of its v's (np.add.at).

    ``shape`` is z's shape; the index is kept as the flat positions of the entries it selects
    (what a trace file stores). Without a shape the index must be whole numbers ≥ 0: positions
    in a vector z.
    """

    label, symbol, can_overflow = "(·)[·]", "[]", False

    def __init__(self, index=0, shape=None, name=None):
        super().__init__(name)
        self.shape = None if shape is None else tuple(int(n) for n in shape)
        self.positions = _positions(index, self.shape)
        self.label = self.label_for(self.consts)

    @classmethod
    def label_for(cls, consts):
        if "on" not in consts:
            return cls.label
        return "(·)" + index_text(*_index_from_consts(consts))

    @property
    def consts(self):
        return _index_consts(self.shape, self.positions)

    @property
    def text(self) -> str:
        """The index as NumPy writes it: [0], [:2], [1, 0]."""
        return index_text(self.shape, self.positions)

    def check_input(self, z, where):
        if self.shape is not None and np.shape(z) != self.shape:
            raise BackpropError(f"{where}: the index {self.text} was made for an input of shape "
                                f"{shape_str(np.empty(self.shape))}; this one is {shape_str(z)}")
        if self.shape is None and (np.ndim(z) != 1 or self.positions.max() >= np.size(z)):
            raise BackpropError(f"{where}: the index {self.text} needs a vector with more than "
                                f"{int(self.positions.max())} entries; got {shape_str(z)}")

    @rule("F", "(F)", _gather_expr)
    def forward(self, z):
        return np.asarray(z, dtype=float).ravel()[self.positions]

    @rule("B1", TAG_CHAIN, _scatter_expr)
    def backward(self, z, v):
        g = np.zeros(np.size(z))
        np.add.at(g, self.positions.ravel(), np.broadcast_to(v, self.positions.shape).ravel())
        return g.reshape(np.shape(z))

    def __repr__(self):
        return f"Index({self.text})"


def _positions(index, shape) -> np.ndarray:
    """The flat positions (into z.ravel()) of the entries z[index] selects, shaped like z[index]."""
    if isinstance(index, list):             # a list is an array of positions, as in NumPy
        index = np.asarray(index)
    if shape is None:
        pos = np.asarray(index)
        if pos.dtype.kind not in "iu" or pos.size == 0 or np.any(pos < 0):
            raise BackpropError(f"index: without the input's shape the index must be whole "
                                f"numbers ≥ 0 (positions in a vector); got {index!r}")
        return pos.astype(np.int64)
    _check_index(index)
    try:
        with np.errstate(all="ignore"):
            pos = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[index]
    except (IndexError, ValueError, TypeError) as err:
        raise BackpropError(f"index {index!r} does not fit a value of shape "
                            f"{shape_str(np.empty(shape))}: {err}") from None
    pos = np.asarray(pos, dtype=np.int64)
    if pos.size == 0:
        raise BackpropError(f"index {index!r} selects no entries of a value of shape "
                            f"{shape_str(np.empty(shape))}")
    if pos.ndim > 2:
        raise BackpropError(f"index {index!r} gives shape {shape_str(pos)}; values here are at "
                            f"most matrices")
    return pos


def _check_index(index):
    """An index is made of constants: numbers, slices, ..., arrays of whole numbers or booleans."""
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if getattr(p, "_bpv_apply", None) is not None:
            raise BackpropError("index: the index must be constant numbers, not a traced value "
                                "(the position of an entry is not differentiable)")
        if isinstance(p, (float, np.floating)) or (isinstance(p, np.ndarray)
                                                    and p.dtype.kind not in "iub"):
            raise BackpropError(f"index: positions are whole numbers; got {p!r}")
