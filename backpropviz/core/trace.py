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

import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import rules as R
from .errors import BackpropError
from .keys import Key
from .modules import REGISTRY

FORMAT = "backpropviz.trace/2"


@dataclass(frozen=True)
class NodeInfo:
    """A node of the graph: a value u[i], a parameter θ, an input, a label y or a constant."""

    name: str
    kind: str                  # "input" | "param" | "label" | "const" | "value" | "loss"
    module: str | None = None  # producer (for values) or owner (for parameters), e.g. "M_3"
    display: str | None = None  # a user's name for a parameter, if given
    # in a scalar circuit (circuit.py): (module-level module or None, module-level node, index),
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

    @property
    def cls(self):
        return REGISTRY.get(self.op)

    @property
    def label(self) -> str:
        """The module as the notes write it: MM[W[1], b[1]], σ, ℓ_logistic, or the user's name."""
        if self.given_name is not None:
            return self.given_name
        base = self.cls.label_for(dict(self.consts)) if self.cls else self.op
        return f"{base}[{', '.join(self.params)}]" if self.params else base


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


def _readonly(x):
    if isinstance(x, np.ndarray) and x.flags.writeable:
        x.flags.writeable = False
    return x


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
            return _readonly(self._out[i])
        if not key.grad and key.node in self.given:
            return _readonly(self.given[key.node])
        raise KeyError(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._where or (not key.grad and key.node in self.given)

    def value(self, name: str) -> np.ndarray:
        """u[i] (u[0] is x), a parameter such as W[1], the label y."""
        key = Key(name)
        if key in self:
            return self[key]
        raise BackpropError(f"no node named {name!r}; nodes: {', '.join(self.node_names)}")

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
            raise BackpropError(f"no node named {name!r}; nodes: {', '.join(self.node_names)}")
        return n

    def module(self, name: str) -> ModuleInfo:
        """M_i by name ("M_3")."""
        for m in self.modules:
            if m.name == name:
                return m
        raise BackpropError(f"no module named {name!r}")

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
        return (f"<Trace: {len(self.modules)} modules, {len(self.specs)} steps "
                f"({self.n_forward} forward), J = {self.loss:.6g}>")

    # --- JSON: data only, standard JSON ---------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "nodes": [[n.name, n.kind, n.module, n.display]
                      + ([] if n.part_of is None else [[n.part_of[0], n.part_of[1],
                                                        list(n.part_of[2])]])
                      for n in self.nodes],
            "modules": [{"name": m.name, "op": m.op, "inputs": list(m.inputs),
                         "params": list(m.params), "output": m.output,
                         "given_name": m.given_name, "consts": [list(c) for c in m.consts]}
                        for m in self.modules],
            "steps": [{"phase": s.phase, "kind": s.kind, "module": s.module, "which": s.which,
                       "writes": s.writes.to_json(),
                       "subs": [[sym, k.to_json()] for sym, k in s.subs]} for s in self.specs],
            "given": {k: _arr_json(v) for k, v in self.given.items()},
            "out": [_arr_json(v) for v in self._out],
        }

    def to_json(self) -> str:
        # standard JSON: NaN and ±inf are written as strings, and read back exactly
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Trace":
        """A trace from its dict form, validated completely (one BackpropError if bad)."""
        return trace_from_dict(d)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        """A trace read back from ``to_json``: a file from elsewhere is data, validated
        completely before use; nothing in it is formatted or evaluated."""
        return trace_from_json(text)

    def same_as(self, other: "Trace") -> bool:
        """Same graph, same steps, same numbers (exactly)."""
        return (self.nodes == other.nodes and self.modules == other.modules
                and self.specs == other.specs and self.given.keys() == other.given.keys()
                and all(np.array_equal(self.given[k], other.given[k], equal_nan=True)
                        for k in self.given)
                and len(self._out) == len(other._out)
                and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(self._out, other._out)))


def _num_json(x: float):
    return x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity"))


def _arr_json(x) -> dict:
    x = np.asarray(x, dtype=float)
    return {"shape": list(x.shape), "data": [_num_json(float(e)) for e in x.ravel()]}


# --- reading a trace file: validated completely, one clear error, nothing half-loaded ----------

MAX_CHARS = 50_000_000          # a trace file larger than this is refused before parsing
MAX_NUMBERS = 5_000_000         # numbers in all arrays together
KINDS = ("input", "param", "label", "const", "value", "loss")
STEP_KINDS = ("F", "seed", "B1", "B2", "acc")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Bad(Exception):
    pass


def _need(cond, where, what):
    if not cond:
        raise _Bad(f"{where}: {what}")


