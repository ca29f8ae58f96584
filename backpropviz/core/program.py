"""Programs stored as data and interpreted forward (F) and backward (B1), (B2).

A ``Program`` is the recorded graph: equations u = M(inputs) in order (as JAX's autodidax keeps
a jaxpr). Compiling it once gives the plan of every step, the same for every pass through the
graph; running it on numbers fills in the values and returns a ``Trace``. ``Recorder`` is the one
way equations are recorded: ``bpv.trace(f, x)`` records while f runs on traced values, and
``Sequential`` records its chain the same way, once, without numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from operator import itemgetter

import numpy as np

from . import modules as M
from . import rules as R
from .errors import BackpropError, shape_str
from .keys import Key
from .trace import ModuleInfo, NodeInfo, Trace, make_spec
from .checks import numeric


@dataclass(frozen=True)
class Eqn:
    """One equation of the program: output = module(inputs), with parameters θ."""

    module: M.Module
    name: str                   # "M_3"
    inputs: tuple[str, ...]     # node names (a loss: t, y)
    params: tuple[str, ...]     # parameter node names, aligned with module.param_names
    output: str

    @property
    def diff_inputs(self) -> tuple[int, ...]:
        """Positions of the inputs that J is differentiated through (a loss's label is not)."""
        return tuple(range(self.module.arity))

    def subs(self, with_v: bool) -> tuple[tuple[str, Key], ...]:
        """The rule's symbols bound to keys: z (or a, b; t, y), the parameters, and v."""
        d = list(zip(self.module.inputs, map(Key, self.inputs)))
        d += zip(self.module.param_names, map(Key, self.params))
        if with_v:
            d.append(("v", Key.gradient(self.output)))
        return tuple(d)

    def info(self) -> ModuleInfo:
        mod = self.module
        return ModuleInfo(self.name, type(mod).__name__, self.inputs, self.params, self.output,
                          mod.name, tuple(mod.consts.items()))


def _unbroadcast(g, shape):
    """Sum g over the axes that broadcasting added, so ∂J/∂z has the shape of z (§7.4.1)."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g.reshape(shape)


def _input_grad_fn(mod: M.Module, j: int):
    """The (B1) function for input j of mod, as f(*inputs, v)."""
    fn = mod.function("B1", j)
    if len(mod.inputs) == 2 and not isinstance(mod, M.Loss):     # a binary op may broadcast
        return lambda a, b, v: _unbroadcast(np.asarray(fn(a, b, v)), np.shape((a, b)[j]))
    return fn


def _acc(*contributions):
    """∂J/∂z = Σ over the users of z of their contributions (the sum in (7.53))."""
    return reduce(np.add, contributions)


_ONE = np.ones(())
_ONE.flags.writeable = False


def _seed(J):
    """∂J/∂J = 1: the backward pass starts here (§7.4.2)."""
    return _ONE if np.ndim(J) == 0 else np.ones_like(J)   # same shape as J, e.g. (1,)


def finite(x) -> bool:
    # vdot is cheap and is non-finite whenever an entry is; overflow is re-checked exactly.
    s = np.vdot(x, x)
    return math.isfinite(s) or bool(np.isfinite(x).all())


class Program:
    """A recorded graph, compiled once into the plan of a forward and a backward pass."""

    def __init__(self, nodes: list[NodeInfo], eqns: list[Eqn], input_grad: bool = True):
        self.nodes = tuple(nodes)
        self.input_grad = input_grad
        self.eqns = tuple(eqns)
        self.modules = tuple(e.info() for e in eqns)
        # parameter node → (module, local name)
        self.param_src = {p: (e.module, local) for e in self.eqns
                          for p, local in zip(e.params, e.module.param_names)}
        self._compile()

    # --- static structure -------------------------------------------------------------------
    def _needs_grad(self) -> set[str]:
        wanted = ("param", "input") if self.input_grad else ("param",)
        need = {n.name for n in self.nodes if n.kind in wanted}
        for e in self.eqns:
            if e.params or any(e.inputs[j] in need for j in e.diff_inputs):
                need.add(e.output)
        return need

    def _users(self, need) -> dict[str, list[str]]:
        """Node → the modules that use it (in order) on the way to J."""
        live = {self.eqns[-1].output}        # dead branches get no backward steps
        for e in reversed(self.eqns):
            if e.output in live:
                live.update(e.inputs + e.params)
        users: dict[str, list[str]] = {}
        for e in self.eqns:
            if e.output in live:
                for zn in e.params + tuple(e.inputs[j] for j in e.diff_inputs):
                    if zn in need:
                        users.setdefault(zn, []).append(e.name)
        return users

    def _compile(self):
        eqns = self.eqns
        self.given_names = [n.name for n in self.nodes
                            if n.kind in ("input", "param", "label", "const")]
        specs, plan = [], []          # plan: (fn, arg keys) per step, aligned with specs
        out = eqns[-1].output
        for e in eqns:                # forward pass (F): u[i] = M_i(u[i−1])
            mod = e.module
            specs.append(make_spec("forward", "F", e.name, None, Key(e.output), e.subs(False),
                                   mod.rule("F"), mod.consts))
            plan.append((mod.function("F"), tuple(map(Key, e.inputs))))

        need = self._needs_grad()
        users = self._users(need)
        contrib: dict[tuple, list[Key]] = {}     # (module, node) → its keys, in use order
        for zn, us in users.items():
            for m in us:
                keys = contrib.setdefault((m, zn), [])
                # one user: the total itself; a module using zn twice numbers its uses 1, 2
                n = len(keys) + 1 if us.count(m) > 1 else 0
                keys.append(Key.gradient(zn) if len(us) == 1 else Key.gradient(zn, m, n))
        taken = {k: list(v) for k, v in contrib.items()}

        specs.append(make_spec("backward", "seed", None, None, Key.gradient(out), (), R.SEED))
        plan.append((_seed, (Key(out),)))
        for e in reversed(eqns):      # (B2) then (B1) for M_k, …, M_1, as in Algorithm 3
            if e.output not in need or e.output not in users and e.output != out:
                continue
            mod, v, subs = e.module, Key.gradient(e.output), e.subs(True)
            args = tuple(map(Key, e.inputs)) + (v,)
            for p, local in zip(e.params, mod.param_names):      # (B2) ∂J/∂θ[i]
                key = taken[(e.name, p)].pop(0)
                specs.append(make_spec("backward", "B2", e.name, local, key, subs,
                                       mod.rule("B2", local), mod.consts))
                plan.append((mod.function("B2", local), args))
            for j in e.diff_inputs:                              # (B1) ∂J/∂u[i−1]
                if e.inputs[j] not in need:
                    continue
                key = taken[(e.name, e.inputs[j])].pop(0)
                specs.append(make_spec("backward", "B1", e.name, j, key, subs,
                                       mod.rule("B1", j), mod.consts))
                plan.append((_input_grad_fn(mod, j), args))
            # every use of these nodes is now done: sum the contributions of reused values (7.53)
            for zn in dict.fromkeys(e.params + e.inputs):
                us = users.get(zn, ())
                if len(us) > 1 and us[0] == e.name:
                    keys = tuple(k for m in dict.fromkeys(us) for k in contrib[(m, zn)])
                    subs_acc = tuple((f"c{i}", k) for i, k in enumerate(keys))
                    specs.append(make_spec("backward", "acc", None, None, Key.gradient(zn),
                                           subs_acc, R.ACC, {"n": len(keys)}))
                    plan.append((_acc, keys))
        self._finish(specs, plan)

    def _finish(self, specs, plan):
        self.specs = tuple(specs)
        slot = {Key(n): i for i, n in enumerate(self.given_names)}
        ng = len(slot)
        for i, s in enumerate(specs):
            if s.writes in slot:
                raise BackpropError(f"{s.writes} is written twice")  # a bug in the plan, not input
            slot[s.writes] = ng + i
        self.n_given, self.n_forward = ng, len(self.eqns)
        self.where = {s.writes: i for i, s in enumerate(specs)}
        self.plan = tuple((fn, tuple(slot[k] for k in keys)) for fn, keys in plan)
        # The hot loop reads arguments with one index or a C itemgetter, not a Python loop.
        run_plan = tuple(
            (fn, args[0] if len(args) == 1 else itemgetter(*args), ng + i, len(args) == 1,
             i < len(self.eqns) and self.eqns[i].module.can_overflow)
            for i, (fn, args) in enumerate(self.plan))
        nf = len(self.eqns)
        self._fwd_plan, self._bwd_plan = run_plan[:nf], run_plan[nf:]
        # values(): arguments by position, 1 to 3 of them (no tuple built per call)
        self._fast_plan = tuple((fn, out, len(args), *args, *(0,) * (3 - len(args)))
                                if len(args) <= 3 else (fn, out, len(args), itemgetter(*args), 0, 0)
                                for fn, args, out in
                                ((fn, args, ng + i) for i, (fn, args) in enumerate(self.plan)))

    def slot(self, key: Key) -> int:
        """Where ``values`` puts the number of this key (a given node or a step's output)."""
        if not key.grad and key.node in self.given_names:
            return self.given_names.index(key.node)
        return self.n_given + self.where[key]

    # --- running ------------------------------------------------------------------------------
    def run(self, given: dict[str, np.ndarray]) -> Trace:
        """One forward and one backward pass on these numbers; nothing is kept if a step fails."""
        # numpy's warnings would only repeat what the checks below (forward) and the renderer's
        # NaN/inf flags (backward) already say, and would land in a notebook's stderr.
        with np.errstate(all="ignore"):
            return self._run(given)

    def values(self, given: dict[str, np.ndarray]) -> list:
        """The same forward (F) and backward (B1), (B2) steps as ``run``, with no Trace and no
        per-step checks: the numbers of every given node and step in one list (see ``slot``).
        Training's fast path; if anything fails or J is not finite, ``run`` is asked for the
        precise error."""
        store = [given[n] for n in self.given_names]
        store.extend([None] * len(self.specs))
        try:            # (the caller sets numpy's errstate once for many passes: it is not free)
            for fn, out, n, a, b, c in self._fast_plan:
                store[out] = (fn(store[a]) if n == 1 else fn(store[a], store[b]) if n == 2
                              else fn(store[a], store[b], store[c]) if n == 3 else fn(*a(store)))
        except Exception:                   # noqa: BLE001 — run() names the step and shapes
            store = None
        if store is None or not math.isfinite(store[self._loss_slot]):
            self.run(given)                 # raises the error that names module, step, shapes
            raise BackpropError("the backward pass gave NaN or inf (see the trace's flags)")
        return store

    @property
    def _loss_slot(self) -> int:
        return self.n_given + self.n_forward - 1

    def _run(self, given):
        store = [given[n] for n in self.given_names]
        store.extend([None] * len(self.specs))
        for i, (fn, arg, out, one, check) in enumerate(self._fwd_plan):   # (F)
            try:
                x = fn(store[arg]) if one else fn(*arg(store))
            except Exception as err:        # noqa: BLE001 — a module may be a learner's code
                raise self._forward_error(i, store, err) from None
            if check and not finite(x):
                raise self._forward_error(i, store, None)
            store[out] = x
        try:
            for fn, arg, out, one, _ in self._bwd_plan:   # seed, (B1), (B2), sums
                store[out] = fn(store[arg]) if one else fn(*arg(store))
        except Exception as err:            # noqa: BLE001 — a module may be a learner's code
            k = next(i for i, s in enumerate(store[self.n_given:]) if s is None)
            s = self.specs[k]
            what = "is not written yet" if isinstance(err, NotImplementedError) else \
                f"failed: {type(err).__name__}: {err}"
            raise BackpropError(f"{s.module or ''} (backward step {k + 1 - self.n_forward}, "
                                f"{s.tag}): computing {s.writes} {what}") from None
        return Trace(self.nodes, self.modules, self.specs, given, store[self.n_given:],
                     self.where)

    def _forward_error(self, i: int, store: list, err) -> BackpropError:
        e = self.eqns[i]
        where = f"{e.name} = {self.modules[i].label} (forward step {i + 1} of {self.n_forward}, (F))"
        ins = [store[j] for j in self.plan[i][1]]
        try:
            e.module.check_inputs(ins, where)
        except BackpropError as specific:
            return specific
        if isinstance(err, NotImplementedError):
            return BackpropError(f"{where}: its forward function is not written yet")
        if err is not None and not isinstance(err, (ValueError, TypeError, IndexError)):
            return BackpropError(f"{where}: {type(err).__name__}: {err}")
        if err is not None:
            shapes = ", ".join(f"{n} is {shape_str(x)}" for n, x in zip(e.inputs, ins))
            params = ", ".join(f"{p} is {shape_str(x)}" for p, x in zip(
                e.params, e.module.params.values()))
            return BackpropError(f"{where}: {err} ({shapes}{'; ' + params if params else ''})")
        bad_in = [n for n, x in zip(e.inputs, ins) if not np.isfinite(x).all()]
        return BackpropError(
            f"{where}: {e.output} contains NaN or inf "
            + (f"(its input {', '.join(bad_in)} already did)" if bad_in else
               "although its inputs are finite (overflow?); inputs: "
               + ", ".join(f"{n} of shape {shape_str(x)}" for n, x in zip(e.inputs, ins))))

    def with_params(self, params: dict[str, np.ndarray]) -> "Program":
        """The same graph with some parameters replaced (by node name), for any module type:
        each module is copied with its new parameters and the plan compiled again."""
        src = self.param_src
        unknown = set(params) - set(src)
        if unknown:
            raise BackpropError(f"no parameter named {sorted(unknown)}; parameters: "
                                f"{', '.join(src)}")
        new_mod = {}
        for e in self.eqns:
            change = {local: params[p] for p, local in zip(e.params, e.module.param_names)
                      if p in params}
            if change and e.module not in new_mod:
                new_mod[e.module] = e.module.with_params(**change)
        eqns = [Eqn(new_mod.get(e.module, e.module), e.name, e.inputs, e.params, e.output)
                for e in self.eqns]
        return Program(self.nodes, eqns, self.input_grad)


# --- recording equations: one path for traced functions and for networks -----------------------

class Recorder:
    """Records equations u[i] = M_i(…) with their nodes; names come from counters.

    Parameters are named by parametric module, from 1, as the notes number layers: W[1], b[1],
    W[2], …; the same module object applied twice shares its parameters.
    """

    def __init__(self):
        self.nodes: list[NodeInfo] = []
        self.eqns: list[Eqn] = []
        self.values: dict[str, np.ndarray] = {}
        self.params_of: dict[int, tuple] = {}     # module position in mods → its param nodes
        self._mods: list = []
        self.counts = {"c": 0, "y": 0, "theta": 0}

    def add_node(self, name, kind, value=None, module=None, display=None) -> str:
        self.nodes.append(NodeInfo(name, kind, module, display))
        if value is not None:
            self.values[name] = value
        return name

    def const(self, value, kind="const") -> str:
        key = "y" if kind == "label" else "c"
        self.counts[key] += 1
        n = self.counts[key]
        name = ("y" if n == 1 else f"y[{n}]") if kind == "label" else f"c[{n}]"
        return self.add_node(name, kind, value)

    def _params(self, mod: M.Module, module_name: str) -> tuple[str, ...]:
        for i, seen in enumerate(self._mods):
            if seen is mod:
                return self.params_of[i]
        self.counts["theta"] += 1
        k = self.counts["theta"]
        shown_names = getattr(mod, "display_names", mod.param_names)
        names = tuple(f"{p}[{k}]" for p in mod.param_names)
        for name, local, shown in zip(names, mod.param_names, shown_names):
            self.add_node(name, "param", getattr(mod, local), module_name,
                          None if shown == local else shown)
        self.params_of[len(self._mods)] = names
        self._mods.append(mod)
        return names

    def equation(self, mod: M.Module, inputs: tuple[str, ...]) -> Eqn:
        """Record u[i] = mod(inputs) as M_i (its value is the caller's to give)."""
        i = len(self.eqns) + 1
        params = self._params(mod, f"M_{i}") if mod.param_names else ()
        eqn = Eqn(mod, f"M_{i}", inputs, params, f"u[{i}]")
        self.eqns.append(eqn)
        self.nodes.append(NodeInfo(eqn.output, "value", eqn.name))
        return eqn

    def program(self, input_grad: bool = True) -> Program:
        last = self.eqns[-1].output
        nodes = [n if n.name != last else NodeInfo(n.name, "loss", n.module) for n in self.nodes]
        return Program(nodes, self.eqns, input_grad)


def as_input(x, name: str) -> np.ndarray:
    """An input, label or constant as our own read-only float copy (values.numeric)."""
    return numeric(x, name)
