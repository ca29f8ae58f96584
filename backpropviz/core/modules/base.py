"""The module contract: ``Module`` (forward (F), backward (B1), one grad_p per parameter (B2),
rules beside their code), the registry of module classes and frozen parameters."""
from __future__ import annotations

import copy

import numpy as np

from .. import rules as R
from ..errors import BackpropError, shape_str
from ..rules import TAG_BACKWARD, Rule
from ..checks import name as checked_name, numeric, shown

REGISTRY: dict[str, type] = {}      # class name → class, to read a trace file back


def frozen(x, what: str = "parameter") -> np.ndarray:
    """A read-only finite float copy: parameters are immutable so traces can share them."""
    return numeric(x, what)


def batch_size(x) -> int:
    """B: the number of examples (columns) in a batch, 1 for a single example (a vector)."""
    return x.shape[1] if x.ndim == 2 else 1


class Module:
    """A module M: forward u = M(z), backward function B[M, z](v) = ∂J/∂z (7.57).

    ``label`` is the notes' symbol drawn on the graph; ``inputs`` the symbols of its inputs in the
    rules (z; a, b for a binary op; t, y for a loss); ``rules`` its rule table (rules.py).
    """

    label = "M"
    inputs: tuple[str, ...] = ("z",)
    param_names: tuple[str, ...] = ()
    can_overflow = True         # False if finite inputs always give a finite output
    batched = False             # True: a 2-d input is a batch, one example per column
    rules: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(vars(cls).get("label"), str):
            cls.label = shown(cls.label)     # "\x1b" drawn as its escape: SVG is XML
        for sym in (*cls.inputs, *cls.param_names):
            # they name the rules' symbols, grad_<θ> and the parameters' nodes (W[1])
            if not (isinstance(sym, str) and sym.isidentifier()):
                raise BackpropError(f"{cls.__name__}: the input and parameter names are Python "
                                    f"names such as z, W, b; got {str(sym)[:40]!r}")
        cls.rules = R.collect(cls)
        REGISTRY[cls.__name__] = cls

    def __init__(self, name: str | None = None):
        self.name = None if name is None else checked_name(name, f"{type(self).__name__}: name")

    @property
    def arity(self) -> int:
        """How many inputs J is differentiated through (a loss's label y is not)."""
        return len(self.inputs)

    @property
    def consts(self) -> dict:
        """Numbers the rules show besides inputs and parameters (Power's exponent p)."""
        return {}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters θ of this module, by local name (W, b)."""
        return {p: getattr(self, p) for p in self.param_names}

    @classmethod
    def rule(cls, kind: str, which=None) -> Rule:
        """The rule table's entry, or a generic one for a module written without ``@rule``."""
        r = cls.rules.get((kind, which))
        if r is not None:
            return r
        if kind == "F":
            return Rule("F", "(F)", None, None, (), "forward")
        if kind == "B1":
            return Rule("B1", TAG_BACKWARD, None, which, (), "backward")
        if kind == "B2" and which in cls.param_names:
            method = "grad_" + which if callable(getattr(cls, "grad_" + which, None)) else None
            return Rule("B2", TAG_BACKWARD, None, which, (), method)
        raise BackpropError(f"{cls.__name__} has no rule {kind} for {which!r}")

    @classmethod
    def label_for(cls, consts: dict) -> str:
        """The symbol drawn for a module of this class with these constants."""
        return cls.label

    def function(self, kind: str, which=None):
        """The method that computes a rule (for a parameter without ``grad_p``: param_grads)."""
        r = self.rule(kind, which)
        if r.method is not None:
            return getattr(self, r.method)
        return lambda *args: self.param_grads(*args)[which]

    def forward(self, z):
        raise NotImplementedError(f"{type(self).__name__} has no forward function")

    def backward(self, z, v):
        raise NotImplementedError(f"{type(self).__name__} has no backward function")

    def param_grads(self, *args) -> dict[str, np.ndarray]:
        """B[M, θ](v) for each parameter θ of the module (B2); empty for a fixed operation."""
        return {p: self.function("B2", p)(*args) for p in self.param_names}

    def with_params(self, **params) -> "Module":
        """A copy with some parameters replaced (gradcheck's perturbations use it)."""
        new = copy.copy(self)
        for p, val in params.items():
            if p not in self.param_names:
                raise BackpropError(f"{type(self).__name__} has no parameter {p!r}")
            old = getattr(self, p)
            val = frozen(val, f"{type(self).__name__}: {p}")
            if val.shape != np.shape(old):
                raise BackpropError(f"{type(self).__name__}: {p} is {shape_str(old)}; the new "
                                    f"value is {shape_str(val)}")
            setattr(new, p, val)
        return new

    def check_input(self, z, where: str) -> None:
        """Raise BackpropError if z cannot be the input of this module."""

    def check_inputs(self, values, where: str) -> None:
        """Raise BackpropError if these inputs cannot go in (by default: the first input's check)."""
        self.check_input(values[0], where)

    def __call__(self, *args):
        # Applying a module to traced values records it; on arrays it is just the forward.
        for x in args:
            apply = getattr(x, "_bpv_apply", None)
            if apply is not None:
                return apply(self, args)
        return self.forward(*[np.asarray(x, dtype=float) for x in args])

    def __repr__(self):
        return f"{type(self).__name__}()"
