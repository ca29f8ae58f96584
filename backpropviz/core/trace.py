"""The trace: an immutable, ordered record of one forward and one backward pass, as plain data.

Steps are numbered as a learner reads them: step 0 is the state before any step (only the given
values x, θ, y are known); step k (1 ≤ k ≤ len(trace)) is the state after the k-th rule has been
applied. ``trace.steps`` is a Python list, so step k is ``trace.steps[k - 1]`` (its ``number``
is k). ``render(trace, step=k)``, ``step_text(trace, k)`` and the Stepper's slider all use k.

What a step reads and writes are ``Key`` objects (keys.py); the rule it applies comes from the
rule table (rules.py), found from the module's class name, so a trace file carries data only:
names, rule kinds and numbers, never text that the program formats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import rules as R
from .errors import BackpropError
from .keys import Key
from .numerics import readonly
from .modules import REGISTRY
from .checks import shown

@dataclass(frozen=True)
class NodeInfo:
    """A node of the graph: a value u[i], a parameter θ, an input, a label y or a constant."""

    name: str
    kind: str                  # "input" | "param" | "label" | "const" | "value" | "loss"
    module: str | None = None  # producer (for values) or owner (for parameters), e.g. "M_3"
    display: str | None = None  # a user's name for a parameter, if given
    # in a scalar circuit (theory/circuit.py): (module-level module or None, module-level node, index),
    # the module and the entry of its node that this single number belongs to, e.g.
    # ("M_1", "u[1]", (1,)) for u[1]₂ and for the products and sums that compute it
    part_of: tuple | None = None


@dataclass(frozen=True)
class ModuleInfo:
    """M_i as plain data: its class, what it reads and writes, a user's name, its constants."""

    name: str                   # "M_3"
    op: str                     # the class: "MM", "ReLU", "SquaredLoss", "Add", ...
    inputs: tuple[str, ...]     # input nodes, in order (a loss: t then y)
    params: tuple[str, ...]     # θ[i], e.g. ("W[2]", "b[2]")
    output: str                 # "u[3]"
    given_name: str | None = None
    consts: tuple = ()          # (name, number) pairs the rules show, e.g. (("p", 2.0),)
    # the class's symbol as recorded or loaded (``base_label``): a class defined again (a
    # notebook cell run again) with another label makes another ModuleInfo, so nothing kept per
    # graph (a layout) shows the old label
    symbol: str | None = None

    @property
    def cls(self):
        return REGISTRY.get(self.op)

    @property
    def label(self) -> str:
        """The module as the notes write it: MM[W[1], b[1]], σ, ℓ_logistic, or the user's name."""
        if self.given_name is not None:
            return self.given_name
        base = self.base
        return f"{base}[{', '.join(self.params)}]" if self.params else base

    @property
    def base(self) -> str:
        """The class's symbol with these constants, without parameters: MM, σ, (·)², (·)[0]."""
        return self.symbol if self.symbol is not None else base_label(self.cls, self.op,
                                                                      self.consts)


def base_label(cls, op: str, consts) -> str:
    """The symbol drawn for a module of class ``cls`` (named ``op``) with these constants, as it
    can be drawn (``checks.shown``: a learner's label may hold control characters)."""
    return shown(cls.label_for(dict(consts))) if cls is not None else op


@dataclass(frozen=True)
class StepSpec:
    """What a step does, without its numbers: the same for every pass through one graph.

    ``subs`` binds the rule's symbols (z, v, W, …) to keys; ``reads`` are the keys of the
    symbols the rule's expression uses: exactly what the rule reads.
    """

    phase: str                  # "forward" | "backward"
    kind: str                   # "F" | "seed" | "B1" | "B2" | "acc"
    module: str | None          # "M_3"; None for the seed and the sums
    which: int | str | None     # the input's position (B1) or the parameter's name (B2)
    writes: Key
    subs: tuple[tuple[str, Key], ...]
    rule: R.Rule = field(compare=False, repr=False, default=None)
    reads: tuple[Key, ...] = field(compare=False, default=())

    @property
    def tag(self) -> str:
        return self.rule.tag

    @property
    def node(self) -> str:
        return self.writes.node

    def key_of(self, sym: str) -> Key | None:
        return dict(self.subs).get(sym)


def make_spec(phase, kind, module, which, writes, subs, rule, consts=None) -> StepSpec:
    """A StepSpec whose ``reads`` are the keys of the symbols in the rule's expression (all of
    ``subs`` for a rule without one)."""
    e = rule.expression(R.Context({}, consts or {}))
    d = dict(subs)
    used = e.symbols() if e is not None else tuple(d)
    reads = tuple(dict.fromkeys(d[s] for s in used if s in d))
    return StepSpec(phase, kind, module, which, writes, tuple(subs), rule, reads)


