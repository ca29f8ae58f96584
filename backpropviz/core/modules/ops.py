"""Ops of a differentiable circuit (Theorem 7.4.1): arithmetic and elementary functions whose
backward is the chain rule (7.58), made from one line each by ``binary`` and ``elementwise``."""
from __future__ import annotations


import numpy as np

from .. import expr as E
from ..errors import BackpropError, brief, shape_str
from ..expr import a, b, v, z
from ..rules import TAG_CHAIN, rule
from .base import Module

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
def _div_b(a, b, v):
    """B[÷, b](v) = −a ⊙ v / b², computed as −(a/b)(v/b): b² underflows to 0 (or overflows) long
    before a/b does; where v/b itself underflows, as −((a/b) v)/b, which then cannot overflow."""
    q, w = a / b, v / b
    tiny = np.abs(w) < np.finfo(float).tiny
    return np.where(tiny, -(q * v) / b, -(q * w)) if np.any(tiny) else -(q * w)


Div = binary("Div", "÷", "/", np.divide, a / b,
             lambda a, b, v: v / b, v / b, _div_b, -(a * v / b ** 2),
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

    @rule("B1", TAG_CHAIN, lambda c: (E.times(v, b) if c.ndim("b") == 1 else b @ v)
          if c.ndim("a") == 1 else v @ b.T, input=0)
    def grad_a(self, a, b, v):
        if a.ndim == 1:
            return v * b if b.ndim == 1 else b @ v
        return np.outer(v, b) if b.ndim == 1 else v @ b.T

    @rule("B1", TAG_CHAIN, lambda c: (E.times(v, a) if c.ndim("b") == 1 else a @ v.T)
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
            raise BackpropError(f"power: the exponent must be a constant number; got {brief(p)}")
        try:
            self.p = float(p)
        except OverflowError:           # a Python int beyond the float range, such as 10**400
            raise BackpropError(f"power: the exponent {brief(p, 24)} is too large for a float "
                                f"(above about 1.8e308); give a constant such as z ** 2 or "
                                f"z ** 0.5") from None
        if not np.isfinite(self.p):
            raise BackpropError(f"power: the exponent must be finite; got {brief(p)}")
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

    @rule("B1", TAG_CHAIN, E.times(v, E.ones_like("z")))
    def backward(self, z, v):
        return np.full(z.shape, float(v))