def _str(x, where, none=False):
    _need(isinstance(x, str) or (none and x is None), where,
          "expected a string" + (" or null" if none else "") + f", got {type(x).__name__}")
    if isinstance(x, str):
        _need(0 < len(x) <= 200 and x.isprintable(), where,
              "a name must be 1 to 200 printable characters")
    return x


def _obj(x, keys, where):
    _need(isinstance(x, dict), where, f"expected an object, got {type(x).__name__}")
    _need(set(x) == set(keys), where, f"expected the fields {sorted(keys)}, got {sorted(x)}")
    return x


def _list(x, where, n=None):
    _need(isinstance(x, list), where, f"expected a list, got {type(x).__name__}")
    _need(n is None or len(x) == n, where, f"expected {n} entries, got {len(x)}")
    return x


def _finite_number(e) -> bool:
    """A JSON number that is a finite float (an int too large for a float is not)."""
    return type(e) is float and math.isfinite(e) or type(e) is int and abs(e) <= 1e308


def _array(x, where, budget):
    _obj(x, ("shape", "data"), where)
    shape, data = _list(x["shape"], where + ".shape"), _list(x["data"], where + ".data")
    _need(len(shape) <= 2 and all(type(n) is int and 0 <= n <= MAX_NUMBERS for n in shape),
          where, f"a shape is at most 2 sizes, each a whole number ≥ 0; got {shape}")
    _need(math.prod(shape) == len(data), where,
          f"shape {shape} needs {math.prod(shape)} numbers; the file has {len(data)}")
    budget[0] -= len(data)
    _need(budget[0] >= 0, where, f"more than {MAX_NUMBERS} numbers in the file")
    vals = []
    for e in data:
        if _finite_number(e):
            vals.append(float(e))
        elif isinstance(e, str) and e in _SPECIAL:
            vals.append(_SPECIAL[e])
        else:
            raise _Bad(f"{where}: entries are finite numbers or \"NaN\", \"Infinity\", "
                       f"\"-Infinity\"; got {str(e)[:20]!r}")
    a = np.array(vals, dtype=float).reshape(shape)
    a.flags.writeable = False
    return a


def _key(x, where, names, modules):
    _list(x, where, 4)
    node, grad, user, n = x
    _need(isinstance(node, str) and node in names, where, f"no node named {str(node)[:40]!r}")
    _need(type(grad) is bool, where, "the gradient flag must be true or false")
    _need(user is None or (grad and isinstance(user, str) and user in modules), where,
          f"unknown user {str(user)[:40]!r}")
    _need(type(n) is int and 0 <= n <= 1000 and (user is not None or n == 0), where,
          "a contribution count is a whole number (0 without a user)")
    return Key(node, grad, user, n)


def _part_of(x, where):
    """[module or null, node, [i, j]]: what a scalar circuit's node belongs to."""
    _list(x, where + ".part_of", 3)
    index = _list(x[2], where + ".part_of")
    _need(len(index) <= 2 and all(type(i) is int and 0 <= i <= MAX_NUMBERS for i in index),
          where, "an entry's index is at most 2 whole numbers ≥ 0")
    return (_str(x[0], where, True), _str(x[1], where), tuple(index))


def checked_load(load, d, what: str):
    """``load(d)``, a validating reader of data from elsewhere: any failure becomes one
    BackpropError "not a valid backpropviz {what}: …", and nothing is half-loaded."""
    try:
        return load(d)
    except (_Bad, BackpropError) as e:
        raise BackpropError(f"not a valid backpropviz {what}: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError,
            OverflowError) as e:
        # a case the checks did not foresee: still one clear error, nothing loaded
        raise BackpropError(f"not a valid backpropviz {what}: malformed data "
                            f"({type(e).__name__}: {str(e)[:80]})") from None


