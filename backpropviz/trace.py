"""The trace: an immutable, ordered record of one forward and one backward pass, as plain data.

Keys name what a step reads or writes: a value is its node's name (``u[2]``, ``W[1]``, ``y``); a
gradient is ``dJ/d`` + the name (``dJ/du[2]``). When a value has several users, each user's (B1)
writes a contribution ``dJ/du[1] via M_3`` and an accumulation step (7.53) sums them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .errors import BackpropError


def grad_key(name: str) -> str:
    return "dJ/d" + name


def pretty(key: str) -> str:
    """'dJ/du[2]' → '∂J/∂u[2]'; a value key is shown as it is."""
    if key.startswith("dJ/d"):
        return "∂J/∂" + key[4:]
    return key


@dataclass(frozen=True)
class NodeInfo:
    """A node of the graph: a value u[i], a parameter θ, an input, a label y or a constant."""

    name: str
    kind: str                  # "input" | "param" | "label" | "const" | "value" | "loss"
    module: str | None = None  # producer (for values) or owner (for parameters), e.g. "M_3"
    display: str | None = None  # a user's name for a parameter, if given


@dataclass(frozen=True)
class ModuleInfo:
    """M_i as plain data: what it reads and writes and the rules it applies."""

    name: str                   # "M_3"
    label: str                  # "MM[W[2], b[2]]", "σ", or the user's name
    op: str                     # the class: "MM", "ReLU", "SquaredLoss", "Add", ...
    inputs: tuple[str, ...]     # input nodes, in order (a loss: t then y)
    params: tuple[str, ...]     # θ[i], e.g. ("W[2]", "b[2]")
    output: str                 # "u[3]"


@dataclass(frozen=True)
class StepSpec:
    """What a step does, without its numbers: the same for every pass through one graph."""

    phase: str                  # "forward" | "backward"
    rule: str                   # "F" | "seed" | "B1" | "B2" | "acc"
    tag: str                    # "(F)", "(7.63)", "(7.65)", ... the equation in the notes
    module: str | None          # "M_3"; None for the seed
    reads: tuple[str, ...]      # keys read
    writes: str                 # key written
    node: str                   # the node whose value or gradient this is
    template: str               # the right-hand side, placeholders like {z} stand for keys
    subs: tuple[tuple[str, str], ...] = ()   # (placeholder, key) pairs for the template

    @property
    def lhs(self) -> str:
        return pretty(self.writes)

    def formula(self, fmt=pretty) -> str:
        """'∂J/∂u[1] = W[2]ᵀ ∂J/∂u[2]': the rule in the notes' notation, keys shown by fmt."""
        return fmt(self.writes) + " = " + self.fill(fmt)

    def fill(self, fmt=pretty) -> str:
        """The template with each placeholder replaced by fmt(key)."""
        return self.template.format(**{p: fmt(k) for p, k in self.subs})


@dataclass(frozen=True, eq=False)
class Step:
    """One step of a pass, with its numbers: u[i] = M_i(u[i−1]) (F), or one backward rule."""

    index: int
    spec: StepSpec
    read_values: tuple[np.ndarray, ...]
    value: np.ndarray
    known: tuple[str, ...]      # every key known after this step

    def __getattr__(self, name):
        # phase, rule, tag, module, reads, writes, node, lhs, formula … come from the spec.
        if name.startswith("__") or name == "spec":   # copy/pickle probe before spec is set
            raise AttributeError(name)
        return getattr(self.spec, name)

    def __repr__(self):
        return f"Step({self.index}: {self.spec.phase} {self.spec.tag} {self.spec.formula()})"


def _readonly(a):
    if isinstance(a, np.ndarray) and a.flags.writeable:
        a.flags.writeable = False
    return a


