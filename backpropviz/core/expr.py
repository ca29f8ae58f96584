"""Rules as small symbolic expressions: one object gives the text, the TeX and a numeric check.

A rule such as (7.63) is written once, ``W.T @ v``, with the symbols below. From that one
expression come the plain text ``W[2]ᵀ ∂J/∂u[3]``, the TeX ``{W^{[2]}}^{\\top} …`` and, in the
tests, its value on random numbers, which must equal what the module's hand-written backward
function computes (so the text shown to a learner cannot drift from the code).

Operators: ``+ -`` as usual, ``*`` the elementwise product ⊙ (× where both factors are single
numbers, as in the scalar circuit: ⊙ is the notes' product of two vectors), ``@`` a matrix
product (written by juxtaposition, as the notes do), ``/`` elementwise division, ``**`` a power,
``.T`` a transpose.
Vectors are columns when evaluated (the notes' convention), so ``v @ z.T`` is the outer product.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import numerics

ATOM, POSTFIX, PREFIX, PRODUCT, SUM = 5, 4, 3, 2, 1


class Expr:
    prec = ATOM

    # --- building ---------------------------------------------------------------------------
    def __add__(self, o): return Bin("+", self, lift(o))
    def __radd__(self, o): return Bin("+", lift(o), self)
    def __sub__(self, o): return Bin("−", self, lift(o))
    def __rsub__(self, o): return Bin("−", lift(o), self)
    def __mul__(self, o): return _times(self, lift(o))
    def __rmul__(self, o): return _times(lift(o), self)
    def __matmul__(self, o): return Bin("@", self, lift(o))
    def __truediv__(self, o): return Bin("/", self, lift(o))
    def __neg__(self): return Neg(self)

    def __pow__(self, p):
        p = lift(p)
        if isinstance(p, Const) and p.value == 1:
            return self
        if isinstance(p, Const) and p.value == 0:
            return Const(1.0)
        return Pow(self, p)

    @property
    def T(self):
        return Transpose(self)

    # --- reading ----------------------------------------------------------------------------
    def symbols(self) -> tuple[str, ...]:
        """The symbols the expression reads, in order of first appearance."""
        out: dict[str, None] = {}
        self._symbols(out)
        return tuple(out)

    def _symbols(self, out):
        for c in self.children():
            c._symbols(out)

    def children(self):
        return ()

    def render(self, fmt: "Format", need: int = 0) -> str:
        s = self._render(fmt)
        return "(" + s + ")" if self.prec < need else s

    def _render(self, fmt):
        raise NotImplementedError

    def eval(self, env: dict):
        raise NotImplementedError


def lift(o) -> Expr:
    return o if isinstance(o, Expr) else Const(float(o))


def _times(a: Expr, b: Expr) -> Expr:
    """a ⊙ b; a number times something is written by juxtaposition (2 z, not 2 ⊙ z)."""
    if isinstance(a, Const) and a.value == 1:
        return b
    if isinstance(b, Const) and b.value == 1:
        return a
    return Bin("⊙" if not isinstance(a, Const) else "·", a, b)


@dataclass(frozen=True, eq=False)
class Format:
    """How to write symbols: ``sym(name, as_)`` gives the text of a symbol (a key or its
    numbers); ``as_`` is "column" or "row" where the product needs a 1-d value shown that way."""

    tex: bool
    numbers: bool
    sym: Callable[[str, str | None], str]
    ndim: Callable[[str], int] = lambda name: 0


class Sym(Expr):
    def __init__(self, name: str):
        self.name = name

    def _symbols(self, out):
        out[self.name] = None

    def render(self, fmt, need=0, as_=None):
        s = fmt.sym(self.name, as_)
        # a negative number inside an expression gets brackets: exp(−(−0.3)), not exp(−-0.3)
        return "(" + s + ")" if fmt.numbers and need > SUM and s.startswith("-") else s

    def eval(self, env):
        return env[self.name]


class Const(Expr):
    def __init__(self, value: float, text: str | None = None, tex: str | None = None):
        self.value, self._text, self._tex = value, text, tex

    def _render(self, fmt):
        if fmt.tex and self._tex:
            return self._tex
        if self._text:
            return self._text
        v = self.value
        return str(int(v)) if float(v).is_integer() else f"{v:g}"

    def render(self, fmt, need=0):
        s = self._render(fmt)
        return "(" + s + ")" if need > SUM and s.startswith("-") else s

    def eval(self, env):
        return self.value


class Bin(Expr):
    _PREC = {"+": SUM, "−": SUM, "⊙": PRODUCT, "·": PRODUCT, "@": PRODUCT, "/": PRODUCT}
    _TEX = {"+": " + ", "−": " - ", "⊙": r" \odot ", "×": r" \times ", "·": r"\, ", "@": r"\, ",
            "/": " / "}
    _TEXT = {"+": " + ", "−": " − ", "⊙": " ⊙ ", "×": " × ", "·": " ", "@": " ", "/": " / "}
    _NP = {"+": np.add, "−": np.subtract, "⊙": np.multiply, "·": np.multiply,
           "@": lambda a, b: a @ b if np.ndim(a) and np.ndim(b) else a * b, "/": np.divide}

    def __init__(self, op, a, b):
        self.op, self.a, self.b = op, a, b
        self.prec = self._PREC[op]

    def children(self):
        return (self.a, self.b)

    def _render(self, fmt):
        left_need = self.prec
        right_need = self.prec + (0 if self.op in ("+", "⊙", "·") else 1)
        if self.op == "@" and fmt.numbers and isinstance(self.a, Sym) and \
                isinstance(self.b, Transpose) and fmt.ndim(self.a.name) == 1:
            left = self.a.render(fmt, left_need, as_="column")     # an outer product v zᵀ
        else:
            left = self.a.render(fmt, left_need)
        if self.op == "@" and fmt.numbers and isinstance(self.b, Sym) and \
                fmt.ndim(self.b.name) == 1 and _matrix(self.a, fmt):
            right = self.b.render(fmt, right_need, as_="column")   # W z, Wᵀ v: z and v columns
        else:
            right = self.b.render(fmt, right_need)
        op = "×" if self.op == "⊙" and _numbers_only(self, fmt) else self.op
        return left + (self._TEX if fmt.tex else self._TEXT)[op] + right

    def eval(self, env):
        return self._NP[self.op](self.a.eval(env), self.b.eval(env))


class Plus(Expr):
    """a + b + c + …: the sum (7.53) of one contribution per user, kept flat so that a value with
    thousands of users reads, renders and evaluates without one nested call per term."""

    prec = SUM

    def __init__(self, terms):
        self.terms = tuple(terms)

    def children(self):
        return self.terms

    def _render(self, fmt):
        # as Bin("+") nested to the left writes it: a term needs brackets only below a sum
        return " + ".join(t.render(fmt, SUM) for t in self.terms)

    def eval(self, env):
        out = self.terms[0].eval(env)
        for t in self.terms[1:]:        # left to right, as the nested sum adds: the same numbers
            out = np.add(out, t.eval(env))
        return out


def plus(terms) -> Expr:
    """The sum of these terms (one term: itself)."""
    terms = tuple(terms)
    return terms[0] if len(terms) == 1 else Plus(terms)


def _numbers_only(x: Expr, fmt) -> bool:
    """Whether every symbol x reads is a single number (then so is x: its factors are numbers,
    and the product is written ×, as the notes multiply scalars, not ⊙)."""
    return all(fmt.ndim(s) == 0 for s in x.symbols())


def _matrix(x: Expr, fmt) -> bool:
    """Whether x's value is a matrix (W, or Wᵀ), so that a vector beside it is a column."""
    inner = x.a if isinstance(x, Transpose) else x
    return isinstance(inner, Sym) and fmt.ndim(inner.name) == 2


