"""The scalar circuit: the same pass at the granularity of atomic operations (Theorem 7.4.1).

``bpv.circuit(trace)`` takes a module-level trace (``net.backprop(x, y)`` or ``bpv.trace(f, x)``)
and returns the pass as the notes' Remark 7.4.3 describes it for the proof of Theorem 7.4.1: a
composition of N atomic operations on single numbers (+, −, ×, ÷, exp, log,
max(0, ·), σ, tanh, sin, cos, (·)^p, id), each with its forward value (F) and its backward rule
(B1) from the rule table, the sums (7.53) where a number has several users, and the seed
∂J/∂J = 1. It is a ``Trace``, so stepping, text, drawing and JSON work on it unchanged.

Names. Entries of the module-level values keep their node's name with subscripts counted from 1,
as the notes write z_1, …, z_n: ``u[1]₂`` is entry 2 of u[1], ``W[1]₁,₂`` the entry in row 1 and
column 2 of W[1], and in a batch (one example per column) ``u[1]₂,₃`` is entry 2 of example 3.
Numbers inside a module (the products W_ij z_j, the partial sums) are ``s[1]``, ``s[2]``, … in
the order they are computed; constants the decomposition needs (the 1 in 1 + e^t, ½, 1/B)
continue the module-level c[k]. Every node records what it belongs to in ``NodeInfo.part_of``:
(module-level module, module-level node, 0-based index of the entry). The operations are named
by the module they open, so that the names the module view taught stay: M_1.1, M_1.2, … are
M_1's operations in the order they are computed (its products W_ij z_j and its sums), then M_2.1,
…; the theorem's M_1, …, M_N are these N operations, counted across the modules. Single numbers
are written in TeX as the notes write entries, W^{[1]}_{1,2} (core/keys.py), and a product of two
of them with × (core/expr.py): ⊙ is the notes' product of vectors.

Steps. The forward steps go module by module and, within a module, entry by entry (the products
of u[1]₁, then its additions, then those of u[1]₂, …); then the seed ∂J/∂J = 1 (labelled "seed",
as at module level: in the circuit J comes out of an addition or a multiplication); then,
for M_N back to M_1, the (B1) step of every input that needs a gradient and the sum (7.53) of
each number with several users once its last contribution is in: exactly what ``Program`` makes
of these equations. ``circuit.counts`` counts them (see ``Counts``). ``to_modules`` and
``to_circuit`` map circuit steps to module-level steps and back (the Stepper's granularity
switch).

The parts live in their own files: decompose.py (how each module class is written as atomic
operations), engine.py (the compiled structure, its cache and the vectorised passes) and
expand.py (one module expanded in place, the rest at module level).
"""
from __future__ import annotations

import numpy as np

from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.numerics import readonly
from ..core.program import Program
from ..core.trace import ModuleInfo, NodeInfo, Trace
from .decompose import decomposition
from .engine import Counts, GivenValues, Structure, compile_structure, entry_name

__all__ = ["circuit", "Circuit", "Counts", "entry_name", "to_circuit", "to_modules",
           "decomposition_reason"]


# --- the circuit as a trace ------------------------------------------------------------------