class Trace:
    """An immutable record of one forward and one backward pass.

    ``steps`` are ordered: forward steps (F), then the seed ∂J/∂u[k] = 1, then the backward steps
    (B1), (B2) and accumulations. ``value(name)`` and ``grad(name)`` look numbers up by node name.
    """

    __slots__ = ("nodes", "modules", "specs", "given", "_out", "_where", "_steps", "_nf")

    def __init__(self, nodes, modules, specs, given, out, where=None):
        self.nodes: tuple[NodeInfo, ...] = nodes
        self.modules: tuple[ModuleInfo, ...] = modules
        self.specs: tuple[StepSpec, ...] = specs
        self.given: dict[str, np.ndarray] = given     # inputs, parameters, labels, constants
        self._out = out                                # value written by each step, in order
        self._where = where if where is not None else {s.writes: i for i, s in enumerate(specs)}
        self._steps = None
        self._nf = None

    # --- look-ups -------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> np.ndarray:
        """The array behind a key: a value ('u[2]') or a gradient ('dJ/du[2]')."""
        i = self._where.get(key)
        if i is not None:
            return _readonly(self._out[i])
        if key in self.given:
            return _readonly(self.given[key])
        raise KeyError(key)

    def value(self, name: str) -> np.ndarray:
        """u[i] (u[0] is x), a parameter such as W[1], the label y."""
        if name in self._where or name in self.given:
            return self[name]
        raise BackpropError(f"no node named {name!r}; nodes: {', '.join(self.node_names)}")

    def grad(self, name: str) -> np.ndarray:
        """∂J/∂(name), with the shape of the node itself (§7.4.1)."""
        key = grad_key(name)
        if key in self._where:
            return self[key]
        if name not in self._where and name not in self.given:
            raise BackpropError(f"no node named {name!r}; nodes: {', '.join(self.node_names)}")
        kind = self.node(name).kind
        why = {"label": "it is a label, not a variable J depends on through the network",
               "const": "it is a constant",
               "input": "the notes' backward pass stops at u[1] (pass input_grad=True to get it)"}
        raise BackpropError(f"∂J/∂{name} is not computed: {why.get(kind, 'J does not depend on it')}")

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        raise BackpropError(f"no node named {name!r}; nodes: {', '.join(self.node_names)}")

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

    @property
    def steps(self) -> tuple[Step, ...]:
        """The ordered steps, each with the values it read, the value it wrote, and what is known."""
        if self._steps is None:
            known = list(self.given)
            steps = []
            for i, spec in enumerate(self.specs):
                known.append(spec.writes)
                steps.append(Step(i, spec, tuple(self[k] for k in spec.reads), self[spec.writes],
                                  tuple(known)))
            self._steps = tuple(steps)
        return self._steps

    def known(self, k: int) -> tuple[str, ...]:
        """The keys known after step k (k = −1: before the first step, only what was given)."""
        return tuple(self.given) + tuple(s.writes for s in self.specs[:k + 1])

    def param_grads(self) -> dict[str, np.ndarray]:
        """∂J/∂θ for every parameter, by name (W[1], b[1], …)."""
        return {n.name: self.grad(n.name) for n in self.nodes if n.kind == "param"}

    def __repr__(self):
        return (f"<Trace: {len(self.modules)} modules, {len(self.specs)} steps "
                f"({self.n_forward} forward), J = {self.loss:.6g}>")

    # --- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        arr = lambda a: {"shape": list(np.shape(a)), "data": np.asarray(a, float).ravel().tolist()}
        return {
            "format": "backpropviz.trace/1",
            "nodes": [vars(n) for n in self.nodes],
            "modules": [vars(m) for m in self.modules],
            "specs": [{**vars(s), "subs": [list(p) for p in s.subs]} for s in self.specs],
            "given": {k: arr(v) for k, v in self.given.items()},
            "out": [arr(v) for v in self._out],
        }

    def to_json(self) -> str:
        # Python writes floats with repr, which reads back exactly: the round trip is lossless.
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Trace":
        if d.get("format") != "backpropviz.trace/1":
            raise BackpropError(f"not a backpropviz trace (format {d.get('format')!r})")
        arr = lambda a: np.array(a["data"], dtype=float).reshape(a["shape"])
        return cls(
            nodes=tuple(NodeInfo(**n) for n in d["nodes"]),
            modules=tuple(ModuleInfo(**{**m, "inputs": tuple(m["inputs"]),
                                        "params": tuple(m["params"])}) for m in d["modules"]),
            specs=tuple(StepSpec(**{**s, "reads": tuple(s["reads"]),
                                    "subs": tuple(tuple(p) for p in s["subs"])})
                        for s in d["specs"]),
            given={k: arr(v) for k, v in d["given"].items()},
            out=[arr(v) for v in d["out"]])

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        return cls.from_dict(json.loads(text))

    def same_as(self, other: "Trace") -> bool:
        """Same graph, same steps, same numbers (exactly)."""
        return (self.nodes == other.nodes and self.modules == other.modules
                and self.specs == other.specs and self.given.keys() == other.given.keys()
                and all(np.array_equal(self.given[k], other.given[k], equal_nan=True)
                        for k in self.given)
                and len(self._out) == len(other._out)
                and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(self._out, other._out)))