class Neg(Expr):
    prec = PREFIX

    def __init__(self, a):
        self.a = a

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        return ("-" if fmt.tex else "−") + self.a.render(fmt, PREFIX + 1)

    def eval(self, env):
        return -self.a.eval(env)


class Pow(Expr):
    prec = POSTFIX

    def __init__(self, a, p):
        self.a, self.p = a, p

    def children(self):
        return (self.a, self.p)

    def _render(self, fmt):
        base = self.a.render(fmt, ATOM)
        p = self.p.render(fmt, ATOM)
        if fmt.tex:
            return "{" + base + "}^{" + p + "}"
        return base + ("²" if p == "2" else "^" + p)

    def eval(self, env):
        return np.power(self.a.eval(env), self.p.eval(env))


class Transpose(Expr):
    prec = POSTFIX

    def __init__(self, a):
        self.a = a

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        if fmt.numbers and isinstance(self.a, Sym) and fmt.ndim(self.a.name) == 1:
            return self.a.render(fmt, ATOM, as_="row")      # zᵀ of a vector z is a row: [[1, 2]]
        base = self.a.render(fmt, ATOM)
        return "{" + base + r"}^{\top}" if fmt.tex else base + "ᵀ"

    def eval(self, env):
        return np.swapaxes(np.atleast_2d(self.a.eval(env)), -1, -2)


