"""Modules M_i with hand-written forward and backward functions, in the notes' notation (7.4.3).

Every module mirrors the notes: ``forward`` computes u = M(z); ``backward(z, v)`` is the backward
function B[M, z](v) of (7.57), the gradient with respect to the input given v = ∂J/∂u; modules with
parameters θ also give ``param_grads(z, v)``, the backward functions B[M, θ](v) of (B2).

A single example is a vector z ∈ R^n. A batch of B examples is a matrix with one example per
*column*, z ∈ R^{n×B}, so that MM is still Wz + b and (7.63)/(7.65) read the same; losses then
average over the batch, J = (1/B) Σ_j ℓ(t^(j), y^(j)).
"""
from __future__ import annotations

import numpy as np

from .errors import BackpropError, shape_str

# Tags of the notes' equations for each rule; the trace carries them.
TAG_CHAIN = "(7.58)"


def _frozen(a, dtype=float) -> np.ndarray:
    """A read-only float copy: modules keep their parameters immutable so traces can share them."""
    a = np.array(a, dtype=dtype)
    a.flags.writeable = False
    return a


def _stable_sigmoid(t):
    """σ(t) = 1/(1+e^{-t}) without overflow for large |t|."""
    return np.exp(-np.logaddexp(0.0, -t))


def _batch_size(t) -> int:
    return t.shape[1] if t.ndim == 2 else 1


class Module:
    """A module M with forward u = M(z) and backward function B[M, z](v) = ∂J/∂z (7.57).

    ``label`` is the notes' symbol drawn on the graph; ``tag_B1`` the equation of its backward rule.
    """

    label = "M"
    tag_B1 = TAG_CHAIN
    formula_F = "M({z})"        # the forward rule; {z} is the input, {v} = ∂J/∂u
    formula_B1 = "B[M, {z}]({v})"  # the backward rule (one per input for binary ops)
    param_names: tuple[str, ...] = ()
    param_tags: tuple[str, ...] = ()
    param_formulas: tuple[str, ...] = ()
    arity = 1                   # number of differentiable inputs
    can_overflow = True         # False if finite inputs always give a finite output

    def __init__(self, name: str | None = None):
        self.name = name

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters θ of this module, by local name (W, b)."""
        return {p: getattr(self, p) for p in self.param_names}

    def forward(self, z):
        raise NotImplementedError

    def backward(self, z, v):
        raise NotImplementedError

    def param_grads(self, z, v) -> dict[str, np.ndarray]:
        """B[M, θ](v) for each parameter θ of the module (B2); empty for a fixed operation."""
        return {}

    def check_input(self, z, where: str) -> None:
        """Raise BackpropError if z cannot be the input of this module."""

    def __call__(self, *args):
        # Applying a module to traced values records it; on arrays it is just the forward.
        from .graph import Var, _apply
        if any(isinstance(a, Var) for a in args):
            return _apply(self, args)
        return self.forward(*[np.asarray(a, dtype=float) for a in args])

    def __repr__(self):
        return f"{type(self).__name__}()"


# --- MM ------------------------------------------------------------------------------------------

class MM(Module):
    """MM[W, b](z) = Wz + b; B[MM, z](v) = Wᵀv (7.63), B[MM, W](v) = v zᵀ (7.65), B[MM, b](v) = v (7.66)."""

    label = "MM"
    tag_B1 = "(7.63)"
    formula_F = "{W} {z} + {b}"
    formula_B1 = "{W}ᵀ {v}"
    param_names = ("W", "b")
    param_tags = ("(7.65)", "(7.66)")
    param_formulas = ("{v} {z}ᵀ", "{v}")

    def __init__(self, W, b=None, name: str | None = None, param_names=("W", "b")):
        super().__init__(name)
        try:
            W = _frozen(W)
            b = _frozen(np.zeros(W.shape[0]) if b is None else b)
        except (TypeError, ValueError) as e:
            raise BackpropError(f"MM: W and b must be numeric arrays ({e})") from None
        if W.ndim != 2:
            raise BackpropError(f"MM: W must be a matrix (m×n); got shape {shape_str(W)}")
        if b.ndim != 1 or b.shape[0] != W.shape[0]:
            raise BackpropError(
                f"MM: b must be a vector with one entry per row of W; W is {shape_str(W)} "
                f"({W.shape[0]} rows) but b has shape {shape_str(b)}")
        self.W, self.b = W, b
        self._b_col = b[:, None]        # b as a column, added to every example of a batch
        self.display_names = tuple(param_names)

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

    def forward(self, z):
        if z.ndim == 1:
            return self.W @ z + self.b
        if z.ndim != 2:     # matmul would broadcast a 3-d z silently
            raise ValueError(f"MM input must be a vector or a matrix; got shape {shape_str(z)}")
        return self.W @ z + self._b_col

    def backward(self, z, v):
        return self.W.T @ v

    def grad_W(self, z, v):
        """B[MM, W](v) = v zᵀ (7.65), summed over the columns of a batch."""
        return np.outer(v, z) if z.ndim == 1 else v @ z.T

    def grad_b(self, z, v):
        """B[MM, b](v) = v (7.66), summed over the columns of a batch."""
        return v if v.ndim == 1 else v.sum(axis=1)

    def param_grads(self, z, v):
        return {"W": self.grad_W(z, v), "b": self.grad_b(z, v)}

    def __repr__(self):
        return f"MM(W: {shape_str(self.W)}, b: {shape_str(self.b)})"


# --- elementwise activations: B[σ, z](v) = σ'(z) ⊙ v (7.69) --------------------------------------

class Activation(Module):
    """An elementwise σ; B[σ, z](v) = σ'(z) ⊙ v (7.69)."""

    tag_B1 = "(7.69)"
    formula_B1 = "σ'({z}) ⊙ {v}"

    def derivative(self, z):
        raise NotImplementedError

    def backward(self, z, v):
        return self.derivative(z) * v