def rule_for(kind: str, op: str | None, which) -> R.Rule:
    """The rule table's entry for a step (the seed and the sums belong to no module)."""
    if kind == "seed":
        return R.SEED
    if kind == "acc":
        return R.ACC
    cls = REGISTRY.get(op)
    if cls is None:
        raise BackpropError(f"unknown module type {op!r}: define (import) it before loading")
    return cls.rule(kind, which)


@dataclass(frozen=True, eq=False)
class Step:
    """Step ``number`` of a pass with its numbers: u[i] = M_i(u[i−1]) (F), or a backward rule.

    ``trace.steps[k - 1]`` is step k; ``index`` = k − 1 is its place in that list.
    """

    index: int
    spec: StepSpec
    read_values: tuple[np.ndarray, ...]
    value: np.ndarray
    trace: "Trace" = field(repr=False)

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def known(self) -> tuple[Key, ...]:
        """Every key known after this step (computed when asked: traces can be long)."""
        return self.trace.known(self.number)

    def __getattr__(self, name):
        # phase, kind, tag, module, reads, writes, node, rule … come from the spec.
        if name.startswith("__") or name == "spec":   # copy/pickle probe before spec is set
            raise AttributeError(name)
        return getattr(self.spec, name)

    def __repr__(self):
        return f"Step({self.number}: {self.spec.phase} {self.spec.tag} {self.spec.writes})"


def _frozen(x):
    """A stored value as handed out: the trace's own array, frozen in place (a float as is)."""
    return readonly(x, copy=False) if isinstance(x, np.ndarray) else x


