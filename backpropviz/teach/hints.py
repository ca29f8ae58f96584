"""Hints for a learner's prediction of a step, fed by the rule table's slips.

The order: the shape first (every gradient has the shape of what it differentiates, §7.4.1), then
the slips the rule's entry lists (missing transpose, forgot σ′, forgot to sum over users, …),
then the entry where the answer is furthest off.
"""
from __future__ import annotations

import numpy as np

from ..core import keys as K
from ..core.errors import shape_words
from ..core import expr as E
from ..display.presentation import context, expression, formula
from ..core.numerics import ATOL, RTOL
from ..core.trace import StepSpec, Trace
from ..core.rules import TRANSPOSE
from ..display.text import fnum



def tolerance_text() -> str:
    return f"an answer counts as right within {RTOL:.0%} or {ATOL:g} of each entry"


def symbol_values(trace: Trace, spec: StepSpec) -> dict:
    """The numbers the rule reads, by its symbols (z, v, W, …; c0, c1, … for a sum)."""
    return {sym: np.asarray(trace[key], dtype=float) for sym, key in spec.subs}


def rule_in_symbols(trace: Trace, spec: StepSpec) -> str:
    """The rule as the notes write it, with its own letters: '(softmax(t) − y) v'."""
    ctx = context(trace, spec)
    fmt = E.Format(False, False, lambda name, as_=None: name, ctx.ndim)
    return expression(trace, spec).render(fmt) + " " + spec.tag


def _say(slip, trace, spec) -> str:
    return slip.hint.replace("{rule}", rule_in_symbols(trace, spec))


def hint(trace: Trace, spec: StepSpec, got: np.ndarray) -> str:
    """What a learner who predicted ``got`` for this step is told."""
    return diagnose(trace, spec, got)[1]


def diagnose(trace: Trace, spec: StepSpec, got: np.ndarray) -> tuple[str, str]:
    """(the slip, the hint) for a wrong prediction: the slip is the rule's slip that matches
    ('transpose', 'forgot σ′', 'forgot 1/B', …), else 'wrong shape', 'sign' or 'other'."""
    want = np.asarray(trace[spec.writes], dtype=float)
    vals = symbol_values(trace, spec)
    lhs = K.text(spec.writes)
    if got.shape != want.shape:
        for slip in spec.rule.slips:
            if slip is TRANSPOSE and slip.matches(got, vals, want):
                return slip.name, f"Wrong shape: you gave {shape_words(got)}. {_say(slip, trace, spec)}"
        flipped = got.shape[::-1] == want.shape and got.ndim == 2
        return ("transpose" if flipped else "wrong shape"), (
            f"Wrong shape: you gave {shape_words(got)}, but {lhs} has the shape of "
            f"{spec.node} itself: {shape_words(want)} (§7.4.1)"
            + (". A missing or extra transpose?" if flipped else ""))
    for slip in spec.rule.slips:
        try:
            if slip.matches(got, vals, want):
                return slip.name, _say(slip, trace, spec)
        except (KeyError, ValueError):          # the slip needs a symbol this step lacks
            continue
    off = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    sign = bool(np.allclose(got, -want, rtol=RTOL, atol=ATOL))
    if want.ndim == 0:
        check = f"you have {fnum(got)}"
    else:                       # every entry that is off (1-based, as the notes count), or the worst
        bad = [tuple(int(i) for i in ix) for ix in np.argwhere(off)]
        if len(bad) > 4:
            bad = [tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(got - want))),
                                                           want.shape))]
        check = "; ".join(f"entry ({', '.join(str(i + 1) for i in ix)}): you have "
                          f"{fnum(got[ix])}" for ix in bad)
        if len(bad) == 1 and off.sum() > 1:
            check += f" (off most; {int(off.sum())} entries are off)"
    return ("sign" if sign else "other"), (
        "Not quite: " + ("every sign is flipped; " if sign else "")
        + f"the rule is {formula(trace, spec)} {spec.tag}. Check {check}.")
