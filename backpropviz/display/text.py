"""Numbers as plain text, and steps as plain text (what a screen reader, a CI log or a static
viewer shows).

Floats are formatted explicitly (4 significant digits) so a lesson prints the same on every machine.
"""
from __future__ import annotations

import math
import warnings

import numpy as np


SMALL_VECTOR = 6        # vectors up to this length are written out
SMALL_MATRIX = (4, 4)   # matrices up to this size are written out, one row per line


def fnum(x) -> str:
    """One number, 4 significant digits: 0.07021, -0.1545, 14, 0.00006644, 1.2e+05, nan, inf
    (as the notes write a small number: in decimals down to 10⁻⁶, not 6.644e-05)."""
    x = float(x)
    if x != x:
        return "nan"
    if x in (np.inf, -np.inf):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-6 <= abs(x) < 1e-4:
        digits = 3 - math.floor(math.log10(abs(x)))
        return f"{x:.{digits}f}".rstrip("0")
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
    if a.size == 0:                 # 5000000×0 (from a file): no min or max, and nothing per row
        return f"{shape_text(a)}: empty"
    if np.isfinite(a).all():        # the usual case, without the NaN-aware (slow) functions
        low, high = a.min(), a.max()
        with np.errstate(over="ignore"):
            norm = np.sqrt(np.vdot(a, a))
        return f"{shape_text(a)}: min {fnum(low)}, max {fnum(high)}, ‖·‖ {fnum(norm)}"
    flag = " ⚠ NaN/inf"
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


def inline(a, as_: str | None = None) -> str:
    """A value on one line (matrices as [[…], […]]); ``as_`` = "column" or "row" writes a
    vector as an n×1 or 1×n matrix (as in an outer product v zᵀ)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 1 and as_ in ("column", "row") and a.size <= SMALL_VECTOR:
        rows = [[x] for x in a] if as_ == "column" else [a]
        return "[" + ", ".join("[" + ", ".join(fnum(x) for x in r) + "]" for r in rows) + "]"
    if a.ndim == 2 and is_small(a):
        return "[" + ", ".join("[" + ", ".join(fnum(x) for x in r) + "]" for r in a) + "]"
    return " ".join(array_lines(a))