class Fn(Expr):
    """A named function applied elementwise (or to the whole argument): exp(z), σ(z), …"""

    def __init__(self, text: str, tex: str, fn, a, template: str | None = None,
                 tex_template: str | None = None):
        self.text, self.tex, self.fn, self.a = text, tex, fn, a
        self.template, self.tex_template = template, tex_template

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        arg = self.a.render(fmt, 0)
        tmpl = (self.tex_template if fmt.tex else self.template)
        if tmpl:
            return tmpl.replace("@", arg)
        return (self.tex if fmt.tex else self.text) + "(" + arg + ")"

    def eval(self, env):
        return self.fn(self.a.eval(env))


# the functions rules use
def exp(a): return Fn("exp", r"\exp", np.exp, lift(a))
def log(a): return Fn("log", r"\log", np.log, lift(a))
def tanh(a): return Fn("tanh", r"\tanh", np.tanh, lift(a))
def sin(a): return Fn("sin", r"\sin", np.sin, lift(a))
def cos(a): return Fn("cos", r"\cos", np.cos, lift(a))
def sigma(a): return Fn("σ", r"\sigma", numerics.sigmoid, lift(a))
def softmax(a): return Fn("softmax", r"\operatorname{softmax}", numerics.softmax, lift(a))
def relu(a): return Fn("max", r"\max", lambda x: np.maximum(x, 0.0), lift(a),
                       "max(0, @)", r"\max(0, @)")
def positive(a): return Fn("1", r"\mathbf{1}", lambda x: (x > 0).astype(float), lift(a),
                           "1[@ > 0]", r"\mathbf{1}[@ > 0]")
def total(a): return Fn("Σ", r"\textstyle\sum", lambda x: np.asarray(np.sum(x)), lift(a),
                        "Σ(@)", r"\textstyle\sum (@)")
def half_sq_norm(a): return Fn("½‖·‖²", "", lambda x: np.asarray(0.5 * np.sum(x * x)), lift(a),
                               "½‖@‖²", r"\tfrac{1}{2}\lVert @ \rVert^2")
def batch_sum(a): return Fn("Σ_j", "", lambda x: np.sum(x, axis=-1, keepdims=True), lift(a),
                            "Σ_j (@)[:, j]", r"\textstyle\sum_{j} (@)_{:,j}")


class Ones(Expr):
    """The vector of ones with the shape of a symbol's value: 𝟏 in a rule, [1, 1, 1] in numbers."""

    def __init__(self, name: str):
        self.name = name

    def _symbols(self, out):
        out[self.name] = None

    def _render(self, fmt):
        if fmt.numbers:
            return fmt.sym(self.name, "ones")
        return r"\mathbf{1}" if fmt.tex else "𝟏"

    def eval(self, env):
        return np.ones_like(env[self.name])


def ones_like(name: str):
    return Ones(name)


# the symbols of the notes: inputs z (a, b for binary ops, t for a loss), the label y,
# parameters W, b, the upstream gradient v = ∂J/∂u[i], the batch size B
z, a, b, t, y, v, W, B = (Sym(n) for n in ("z", "a", "b", "t", "y", "v", "W", "B"))


def columns(x):
    """A value in the notes' convention for evaluating an expression: vectors are columns."""
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def times(x, y) -> Expr:
    """x y written side by side: a scalar factor, as in (σ(t) − y) v."""
    return Bin("·", lift(x), lift(y))


def per_example(e) -> Expr:
    """(1/B) e: a batch's loss and its gradients are means over the B examples."""
    return times(Fn("1/", "", lambda n: 1.0 / n, B, "(1/@)", r"\frac{1}{@}"), e)


class Template(Expr):
    """A rule known only by name, such as B[M, z](v) for a module without an expression:
    written with its symbols substituted, never evaluated."""

    def __init__(self, text: str, tex: str, names: tuple[str, ...]):
        self.text, self.tex, self.names = text, tex, names

    def children(self):
        return tuple(Sym(n) for n in self.names)

    def _render(self, fmt):
        # one pass over ⟨symbol⟩ marks (braces belong to TeX), so a substituted name that
        # contains a mark is not substituted again
        return re.sub(r"⟨(\w+)⟩", lambda m: Sym(m[1]).render(fmt, 0) if m[1] in self.names
                      else m[0], self.tex if fmt.tex else self.text)

    def eval(self, env):
        raise TypeError("a rule without an expression cannot be evaluated")