class Circuit(Trace):
    """A trace at scalar granularity: every step is an atomic operation on single numbers.

    ``source`` is the module-level trace it expands; ``counts`` the operation counts
    (Theorem 7.4.1); ``entries(name)``, ``module_value(name)`` and ``module_grad(name)`` go from
    a module-level node to its scalar nodes and back.
    """

    __slots__ = ("source", "structure", "_val", "_grad", "_numbers")

    def __init__(self, structure: Structure, source: Trace, val, grad, out):
        st = structure
        super().__init__(st.nodes, st.modules, st.specs, GivenValues(st.given_index, val), out,
                         st.where)
        self.source, self.structure, self._val, self._grad = source, structure, val, grad
        self._numbers = out                    # every step's number, one array

    def __getitem__(self, key: Key) -> np.ndarray:
        i = self.structure.where.get(key) if isinstance(key, Key) else None
        if i is not None:
            return readonly(self._numbers[i])
        return super().__getitem__(key)

    @property
    def counts(self) -> Counts:
        """Forward operations N, backward operations, by kind and by module-level module."""
        return self.structure.counts

    @property
    def program(self) -> Program:
        """The scalar program (its ``run`` computes the same numbers one operation at a time)."""
        return self.structure.program()

    def module(self, name: str) -> ModuleInfo:
        m = self.structure.module_info().get(name)
        if m is None:
            n = self.counts.forward_by_module.get(name) if isinstance(name, str) else None
            if n:                    # a module of the module view: say what it opened into
                raise BackpropError(f"{name} is a module-level module; the circuit names its {n} "
                                    f"operations {name}.1 … {name}.{n}")
            raise BackpropError(f"no module named {name!r}")
        return m

    @property
    def n_forward(self) -> int:
        return self.structure.counts.steps[0]

    def node(self, name: str) -> NodeInfo:
        n = self.structure.node_info().get(name)
        if n is None:
            self._module_level(name, "module_value", "")
            return super().node(name)          # says which names there are
        return n

    def value(self, name: str) -> np.ndarray:
        self._module_level(name, "module_value", "")
        return super().value(name)

    def grad(self, name: str, via: str | None = None, n: int = 0) -> np.ndarray:
        self._module_level(name, "module_grad", "∂J/∂")
        return super().grad(name, via, n)

    def _module_level(self, name, method: str, of: str) -> None:
        """A module-level node (W[1]) asked of the circuit, whose nodes are single numbers (its
        entries W[1]₁,₁ …): say so and where its numbers are, instead of listing every node."""
        st = self.structure
        if not isinstance(name, str) or name in st.node_info() or name not in st.ids:
            return
        first = st.names[st.ids[name].ravel()[:3]].tolist()
        more = ", …" if st.ids[name].size > 3 else ""
        raise BackpropError(
            f"{name} is a module-level node; the scalar circuit's nodes are single numbers, its "
            f"entries ({', '.join(first)}{more}): circuit.{method}({name!r}) gives {of}{name} "
            f"put together from them (circuit.entries({name!r}) names them)")

    # what is known when: shared by every circuit of the structure, found once
    def known_at(self, key: Key) -> float:
        return self.structure.known_at().get(key, float("inf"))

    def travelled_at(self, module: str, node: str) -> float:
        return self.structure.travelled_at().get((module, node), float("inf"))

    # --- module level ↔ scalar level ------------------------------------------------------------
    def _ids(self, name: str) -> np.ndarray:
        ids = self.structure.ids.get(name)
        if ids is None:
            names = self.source.node_names       # a few, not thousands (a long trace)
            raise BackpropError(f"no module-level node named {str(name)[:60]!r}; nodes: "
                                f"{', '.join(names[:24])}"
                                + (f", … ({len(names)} in all)" if len(names) > 24 else ""))
        return ids

    def entries(self, name: str) -> np.ndarray:
        """The scalar nodes of a module-level node, with its shape (an array of names)."""
        ids = self._ids(name)
        return self.structure.names[ids.ravel()].reshape(ids.shape)

    def module_value(self, name: str) -> np.ndarray:
        """A module-level value put together from its entries' scalar values."""
        return readonly(self._val[self._ids(name)], copy=False)

    def module_grad(self, name: str) -> np.ndarray:
        """∂J/∂(a module-level node) put together from the scalar gradients; an entry that J
        does not depend on has gradient 0 (Remark 7.4.2)."""
        self.source.grad(name)             # says why, if the module-level pass has none
        return readonly(self._grad[self._ids(name)], copy=False)

    def __repr__(self):
        c = self.counts
        return (f"<Circuit: {c.forward} operations from {len(self.source.modules)} modules, "
                f"{len(self.specs)} steps ({self.n_forward} forward), J = {self.loss:.6g}>")


def circuit(trace, *args, expand: str | None = None) -> Circuit:
    """The pass at scalar granularity: ``bpv.circuit(trace)`` or ``bpv.circuit(net, x, y)``.

    Every +, ×, exp, max(0, ·), … on single numbers is an atomic operation (M_1.3: the third of
    M_1's) with its forward value (F) and its backward rule (B1), (7.58); see decompose.py for
    the decompositions and this module's docstring for the names (u[1]₂ is entry 2 of u[1]).

    ``expand="M_1"``: only that module at scalar level, the rest at module level
    (``expand.expand``).
    """
    if expand is not None:
        from .expand import expand as expand_one         # expand.py builds on this file
        if args or not isinstance(trace, Trace):
            trace = circuit(trace, *args).source
        return expand_one(trace, expand)
    if args or not isinstance(trace, Trace):
        backprop = getattr(trace, "backprop", None)
        if backprop is None:
            raise BackpropError(f"circuit: give a trace (net.backprop(x, y), bpv.trace(f, x)) or "
                                f"a network and its x, y; got {type(trace).__name__}")
        trace = backprop(*args)
    if isinstance(trace, Circuit):
        return trace
    empty = _empty_reason(trace)
    if empty:
        raise BackpropError(f"circuit: {empty}")
    st = compile_structure(trace)
    val, grad, out = st.values(trace)
    return Circuit(st, trace, val, grad, out)


