"""One module expanded in place (the Stepper's "expand"): a module-level pass in which one module
M_i is shown at scalar level, as the atomic operations of the scalar circuit (Theorem 7.4.1), and
every other module stays at module level.

Routing modules (core/modules/routing.py) connect the two levels: (·)ᵢ gives each entry of the
expanded module's inputs and parameters a node of its own, and [·] gathers its scalar outputs back
into the module-level u[i] for the next module; both move numbers only, so their backward steps
are (7.58). The expanded trace is built and run with the ordinary ``Program``: the operations keep
the scalar circuit's names and ``part_of``, and the rest keeps the module-level names, values and
gradients. ``expanded_step`` and ``unexpanded_step`` map module-level steps to steps of the
expanded trace and back.

Names. What a learner met in the module view keeps its name: with M_1 expanded, ReLU is still
M_2 and the loss still M_4. Everything inside M_1 is named by it: its operations are M_1.1,
M_1.2, … exactly as in the scalar circuit (the same product W_ij z_j is M_1.1 in both views); the
routing steps, which are no operations of the circuit, are M_1.in1, M_1.in2, … (the (·)ᵢ, in the
order they run) and M_1.out (the [·] back into u[1]).
"""
from __future__ import annotations

import numpy as np

from ..core import modules as M
from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.modules import Entry, Stack
from ..core.program import Eqn, Program
from ..core.trace import ModuleInfo, NodeInfo, Trace
from .circuit import Circuit, circuit, decomposition_reason

__all__ = ["expand", "Expanded", "expandable", "expanded_step", "unexpanded_step"]


def _module_of(mi: ModuleInfo, given) -> M.Module:
    """A module object again from its ModuleInfo and the parameter values of a trace."""
    cls = M.REGISTRY.get(mi.op)
    if cls is None:
        raise BackpropError(f"expand: unknown module type {mi.op!r}")
    consts = dict(mi.consts)
    params = {local: given[p] for local, p in zip(cls.param_names, mi.params)}
    if mi.op == "MM":
        mod = M.MM(params["W"], params["b"])
    elif mi.op == "Power":
        mod = M.Power(consts["p"])
    elif mi.op == "Index":
        shape, pos = M.index_from_consts(consts)
        mod = M.Index(pos, shape)
    else:
        try:
            mod = cls()
        except TypeError:
            mod = object.__new__(cls)
            mod.name = None
        for local, val in params.items():
            setattr(mod, local, val)
    mod.name = mi.given_name
    return mod


class Expanded(Trace):
    """A module-level pass with one module expanded into its atomic operations: routing steps
    (·)ᵢ split its inputs and parameters into entries, its operations work on single numbers,
    and [·] puts its output back together for the next module. ``source`` is the module-level
    trace, ``expanded`` the name of the expanded module there, ``names`` maps every module of
    this trace to the module-level module it belongs to."""

    __slots__ = ("source", "expanded", "names", "_done")

    @property
    def n_forward(self) -> int:
        return sum(1 for s in self.specs if s.phase == "forward")

    def __repr__(self):
        return (f"<Expanded {self.expanded}: {len(self.modules)} modules, {len(self.specs)} "
                f"steps, J = {self.loss:.6g}>")


def expandable(trace: Trace) -> list:
    """The modules of a module-level trace that ``expand`` can open ([] if none can)."""
    if isinstance(trace, (Circuit, Expanded)) or decomposition_reason(trace):
        return []
    return [mi for mi in trace.modules]


