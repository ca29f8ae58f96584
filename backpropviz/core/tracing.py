"""Tracing: ``bpv.trace(f, x)`` records any composition of modules and ops by running f on traced
values, then runs (F), (B1), (B2) on the recorded program.
"""
from __future__ import annotations

import re

import numpy as np

from . import modules as M
from .errors import BackpropError, brief, shape_str
from .program import Recorder, as_input, as_numbers, err_text
from .trace import Trace
from .checks import name as checked_name

__all__ = ["trace", "Var", "Trace"]

_ACTIVE: list[Recorder] = []
_NUMBER = (int, float, np.integer, np.floating)


class Var:
    """A value being traced: arithmetic on it records a module application."""

    __slots__ = ("rec", "name", "value")
    __array_priority__ = 1000   # so that ndarray ⊕ Var calls Var's reflected operator

    def __init__(self, rec, name, value):
        self.rec, self.name, self.value = rec, name, value

    @property
    def shape(self):
        return self.value.shape

    def _bpv_apply(self, mod, args):
        return _apply(mod, args)

    def __add__(self, o): return _apply(M.Add(), (self, o))
    def __radd__(self, o): return _apply(M.Add(), (o, self))
    def __sub__(self, o): return _apply(M.Sub(), (self, o))
    def __rsub__(self, o): return _apply(M.Sub(), (o, self))
    def __mul__(self, o): return _apply(M.Mul(), (self, o))
    def __rmul__(self, o): return _apply(M.Mul(), (o, self))
    def __truediv__(self, o): return _apply(M.Div(), (self, o))
    def __rtruediv__(self, o): return _apply(M.Div(), (o, self))
    def __matmul__(self, o): return _apply(M.MatMul(), (self, o))
    def __rmatmul__(self, o): return _apply(M.MatMul(), (o, self))
    def __neg__(self): return _apply(M.Mul(), (self, -1.0))

    def __pow__(self, p):
        # numpy scalars (np.int64(2), np.float32(0.5)) are numbers too; a traced exponent is not
        if isinstance(p, bool) or not isinstance(p, _NUMBER):
            raise BackpropError(f"power: the exponent must be a constant number; got "
                                f"{brief(p, 30)}")
        return _apply(M.Power(p), (self,))

    def __getitem__(self, index):
        """z[0], z[:2], W[i, j], z[[0, 2, 2]]: an Index module, whose backward scatters v into
        zeros of z's shape (entries selected several times add up)."""
        if self.value.ndim == 0:
            raise BackpropError(f"{self.name} is a single number; it has no entries to index")
        return _apply(M.Index(index, self.value.shape), (self,))

    def __len__(self):
        if self.value.ndim == 0:
            raise BackpropError(f"len({self.name}): {self.name} is a single number (a scalar); it "
                                f"has no length and no entries to go through")
        return self.value.shape[0]

    def __iter__(self):
        # for z_i in z (and zip(w, z)) index the first axis, as NumPy does
        return (self[i] for i in range(len(self)))

    def exp(self): return _apply(M.Exp(), (self,))
    def log(self): return _apply(M.Log(), (self,))
    def sin(self): return _apply(M.Sin(), (self,))
    def cos(self): return _apply(M.Cos(), (self,))
    def sum(self): return _apply(M.Sum(), (self,))
    def relu(self): return _apply(M.ReLU(), (self,))
    def sigmoid(self): return _apply(M.Sigmoid(), (self,))
    def tanh(self): return _apply(M.Tanh(), (self,))

    # --- what NumPy or Python would do with a traced value, said plainly instead ---------------
    # np.sum(z), np.maximum(z, 0), np.exp(z), 2 ** z, abs(z), z.T: the trace would lose them (or
    # numpy would raise somewhere deep), so each says what to write
    _INSTEAD = {"sum": "z.sum()", "add": "a + b", "subtract": "a - b", "multiply": "a * b",
                "divide": "a / b", "true_divide": "a / b", "matmul": "a @ b", "exp": "z.exp()",
                "log": "z.log()", "sin": "z.sin()", "cos": "z.cos()", "tanh": "z.tanh()",
                "maximum": "z.relu() for max(z, 0)", "power": "z ** 2 (a constant exponent)",
                "negative": "-z", "dot": "a @ b", "square": "z ** 2"}

    def _refuse(self, what: str, name: str):
        instead = self._INSTEAD.get(name)
        raise BackpropError(f"{what} on the traced value {self.name}: the trace cannot record it"
                            + (f"; write {instead}" if instead else
                               "; use the traced operations (+ − * / @ **, z.sum(), z.exp(), "
                               "z.log(), z.sin(), z.cos(), z.tanh(), z.relu(), z.sigmoid(), "
                               "z[i]) or a module"))

    _ARITHMETIC = {"add": M.Add, "subtract": M.Sub, "multiply": M.Mul, "true_divide": M.Div,
                   "divide": M.Div, "matmul": M.MatMul}

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # ndarray + z, ndarray @ z …: NumPy asks us first; record them as the operators do
        op = self._ARITHMETIC.get(ufunc.__name__)
        if op is not None and method == "__call__" and len(inputs) == 2 and not kwargs:
            return _apply(op(), inputs)
        self._refuse(f"np.{ufunc.__name__}", ufunc.__name__)

    def __array_function__(self, func, types, args, kwargs):
        self._refuse(f"np.{func.__name__}", func.__name__)

    def __array__(self, *args, **kwargs):
        raise BackpropError(f"a NumPy function on the traced value {self.name}: the trace cannot "
                            f"record it; use the traced operations (z.sum(), z.exp(), z ** 2, …)")

    def __rpow__(self, base):
        self._refuse(f"{brief(base, 30)} ** {self.name} (a traced exponent)", "")

    def __abs__(self):
        self._refuse("abs()", "")

    @property
    def T(self):
        raise BackpropError(f"{self.name}.T: a traced value has no transpose; a vector is a "
                            f"column already (W @ z), and an MM module does Wᵀv itself (7.63)")

    def __repr__(self):
        return f"Var({self.name}, shape {shape_str(self.value)})"


