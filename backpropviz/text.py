"""Numbers and steps as plain text: what a screen reader, a CI log or a static viewer shows.

Floats are formatted explicitly (4 significant digits) so a lesson prints the same on every machine.
"""
from __future__ import annotations

import warnings

import numpy as np

from .trace import Trace, pretty

SMALL_VECTOR = 6        # vectors up to this length are written out
SMALL_MATRIX = (4, 4)   # matrices up to this size are written out, one row per line


def fnum(x) -> str:
    """One number, 4 significant digits: 0.07021, -0.1545, 14, 1.2e+05, nan, inf."""
    x = float(x)
    if x != x:
        return "nan"
    if x in (np.inf, -np.inf):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.4g}"


def exact(a) -> str:
    """A value with every digit that tells it apart (for fields a learner edits and reads back)."""
    a = np.asarray(a, dtype=float)
    one = lambda v: np.format_float_positional(v, unique=True, trim="-")
    if a.ndim == 0:
        return one(a)
    return "[" + ", ".join(exact(r) if a.ndim > 1 else one(r) for r in a) + "]"


def shape_text(a) -> str:
    shape = np.shape(a)
    return "×".join(map(str, shape)) if shape else "scalar"


def is_small(a) -> bool:
    a = np.asarray(a)
    return a.ndim == 0 or (a.ndim == 1 and a.size <= SMALL_VECTOR) or (
        a.ndim == 2 and a.shape[0] <= SMALL_MATRIX[0] and a.shape[1] <= SMALL_MATRIX[1])


def summary(a) -> str:
    """A large array in one line: its shape, min, max and norm."""
    a = np.asarray(a, dtype=float)
    flag = " ⚠ NaN/inf" if not np.isfinite(a).all() else ""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN min/max, norm overflow
        low, high, norm = np.nanmin(a), np.nanmax(a), np.linalg.norm(np.nan_to_num(a))
    return f"{shape_text(a)}: min {fnum(low)}, max {fnum(high)}, ‖·‖ {fnum(norm)}{flag}"


def array_lines(a) -> list[str]:
    """A value as lines of text: a number, [a, b, c], one line per matrix row, or a summary."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or a.size == 1 and a.ndim == 1:
        return [fnum(a.ravel()[0])] if a.ndim == 0 else ["[" + fnum(a[0]) + "]"]
    if not is_small(a):
        return [summary(a)]
    if a.ndim == 1:
        return ["[" + ", ".join(fnum(x) for x in a) + "]"]
    rows = ["[" + ", ".join(fnum(x) for x in row) + "]" for row in a]
    return ["[" + rows[0]] + [" " + r for r in rows[1:-1]] + [" " + rows[-1] + "]"] \
        if len(rows) > 1 else ["[" + rows[0] + "]"]


def inline(a) -> str:
    """A value on one line (matrices as [[…], […]])."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 2 and is_small(a):
        return "[" + ", ".join("[" + ", ".join(fnum(x) for x in r) + "]" for r in a) + "]"
    return " ".join(array_lines(a))


def step_header(trace: Trace, k: int) -> str:
    """'step 8/14 · backward 3/9 · (B2) (7.65) · M_3 = MM[W[2], b[2]]'."""
    s = trace.specs[k]
    nf = trace.n_forward
    pos = f"forward {k + 1}/{nf}" if s.phase == "forward" else f"backward {k - nf + 1}/{len(trace) - nf}"
    rule = {"F": "(F)", "B1": "(B1)", "B2": "(B2)", "seed": "start", "acc": "sum over users"}[s.rule]
    tag = f" {s.tag}" if s.tag != rule else ""
    mod = ""
    if s.module is not None:
        label = next(m.label for m in trace.modules if m.name == s.module)
        mod = f" · {s.module} = {label}"
    return f"step {k + 1}/{len(trace)} · {pos} · {rule}{tag}{mod}"


def step_equation(trace: Trace, k: int) -> tuple[str, str, str]:
    """The step's rule three ways: symbols, numbers substituted, and the result."""
    s = trace.specs[k]
    symbolic = s.formula()
    pad = " " * len(s.lhs)
    numbers = pad + " = " + s.fill(lambda key: inline(trace[key]))
    result = pad + " = " + inline(trace[s.writes])
    return symbolic, numbers, result


def step_text(trace: Trace, k: int) -> str:
    """A step as plain text: header, the equation with symbols and with numbers, what is known."""
    if k < 0:
        given = ", ".join(trace.given)
        return (f"before step 1/{len(trace)}: given {given}\n"
                f"next: {trace.specs[0].formula()}")
    symbolic, numbers, result = step_equation(trace, k)
    known = trace.known(k)
    return "\n".join([step_header(trace, k), symbolic, numbers, result,
                      "known: " + ", ".join(pretty(x) for x in known)])


def trace_text(trace: Trace) -> str:
    """Every step, one per line: the whole pass as a table of equations."""
    out = []
    for k, s in enumerate(trace.specs):
        out.append(f"{k + 1:>3} {s.phase:<8} {s.tag:<9} {s.lhs} = {inline(trace[s.writes])}")
    return "\n".join(out)
