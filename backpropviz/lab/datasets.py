"""Small toy data sets for the training lab, generated with NumPy from a seed.

Every set follows the notes' convention: X has one example per column (shape d × n) and Y one
label per column. Binary sets give Y of shape 1 × n with 0/1 entries (the logistic loss, (7.70));
``spirals3`` gives class indices 0, 1, 2 of shape (n,) (cross-entropy, (7.71)); ``sine`` gives
real targets of shape 1 × n (the squared loss). The same (name, n, noise, seed) gives the same
numbers on every machine: only ``default_rng`` draws, additions and sin/cos are used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import BackpropError
from ..core.numerics import readonly
from ..core.checks import whole


@dataclass(frozen=True)
class Dataset:
    """X (d × n), Y (labels), the loss they are meant for, and how they were made."""

    name: str
    X: np.ndarray
    Y: np.ndarray
    loss: str            # "logistic", "cross_entropy" or "squared"
    outputs: int         # the network's output size for this loss
    recipe: dict         # {"name", "n", "noise", "seed"}: enough to make the same numbers again

    @property
    def n(self) -> int:
        return self.X.shape[1]


def _two_moons(rng, n, noise):
    n0 = n // 2
    a = rng.uniform(0.0, math.pi, n0)
    b = rng.uniform(0.0, math.pi, n - n0)
    X = np.concatenate([np.stack([np.cos(a), np.sin(a)]),
                        np.stack([1.0 - np.cos(b), 0.5 - np.sin(b)])], axis=1)
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return X - np.array([[0.5], [0.25]]), y


def _circles(rng, n, noise):
    n0 = n // 2
    a = rng.uniform(0.0, 2 * math.pi, n)
    r = np.concatenate([np.full(n0, 1.0), np.full(n - n0, 0.45)])
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return np.stack([r * np.cos(a), r * np.sin(a)]), y


def _xor(rng, n, noise):
    X = rng.uniform(-1.0, 1.0, (2, n))
    X += 0.1 * np.sign(X)                     # a margin around the axes
    return X, ((X[0] > 0) != (X[1] > 0)).astype(float)


def _linear(rng, n, noise):
    X = rng.uniform(-1.0, 1.0, (2, n))
    return X, (X[0] + 0.5 * X[1] > 0.1).astype(float)


def _spirals(rng, n, noise, k=2):
    cls = np.arange(n) % k
    s = rng.uniform(0.05, 1.0, n)             # position along the arm
    angle = 2.5 * math.pi * s + 2 * math.pi * cls / k      # one and a quarter turns
    return np.stack([s * np.cos(angle), s * np.sin(angle)]), cls.astype(float)


def _sine(rng, n, noise):
    x = np.sort(rng.uniform(-1.0, 1.0, n))
    return x[None, :], np.sin(3.0 * x)


# name → (maker, loss, the noise that looks right, a sentence for the drop-down's tooltip)
MAKERS = {
    "two_moons": (_two_moons, "logistic", 0.1, "two interleaved half circles"),
    "circles": (_circles, "logistic", 0.08, "a ring around a disc"),
    "xor": (_xor, "logistic", 0.0, "the four quadrants, opposite ones alike"),
    "spirals": (_spirals, "logistic", 0.03, "two interleaved spiral arms"),
    "linear": (_linear, "logistic", 0.0, "two classes a straight line separates"),
    "spirals3": (lambda r, n, s: _spirals(r, n, s, 3), "cross_entropy", 0.03,
                 "three spiral arms, three classes"),
    "sine": (_sine, "squared", 0.1, "y = sin(3x) plus noise, real targets"),
}
MAX_POINTS = 5000


def make(name: str = "two_moons", n: int = 200, noise: float | None = None,
         seed: int = 0) -> Dataset:
    """A toy data set: ``make("two_moons", n=200, noise=0.1, seed=0)``; see ``MAKERS``."""
    if name not in MAKERS:
        raise BackpropError(f"datasets: no data set named {name!r}; choose one of: "
                            f"{', '.join(MAKERS)}")
    n = whole(n, "datasets: n (the number of points)")
    if not 4 <= n <= MAX_POINTS:
        raise BackpropError(f"datasets: n must be between 4 and {MAX_POINTS}; got {n}")
    maker, loss, default_noise, _ = MAKERS[name]
    noise = default_noise if noise is None else noise
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 1:
        raise BackpropError(f"datasets: noise must be a number from 0 to 1; got {noise!r}")
    rng = np.random.default_rng(whole(seed, "datasets: the seed"))
    X, y = maker(rng, n, float(noise))
    if loss == "squared":          # noise on the targets of a regression, on the points otherwise
        Y = (y + noise * rng.normal(size=y.shape))[None, :]
        outputs = 1
    else:
        X = X + noise * rng.normal(size=X.shape)
        Y = y[None, :] if loss == "logistic" else y
        outputs = 1 if loss == "logistic" else int(y.max()) + 1
    return Dataset(name, readonly(X, copy=False), readonly(Y, copy=False), loss, outputs, {"name": name, "n": n, "noise": float(noise),
                                                "seed": int(seed)})