def _empty_reason(trace: Trace) -> str:
    """A value with no numbers (5000000×0, from a file) has no scalar nodes to decompose into."""
    for n in trace.nodes:
        key = Key(n.name)
        if key in trace and np.size(trace[key]) == 0:
            return (f"{n.name} has no numbers (shape "
                    f"{'×'.join(map(str, np.shape(trace[key])))}): the scalar circuit has one "
                    f"node per number")
    return ""


# --- module-level steps ↔ circuit steps (the Stepper's granularity switch) --------------------

def decomposition_reason(trace: Trace) -> str:
    """Why no scalar circuit can be built from this trace ('' if every module decomposes)."""
    if isinstance(trace, Circuit):
        return ""
    empty = _empty_reason(trace)
    if empty:
        return empty
    for mi in trace.modules:
        try:
            decomposition(mi)
        except BackpropError as e:
            return str(e)
    return ""


def _step_map(c: Circuit) -> np.ndarray:
    """For every circuit step j (index j, 0 … len(c)), the module-level step whose work it is.

    A forward step belongs to the (F) step of the module that owns its operation (``part_of``);
    the seed to the seed; a backward step writing (a contribution to) the gradient of an entry
    of a module-level node T, inside the operations of module-level module O, to the
    module-level step of O that writes the gradient of T (a sum (7.53) of T's entries to the
    module-level sum of T where there is one); the gradient of a number inside a module (a
    product, a partial sum) to the module-level step of the next circuit step that has one: the
    module-level step that completes at or after it.
    """
    st = c.structure
    hit = st.derived.get("step_map")
    if hit is not None and hit[0] is c.source.specs:
        return hit[1]
    src = c.source
    f_step, by_target, acc_step = {}, {}, {}
    seed = 0
    for k, s in enumerate(src.specs, 1):
        if s.kind == "F":
            f_step[s.module] = k
        elif s.kind == "seed":
            seed = k
        elif s.kind == "acc":
            acc_step[s.node] = k
        else:
            by_target.setdefault((s.module, s.node), []).append((s.which, k))
    info, ops = st.node_info(), st.module_info()
    out = np.zeros(len(c.specs) + 1, dtype=np.int64)        # 0: not known yet
    owner = None
    for j, s in enumerate(c.specs, 1):
        if s.kind == "F":
            out[j] = f_step.get(info[s.node].part_of[0], 0)
            continue
        if s.kind == "seed":
            out[j] = seed
            continue
        target = info[s.node].part_of[1]
        if s.kind == "B1":
            owner = info[ops[s.module].output].part_of[0]
        elif target in acc_step:                 # a sum (7.53) of a module-level sum
            out[j] = acc_step[target]
            continue
        cands = by_target.get((owner, target))
        if cands:
            same = [k for w, k in cands if w == s.which]
            out[j] = same[0] if len(same) == 1 else cands[-1][1]
    # numbers inside a module: the module-level step of the next circuit step that has one
    nxt = 0
    for j in range(len(c.specs), 0, -1):
        if out[j]:
            nxt = out[j]
        else:
            out[j] = nxt or len(src.specs)
    st.derived["step_map"] = (src.specs, out)
    return out


def to_modules(c: Circuit, j: int) -> int:
    """The module-level step (of ``c.source``) whose work circuit step j is part of (0 ↔ 0)."""
    j = c.check_step(j)
    return int(_step_map(c)[j])


def to_circuit(c: Circuit, k: int) -> int:
    """The circuit step at which module-level step k is complete: for (F) of M_i, the step that
    writes the last entry of u[i]; for (B1), (B2) and the sums, the step after which every entry
    of that gradient (or contribution) is known; the seed ↔ the circuit's seed; 0 ↔ 0.
    A module-level step with no circuit work of its own (a sum of contributions that go to
    different entries) is complete when the last of the steps before it is."""
    k = c.source.check_step(k)
    m = _step_map(c)
    last = c.structure.derived.get("last_of")
    if last is None or last[0] is not m:
        done = np.zeros(len(c.source.specs) + 1, dtype=np.int64)
        np.maximum.at(done, m, np.arange(m.size))
        done = np.where(done > 0, done, np.maximum.accumulate(done))
        last = c.structure.derived["last_of"] = (m, done)
    return int(last[1][k])

