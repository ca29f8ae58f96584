"""The few numerical functions several layers need, each defined once: the stable sigmoid and
softmax (the losses, the rule expressions, the circuit and the lab all use them), read-only
arrays, and the one tolerance within which a learner's number counts as the computed one."""
from __future__ import annotations

import numpy as np

RTOL, ATOL = 1e-2, 1e-3         # a prediction (or a slip's answer) matches within 1% or 0.001


def sigmoid(x):
    """σ(x) = 1/(1+e^{-x}), without overflow for large |x|."""
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(x):
    """softmax over axis 0 (one example per column), shifted by the max so exp cannot overflow."""
    e = np.exp(x - x.max(axis=0))
    return e / e.sum(axis=0)


def readonly(x, copy: bool = True) -> np.ndarray:
    """x as a float array that cannot be written (traces and data sets share their arrays).
    ``copy=False``: freeze x itself when it already is a float array (our own arrays only)."""
    a = np.array(x, dtype=float) if copy else np.asarray(x, dtype=float)
    a.flags.writeable = False
    return a


def close(got, want, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Same shape and every entry within rtol·|want| + atol (NaN equals NaN)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=atol,
                                                        equal_nan=True))