class ReLU(Activation):
    """ReLU(z) = max(0, z); σ'(z) = 1 where z > 0, else 0."""

    can_overflow = False
    label = "ReLU"
    formula_F = "max(0, {z})"
    formula_B1 = "1[{z} > 0] ⊙ {v}"

    def forward(self, z):
        return np.maximum(z, 0.0)

    def derivative(self, z):
        return (z > 0).astype(float)

    def backward(self, z, v):
        return (z > 0) * v


class Sigmoid(Activation):
    """σ(z) = 1/(1 + e^{−z}); σ'(z) = σ(z)(1 − σ(z))."""

    can_overflow = False
    label = "σ"
    formula_F = "1/(1 + exp(−{z}))"
    formula_B1 = "σ({z})(1 − σ({z})) ⊙ {v}"

    def forward(self, z):
        return _stable_sigmoid(z)

    def derivative(self, z):
        s = _stable_sigmoid(z)
        return s * (1.0 - s)


class Tanh(Activation):
    """tanh(z); σ'(z) = 1 − tanh²(z)."""

    can_overflow = False
    label = "tanh"
    formula_F = "tanh({z})"
    formula_B1 = "(1 − tanh²({z})) ⊙ {v}"

    def forward(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return 1.0 - np.tanh(z) ** 2


class Identity(Activation):
    """id(z) = z; σ'(z) = 1."""

    can_overflow = False
    label = "id"
    formula_F = "{z}"
    formula_B1 = "{v}"

    def forward(self, z):
        return z

    def derivative(self, z):
        return np.ones_like(z)

    def backward(self, z, v):
        return v


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "identity": Identity}


# --- losses: modules with a label y; J = u[k] -----------------------------------------------------

class Loss(Module):
    """A loss ℓ(t, y) as the last module M_k; backward(t, y, v=1) = ∂J/∂t."""

    arity = 1   # t is differentiable; the label y is not

    def check_label(self, t, y, where) -> np.ndarray:
        return y

    def __call__(self, t, y=None):
        from .graph import Var, _apply
        if isinstance(t, Var):
            return _apply(self, (t, y))
        t = np.asarray(t, dtype=float)
        return self.forward(t, self.check_label(t, np.asarray(y, dtype=float), self.label))


