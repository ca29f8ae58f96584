"""Programs stored as data and interpreted forward (F) and backward (B1), (B2).

A ``Program`` is the recorded graph: equations u = M(inputs) in order (as JAX's autodidax keeps
a jaxpr). Compiling it once gives the plan of every step, the same for every pass through the
graph; running it on numbers fills in the values and returns a ``Trace``. ``Recorder`` is the one
way equations are recorded: ``bpv.trace(f, x)`` records while f runs on traced values, and
``Sequential`` records its chain the same way, once, without numbers.

**The compiled plan.** Compiling gives two aligned tuples with one entry per step: ``specs``
(what step i is, for the Trace and the learner: its rule, the keys it reads and writes) and
``plan`` (how to compute it: a ``PlanStep``). Every number of a pass lives in one list, the
*store*: first the given values (``given_names``: the input, the parameters θ, the label y,
constants), then one slot per step; ``plan[i]`` computes ``specs[i].writes`` into slot
``n_given + i`` from the slots of the values it reads. The steps, in the order of Algorithm 3:

* (F) u[i] = M_i(inputs) for i = 1 … k: ``fn`` is M_i's forward; J = u[k].
* seed ∂J/∂u[k] = 1.
* then for M_k, …, M_1 (those J depends on): (B2) ∂J/∂θ[i] = B[M_i, θ](v) and (B1)
  ∂J/∂z = B[M_i, z](v) for each input z, with v = ∂J/∂u[i]: ``fn`` reads M_i's inputs, then v;
* (7.53) a value with several users gets one contribution per use from those (B1)/(B2) steps,
  then one more step that adds them (``sum_over_users``), once its last user is done.

``run`` interprets the plan with the checks that protect a learner (a failing or non-finite
forward step names its module, step and shapes; every step's value must be numbers, and a
backward step's of its node's shape, whatever a learner's function returns) and records the
``Trace``; ``values`` is the
same interpretation without checks or Trace (training's fast path): the same functions on the
same arguments, so both give the same numbers bit for bit.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import itemgetter

import numpy as np

from . import modules as M
from . import rules as R
from .errors import BackpropError, brief, shape_str, shape_words
from .keys import Key
from .trace import ModuleInfo, NodeInfo, Trace, base_label, make_spec
from .checks import MAX_NDIM, numeric


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
        consts = tuple(mod.consts.items())
        return ModuleInfo(self.name, type(mod).__name__, self.inputs, self.params, self.output,
                          mod.name, consts, base_label(type(mod), type(mod).__name__, consts))


def _unbroadcast(g, shape):
    """Sum g over the axes that broadcasting added, so ∂J/∂z has the shape of z (§7.4.1). A g
    that is not numbers, or not of a shape that z broadcasts to, is returned as it is: the checked
    run says what is wrong with it."""
    if type(g) is not np.ndarray or g.shape == shape:
        return g
    try:
        if np.broadcast_shapes(g.shape, shape) != g.shape:
            return g
    except ValueError:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g.reshape(shape)


def _input_grad_fn(mod: M.Module, j: int):
    """The (B1) function for input j of mod, as f(*inputs, v)."""
    fn = mod.function("B1", j)
    if len(mod.inputs) == 2 and not isinstance(mod, M.Loss):     # a binary op may broadcast
        return lambda a, b, v: _unbroadcast(_as_array(fn(a, b, v)), np.shape((a, b)[j]))
    return fn


def _as_array(x):
    """A NumPy number (np.float64 …) as a 0-d array; anything else as it is."""
    return np.asarray(x) if isinstance(x, np.generic) and x.dtype.kind in "fiu" else x


def sum_over_users(*contributions):
    """∂J/∂z = Σ over the users M of z of B[M, z](v), their contributions, in use order (the sum
    (7.53)); a step of its own in the plan once the last user of z has written its part."""
    return reduce(np.add, contributions)


_F64 = np.dtype(float)
_ONE = np.ones(())
_ONE.flags.writeable = False


def _seed(J):
    """∂J/∂J = 1: the backward pass starts here (§7.4.2)."""
    ndim = J.ndim if type(J) is np.ndarray else np.ndim(J)
    return _ONE if ndim == 0 else np.ones_like(J)   # same shape as J, e.g. (1,)


def as_numbers(x) -> tuple:
    """A module function's result as numbers: ``(value, "")``, with a float64 array or a
    np.float64 as it is and any other array of real numbers or real number as a float array; or
    ``(None, what it is)`` for a message, "returned {what}": None, text, a list, a tuple, a date,
    a bool, a complex number, a torch tensor (numpy may read one, but a network cannot compute
    with it), an int too large for a float, each with what to write instead."""
    t = type(x)
    if t is np.ndarray:
        kind = x.dtype.kind
        if kind == "f":
            return (x if x.dtype is _F64 else x.astype(float)), ""
        if kind in "iu":
            return x.astype(float), ""
        what = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "text", "O": "objects",
                "M": "dates", "m": "times"}.get(kind, "other things")
        return None, f"an array of {what}, not a NumPy array of floats"
    if t is np.float64:
        return x, ""
    if t is not bool and isinstance(x, (float, int, np.floating, np.integer)):
        try:
            return np.asarray(float(x)), ""
        except OverflowError:
            return None, "a whole number too large for a float (above about 1.8e308)"
    if x is None:
        return None, "None, not a NumPy array of floats (is a `return` missing?)"
    if isinstance(x, (str, bytes)):
        return None, f"the text {brief(x, 30)}, not a NumPy array of floats"
    hint = (" (np.array(…) of numbers is one)" if isinstance(x, (list, tuple)) else
            " (a torch tensor t: t.detach().numpy())"
            if hasattr(x, "__array__") and not isinstance(x, np.generic) else "")
    return None, f"a {t.__name__}, not a NumPy array of floats{hint}"


def err_text(err, n: int = 300) -> str:
    """An exception's text for a message, cut to n characters (a learner's error may quote a
    huge value)."""
    try:
        text = str(err)
    except Exception:                   # noqa: BLE001 — a learner's exception, any error
        text = "(its text cannot be written out)"
    return text if len(text) <= n else text[:n] + "…"


class _WrongResult(Exception):
    """A module's backward function returned something that is not ∂J/∂z: its message."""


