"""Numerical twins of the backward functions: central finite differences and gradcheck."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BackpropError


def numerical_grad(f, z, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂z by central differences, (f(z + ε e_i) − f(z − ε e_i)) / 2ε, entry by entry."""
    z = np.array(z, dtype=float)
    g = np.zeros_like(z)
    for i in np.ndindex(*z.shape):
        old = z[i]
        z[i] = old + eps
        hi = np.asarray(f(z.copy()), dtype=float).item()     # J may come as shape (1,)
        z[i] = old - eps
        lo = np.asarray(f(z.copy()), dtype=float).item()
        z[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@dataclass(frozen=True)
class GradcheckRow:
    name: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float
    ok: bool


@dataclass(frozen=True)
class GradcheckReport:
    """Backprop against central differences, one row per parameter (or input)."""

    rows: tuple[GradcheckRow, ...]
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def __bool__(self):
        return self.ok

    def __str__(self):
        lines = [f"{'':3}{'name':<10}{'shape':>8}{'max abs err':>14}{'max rel err':>14}"]
        for r in self.rows:
            shape = "×".join(map(str, r.shape)) or "scalar"
            lines.append(f"{'ok' if r.ok else '!!':3}{r.name:<10}{shape:>8}"
                         f"{r.max_abs_err:>14.2e}{r.max_rel_err:>14.2e}")
        lines.append(f"gradcheck {'passed' if self.ok else 'FAILED'} "
                     f"(rtol {self.rtol:g}, atol {self.atol:g})")
        return "\n".join(lines)

    __repr__ = __str__


def _row(name, analytic, numeric, rtol, atol) -> GradcheckRow:
    err = np.abs(analytic - numeric)
    rel = err / np.maximum(np.abs(numeric), 1e-12)
    ok = bool(np.all(err <= atol + rtol * np.abs(numeric)))
    return GradcheckRow(name, tuple(np.shape(analytic)), float(err.max(initial=0.0)),
                        float(rel.max(initial=0.0)), ok)


def gradcheck(net, *args, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7):
    """Compare backprop's gradients with central differences.

    ``gradcheck(net, x, y)`` checks every parameter of a Sequential; ``gradcheck(f, x1, …)``
    checks the inputs of a function traced with ``bpv.trace``.
    """
    from .graph import Sequential, trace
    rows = []
    if isinstance(net, Sequential):
        if len(args) not in (1, 2):
            raise BackpropError("gradcheck(net, x, y): give the input x and the label y")
        x, y = (args + (None,))[:2]
        tr = net.backprop(x, y)
        for name, theta in net.params.items():
            J = lambda th, name=name: net.with_params({name: th}).backprop(x, y).loss
            rows.append(_row(name, tr.grad(name), numerical_grad(J, theta, eps), rtol, atol))
    elif callable(net):
        tr = trace(net, *args)
        inputs = [n.name for n in tr.nodes if n.kind == "input"]
        for j, name in enumerate(inputs):
            def J(z, j=j):
                xs = list(args)
                xs[j] = z
                return trace(net, *xs).loss
            rows.append(_row(name, tr.grad(name), numerical_grad(J, args[j], eps), rtol, atol))
    else:
        raise BackpropError(f"gradcheck: give a Sequential or a function; got {type(net).__name__}")
    return GradcheckReport(tuple(rows), rtol, atol)
