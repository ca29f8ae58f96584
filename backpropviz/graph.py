"""Programs stored as data and interpreted forward (F) and backward (B1), (B2).

A ``Program`` is the recorded graph: equations u = M(inputs) in order. Compiling it once gives the
plan of every step (the same for every pass through this graph); running it on numbers fills in
the values and returns a ``Trace``. ``Sequential`` builds the chain J = M_k(…M_1(x)) of (7.60);
``trace(f, x)`` records any composition of modules and ops by running f on traced values.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import reduce
from operator import itemgetter

import numpy as np

from . import modules as M
from .errors import BackpropError, shape_str
from .trace import ModuleInfo, NodeInfo, StepSpec, Trace, grad_key


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
        return (0,) if isinstance(self.module, M.Loss) else tuple(range(len(self.inputs)))

    def subs(self, v_key: str | None = None) -> dict[str, str]:
        """Placeholders of the module's formulas → keys: z (or a, b), y, W, b, v."""
        mod, ins = self.module, self.inputs
        if isinstance(mod, M.Loss):
            d = {"z": ins[0], "y": ins[1]}
        elif len(ins) == 2:
            d = {"a": ins[0], "b": ins[1]}
        else:
            d = {"z": ins[0]}
        d.update(zip(mod.param_names, self.params))
        if v_key is not None:
            d["v"] = v_key
        return d


