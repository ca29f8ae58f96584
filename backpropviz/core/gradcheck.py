"""Numerical twins of the backward functions: central finite differences and gradcheck."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import BackpropError, brief

MAX_EPS = 1.0       # a larger step of central differences measures no derivative


def number(x, what: str, low: float = 0.0, high: float = math.inf, above: bool = False) -> float:
    """A setting such as eps, rtol or atol as a float: a real number (not a bool, not text), finite,
    ≥ low (> low with ``above``) and ≤ high; else a BackpropError that says what to give."""
    want = (f"{what} is a number {'>' if above else '≥'} {low:g}"
            + (f" and ≤ {high:g}" if high < math.inf else "") + ", e.g. "
            + ("1e-6" if above else "1e-5"))
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise BackpropError(f"{want}; got {type(x).__name__} {brief(x, 30)}")
    try:
        value = float(x)
    except OverflowError:
        raise BackpropError(f"{want}; got a number too large for a float") from None
    if not (math.isfinite(value) and (value > low if above else value >= low) and value <= high):
        raise BackpropError(f"{want}; got {brief(x, 30)}")
    return value


def tolerances(eps, rtol, atol, who: str) -> tuple[float, float, float]:
    """(eps, rtol, atol) checked: 0 < eps ≤ MAX_EPS, rtol ≥ 0 and atol ≥ 0, all finite."""
    return (number(eps, f"{who}: eps (the step of central differences)", 0.0, MAX_EPS, True),
            number(rtol, f"{who}: rtol"), number(atol, f"{who}: atol"))


def numerical_grad(f, z, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂z by central differences, (f(z + ε e_i) − f(z − ε e_i)) / 2ε, entry by entry."""
    eps = number(eps, "numerical_grad: eps (the step of central differences)", 0.0, MAX_EPS, True)
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
        """Every row agrees, and there is at least one: a check that compared nothing fails."""
        return bool(self.rows) and all(r.ok for r in self.rows)

    def __bool__(self):
        return self.ok

    def __str__(self):
        lines = [f"{'':3}{'name':<10}{'shape':>8}{'max abs err':>14}{'max rel err':>14}"]
        for r in self.rows:
            shape = "×".join(map(str, r.shape)) or "scalar"
            lines.append(f"{'ok' if r.ok else '!!':3}{r.name:<10}{shape:>8}"
                         f"{r.max_abs_err:>14.2e}{r.max_rel_err:>14.2e}")
        if not self.rows:
            lines.append("nothing to compare: no parameter or input of J needs a gradient")
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


def check_program(prog, given: dict, eps=1e-6, rtol=1e-5, atol=1e-7) -> GradcheckReport:
    """Every gradient a compiled program computes for a parameter or an input, against central
    differences of J: the given value is perturbed and the same program run again (a parameter
    through ``prog.with_params``, so any module type works)."""
    tr = prog.run(given)
    params = prog.param_src
    rows = []
    for n in prog.nodes:
        if n.kind not in ("param", "input") or n.name not in given:
            continue
        try:
            analytic = tr.grad(n.name)
        except BackpropError:        # not computed (the input of a network), or J ignores it
            continue
        if n.name in params:
            J = lambda th, p=n.name: prog.with_params({p: th}).run({**given, p: th}).loss
        else:
            J = lambda th, p=n.name: prog.run({**given, p: th}).loss
        rows.append(_row(n.name, analytic, numerical_grad(J, given[n.name], eps), rtol, atol))
    return GradcheckReport(tuple(rows), rtol, atol)


def gradcheck(net, *args, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7):
    """Compare backprop's gradients with central differences.

    ``gradcheck(net, x, y)`` checks every parameter of a Sequential; ``gradcheck(f, x1, …)``
    checks the inputs (and the parameters of any module applied) of a function traced with
    ``bpv.trace``.
    """
    from .networks import Sequential
    from .tracing import record
    eps, rtol, atol = tolerances(eps, rtol, atol, "gradcheck")
    if isinstance(net, Sequential):
        if len(args) not in (1, 2):
            raise BackpropError("gradcheck(net, x, y): give the input x and the label y")
        tr = net.backprop(*args)
        return check_program(net.program(), dict(tr.given), eps, rtol, atol)
    if callable(net):
        rec, _ = record(net, args)
        prog = rec.program()
        return check_program(prog, {n: rec.values[n] for n in prog.given_names}, eps, rtol, atol)
    raise BackpropError(f"gradcheck: give a Sequential or a function; got {type(net).__name__}")
