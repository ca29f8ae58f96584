"""Routing modules, for one module shown expanded into its atomic operations (theory/expand.py).

(z)ᵢ (``Entry``) gives one entry of a module-level value a node of its own; [·] (``Stack``) puts
single numbers back together into a module-level value. Both only move numbers, so their backward
functions follow from (7.58): B[(·)ᵢ, z](v) = v eᵢ (v in entry i of zeros of z's shape), and
B[[·], z_j](v) = (v)_j, entry j of v. Entries are written as the notes write z_1, …, z_n: counted
from 1, as subscripts (``subscript``).
"""
from __future__ import annotations

import numpy as np

from .. import expr as E
from .. import rules as R
from ..errors import BackpropError
from ..expr import v, z
from ..rules import rule
from .index import Index, index_from_consts
from .ops import Op

__all__ = ["Entry", "Stack", "subscript"]

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_UNSUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def subscript(index) -> str:
    """A 0-based index as the notes' subscript, counted from 1: (1,) → ₂, (0, 1) → ₁,₂; () → ''."""
    return ",".join(str(i + 1).translate(_SUB) for i in index)


class _EntryOf(E.Expr):
    """(z)₂ in a rule: one entry of z (numbers: its value)."""

    prec = E.POSTFIX

    def __init__(self, a, sub, position):
        self.a, self.sub, self.position = a, sub, position

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        inner = self.a.render(fmt)
        return (f"({inner})_{{{self.sub.translate(_UNSUB)}}}" if fmt.tex
                else f"({inner}){self.sub}")

    def eval(self, env):
        return np.asarray(self.a.eval(env), dtype=float).ravel()[self.position]


class _UnitTimes(E.Expr):
    """v e₂: v put into entry 2 of zeros of z's shape (the backward function of (·)₂)."""

    prec = E.PRODUCT

    def __init__(self, v, sub, position, shape):
        self.v, self.sub, self.position, self.shape = v, sub, position, shape   # shape: or z

    def children(self):
        return (self.v,) if not isinstance(self.shape, E.Expr) else (self.v, self.shape)

    def _render(self, fmt):
        arg = self.v.render(fmt, E.PRODUCT)
        return arg + (rf"\, e_{{{self.sub.translate(_UNSUB)}}}" if fmt.tex else f" e{self.sub}")

    def eval(self, env):
        shape = np.shape(self.shape.eval(env)) if isinstance(self.shape, E.Expr) else self.shape
        g = np.zeros(int(np.prod(shape)) if shape else 1)
        g[self.position] = float(np.asarray(self.v.eval(env)).ravel()[0])
        return g.reshape(shape)


class _Vector(E.Expr):
    """[z1, z2, …] in a rule: entries put together into a vector (or a matrix)."""

    def __init__(self, syms, shape):
        self.syms, self.shape = syms, shape

    def children(self):
        return tuple(self.syms)

    def _render(self, fmt):
        parts = [s.render(fmt) for s in self.syms]
        if len(self.shape) == 2:
            m, n = self.shape
            parts = ["[" + ", ".join(parts[i * n:(i + 1) * n]) + "]" for i in range(m)]
        return "[" + ", ".join(parts) + "]"

    def eval(self, env):
        return np.array([float(np.asarray(s.eval(env))) for s in self.syms]).reshape(self.shape)


def _entry_index(c: dict):
    """(z's shape, the entry's flat position, its subscript) from an Entry's constants."""
    shape, pos = index_from_consts(c)
    if shape is None:                        # a position in a vector of any length
        idx = (int(pos),)
    else:
        idx = np.unravel_index(int(pos), shape) if shape else ()
    return shape, int(pos), subscript(tuple(int(i) for i in idx))


def _z_shape(c: dict):
    """z's shape for v eᵢ: from an Entry's constants, or z itself when it has none."""
    shape = _entry_index(c)[0]
    return z if shape is None else shape


class Entry(Index):
    """(z)ᵢ: u = z_i, one entry of a module-level value as a number of its own (routing into an
    expanded module); backward by (7.58): B[(·)ᵢ, z](v) = v eᵢ, v in that entry of zeros.

    ``position``: the entry's flat position in z (C order); ``shape``: z's shape (None: z is a
    vector of any length, as for ``Index`` without a shape)."""

    label, can_overflow = "(·)ᵢ", False

    def __init__(self, position: int = 0, shape=None, name=None):
        if shape is None:
            super().__init__(int(position), None, name)
        else:
            super().__init__(np.unravel_index(int(position), tuple(shape)), tuple(shape), name)

    @classmethod
    def label_for(cls, consts):
        if "on" not in consts:
            return cls.label
        return "(·)" + _entry_index(consts)[2]

    @rule("F", "(F)", lambda c: _EntryOf(z, _entry_index(c.consts)[2], _entry_index(c.consts)[1]))
    def forward(self, z):
        return super().forward(z)

    @rule("B1", R.TAG_CHAIN, lambda c: _UnitTimes(v, _entry_index(c.consts)[2],
                                                 _entry_index(c.consts)[1],
                                                 _z_shape(c.consts)))
    def backward(self, z, v):
        return super().backward(z, v)


def _stack_shape(c: dict) -> tuple:
    """The shape of the value a Stack puts together, from its constants (s0, s1, …; sn of them)."""
    return tuple(int(c[f"s{i}"]) for i in range(int(c.get("sn", 0))))


class Stack(Op):
    """[·]: u = [z1, z2, …], the entries computed by an expanded module put back together into
    the module-level value of this shape; backward by (7.58): B[[·], z_j](v) = (v)_j."""

    label, symbol, can_overflow = "[·]", "[]", False
    inputs = ("z1",)

    def __init__(self, shape, name=None):
        super().__init__(name)
        self.shape = tuple(int(n) for n in shape)
        self.inputs = tuple(f"z{j + 1}" for j in range(int(np.prod(self.shape))))

    @property
    def consts(self):
        return {"sn": float(len(self.shape)), **{f"s{i}": float(n)
                                                 for i, n in enumerate(self.shape)}}

    @classmethod
    def rule(cls, kind, which=None):
        if kind == "F":
            return R.Rule("F", "(F)", lambda c: _Vector(
                [E.Sym(f"z{j + 1}") for j in range(int(np.prod(_stack_shape(c.consts))))],
                _stack_shape(c.consts)), None, (), "forward")
        if kind == "B1" and isinstance(which, int):
            def expr(c, j=which):
                shape = _stack_shape(c.consts)
                return _EntryOf(v, subscript(np.unravel_index(j, shape)), j)
            return R.Rule("B1", R.TAG_CHAIN, expr, which, (), "backward")
        raise BackpropError(f"Stack has no rule {kind} for {which!r}")

    def function(self, kind, which=None):
        if kind == "B1":
            return lambda *args: np.asarray(args[-1], dtype=float).ravel()[which]
        return self.forward

    def forward(self, *zs):
        return np.array([float(np.asarray(x)) for x in zs]).reshape(self.shape)

    def backward(self, *args):
        return tuple(self.function("B1", j)(*args) for j in range(len(self.inputs)))