def _unbroadcast(g, shape):
    """Sum g over the axes that broadcasting added, so ∂J/∂z has the shape of z (§7.4.1)."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g.reshape(shape)


def _input_grad_fn(mod: M.Module, j: int):
    """The (B1) function for input j of mod, as f(*inputs, v)."""
    if isinstance(mod, M.Loss):
        return mod.backward                                   # backward(t, y, v)
    if mod.arity == 1:
        return mod.backward                                   # backward(z, v)
    ins_fn = lambda a, b, v: _unbroadcast(np.asarray(mod.backward(a, b, v)[j]), np.shape((a, b)[j]))
    return ins_fn


def _acc(*contributions):
    """∂J/∂z = Σ over the users of z of their contributions (the sum in (7.53))."""
    return reduce(np.add, contributions)


_ONE = np.ones(())
_ONE.flags.writeable = False


def _seed(J):
    """∂J/∂J = 1: the backward pass starts here (§7.4.2)."""
    return _ONE if np.ndim(J) == 0 else np.ones_like(J)   # same shape as J, e.g. (1,)


def _finite(v) -> bool:
    # vdot is cheap and is non-finite whenever an entry is; overflow is re-checked exactly.
    s = np.vdot(v, v)
    return math.isfinite(s) or bool(np.isfinite(v).all())


class Program:
    """A recorded graph, compiled once into the plan of a forward and a backward pass."""

    def __init__(self, nodes: list[NodeInfo], eqns: list[Eqn], param_src: dict[str, tuple],
                 input_grad: bool = True):
        self.nodes = tuple(nodes)
        self.input_grad = input_grad
        self.eqns = tuple(eqns)
        self.param_src = param_src          # parameter node → (module, local name)
        self.modules = tuple(self._module_info(e) for e in eqns)
        self._compile()

    # --- static structure -------------------------------------------------------------------
    @staticmethod
    def _module_info(e: Eqn) -> ModuleInfo:
        mod = e.module
        if mod.name is not None:
            label = mod.name
        elif isinstance(mod, M.MM):
            label = f"MM[{e.params[0]}, {e.params[1]}]"
        else:
            label = mod.label
        return ModuleInfo(e.name, label, type(mod).__name__, e.inputs, e.params, e.output)

    def _needs_grad(self) -> set[str]:
        kinds = {n.name: n.kind for n in self.nodes}
        wanted = ("param", "input") if self.input_grad else ("param",)
        need = {n for n, k in kinds.items() if k in wanted}
        for e in self.eqns:
            if e.params or any(e.inputs[j] in need for j in e.diff_inputs):
                need.add(e.output)
        return need

    def _compile(self):
        nodes, eqns = self.nodes, self.eqns
        self.given_names = [n.name for n in nodes if n.kind in ("input", "param", "label", "const")]
        specs: list[StepSpec] = []
        plan: list[tuple] = []       # (fn, arg keys, module name) per step, aligned with specs
        out = eqns[-1].output

        for e in eqns:               # forward pass (F): u[i] = M_i(u[i−1])
            mod = e.module
            specs.append(StepSpec("forward", "F", "(F)", e.name, e.inputs + e.params, e.output,
                                  e.output, mod.formula_F, tuple(e.subs().items())))
            plan.append((mod.forward, e.inputs, e.name))

        # backward pass: seed ∂J/∂u[k] = 1, then (B2) and (B1) for M_k, …, M_1
        need = self._needs_grad()
        live = {out}                 # nodes J depends on: dead branches get no backward steps
        for e in reversed(eqns):
            if e.output in live:
                live.update(e.inputs + e.params)
        users: dict[str, list[str]] = {}                  # node → names of the modules using it
        for e in eqns:
            if e.output in live:
                for z in e.params + tuple(e.inputs[j] for j in e.diff_inputs):
                    if z in need:
                        users.setdefault(z, []).append(e.name)
        keys_of: dict[str, list[str]] = {}                # node → the keys its users write
        contrib: dict[tuple, list[str]] = {}              # (module, node) → keys, in use order
        for z, us in users.items():
            for n, m in enumerate(us):
                key = grad_key(z) if len(us) == 1 else f"{grad_key(z)} via {m}" + (
                    f" ({n + 1})" if us.count(m) > 1 else "")
                keys_of.setdefault(z, []).append(key)
                contrib.setdefault((m, z), []).append(key)

        specs.append(StepSpec("backward", "seed", "(§7.4.2)", None, (out,), grad_key(out), out, "1"))
        plan.append((_seed, (out,), None))
        for e in reversed(eqns):
            if e.output not in need or e.output not in live:
                continue
            mod, v = e.module, grad_key(e.output)
            fsubs = e.subs(v)
            for pi, p in enumerate(e.params):        # (B2) ∂J/∂θ[i] = B[M_i, θ[i]](∂J/∂u[i])
                key = contrib[(e.name, p)].pop(0)
                specs.append(StepSpec("backward", "B2", mod.param_tags[pi], e.name,
                                      (e.inputs[0], v), key, p, mod.param_formulas[pi],
                                      tuple(fsubs.items())))
                plan.append((getattr(mod, "grad_" + mod.param_names[pi]), (e.inputs[0], v), e.name))
            for j in e.diff_inputs:                  # (B1) ∂J/∂u[i−1] = B[M_i, u[i−1]](∂J/∂u[i])
                z = e.inputs[j]
                if z not in need:
                    continue
                key = contrib[(e.name, z)].pop(0)
                tmpl = mod.formula_B1 if isinstance(mod.formula_B1, str) else mod.formula_B1[j]
                specs.append(StepSpec("backward", "B1", mod.tag_B1, e.name, e.inputs + e.params + (v,),
                                      key, z, tmpl, tuple(fsubs.items())))
                plan.append((_input_grad_fn(mod, j), e.inputs + (v,), e.name))
            # every use of these nodes is now done: sum the contributions of reused values (7.53)
            for z in dict.fromkeys(e.params + e.inputs):
                if len(users.get(z, ())) > 1 and users[z][0] == e.name:
                    keys = tuple(keys_of[z])
                    specs.append(StepSpec("backward", "acc", "(7.53)", None, keys, grad_key(z), z,
                                          " + ".join("{c%d}" % i for i in range(len(keys))),
                                          tuple(("c%d" % i, k) for i, k in enumerate(keys))))
                    plan.append((_acc, keys, None))

        self.specs = tuple(specs)
        slot = {k: i for i, k in enumerate(self.given_names)}
        ng = len(slot)
        for i, s in enumerate(specs):
            if s.writes in slot:
                raise BackpropError(f"{s.writes} is written twice")  # a bug in the plan, not input
            slot[s.writes] = ng + i
        self.n_given, self.n_forward = ng, len(eqns)
        self.where = {s.writes: i for i, s in enumerate(specs)}
        self.plan = tuple((fn, tuple(slot[k] for k in keys), mod) for fn, keys, mod in plan)
        # The hot loop reads arguments with one index or a C itemgetter, not a Python loop.
        run_plan = tuple(
            (fn, args[0] if len(args) == 1 else itemgetter(*args), ng + i, len(args) == 1,
             i < len(eqns) and eqns[i].module.can_overflow)
            for i, (fn, args, _) in enumerate(self.plan))
        self._fwd_plan, self._bwd_plan = run_plan[:len(eqns)], run_plan[len(eqns):]

    # --- running ------------------------------------------------------------------------------
    def run(self, given: dict[str, np.ndarray]) -> Trace:
        """One forward and one backward pass on these numbers; nothing is kept if a step fails."""
        # numpy's warnings would only repeat what the checks below (forward) and the renderer's
        # NaN/inf flags (backward) already say, and would land in a notebook's stderr.
        with np.errstate(all="ignore"):
            return self._run(given)

    def _run(self, given):
        store = [given[n] for n in self.given_names]
        store.extend([None] * len(self.specs))
        for i, (fn, arg, out, one, check) in enumerate(self._fwd_plan):   # (F)
            try:
                v = fn(store[arg]) if one else fn(*arg(store))
            except (ValueError, TypeError, IndexError) as err:
                raise self._forward_error(i, store, err) from None
            if check and not _finite(v):
                raise self._forward_error(i, store, None)
            store[out] = v
        for fn, arg, out, one, _ in self._bwd_plan:   # seed, (B1), (B2), accumulations
            store[out] = fn(store[arg]) if one else fn(*arg(store))
        ng = self.n_given
        return Trace(self.nodes, self.modules, self.specs, given, store[ng:], self.where)

    def _forward_error(self, i: int, store: list, err) -> BackpropError:
        e, spec = self.eqns[i], self.specs[i]
        where = f"{e.name} = {self.modules[i].label} (forward step {i + 1} of {self.n_forward}, (F))"
        ins = [store[self.plan[i][1][j]] for j in range(len(e.inputs))]
        if err is not None:
            try:
                e.module.check_input(ins[0], where)
            except BackpropError as specific:
                return specific
            shapes = ", ".join(f"{n} is {shape_str(a)}" for n, a in zip(e.inputs, ins))
            params = ", ".join(f"{p} is {shape_str(a)}" for p, a in zip(
                e.params, (getattr(e.module, q) for q in e.module.param_names)))
            return BackpropError(f"{where}: {err} ({shapes}{'; ' + params if params else ''})")
        try:
            e.module.check_input(ins[0], where)
        except BackpropError as specific:
            return specific
        bad_in = [n for n, a in zip(e.inputs, ins) if not np.isfinite(a).all()]
        return BackpropError(
            f"{where}: {spec.writes} = {spec.fill()} contains NaN or inf "
            + (f"(its input {', '.join(bad_in)} already did)" if bad_in else
               "although its inputs are finite (overflow?); inputs: "
               + ", ".join(f"{n} of shape {shape_str(a)}" for n, a in zip(e.inputs, ins))))


def _as_input(x, name: str) -> np.ndarray:
    try:
        a = np.array(x, dtype=float)
    except (TypeError, ValueError):
        raise BackpropError(f"{name}: the input must be numeric (a number, list or array of "
                            f"numbers); got {type(x).__name__} {str(x)[:40]!r}") from None
    if not _finite(a):
        raise BackpropError(f"{name}: the input contains NaN or inf: {a.ravel()[:5]}")
    a.flags.writeable = False       # our own copy, shared read-only with the trace
    return a


# --- Sequential: J = M_k(M_{k−1}(⋯M_1(x))) (7.60) ---------------------------------------------

class Sequential:
    """The chain J = M_k(⋯M_1(x)) of (7.60); u[0] = x, u[i] = M_i(u[i−1]) (F).

    ``loss`` (a Loss) becomes the last module M_k with the label y; without one, the last module's
    output must be a single number. Parameters are named by MM module from 1: W[1], b[1], W[2], …
    """

    def __init__(self, modules, loss: M.Loss | str | None = None):
        modules = list(modules)
        if not modules:
            raise BackpropError("Sequential: a network needs at least one module; got an empty list")
        if isinstance(loss, str):
            loss = _loss_named(loss)
        for i, m in enumerate(modules, 1):
            if not isinstance(m, M.Module) or isinstance(m, M.Loss) or m.arity != 1:
                raise BackpropError(f"Sequential: M_{i} must be a one-input module such as MM or "
                                    f"ReLU (a loss goes in loss=); got {m!r}")
            if m.param_names and any(m is prev for prev in modules[:i - 1]):
                j = next(n for n, prev in enumerate(modules, 1) if prev is m)
                raise BackpropError(f"Sequential: M_{i} is the same {type(m).__name__} object as "
                                    f"M_{j}; a chain gives each module its own parameters. To "
                                    f"share parameters, apply the module twice inside bpv.trace(f, x)")
        if loss is not None and not isinstance(loss, M.Loss):
            raise BackpropError(f"Sequential: loss must be a Loss such as SquaredLoss(); got {loss!r}")
        self.layers, self.loss = modules, loss
        self._check_sizes()
        self._programs: dict[bool, Program] = {}

    def _check_sizes(self):
        prev = None           # (module index, label, its output size)
        n_mm = 0
        for i, m in enumerate(self.layers, 1):
            if isinstance(m, M.MM):
                n_mm += 1
                if prev is not None and prev[2] != m.n_in:
                    raise BackpropError(
                        f"Sequential: M_{i} = MM[W[{n_mm}], b[{n_mm}]] has W of shape "
                        f"{shape_str(m.W)}, so it takes {m.n_in} inputs, but {prev[1]} gives "
                        f"{prev[2]} outputs")
                prev = (i, f"M_{i} = MM[W[{n_mm}], b[{n_mm}]]", m.n_out)

    @property
    def modules(self) -> list[M.Module]:
        return self.layers + ([self.loss] if self.loss is not None else [])

    def program(self, input_grad: bool = False) -> Program:
        """The compiled graph, built once per network (the numbers change, the plan does not)."""
        if input_grad not in self._programs:
            self._programs[input_grad] = self._build(input_grad)
        return self._programs[input_grad]

    def _build(self, input_grad: bool) -> Program:
        nodes = [NodeInfo("u[0]", "input")]
        eqns, param_src, n_mm = [], {}, 0
        for i, m in enumerate(self.modules, 1):
            params = ()
            if m.param_names:
                n_mm += 1
                names = getattr(m, "display_names", m.param_names)
                params = tuple(f"{p}[{n_mm}]" for p in m.param_names)
                for p, local, shown in zip(params, m.param_names, names):
                    nodes.append(NodeInfo(p, "param", f"M_{i}", None if shown == local else shown))
                    param_src[p] = (m, local)
            ins = (f"u[{i - 1}]",) + (("y",) if isinstance(m, M.Loss) else ())
            out = f"u[{i}]"
            eqns.append(Eqn(m, f"M_{i}", ins, params, out))
        if self.loss is not None:
            nodes.append(NodeInfo("y", "label"))
        for e in eqns:
            last = e is eqns[-1]
            nodes.append(NodeInfo(e.output, "loss" if last else "value", e.name))
        return Program(nodes, eqns, param_src, input_grad)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every parameter by name: W[1], b[1], W[2], …"""
        prog = self.program()
        return {p: getattr(m, local) for p, (m, local) in prog.param_src.items()}

    def backprop(self, x, y=None, input_grad: bool = False) -> Trace:
        """One forward and one backward pass, every step recorded (F), (B1), (B2)."""
        prog = self.program(input_grad)
        x = _as_input(x, "u[0] (the input x)")
        given = {"u[0]": x}
        for p, (m, local) in prog.param_src.items():
            given[p] = m.__dict__[local]
        if self.loss is not None:
            if y is None:
                raise BackpropError(f"M_{len(self.modules)} = {self.loss.label}: the loss needs a "
                                    f"label y: call backprop(x, y)")
            t_shape = self._output_shape(x)
            where = f"M_{len(self.modules)} = {self.loss.label} (forward step {len(self.modules)})"
            y = self.loss.check_label(np.empty(t_shape), _as_input(y, f"{where}: the label y"), where)
            given["y"] = y
        elif math.prod(self._output_shape(x)) != 1:
            raise BackpropError(
                f"M_{len(self.modules)}: without a loss the last module's output is J and must "
                f"be a single number, but for an input of shape {shape_str(x)} it has shape "
                f"{shape_str(np.empty(self._output_shape(x)))}; pass loss=")
        return prog.run(given)

    def _output_shape(self, x) -> tuple:
        n = x.shape[1:] if x.ndim == 2 else ()
        for m in reversed(self.layers):
            if isinstance(m, M.MM):
                return (m.n_out,) + n
        return x.shape

    def forward(self, x) -> np.ndarray:
        """The network's output u[k−1] (before the loss), for prediction."""
        u = _as_input(x, "u[0] (the input x)")
        for m in self.layers:
            u = m.forward(u)
        return u

    def with_params(self, params: dict) -> "Sequential":
        """A copy with some parameters replaced (by name: W[1], b[2], …)."""
        prog = self.program()
        unknown = set(params) - set(prog.param_src)
        if unknown:
            raise BackpropError(f"no parameter named {sorted(unknown)}; parameters: "
                                f"{', '.join(prog.param_src)}")
        by_module = {}
        for p, (m, local) in prog.param_src.items():
            by_module.setdefault(id(m), {})[local] = params.get(p, getattr(m, local))
        layers = []
        for m in self.layers:
            if isinstance(m, M.MM):
                d = by_module[id(m)]
                layers.append(M.MM(d["W"], d["b"], name=m.name, param_names=m.display_names))
            else:
                layers.append(m)
        return Sequential(layers, self.loss)

    def __repr__(self):
        body = ", ".join(repr(m) for m in self.layers)
        return f"Sequential([{body}], loss={self.loss!r})"