def read_json(text, what: str, max_chars: int):
    """A file's text (str or bytes) as standard JSON (no NaN/Infinity literals), at most
    ``max_chars`` characters; else one BackpropError naming ``what``."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise BackpropError(f"a {what} is text; got {type(text).__name__}")
    if len(text) > max_chars:
        raise BackpropError(f"not a valid backpropviz {what}: {len(text)} characters, more than "
                            f"the {max_chars} allowed")
    try:
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError) as e:
        raise BackpropError(f"not a valid backpropviz {what}: not standard JSON "
                            f"({str(e)[:80]})") from None


def trace_from_dict(d) -> Trace:
    return checked_load(_load, d, "trace")


def trace_from_json(text) -> Trace:
    return trace_from_dict(read_json(text, "trace", MAX_CHARS))


def _load(d) -> Trace:
    _obj(d, ("format", "nodes", "modules", "steps", "given", "out"), "the file")
    _need(d["format"] == FORMAT, "format",
          f"this is {str(d['format'])[:40]!r}; this version of backpropviz reads {FORMAT!r}")
    nodes = []
    for i, n in enumerate(_list(d["nodes"], "nodes")):
        w = f"nodes[{i}]"
        _list(n, w, 5 if isinstance(n, list) and len(n) == 5 else 4)
        _need(n[1] in KINDS, w, f"kind must be one of {KINDS}")
        nodes.append(NodeInfo(_str(n[0], w), n[1], _str(n[2], w, True), _str(n[3], w, True),
                              _part_of(n[4], w) if len(n) == 5 else None))
    names = {n.name for n in nodes}
    _need(len(names) == len(nodes), "nodes", "node names must be unique")

    modules = []
    for i, m in enumerate(_list(d["modules"], "modules")):
        w = f"modules[{i}]"
        _obj(m, ("name", "op", "inputs", "params", "output", "given_name", "consts"), w)
        ins = tuple(_list(m["inputs"], w + ".inputs"))
        params = tuple(_list(m["params"], w + ".params"))
        _need(all(isinstance(x, str) and x in names for x in ins + params + (m["output"],)), w,
              "refers to unknown nodes")
        consts = []
        for c in _list(m["consts"], w + ".consts"):
            _need(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                  and _finite_number(c[1]), w, "consts are [name, finite number] pairs")
            consts.append((c[0], float(c[1])))
        modules.append(ModuleInfo(_str(m["name"], w), _str(m["op"], w), ins, params,
                                  m["output"], _str(m["given_name"], w, True), tuple(consts)))
    by_name = {m.name: m for m in modules}
    _need(len(by_name) == len(modules), "modules", "module names must be unique")

    budget = [MAX_NUMBERS]
    given_raw = d["given"]
    _need(isinstance(given_raw, dict), "given", "expected an object")
    given = {}
    for k, x in given_raw.items():
        _need(k in names, "given", f"no node named {str(k)[:40]!r}")
        given[k] = _array(x, f"given[{k!r}]", budget)

    specs, known = [], {Key(n) for n in given}
    for i, s in enumerate(_list(d["steps"], "steps")):
        w = f"steps[{i}] (step {i + 1})"
        _obj(s, ("phase", "kind", "module", "which", "writes", "subs"), w)
        _need(s["kind"] in STEP_KINDS and s["phase"] == ("forward" if s["kind"] == "F"
                                                         else "backward"), w,
              "unknown rule kind or phase")
        _need(s["module"] is None or (isinstance(s["module"], str) and s["module"] in by_name), w,
              "unknown module")
        _need(s["which"] is None or type(s["which"]) in (int, str), w, "bad 'which'")
        mod = by_name.get(s["module"])
        kind, which = s["kind"], s["which"]
        _need((mod is None) == (kind in ("seed", "acc")), w, "a module's rule names its module; "
              "the start and the sums name none")
        _need(which is None if kind in ("F", "seed", "acc") else
              (type(which) is int and 0 <= which < len(mod.inputs)) if kind == "B1" else
              (isinstance(which, str) and mod.cls is not None and which in mod.cls.param_names),
              w, f"'which' does not fit a {kind} step: {str(which)[:20]!r}")
        writes = _key(s["writes"], w + ".writes", names, by_name)
        _need(writes not in known, w, f"{writes} is written twice")
        subs = []
        for j, p in enumerate(_list(s["subs"], w + ".subs")):
            _need(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                  and p[0].isidentifier(), w, "subs are [symbol, key] pairs")
            k = _key(p[1], f"{w}.subs[{j}]", names, by_name)
            _need(k in known, w, f"reads {k}, which is not known before this step")
            subs.append((p[0], k))
        try:
            rule = rule_for(s["kind"], mod.op if mod else None, s["which"])
        except BackpropError as e:
            raise _Bad(f"{w}: {e}") from None
        consts = dict(mod.consts) if mod else {"n": len(subs)}
        e = rule.expression(R.Context({}, consts))
        missing = set(e.symbols() if e is not None else ()) - {s for s, _ in subs} - {"B"}
        _need(not missing, w, f"the rule needs {sorted(missing)}, which the step does not bind")
        specs.append(make_spec(s["phase"], s["kind"], s["module"], s["which"], writes,
                               tuple(subs), rule, consts))
        known.add(writes)

    out = _list(d["out"], "out", len(specs))
    values = [_array(x, f"out[{i}]", budget) for i, x in enumerate(out)]
    for s, x in zip(specs, values):
        if s.writes.grad and s.writes.node in given:
            _need(x.shape == given[s.writes.node].shape, f"out for {s.writes}",
                  f"a gradient has the shape of its node {given[s.writes.node].shape}")
    return Trace(tuple(nodes), tuple(modules), tuple(specs), given, values)
