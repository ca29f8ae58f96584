"""The layers of an MLP: MM[W, b](z) = Wz + b (7.62) and the elementwise activations (7.67)-(7.69)."""
from __future__ import annotations


import numpy as np

from .. import expr as E
from .. import rules as R
from ..errors import BackpropError, shape_str
from ..expr import W, b, v, z
from ..rules import rule
from ..checks import name as checked_name
from ..numerics import sigmoid
from .base import Module, frozen

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
        return sigmoid(z)

    def derivative(self, z):
        s = sigmoid(z)
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