def expand(trace: Trace, module: str) -> Expanded:
    """``trace`` with one module (``"M_1"``) at scalar level, the others at module level.

    The expanded module's operations are those of the scalar circuit (same names M_1.1, …, same
    ``part_of``); routing modules (·)ᵢ (M_1.in1, …) give each entry of its inputs and parameters
    a node of its own, and [·] (M_1.out) gathers its scalar outputs back into the module-level
    u[i]. Built and run with the ordinary ``Program``: module names, node names, values and
    gradients of the rest are the module-level ones.
    """
    if isinstance(trace, Expanded):
        trace = trace.source
    if isinstance(trace, Circuit):
        trace = trace.source
    if not isinstance(trace, Trace):
        raise BackpropError(f"expand: give a module-level trace; got {type(trace).__name__}")
    names = [mi.name for mi in trace.modules]
    if module not in names:
        raise BackpropError(f"expand: no module named {module!r}; modules: {', '.join(names)}")
    reason = decomposition_reason(trace)
    if reason:
        raise BackpropError(reason)
    k = names.index(module)
    mi = trace.modules[k]
    c = circuit(trace)
    st = c.structure
    info = st.node_info()
    owners = st.op_owner[st.order]
    ops = np.flatnonzero(owners == k).tolist()
    const_names = {st.names[i] for i, _, owner in st.builder.const_values if owner == k}
    made = {st.modules[r].output for r in ops}
    by_name = {n.name: n for n in trace.nodes}
    # entries of module-level nodes the operations read: split off by (·)ᵢ, in order of use
    entry_of = {}
    for src in dict.fromkeys(mi.inputs + mi.params):
        ids = st.ids[src]
        for pos, i in enumerate(ids.ravel().tolist()):
            entry_of[st.names[i]] = (src, pos, ids.shape)
    needed = []
    for r in ops:
        for t in st.modules[r].inputs:
            if t not in made and t not in const_names and t not in by_name and t not in needed:
                if t not in entry_of:
                    raise BackpropError(f"expand: {t} is not an entry of {mi.name}'s inputs "
                                        f"(a bug)")
                needed.append(t)
    eqns, owner_of = [], {}
    extra_nodes = []                      # nodes made by the expansion, in order
    for j, m in enumerate(trace.modules):
        if j != k:
            mod = _module_of(m, trace.given)
            eqns.append(Eqn(mod, m.name, m.inputs, m.params, m.output))
            owner_of[m.name] = m.name
            continue
        first = len(eqns)
        for i, t in enumerate(needed, 1):                     # (·)ᵢ: split into entries
            src, pos, shape = entry_of[t]
            n = f"{m.name}.in{i}"
            eqns.append(Eqn(Entry(pos, shape), n, (src,), (), t))
            extra_nodes.append(NodeInfo(t, "value", n, None, info[t].part_of))
        for r in ops:                                         # the atomic operations
            op = st.modules[r]
            n = op.name                                       # as in the circuit: M_1.3
            eqns.append(Eqn(st.op_mods[r], n, op.inputs, (), op.output))
            p = info[op.output]
            kind = by_name[op.output].kind if op.output in by_name else "value"
            extra_nodes.append(NodeInfo(op.output, kind, n, None, p.part_of))
        out_ids = st.ids[mi.output]
        if out_ids.ndim:                                      # [·]: back into u[i]
            n = f"{m.name}.out"
            eqns.append(Eqn(Stack(out_ids.shape), n,
                            tuple(st.names[i] for i in out_ids.ravel().tolist()), (), mi.output))
        for e in eqns[first:]:
            owner_of[e.name] = m.name
    # nodes: the module-level ones, with the expansion's before u[i]
    readers = {}
    for e in eqns:
        for t in e.inputs + e.params:
            readers.setdefault(t, e.name)
    nodes = []
    consts = [NodeInfo(t, "const", None, None, info[t].part_of) for t in
              sorted(const_names, key=lambda s: st.id_of[s])]
    for nd in trace.nodes:
        if nd.name == mi.output:
            nodes.extend(consts)
            nodes.extend(x for x in extra_nodes if x.name != nd.name)
            if out_ids.ndim:
                nodes.append(NodeInfo(nd.name, nd.kind, eqns[
                    [e.output for e in eqns].index(nd.name)].name, nd.display))
            else:
                nodes.append(next(x for x in extra_nodes if x.name == nd.name))
            continue
        if nd.kind == "param":
            owner = nd.module if nd.module != mi.name else readers.get(nd.name)
            nodes.append(NodeInfo(nd.name, nd.kind, owner, nd.display))
        else:                            # made by a module that stays whole, under its name
            nodes.append(nd)
    given = dict(trace.given)
    for t in const_names:
        given[t] = c.given[t]
    input_grad = any(Key.gradient(n.name) in trace for n in trace.nodes if n.kind == "input")
    program = Program(nodes, eqns, input_grad)
    t = program.run(given)
    out = Expanded(t.nodes, t.modules, t.specs, t.given, t.outputs, program.where)
    out.source, out.expanded, out.names, out._done = trace, module, owner_of, None
    return out


def _done_at(x: Expanded) -> np.ndarray:
    """For every module-level step k, the step of the expanded trace at which it is complete
    (the step writing the same key; a step with no such key: the last matched step before it)."""
    if x._done is not None:
        return x._done
    src = x.source
    rename = {}
    for new, old in x.names.items():
        rename.setdefault(old, []).append(new)
    where = {}
    for i, s in enumerate(x.specs, 1):
        w = s.writes
        where.setdefault(w, i)
        if w.user is not None and x.names.get(w.user) != x.expanded:
            where.setdefault(Key(w.node, w.grad, x.names[w.user], w.n), i)
    nf_src, nf = src.n_forward, x.n_forward
    done = np.zeros(len(src.specs) + 1, dtype=np.int64)
    for k, s in enumerate(src.specs, 1):
        w = s.writes
        hit = where.get(w)
        if hit is None and w.user is not None:
            hit = where.get(w.total)
        prev = done[k - 1]
        if hit is None:
            hit = prev if k != nf_src + 1 else nf + 1
        done[k] = max(hit, prev)
    done[nf_src] = min(done[nf_src], nf) if nf_src else 0
    done[-1] = len(x.specs)
    x._done = done
    return done


def expanded_step(x: Expanded, k: int) -> int:
    """The step of the expanded trace at which module-level step k is complete (0 ↔ 0)."""
    k = x.source.check_step(k)
    return int(_done_at(x)[k])


def unexpanded_step(x: Expanded, j: int) -> int:
    """The module-level step whose work step j of the expanded trace is part of: the first one
    complete at or after it (0 ↔ 0)."""
    j = x.check_step(j)
    done = _done_at(x)
    return int(min(np.searchsorted(done, j, side="left"), len(x.source.specs)))