_FEW = 16           # up to this many entries, adding them up in Python beats a numpy call


def finite(x, quiet: bool = False) -> bool:
    """Every entry of x is finite. One sum over the entries decides, as it is non-finite whenever
    an entry is (NaN and ±inf carry through): for a few entries Python's sum of them; for more,
    one BLAS dot product x·x, np.vdot, which never warns (``quiet``: numpy's warnings are off, as
    in ``run``, so ndarray.dot, the same product without numpy's function dispatch). If the sum
    overflows although every entry is finite, the entries are checked one by one."""
    if type(x) is np.ndarray:
        n = x.size
        if n == 1:
            return math.isfinite(x.item())          # a single number, such as J
        if n <= _FEW:
            s = sum(x.ravel().tolist())
        elif quiet and x.dtype is _F64:
            r = x.ravel()
            s = r.dot(r)
        else:
            s = np.vdot(x, x)
    else:
        s = np.vdot(x, x)
    return math.isfinite(s) or bool(np.isfinite(x).all())


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of the compiled plan (see the module's docstring): ``store[out] = fn(*args)``
    with the arguments read from the store by slot.

    ``kind`` is the step's rule kind as in its spec: "F", "seed", "B1", "B2" or "acc" (7.53).
    ``fn`` computes the value: M_i's forward (F); the seed ∂J/∂u[k] = 1; B[M_i, θ] (B2);
    B[M_i, z] for input j (B1; for an op of two inputs that broadcast, summed back to z's shape);
    ``sum_over_users`` (7.53).
    ``args`` are the store slots of fn's arguments, in order: M_i's inputs (F); J (seed); M_i's
    inputs, then v = ∂J/∂u[i] (B1, B2); the contributions in use order (7.53).
    ``out`` is the slot it writes: ``n_given + i`` for ``plan[i]``.
    ``check``: the checked run tests this value for NaN/inf (an (F) step of a module that can
    overflow, ``Module.can_overflow``).
    ``n``, ``a``, ``b``, ``c`` repeat ``args`` so that the interpreters read one, two or three
    arguments without building a tuple per step: n = len(args), and a, b, c the first three
    slots (0 where there are fewer). More than three: a sum over more than three users, or a
    module of more than two inputs (the routing module [·]); then fn gets all of ``args``.
    """

    kind: str
    fn: Callable
    args: tuple[int, ...]
    out: int
    check: bool = False
    n: int = 0
    a: int = 0
    b: int = 0
    c: int = 0

    @classmethod
    def make(cls, kind: str, fn: Callable, args: tuple[int, ...], out: int,
             check: bool = False) -> PlanStep:
        a, b, c = (*args[:3], 0, 0, 0)[:3]
        return cls(kind, fn, tuple(args), out, check, len(args), a, b, c)

    def __call__(self, store: list):
        """This step's value from the store (the interpreters inline this for speed)."""
        n, fn = self.n, self.fn
        return (fn(store[self.a]) if n == 1 else fn(store[self.a], store[self.b]) if n == 2
                else fn(store[self.a], store[self.b], store[self.c]) if n == 3
                else fn(*[store[i] for i in self.args]))


class Program:
    """A recorded graph, compiled once into the plan of a forward and a backward pass: ``specs``
    and ``plan``, one entry per step, run by ``run`` (checked, a Trace) or ``values`` (fast)."""

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
        specs, plan = [], []          # plan: (kind, fn, arg keys) per step, aligned with specs
        out = eqns[-1].output
        for e in eqns:                # forward pass (F): u[i] = M_i(u[i−1])
            mod = e.module
            specs.append(make_spec("forward", "F", e.name, None, Key(e.output), e.subs(False),
                                   mod.rule("F"), mod.consts))
            plan.append(("F", mod.function("F"), tuple(map(Key, e.inputs))))

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
        plan.append(("seed", _seed, (Key(out),)))
        for e in reversed(eqns):      # (B2) then (B1) for M_k, …, M_1, as in Algorithm 3
            if e.output not in need or e.output not in users and e.output != out:
                continue
            mod, v, subs = e.module, Key.gradient(e.output), e.subs(True)
            args = tuple(map(Key, e.inputs)) + (v,)
            for p, local in zip(e.params, mod.param_names):      # (B2) ∂J/∂θ[i]
                key = taken[(e.name, p)].pop(0)
                specs.append(make_spec("backward", "B2", e.name, local, key, subs,
                                       mod.rule("B2", local), mod.consts))
                plan.append(("B2", mod.function("B2", local), args))
            for j in e.diff_inputs:                              # (B1) ∂J/∂u[i−1]
                if e.inputs[j] not in need:
                    continue
                key = taken[(e.name, e.inputs[j])].pop(0)
                specs.append(make_spec("backward", "B1", e.name, j, key, subs,
                                       mod.rule("B1", j), mod.consts))
                plan.append(("B1", _input_grad_fn(mod, j), args))
            # every use of these nodes is now done: sum the contributions of reused values (7.53)
            for zn in dict.fromkeys(e.params + e.inputs):
                us = users.get(zn, ())
                if len(us) > 1 and us[0] == e.name:
                    keys = tuple(k for m in dict.fromkeys(us) for k in contrib[(m, zn)])
                    subs_acc = tuple((f"c{i}", k) for i, k in enumerate(keys))
                    specs.append(make_spec("backward", "acc", None, None, Key.gradient(zn),
                                           subs_acc, R.ACC, {"n": len(keys)}))
                    plan.append(("acc", sum_over_users, keys))
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
        nf = self.n_forward
        self.plan = tuple(
            PlanStep.make(kind, fn, tuple(slot[k] for k in keys), ng + i,
                          i < nf and self.eqns[i].module.can_overflow)
            for i, (kind, fn, keys) in enumerate(plan))
        # once per program, not per pass: the plan split where the checks change, how the given
        # values are read into a store, whose steps' slots start empty
        self._forward, self._backward = self.plan[:nf], self.plan[nf:]
        names = self.given_names
        self._read_given = (itemgetter(*names) if len(names) > 1
                            else lambda given, name=names[0]: (given[name],))
        self._blank = [None] * len(self.specs)
        # for each backward step, the slot of the node whose gradient it computes: the step's
        # value must have that node's shape
        self._node_slot = tuple(slot[Key(s.writes.node)] for s in specs[nf:])
        self._eqn = {e.name: e for e in self.eqns}
        self._vetted = False        # see values

    def slot(self, key: Key) -> int:
        """Where ``values`` puts the number of this key (a given node or a step's output)."""
        if not key.grad and key.node in self.given_names:
            return self.given_names.index(key.node)
        return self.n_given + self.where[key]

    # --- running ------------------------------------------------------------------------------
    # numpy's warnings would only repeat what the checks (forward) and the renderer's NaN/inf
    # flags (backward) already say, and would land in a notebook's stderr. (As a decorator,
    # errstate costs half of what a ``with`` block does: it is paid on every pass.)
    @np.errstate(all="ignore")
    def run(self, given: dict[str, np.ndarray], forward: list | None = None) -> Trace:
        """One forward and one backward pass on these numbers, checked, recorded as a Trace;
        nothing is kept if a step fails. ``forward``: the values u[1] … u[k] already computed
        (by tracing, on these numbers), checked as the pass would check them, not computed again.

        The checked interpreter of ``plan``: each (F) step's value must be numbers (a learner's
        forward may return None, text, a tuple), and that of a module that can overflow is
        checked for NaN/inf; a failing, non-numeric or non-finite forward step raises a
        BackpropError that names the module, the step and the shapes (``_forward_error``). Each
        backward step's value must be numbers of the shape of the node it is a gradient of (a
        learner's backward may return None, text, 10**400, an array of another shape); a failing
        or wrong one raises a BackpropError that names the step, the module's function, what it
        returned and the shapes (``_gradient``). NaN and inf in the backward pass are kept: they
        are data (the slope of √z at 0 is inf), recorded in the trace and flagged ⚠ in red where
        a step is drawn."""
        store = [*self._read_given(given), *self._blank]
        for s in self._forward:                                 # (F)
            if forward is not None:
                x = forward[s.out - self.n_given]
            else:
                try:
                    n, fn = s.n, s.fn
                    x = (fn(store[s.a]) if n == 1 else fn(store[s.a], store[s.b]) if n == 2
                         else fn(store[s.a], store[s.b], store[s.c]) if n == 3
                         else fn(*[store[j] for j in s.args]))
                except Exception as err:    # noqa: BLE001 — a module may be a learner's code
                    raise self._forward_error(s.out - self.n_given, store, err) from None
                if type(x) is not np.ndarray or x.dtype is not _F64:
                    x, what = as_numbers(x)             # a learner's forward may return anything
                    if x is None:
                        raise self._forward_error(s.out - self.n_given, store, None, what)
            if s.check and not finite(x, True):
                raise self._forward_error(s.out - self.n_given, store, None)
            store[s.out] = x
        try:
            for s, k in zip(self._backward, self._node_slot):   # seed, (B2), (B1), sums (7.53)
                n, fn = s.n, s.fn                       # mostly B[M, z](v): two arguments
                x = (fn(store[s.a], store[s.b]) if n == 2 else fn(store[s.a]) if n == 1
                     else fn(store[s.a], store[s.b], store[s.c]) if n == 3
                     else fn(*[store[j] for j in s.args]))
                # ∂J/∂z is numbers of z's shape (a learner's backward may return anything)
                node = store[k]
                if type(x) is not np.ndarray or x.dtype is not _F64 or \
                        type(node) is not np.ndarray or x.shape != node.shape:
                    x = self._gradient(s.out - self.n_given, x, store)
                store[s.out] = x
        except _WrongResult as wrong:
            raise BackpropError(str(wrong)) from None
        except Exception as err:            # noqa: BLE001 — a module may be a learner's code
            # the first step whose value is missing (by identity: an array == None compares
            # entry by entry)
            k = next(i for i, x in enumerate(store[self.n_given:]) if x is None)
            s = self.specs[k]
            what = "is not written yet" if isinstance(err, NotImplementedError) else \
                f"failed: {type(err).__name__}: {err_text(err)}"
            raise BackpropError(f"{self._backward_where(k)}: computing {s.writes} {what}") \
                from None
        return Trace(self.nodes, self.modules, self.specs, given, store[self.n_given:],
                     self.where)

    def _backward_where(self, k: int) -> str:
        """Step k of the backward pass as a message names it: 'M_2 (backward step 3, (7.57))'."""
        s = self.specs[k]
        return f"{s.module or ''} (backward step {k + 1 - self.n_forward}, {s.tag})"

    def _gradient(self, k: int, x, store: list):
        """Step k's value x (a gradient ∂J/∂z or one user's contribution to it) as numbers of z's
        shape, or a _WrongResult naming the module, its function, the step and the shapes."""
        s = self.specs[k]
        node = store[self._node_slot[k - self.n_forward]]
        x, what = as_numbers(x)
        if x is not None and np.shape(x) == np.shape(node):
            return x
        eqn = self._eqn.get(s.module)
        fn = (f"{type(eqn.module).__name__}."
              f"{s.rule.method or ('param_grads' if s.kind == 'B2' else 'backward')}"
              if eqn is not None else "the pass")
        want = f"must return a NumPy array of shape {shape_str(node)}, the shape of {s.node}"
        head = f"{self._backward_where(k)}: computing {s.writes} failed: "
        if x is None:
            kind = "OverflowError" if what.startswith("a whole number") else "TypeError"
            return self._wrong(f"{head}{kind}: {s.writes}, which {s.module or 'the pass'} ("
                               f"{s.rule.label} {s.tag}) returned as {what}; {fn} {want}")
        read = ""
        if eqn is not None:
            names = [f"{sym} = {n}" for sym, n in zip(eqn.module.inputs, eqn.inputs)]
            names.append(f"v = {Key.gradient(eqn.output)}")
            read = ", ".join(f"{n} is {shape_str(store[j])}"
                             for n, j in zip(names, self.plan[k].args))
        return self._wrong(f"{head}ValueError: {fn} returned {shape_words(x)}; it {want}"
                           + (f" (it read {read})" if read else ""))

    @staticmethod
    def _wrong(message: str):
        raise _WrongResult(message)

    def values(self, given: dict[str, np.ndarray]) -> list:
        """The same forward (F) and backward (B1), (B2) steps as ``run``, with no Trace and no
        per-step checks: the numbers of every given node and step in one list (see ``slot``).
        Training's fast path, the unchecked interpreter of ``plan``; if anything fails or J is
        not finite, ``run`` is asked for the precise error."""
        store = [*self._read_given(given), *self._blank]
        try:            # (the caller sets numpy's errstate once for many passes: it is not free)
            for s in self.plan:
                n, fn = s.n, s.fn
                store[s.out] = (fn(store[s.a]) if n == 1 else fn(store[s.a], store[s.b]) if n == 2
                                else fn(store[s.a], store[s.b], store[s.c]) if n == 3
                                else fn(*[store[j] for j in s.args]))
        except Exception:                   # noqa: BLE001 — run() names the step and shapes
            store = None
        if store is None or not finite(store[self.loss_slot]):      # J may have shape (1,)
            self.run(given)                 # raises the error that names module, step, shapes
            raise BackpropError("the backward pass gave NaN or inf (see the trace's flags)")
        if not self._vetted:
            # once per program: every backward value is numbers of its node's shape (a learner's
            # backward may return anything, and training would subtract it from θ); if one is
            # not, run() says which step and what it returned
            nf = self.n_given + self.n_forward
            for s, k in zip(self._backward, self._node_slot):
                x = as_numbers(store[s.out])[0]
                if x is None or np.shape(x) != np.shape(store[k]):
                    self.run(given)
                    raise BackpropError(f"step {s.out - nf + 1} of the backward pass did not "
                                        f"give numbers of its node's shape")
            self._vetted = True
        return store

    @property
    def loss_slot(self) -> int:
        """The store slot of J = u[k], the output of the last forward step."""
        return self.n_given + self.n_forward - 1

    def _forward_error(self, i: int, store: list, err, returned: str = "") -> BackpropError:
        """The error of forward step i: its function raised err, returned something that is not
        numbers (``returned`` says what), or (both empty) its value has NaN or inf."""
        e = self.eqns[i]
        where = f"{e.name} = {self.modules[i].label} (forward step {i + 1} of {self.n_forward}, (F))"
        if returned:
            return BackpropError(f"{where}: {type(e.module).__name__}.forward returned {returned}")
        ins = [store[j] for j in self.plan[i].args]
        try:
            e.module.check_inputs(ins, where)
        except BackpropError as specific:
            return specific
        if isinstance(err, NotImplementedError):
            return BackpropError(f"{where}: its forward function is not written yet")
        if err is not None and not isinstance(err, (ValueError, TypeError, IndexError)):
            return BackpropError(f"{where}: {type(err).__name__}: {err_text(err)}")
        if err is not None:
            shapes = ", ".join(f"{n} is {shape_str(x)}" for n, x in zip(e.inputs, ins))
            params = ", ".join(f"{p} is {shape_str(x)}" for p, x in zip(
                e.params, e.module.params.values()))
            return BackpropError(f"{where}: {err_text(err)} ({shapes}"
                                 f"{'; ' + params if params else ''})")
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
    """An input, label or constant as our own read-only float copy (``checks.numeric``).

    A non-empty float64 array, the usual case (once per pass), is copied and checked here with
    the cheapest calls that give numeric's result; anything else, and any array that fails the
    check, goes to ``numeric``, which converts it or says what is wrong."""
    if type(x) is np.ndarray and x.dtype is _F64 and x.size and x.ndim <= MAX_NDIM:
        arr = x.copy(order="K")            # as np.array(x, dtype=float): same values and layout
        if finite(arr):
            arr.setflags(False)             # write=False (positional: cheaper)
            return arr
    return numeric(x, name)
