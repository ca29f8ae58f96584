"""The rule table: for every module type, its rules (F), (B1), (B2), each one entry.

An entry holds the equation tag, the expression (from which the text and the TeX are made), the
slips learners make with it (for the hints), and the name of the module's method that computes
it. Entries are written beside the code they describe, with the ``@rule`` decorator (as autograd's
``defvjp`` registers a gradient beside its function), and collected per class into ``cls.rules``:

    class MM(Module):
        @rule("B1", "(7.63)", W.T @ v, slips=(TRANSPOSE,))
        def backward(self, z, v):
            return self.W.T @ v

The engine reads the method from the entry, the text, the renderer and the hints read the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from . import expr as E
from .numerics import close
from .expr import Expr

TAG_CHAIN = "(7.58)"
TAG_BACKWARD = "(7.57)"
SEED_LABEL = "seed: ∂J/∂J = 1"


@dataclass(frozen=True)
class Context:
    """What an expression may depend on: the rank of each symbol's value, the module's constants
    (Power's exponent), and the batch size (None for one example)."""

    ndims: dict
    consts: dict = field(default_factory=dict)
    batch: int | None = None

    def ndim(self, sym: str) -> int:
        return self.ndims.get(sym, 0)


@dataclass(frozen=True)
class Slip:
    """A mistake learners make with a rule: ``matches(answer, values, right)`` tells it apart
    (values by the rule's symbols, z, v, W, …), ``hint`` says what went wrong."""

    name: str
    hint: str
    matches: Callable


@dataclass(frozen=True)
class Rule:
    """One rule: kind (F, B1, B2, seed, acc), equation tag, expression, slips, and the method.

    ``which`` is the input's position for (B1) and the parameter's name for (B2).
    ``expr`` is an Expr, or a function of a Context giving one (for a batch, or a constant).
    """

    kind: str
    tag: str
    expr: Expr | Callable | None = None
    which: int | str | None = None
    slips: tuple = ()
    method: str | None = None

    def expression(self, ctx: Context) -> Expr | None:
        return self.expr(ctx) if callable(self.expr) and not isinstance(self.expr, Expr) \
            else self.expr

    @property
    def label(self) -> str:
        """How the step header names the rule: (F), (B1), (B2), the seed, sum over users."""
        return {"F": "(F)", "B1": "(B1)", "B2": "(B2)", "seed": SEED_LABEL,
                "acc": "sum over users"}[self.kind]


def rule(kind: str, tag: str, expr=None, *, input: int = 0, param: str | None = None,
         slips: tuple = ()):
    """Register the decorated method as the module's rule ``kind`` with this tag and expression."""
    def deco(fn):
        fn._bpv_rule = Rule(kind, tag, expr, param if kind == "B2" else (input if kind == "B1"
                                                                          else None),
                            tuple(slips), fn.__name__)
        return fn
    return deco


def collect(cls) -> dict:
    """The rules of a class: its parents' entries, then its own (an override replaces).

    A method overridden without ``@rule`` (a learner's own backward function) keeps its
    parent's tag and slips but not its expression: the text then says B[M, z](v), never the
    parent's formula with numbers the new code may not follow.
    """
    table = {}
    for base in reversed(cls.__mro__[1:]):
        table.update(getattr(base, "rules", {}))
    own = vars(cls)
    for key, r in list(table.items()):
        if r.method in own and not isinstance(getattr(own[r.method], "_bpv_rule", None), Rule):
            table[key] = replace(r, expr=None)
    for attr in own.values():
        r = getattr(attr, "_bpv_rule", None)
        if isinstance(r, Rule):
            table[(r.kind, r.which)] = r
    return table


# --- slips, shared by the modules' rules ---------------------------------------------------------

def _transpose_slip(ans, r, want):
    W, v = r["W"], r["v"]
    if W.shape[0] == W.shape[1] and close(ans, W @ v):
        return True
    # with W m×n, Wᵀv has the n entries of z; an answer with v's m entries kept v's shape
    return ans.shape != want.shape and (ans.shape == v.shape or ans.shape[::-1] == want.shape)


TRANSPOSE = Slip("transpose", "A missing or extra transpose: the backward function of MM is "
                 "Wᵀ v (7.63), which has the shape of z, not of v.", _transpose_slip)
OUTER_ORDER = Slip("outer order", "You computed z vᵀ; ∂J/∂W = v zᵀ (7.65): rows follow v "
                   "(one per output), columns follow z (one per input), the shape of W.",
                   lambda ans, r, want: close(ans, np.asarray(want).T) and
                   np.asarray(want).ndim == 2 and not close(ans, want))
FORGOT_SIGMA_PRIME = Slip("forgot σ′", "That is the upstream gradient v itself: you forgot "
                          "σ'(z) ⊙ v; here {rule}.", lambda ans, r, want: close(ans, r["v"]))
FORGOT_SQUASH = Slip("forgot the squashing", "That works with t itself; the rule squashes t "
                     "first, then subtracts the label: {rule}.",
                     lambda ans, r, want: close(ans, r["t"] - r["y"]) or close(ans, r["t"]))
FORGOT_MEAN = Slip("forgot 1/B", "For a batch of B examples J is the mean of the losses, so "
                   "every entry carries a factor 1/B.",
                   lambda ans, r, want: np.ndim(r.get("t", 0)) == 2 and
                   close(ans, np.asarray(want) * np.shape(r["t"])[1]))
FORGOT_BATCH_SUM = Slip("forgot Σ over the batch", "b is added to every example of the batch, so "
                        "∂J/∂b sums v over the batch's columns (7.66).",
                        lambda ans, r, want: np.ndim(r["v"]) == 2 and
                        np.shape(ans) == np.shape(r["v"]))
SUM_USERS = Slip("sum over users", "That is one user's contribution. The value is used by several "
                 "modules: sum the contributions over all its users (7.53).",
                 lambda ans, r, want: any(close(ans, c) for k, c in r.items()
                                          if k.startswith("c")))


# --- rules that belong to no module ------------------------------------------------------------

# ∂J/∂J = 1 starts every backward pass: the v = 1 that the last module's backward function is
# applied to, as in B[ℓ, a[r]](1) of (7.73) and (7.76). It is no equation of the notes, so it has
# no equation tag: its name is "seed", the same for every J (a loss, a sum, a circuit's last
# operation); (7.73) itself is the loss's backward step that uses it (display/presentation.py)
SEED = Rule("seed", "seed", E.Const(1.0))


def _acc_expr(ctx: Context):
    # one flat sum: a value with thousands of users must not nest thousands of calls deep
    return E.plus(E.Sym(f"c{i}") for i in range(max(ctx.consts["n"], 1)))


ACC = Rule("acc", "(7.53)", _acc_expr, slips=(SUM_USERS,))