class Trace:
    """An immutable record of one forward and one backward pass.

    Steps 1 … n_forward are the forward steps (F); then the seed ∂J/∂u[k] = 1; then the backward
    steps (B1), (B2) and the sums over users (7.53). ``value(name)`` and ``grad(name)`` look
    numbers up by node name; ``trace[key]`` by Key.
    """

    __slots__ = ("nodes", "modules", "specs", "given", "_out", "_where", "_steps", "_nf",
                 "_known_at", "_travel_at", "_by_name")

    def __init__(self, nodes, modules, specs, given, out, where=None):
        self.nodes: tuple[NodeInfo, ...] = tuple(nodes)
        self.modules: tuple[ModuleInfo, ...] = tuple(modules)
        self.specs: tuple[StepSpec, ...] = tuple(specs)
        self.given: dict[str, np.ndarray] = given     # inputs, parameters, labels, constants
        self._out = out                                # value written by each step, in order
        self._where = where if where is not None else {s.writes: i for i, s in enumerate(specs)}
        self._steps = None
        self._nf = None
        self._known_at = None
        self._travel_at = None
        self._by_name = None

    # --- look-ups -------------------------------------------------------------------------------
    def __getitem__(self, key: Key) -> np.ndarray:
        """The array behind a key: a value (Key('u[2]')) or a gradient (Key.gradient('u[2]'))."""
        if not isinstance(key, Key):
            raise TypeError(f"a trace is indexed by Key, not {type(key).__name__}: "
                            f"use trace.value(name) or trace.grad(name)")
        i = self._where.get(key)
        if i is not None:
            return _frozen(self._out[i])
        if not key.grad and key.node in self.given:
            return _frozen(self.given[key.node])
        raise KeyError(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._where or (not key.grad and key.node in self.given)

    def value(self, name: str) -> np.ndarray:
        """u[i] (u[0] is x), a parameter such as W[1], the label y."""
        key = Key(name)
        if key in self:
            return self[key]
        raise BackpropError(f"no node named {str(name)[:60]!r}; {self._some_nodes()}")

    def grad(self, name: str, via: str | None = None, n: int = 0) -> np.ndarray:
        """∂J/∂(name), with the shape of the node itself (§7.4.1); ``via="M_3"``: only that
        user's contribution."""
        key = Key.gradient(name, via, n)
        if key in self._where:
            return self[key]
        node = self.node(name)
        if via is not None:
            raise BackpropError(f"∂J/∂{name} has no separate contribution via {via!r} "
                                f"(contributions exist only where a value has several users)")
        why = {"label": "it is a label, not a variable J depends on through the network",
               "const": "it is a constant",
               "input": "the notes' backward pass stops at u[1] (pass input_grad=True to get it)"}
        raise BackpropError(f"∂J/∂{name} is not computed: "
                            f"{why.get(node.kind, 'J does not depend on it')}")

    def node(self, name: str) -> NodeInfo:
        if self._by_name is None:
            self._by_name = {n.name: n for n in self.nodes}
        n = self._by_name.get(name)
        if n is None:
            raise BackpropError(f"no node named {str(name)[:60]!r}; {self._some_nodes()}")
        return n

    def _some_nodes(self, most: int = 24) -> str:
        """The nodes, or the first of them: a large trace (a circuit) has thousands."""
        names = self.node_names
        return ("nodes: " + ", ".join(names[:most])
                + (f", … ({len(names)} in all)" if len(names) > most else ""))

    def module(self, name: str) -> ModuleInfo:
        """M_i by name ("M_3")."""
        for m in self.modules:
            if m.name == name:
                return m
        raise BackpropError(f"no module named {name!r}")

    @property
    def outputs(self) -> tuple:
        """The value each step writes, in step order (``outputs[k - 1]`` is step k's)."""
        return tuple(self._out)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def loss(self) -> float:
        """J = u[k], a float."""
        return float(np.asarray(self._out[self.n_forward - 1]).item())   # J may have shape (1,)

    @property
    def n_forward(self) -> int:
        if self._nf is None:
            self._nf = sum(1 for s in self.specs if s.phase == "forward")
        return self._nf

    def __len__(self):
        return len(self.specs)

    def spec(self, k: int) -> StepSpec:
        """What step k (1 … len(trace)) does."""
        self.check_step(k, first=1)
        return self.specs[k - 1]

    def check_step(self, k, first: int = 0) -> int:
        """k as a step number, or a BackpropError that gives the range."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or \
                not first <= k <= len(self.specs):
            raise BackpropError(f"step {k!r} is out of range: this trace has steps {first}.."
                                f"{len(self.specs)} (0 = before the first step, "
                                f"{len(self.specs)} = all done)")
        return int(k)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The ordered steps; ``steps[k - 1]`` is step k, with the values it read and wrote."""
        if self._steps is None:
            self._steps = tuple(Step(i, s, tuple(self[k] for k in s.reads), self[s.writes], self)
                                for i, s in enumerate(self.specs))
        return self._steps

    # --- what is known when: computed once per trace, so a step costs the same at any length ---
    def known_at(self, key: Key) -> float:
        """The step after which ``key`` is known (0 for what was given; inf if never)."""
        if self._known_at is None:
            at = {Key(n): 0 for n in self.given}
            at.update((s.writes, i + 1) for i, s in enumerate(self.specs))
            self._known_at = at
        return self._known_at.get(key, math.inf)

    def is_known(self, key: Key, k: int) -> bool:
        return self.known_at(key) <= k

    def travelled_at(self, module: str, node: str) -> float:
        """The first step at which the backward pass crossed the edge between module and node."""
        if self._travel_at is None:
            at = {}
            for i, s in enumerate(self.specs):
                if s.phase == "backward" and s.module is not None:
                    at.setdefault((s.module, s.node), i + 1)
            self._travel_at = at
        return self._travel_at.get((module, node), math.inf)

    def known(self, k: int) -> tuple[Key, ...]:
        """The keys known after step k (0: only what was given)."""
        self.check_step(k)
        return tuple(Key(n) for n in self.given) + tuple(s.writes for s in self.specs[:k])

    def param_grads(self) -> dict[str, np.ndarray]:
        """∂J/∂θ for every parameter, by name (W[1], b[1], …)."""
        return {n.name: self.grad(n.name) for n in self.nodes if n.kind == "param"}

    def __repr__(self):
        J = f"J = {self.loss:.6g}" if self.n_forward else "no J"      # a Trace made by hand
        return (f"<Trace: {len(self.modules)} modules, {len(self.specs)} steps "
                f"({self.n_forward} forward), {J}>")

    # --- JSON: data only, standard JSON (the format lives in tracefile.py) ---------------------
    def to_dict(self) -> dict:
        from .tracefile import to_dict
        return to_dict(self)

    def to_json(self) -> str:
        from .tracefile import to_json
        return to_json(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Trace":
        """A trace from its dict form, validated completely (one BackpropError if bad)."""
        from .tracefile import trace_from_dict
        return trace_from_dict(d)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        """A trace read back from ``to_json``: a file from elsewhere is data, validated
        completely before use; nothing in it is formatted or evaluated."""
        from .tracefile import trace_from_json
        return trace_from_json(text)

    def same_as(self, other: "Trace") -> bool:
        """Same graph, same steps, same numbers (exactly)."""
        return (self.nodes == other.nodes and self.modules == other.modules
                and self.specs == other.specs and self.given.keys() == other.given.keys()
                and all(np.array_equal(self.given[k], other.given[k], equal_nan=True)
                        for k in self.given)
                and len(self._out) == len(other._out)
                and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(self._out, other._out)))