def _loss_named(name: str) -> M.Loss:
    if name not in M.LOSSES:
        raise BackpropError(f"unknown loss {name!r}; choose one of: {', '.join(M.LOSSES)}")
    return M.LOSSES[name]()


def mlp(sizes, activation: str = "relu", loss: str | None = "logistic", seed: int = 0,
        output_activation: str | None = None) -> Sequential:
    """An MLP (7.72): MM[W[1], b[1]], σ, MM[W[2], b[2]], σ, …, MM[W[r], b[r]], then the loss.

    Weights are drawn N(0, 2/(n_in + n_out)) from ``numpy.random.default_rng(seed)``; biases are
    0.01, so a unit whose inputs are all 0 does not sit exactly on ReLU's kink (where backprop's
    σ'(0) = 0 and finite differences disagree).
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(n, (int, np.integer)) or n < 1 for n in sizes):
        raise BackpropError(f"mlp: sizes must be at least two positive integers "
                            f"(input, …, output); got {sizes}")
    if activation not in M.ACTIVATIONS:
        raise BackpropError(f"mlp: unknown activation {activation!r}; choose one of: "
                            f"{', '.join(M.ACTIVATIONS)}")
    if output_activation is not None and output_activation not in M.ACTIVATIONS:
        raise BackpropError(f"mlp: unknown output activation {output_activation!r}; choose one "
                            f"of: {', '.join(M.ACTIVATIONS)}")
    loss_module = _loss_named(loss) if loss is not None else None
    rng = np.random.default_rng(seed)
    layers: list[M.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))
        layers.append(M.MM(W, np.full(n_out, 0.01)))
        if i < len(sizes) - 2:
            layers.append(M.ACTIVATIONS[activation]())
    if output_activation is not None:
        layers.append(M.ACTIVATIONS[output_activation]())
    return Sequential(layers, loss_module)


# --- tracing any composition of modules and ops ---------------------------------------------------

class _Recorder:
    def __init__(self):
        self.nodes: list[NodeInfo] = []
        self.eqns: list[Eqn] = []
        self.values: dict[str, np.ndarray] = {}
        self.param_src: dict[str, tuple] = {}
        self.params_of: dict[M.Module, tuple] = {}
        self.counts = {"c": 0, "y": 0, "mm": 0}

    def add_node(self, name, kind, value, module=None, display=None):
        self.nodes.append(NodeInfo(name, kind, module, display))
        self.values[name] = value
        return Var(self, name, value)

    def const(self, value, kind="const") -> "Var":
        key = "y" if kind == "label" else "c"
        self.counts[key] += 1
        n = self.counts[key]
        name = ("y" if n == 1 else f"y[{n}]") if kind == "label" else f"c[{n}]"
        return self.add_node(name, kind, _as_input(value, f"the {kind} {name}"))


_ACTIVE: list[_Recorder] = []


class Var:
    """A value being traced: arithmetic on it records a module application."""

    __slots__ = ("rec", "name", "value")
    __array_priority__ = 1000   # so that ndarray ⊕ Var calls Var's reflected operator

    def __init__(self, rec, name, value):
        self.rec, self.name, self.value = rec, name, value

    @property
    def shape(self):
        return self.value.shape

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
        if not isinstance(p, (int, float)):
            raise BackpropError(f"power: the exponent must be a constant number; got {p!r}")
        return _apply(M.Power(p), (self,))

    def exp(self): return _apply(M.Exp(), (self,))
    def log(self): return _apply(M.Log(), (self,))
    def sin(self): return _apply(M.Sin(), (self,))
    def cos(self): return _apply(M.Cos(), (self,))
    def sum(self): return _apply(M.Sum(), (self,))
    def relu(self): return _apply(M.ReLU(), (self,))
    def sigmoid(self): return _apply(M.Sigmoid(), (self,))
    def tanh(self): return _apply(M.Tanh(), (self,))

    def __repr__(self):
        return f"Var({self.name}, shape {shape_str(self.value)})"


def _apply(mod: M.Module, args) -> Var:
    """Record u = mod(args) as the next equation M_i and compute its value."""
    rec = next((a.rec for a in args if isinstance(a, Var)), None)
    if rec is None or not _ACTIVE or rec is not _ACTIVE[-1]:
        raise BackpropError(f"{mod.label}: traced values can only be used inside bpv.trace(f, …)")
    i = len(rec.eqns) + 1
    is_loss = isinstance(mod, M.Loss)
    ins = []
    for j, a in enumerate(args):
        if isinstance(a, Var):
            ins.append(a)
        else:
            ins.append(rec.const(a, "label" if is_loss and j == 1 else "const"))
    params = ()
    if mod.param_names:
        if mod not in rec.params_of:          # the same module object shares its parameters
            rec.counts["mm"] += 1
            k = rec.counts["mm"]
            names = getattr(mod, "display_names", mod.param_names)
            params = tuple(f"{p}[{k}]" for p in mod.param_names)
            for p, local, shown in zip(params, mod.param_names, names):
                rec.add_node(p, "param", getattr(mod, local), f"M_{i}",
                             None if shown == local else shown)
                rec.param_src[p] = (mod, local)
            rec.params_of[mod] = params
        params = rec.params_of[mod]
    eqn = Eqn(mod, f"M_{i}", tuple(a.name for a in ins), params, f"u[{i}]")
    where = f"M_{i} = {mod.name or mod.label} (forward step {i}, (F))"
    values = [a.value for a in ins]
    if is_loss:
        values[1] = mod.check_label(values[0], values[1], where)
        rec.values[ins[1].name] = values[1]
    try:
        mod.check_input(values[0], where)
        with np.errstate(all="ignore"):     # non-finite values are reported by the run below
            out = np.asarray(mod.forward(*values), dtype=float)
    except BackpropError:
        raise
    except (ValueError, TypeError) as err:
        raise BackpropError(f"{where}: {err} (inputs: " + ", ".join(
            f"{a.name} is {shape_str(v)}" for a, v in zip(ins, values)) + ")") from None
    rec.eqns.append(eqn)
    rec.nodes.append(NodeInfo(eqn.output, "value", eqn.name))
    rec.values[eqn.output] = out
    return Var(rec, eqn.output, out)


def _check_input_names(names: list, n: int) -> None:
    """One unique name per input, none that the recorder gives to other nodes or keys."""
    if len(names) != n or not all(isinstance(x, str) and x.strip() for x in names):
        raise BackpropError(f"trace: names must give one non-empty name per input ({n}); "
                            f"got {names!r}")
    ours = re.compile(r"(u|c|y)\[\d+\]$|y$")
    for x in names:
        if names.count(x) > 1 or (ours.match(x) and not (n == 1 and x == "u[0]")) \
                or " via " in x or x.startswith("dJ/d"):
            raise BackpropError(f"trace: the input name {x!r} is repeated or clashes with the "
                                f"names backprop gives (u[i], c[i], y, 'dJ/d…', '… via M_i')")


def trace(f, *inputs, names=None) -> Trace:
    """Record J = f(x) for any composition of modules and ops, then run (F) and (B1), (B2).

    f takes traced values (one per input) and returns a single number J; every op and module it
    applies becomes a module M_i with output u[i]. One input is named u[0]; several are x[1], x[2]….
    """
    if not inputs:
        raise BackpropError("trace: give f at least one input, e.g. trace(f, np.array([1.0, 2.0]))")
    if names is None:
        names = ["u[0]"] if len(inputs) == 1 else [f"x[{j}]" for j in range(1, len(inputs) + 1)]
    _check_input_names(list(names), len(inputs))
    rec = _Recorder()
    xs = [rec.add_node(n, "input", _as_input(x, f"{n} (input {j + 1} of f)"))
          for j, (n, x) in enumerate(zip(names, inputs))]
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
    nodes = [n if n.name != J.name else NodeInfo(n.name, "loss", n.module) for n in rec.nodes]
    prog = Program(nodes, rec.eqns, rec.param_src)
    return prog.run({n: rec.values[n] for n in prog.given_names})
