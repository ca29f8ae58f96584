"""What several test files share: a call refused with a clear BackpropError, and a tall graph."""
from __future__ import annotations

import numpy as np
import pytest

import backpropviz as bpv


def refused(fn, *fragments, short: int | None = None) -> str:
    """fn() raises a BackpropError whose message holds every fragment (and, given ``short``, is at
    most that many characters); its message."""
    with pytest.raises(bpv.BackpropError) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, (f, msg)
    if short is not None:
        assert len(msg) <= short, (len(msg), msg[:200])
    return msg


def chain(n: int):
    """A tall graph: n scalar operations one after the other (4n + 3 nodes)."""
    def f(z):
        for i in range(n):
            z = (z * 1.01).sin() if i % 2 else z + 0.1
        return z.sum()
    return bpv.trace(f, np.array([0.3, -0.2]))