class SquaredLoss(Loss):
    """ℓ_sq(t, y) = ½‖t − y‖²; B[ℓ_sq, t](v) = (t − y) v (§7.4.3)."""

    label = "ℓ_sq"
    tag_B1 = "(§7.4.3)"
    formula_F = "½‖{z} − {y}‖²"
    formula_B1 = "({z} − {y}) {v}"

    def check_label(self, t, y, where):
        try:
            return np.broadcast_to(y, t.shape) if y.shape != t.shape else y
        except ValueError:
            raise BackpropError(f"{where}: the label y has shape {shape_str(y)} but the output t "
                                f"has shape {shape_str(t)}") from None

    def forward(self, t, y):
        d = t - y
        return np.asarray(0.5 * np.vdot(d, d) / _batch_size(t))

    def backward(self, t, y, v=1.0):
        scale = float(v) / _batch_size(t)
        return t - y if scale == 1.0 else (t - y) * scale


def _binary_labels(t, y, where):
    if y.shape != t.shape:
        if y.size != t.size:
            raise BackpropError(f"{where}: the label y has shape {shape_str(y)} but the logit t "
                                f"has shape {shape_str(t)}")
        y = y.reshape(t.shape)
    # y(y − 1) is 0 exactly when y is 0 or 1 (NaN and inf give non-zero)
    ok = (float(y.flat[0]) in (0.0, 1.0)) if y.size == 1 else not np.count_nonzero(y * (y - 1.0))
    if not ok:
        bad = y[(y != 0) & (y != 1)] if y.size > 1 else y.ravel()
        raise BackpropError(f"{where}: logistic-loss labels must be 0 or 1; got {bad.ravel()[:5]}")
    return y


class LogisticLoss(Loss):
    """ℓ_logistic(t, y) = log(1 + e^t) − y t; B[ℓ_logistic, t](v) = (σ(t) − y) v (7.70)."""

    label = "ℓ_logistic"
    tag_B1 = "(7.70)"
    formula_F = "log(1 + exp({z})) − {y} {z}"
    formula_B1 = "(σ({z}) − {y}) {v}"

    def check_label(self, t, y, where):
        return _binary_labels(t, y, where)

    def forward(self, t, y):
        # log(1+e^t) = logaddexp(0, t): no overflow for large t, no log(0) for very negative t.
        return np.asarray((np.logaddexp(0.0, t) - y * t).sum() / _batch_size(t))

    def backward(self, t, y, v=1.0):
        g = _stable_sigmoid(t) - y
        scale = float(v) / _batch_size(t)
        return g if scale == 1.0 else g * scale


def _softmax(t):
    e = np.exp(t - t.max(axis=0))
    return e / e.sum(axis=0)


class CrossEntropyLoss(Loss):
    """ℓ_ce(t, y) = −log softmax(t)_y on logits t; B[ℓ_ce, t](v) = (softmax(t) − y) v (7.71).

    y is one-hot (same shape as t) or a class index (an int, or one per column of a batch).
    """

    label = "ℓ_ce"
    tag_B1 = "(7.71)"
    formula_F = "−log softmax({z})_{y}"
    formula_B1 = "(softmax({z}) − {y}) {v}"

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
        raise BackpropError(
            f"{where}: cross-entropy labels must be one-hot with the logits' shape {shape_str(t)} "
            f"or class indices in 0..{k - 1} (one per example); got {idx[:5]} "
            f"(shape {shape_str(y)})")

    def forward(self, t, y):
        m = t.max(axis=0)
        lse = m + np.log(np.exp(t - m).sum(axis=0))
        return np.asarray((lse - (y * t).sum(axis=0)).sum() / _batch_size(t))

    def backward(self, t, y, v=1.0):
        scale = float(v) / _batch_size(t)
        return _softmax(t) - y if scale == 1.0 else (_softmax(t) - y) * scale


LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss, "cross_entropy": CrossEntropyLoss}


# --- ops of a differentiable circuit (Theorem 7.4.1); backward by the chain rule (7.58) ---------

class Op(Module):
    """An arithmetic operation or elementary function; backward by the chain rule (7.58)."""

    symbol = "?"