def _apply(mod: M.Module, args) -> Var:
    """Record u = mod(args) as the next equation M_i and compute its value."""
    rec = next((x.rec for x in args if isinstance(x, Var)), None)
    if rec is None or not _ACTIVE or rec is not _ACTIVE[-1]:
        raise BackpropError(f"{mod.label}: traced values can only be used inside bpv.trace(f, …)")
    is_loss = isinstance(mod, M.Loss)
    i = len(rec.eqns) + 1
    where = f"M_{i} = {mod.name or mod.label} (forward step {i}, (F))"
    names, values = [], []
    for j, x in enumerate(args):
        if isinstance(x, Var):
            names.append(x.name)
            values.append(x.value)
        else:
            kind = "label" if is_loss and j == 1 else "const"
            values.append(as_input(x, f"{where}: the {kind}"))
            names.append(None)
    if is_loss:
        values[1] = mod.check_label(values[0], values[1], where)
    try:
        mod.check_inputs(values, where)
        with np.errstate(all="ignore"):     # non-finite values are reported by the run below
            out, what = as_numbers(mod.forward(*values))
        if out is None:                     # a learner's forward may return anything
            raise BackpropError(f"{where}: {type(mod).__name__}.forward returned {what}")
        out = np.asarray(out)               # a np.float64 as a 0-d array, as every value is
    except BackpropError:
        raise
    except (ValueError, TypeError) as err:
        raise BackpropError(f"{where}: {err_text(err)} (inputs: " + ", ".join(
            f"{n or 'a constant'} is {shape_str(x)}" for n, x in zip(names, values)) + ")") from None
    except NotImplementedError:
        raise BackpropError(f"{where}: its forward function is not written yet") from None
    except Exception as err:            # noqa: BLE001 — a module may be a learner's code
        raise BackpropError(f"{where}: {type(err).__name__}: {err_text(err)}") from None
    # only now, when the step is sure to be valid, is anything recorded
    for j, x in enumerate(args):
        if names[j] is None:
            names[j] = rec.const(values[j], "label" if is_loss and j == 1 else "const")
    eqn = rec.equation(mod, tuple(names))
    rec.values[eqn.output] = out
    return Var(rec, eqn.output, out)


_OURS = re.compile(r"(u|c|y|x)\[\d+\]$|y$")


def _check_input_names(names: list, n: int) -> None:
    """One unique name per input, none that the recorder gives to other nodes."""
    if len(names) != n or not all(isinstance(x, str) and x.strip() for x in names):
        raise BackpropError(f"trace: names must give one non-empty name per input ({n}); "
                            f"got {brief(names)}")
    for x in names:
        checked_name(x, "trace: an input name")
        if names.count(x) > 1 or (_OURS.match(x) and x not in _default_names(n)):
            raise BackpropError(f"trace: the input name {brief(x, 40)} is repeated or is one of the "
                                f"names backprop gives to other nodes (u[i], c[i], y)")


def _default_names(n: int) -> list[str]:
    return ["u[0]"] if n == 1 else [f"x[{j}]" for j in range(1, n + 1)]


def record(f, inputs, names=None) -> tuple[Recorder, Var]:
    """Run f on traced values; the recorder holds its equations and their values."""
    if not callable(f):
        raise BackpropError(f"trace: f must be a function of the inputs, e.g. "
                            f"trace(lambda z: (z * z).sum(), x); got {type(f).__name__} "
                            f"{brief(f, 30)}")
    if not inputs:
        raise BackpropError("trace: give f at least one input, e.g. trace(f, np.array([1.0, 2.0]))")
    names = list(_default_names(len(inputs)) if names is None else names)
    _check_input_names(names, len(inputs))
    rec = Recorder()
    xs = []
    for j, (n, x) in enumerate(zip(names, inputs)):
        value = as_input(x, f"{n} (input {j + 1} of f)")
        xs.append(Var(rec, rec.add_node(n, "input", value), value))
    _ACTIVE.append(rec)
    try:
        J = f(*xs)
    finally:
        _ACTIVE.pop()
    if not isinstance(J, Var) or not rec.eqns or J.name != rec.eqns[-1].output:
        raise BackpropError("trace: f must return the result of its last operation on its inputs "
                            f"(a traced value); got {type(J).__name__}")
    if J.value.size != 1:
        raise BackpropError(f"trace: J = {J.name} must be a single number (backprop needs a "
                            f"scalar J, §7.4.1); it has shape {shape_str(J.value)}. Add .sum()?")
    return rec, J


def trace(f, *inputs, names=None) -> Trace:
    """Record J = f(x) for any composition of modules and ops, then run (F) and (B1), (B2).

    f takes traced values (one per input) and returns a single number J; every op and module it
    applies becomes a module M_i with output u[i]. One input is named u[0]; several are x[1], x[2]….
    """
    rec, _ = record(f, inputs, names)
    prog = rec.program()
    # recording computed every u[i] already: the pass checks them and only runs backward
    return prog.run({n: rec.values[n] for n in prog.given_names},
                    [rec.values[e.output] for e in prog.eqns])