class Add(Op):
    label, symbol, arity, formula_F, formula_B1 = "+", "+", 2, "{a} + {b}", ("{v}", "{v}")

    def forward(self, a, b):
        return a + b

    def backward(self, a, b, v):
        return v, v


class Sub(Op):
    label, symbol, arity, formula_F, formula_B1 = "−", "-", 2, "{a} − {b}", ("{v}", "−{v}")

    def forward(self, a, b):
        return a - b

    def backward(self, a, b, v):
        return v, -v


class Mul(Op):
    label, symbol, arity, formula_F, formula_B1 = "×", "*", 2, "{a} ⊙ {b}", ("{b} ⊙ {v}", "{a} ⊙ {v}")

    def forward(self, a, b):
        return a * b

    def backward(self, a, b, v):
        return b * v, a * v


class Div(Op):
    label, symbol, arity, formula_F, formula_B1 = "÷", "/", 2, "{a} / {b}", ("{v} / {b}", "−{a} ⊙ {v} / {b}²")

    def forward(self, a, b):
        return a / b

    def backward(self, a, b, v):
        return v / b, -a * v / (b * b)


class MatMul(Op):
    """a @ b for matrices/vectors; backward v bᵀ and aᵀ v."""

    label, symbol, arity, formula_F, formula_B1 = "@", "@", 2, "{a} {b}", ("{v} {b}ᵀ", "{a}ᵀ {v}")

    def forward(self, a, b):
        return a @ b

    def backward(self, a, b, v):
        if a.ndim == 1 and b.ndim == 1:          # a dot product: a scalar output
            return v * b, v * a
        if a.ndim == 1:                           # row vector times matrix
            return b @ v, np.outer(a, v)
        if b.ndim == 1:                           # matrix times vector, as in MM
            return np.outer(v, b), a.T @ v
        return v @ b.T, a.T @ v


class Power(Op):
    """z^p for a constant p; backward p z^{p−1} ⊙ v."""

    symbol = "**"

    def __init__(self, p, name=None):
        super().__init__(name)
        self.p = float(p)
        p_txt = f"{self.p:g}"
        self.label = "(·)²" if self.p == 2 else f"(·)^{p_txt}"
        self.formula_F = f"{{z}}^{p_txt}"
        self.formula_B1 = ("2 {z} ⊙ {v}" if self.p == 2 else
                           f"{p_txt} {{z}}^{self.p - 1:g} ⊙ {{v}}")

    def forward(self, z):
        return z * z if self.p == 2 else z ** self.p

    def backward(self, z, v):
        return 2.0 * z * v if self.p == 2 else self.p * z ** (self.p - 1) * v


class Exp(Op):
    label, symbol, formula_F, formula_B1 = "exp", "exp", "exp({z})", "exp({z}) ⊙ {v}"

    def forward(self, z):
        return np.exp(z)

    def backward(self, z, v):
        return np.exp(z) * v


class Log(Op):
    label, symbol, formula_F, formula_B1 = "log", "log", "log({z})", "{v} / {z}"

    def check_input(self, z, where):
        if np.any(z <= 0):
            raise BackpropError(f"{where}: log needs positive inputs; got {z.ravel()[:5]} "
                                f"(shape {shape_str(z)})")

    def forward(self, z):
        return np.log(z)

    def backward(self, z, v):
        return v / z


class Sin(Op):
    label, symbol, formula_F, formula_B1 = "sin", "sin", "sin({z})", "cos({z}) ⊙ {v}"

    def forward(self, z):
        return np.sin(z)

    def backward(self, z, v):
        return np.cos(z) * v


class Cos(Op):
    label, symbol, formula_F, formula_B1 = "cos", "cos", "cos({z})", "−sin({z}) ⊙ {v}"

    def forward(self, z):
        return np.cos(z)

    def backward(self, z, v):
        return -np.sin(z) * v


class Sum(Op):
    """Σ_j z_j; backward v·1 (every entry gets v), as in the chain-rule example (7.53)."""

    label, symbol, formula_F, formula_B1 = "Σ", "sum", "Σ_j ({z})_j", "{v} · 1"

    def forward(self, z):
        return np.asarray(z.sum())

    def backward(self, z, v):
        return np.full(z.shape, float(v))

