"""The vectorised engine of the scalar circuit: its compiled structure and how it computes.

How it is computed. The structure (nodes, operations, steps) depends only on the module graph and
the shapes, so it is compiled once and cached (keyed by the module graph and the shapes; traces of
one network share their steps, so the last structure of those steps is found by identity;
``clear_caches`` forgets them). Each example is then a few dozen NumPy calls on three arrays: the
operations are kept in the groups the decompositions create (decompose.py: all products of an MM,
its chains of additions, an activation on every entry, one loss operation), and

* the forward pass runs the groups in order on one array of values, each with its module
  class's own forward function on arrays; a group of chains is a cumulative sum, which adds in
  the chain's order (the same numbers as one addition at a time);
* the backward pass runs them in reverse on one array of gradients seeded with ∂J/∂J = 1, each
  group applying its rule (the module class's own backward function, on arrays), writing its
  (B1) values into a third array and adding them into the gradients of its inputs (np.add.at
  where an input is used several times: the sums (7.53)); inputs that need no gradient (labels,
  constants) are skipped, and a chain passes the gradient of its result straight to its terms;
* every step's number is then one gather from the three arrays, through an index array made
  with the structure.

The nodes' names and the steps are those circuit.py describes; ``Program.run`` on the same scalar
program (``Structure.program``) makes the same steps with the same numbers, one operation at a
time (the tests check both).
"""
from __future__ import annotations

import gc
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core import rules as R
from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.modules.routing import subscript
from ..core.numerics import readonly
from ..core.program import Eqn, Program
from ..core.trace import ModuleInfo, NodeInfo, StepSpec, Trace, base_label
from .decompose import KIND, Builder, ChainGroup, OpGroup, decomposition

__all__ = ["Structure", "compile_structure", "structure_key", "clear_caches", "CACHE_SIZE",
           "Counts", "GivenValues", "GroupRunner", "ChainRunner", "entry_name", "SUM_KIND"]

_CACHE: OrderedDict = OrderedDict()      # structure key → Structure, most recent last
_RECENT: dict = {}       # id of a compiled program's steps → (those steps, given shapes, structure)
CACHE_SIZE = 8            # a circuit of 100,000 operations takes about 400 MB
SUM_KIND = "sum (7.53)"


def entry_name(node: str, index: tuple) -> str:
    """The name of one entry: u[1]₂ (entry 2 of u[1]), W[1]₁,₂; a single number keeps its name."""
    if not index:
        return node
    return node + subscript(index)


# --- the compiled structure of one module graph -----------------------------------------------

@dataclass(frozen=True)
class Counts:
    """Operation counts of a scalar circuit: N forward, backward ≤ c·N (Theorem 7.4.1).

    ``forward`` is N, the number of atomic operations. ``backward`` counts the backward pass's
    operations: one per (B1) step (each a constant number of arithmetic operations on single
    numbers) and n − 1 additions for each sum (7.53) of n contributions; the seed ∂J/∂J = 1 is no
    operation. ``by_kind`` keys are mul, add, exp, …, and "sum (7.53)"; ``by_module`` keys are the
    module-level modules M_1, M_2, … (a sum is counted with the module whose backward step uses
    the number first). ``steps`` are the numbers of forward and backward steps of the trace.
    """

    forward: int
    backward: int
    forward_by_kind: dict
    backward_by_kind: dict
    forward_by_module: dict
    backward_by_module: dict
    steps: tuple

    @property
    def ratio(self) -> float:
        """backward / forward: by Theorem 7.4.1 bounded by a constant, whatever N is."""
        return self.backward / self.forward if self.forward else 0.0

    def __str__(self):
        lines = [f"forward operations N = {self.forward}; backward operations = {self.backward} "
                 f"({self.ratio:.2f} N); steps: {self.steps[0]} forward, {self.steps[1]} backward"]
        kinds = list(dict.fromkeys([*self.forward_by_kind, *self.backward_by_kind]))
        lines.append("  by kind:   " + ", ".join(
            f"{k} {self.forward_by_kind.get(k, 0)}/{self.backward_by_kind.get(k, 0)}"
            for k in kinds) + "  (forward/backward)")
        mods = list(dict.fromkeys([*self.forward_by_module, *self.backward_by_module]))
        lines.append("  by module: " + ", ".join(
            f"{m} {self.forward_by_module.get(m, 0)}/{self.backward_by_module.get(m, 0)}"
            for m in mods))
        return "\n".join(lines)

    __repr__ = __str__


class GivenValues(Mapping):
    """The given numbers of a circuit (entries of x, θ, y and the constants), read from the array
    of values when asked: a circuit has hundreds of them, and most are never looked at one by one."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict, values: np.ndarray):
        self._index, self._values = index, values

    def __getitem__(self, name):
        return readonly(self._values[self._index[name]])

    def __contains__(self, name):
        return name in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)


class Structure:
    """Everything about a circuit that does not depend on the numbers: nodes, operations,
    steps (F), (B1), (7.53), the groups that compute them, and where each step's number comes
    from. ``derived``: what other code computes once from a structure (circuit.py's maps between
    module-level and circuit steps), kept with it."""

    def __init__(self, trace: Trace):
        b = Builder()
        shapes = {n.name: np.shape(trace.value(n.name)) for n in trace.nodes}
        self.given_layout = [(n.name, shapes[n.name]) for n in trace.nodes if n.name in trace.given]
        ids: dict[str, np.ndarray] = {}
        for name, shape in self.given_layout:
            ids[name] = b.alloc(shape)
        self.n_given = b.n
        self.module_names = [mi.name for mi in trace.modules]
        for k, mi in enumerate(trace.modules):
            b.owner, first = k, b.n
            fn = decomposition(mi)
            out = fn(b, mi, shapes, *[ids[n] for n in mi.inputs], *[ids[p] for p in mi.params])
            out = np.asarray(out, dtype=np.int64)
            if out.shape != shapes[mi.output]:      # a decomposition that does not fit is a bug
                raise BackpropError(f"circuit: {mi.name} gives {out.shape}, not "
                                    f"{shapes[mi.output]}")
            ids[mi.output] = b.own_entries(out, first)
        self.ids, self.shapes, self.builder = ids, shapes, b
        self.derived: dict = {}
        self._number_operations(trace, b)
        self._make_nodes(trace, b)
        self._make_engine(b)
        self._make_specs()

    # -- operations, in the order a learner steps through them -----------------------------------
    def _number_operations(self, trace, b):
        """Flatten the groups into operations; order them module by module, and within a module
        entry by entry (the products of u[1]₁, its additions, then u[1]₂, …)."""
        ins, outs, group, owner = [], [], [], []
        for g_i, g in enumerate(b.groups):
            i, o = g.op_inputs()
            ins.append(i if i.shape[0] == 2 else np.vstack([i, np.full_like(i, -1)]))
            outs.append(o)
            group.append(np.full(o.size, g_i))
            owner.append(np.full(o.size, g.owner))
        op_in = np.concatenate(ins, axis=1) if ins else np.zeros((2, 0), np.int64)
        op_out = np.concatenate(outs)
        op_group, op_owner = np.concatenate(group), np.concatenate(owner)
        n_nodes = b.n
        producer = np.full(n_nodes, -1, dtype=np.int64)        # node id → operation (creation)
        producer[op_out] = np.arange(op_out.size)
        node_owner = np.full(n_nodes, -1, dtype=np.int64)
        node_owner[op_out] = op_owner
        # the entry of its module's output that each operation helps compute: from the outputs
        # back through the module's own operations
        entry = np.full(n_nodes, -1, dtype=np.int64)
        for k, mi in enumerate(trace.modules):
            entry[self.ids[mi.output].ravel()] = np.arange(self.ids[mi.output].size)
        for g in reversed(b.groups):
            if g.chain:
                row = entry[g.out[:, -1]]
                entry[g.out] = row[:, None]
                targets, values = g.terms, np.broadcast_to(row[:, None], g.terms.shape)
            else:
                targets = np.concatenate(g.ins)
                values = np.tile(entry[g.out], len(g.ins))
            own = (node_owner[targets] == g.owner) & (entry[targets] < 0)
            entry[targets[own]] = values[own]
        entry[(entry < 0) & (node_owner >= 0)] = 0
        op_entry = entry[op_out]
        order = np.lexsort((np.arange(op_out.size), op_group, op_entry, op_owner))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        made_by = producer[np.where(op_in >= 0, op_in, 0)]
        before = np.where((op_in >= 0) & (made_by >= 0), rank[made_by], -1)
        if np.any(before >= rank[None, :]):        # a decomposition that mixes entries: keep
            order = np.arange(op_out.size)         # the order of creation, which is topological
            rank = order.copy()
        self.order = order
        self.op_in, self.op_out, self.op_group = op_in, op_out, op_group
        self.op_owner, self.node_entry = op_owner, entry

    # -- names and nodes ------------------------------------------------------------------------
    def _make_nodes(self, trace, b):
        """Every node's name and NodeInfo (given entries, constants, then the operations' outputs
        in step order) and every operation's ModuleInfo."""
        names = np.empty(b.n, dtype=object)
        info: list = [None] * b.n
        by_name = {n.name: n for n in trace.nodes}
        for name, shape in self.given_layout:               # entries of x, θ, y, constants
            n = by_name[name]
            owner = n.module if n.kind == "param" else None
            for i, idx in zip(self.ids[name].ravel(), _indices(shape)):
                names[i] = entry_name(name, idx)
                info[i] = NodeInfo(names[i], n.kind, None, None, (owner, name, idx))
        taken = set(by_name)
        numbers = [int(m[1]) for t in taken for m in [re.fullmatch(r"c\[(\d+)\]", t)] if m]
        c_next = 1 + max(numbers, default=0)
        mods = trace.modules
        for i, value, owner in b.const_values:               # constants of the decompositions
            names[i] = f"c[{c_next}]"
            c_next += 1
            info[i] = NodeInfo(names[i], "const", None, None,
                               (mods[owner].name, mods[owner].output, ()))
        self.const_ids = np.array([i for i, _, _ in b.const_values], dtype=np.int64)
        self.const_vals = np.array([v for _, v, _ in b.const_values], dtype=float)
        prefix = "s"
        while any(re.fullmatch(re.escape(prefix) + r"\[\d+\]", t) for t in taken):
            prefix += "′"
        entry_of = {}                                         # an output that is a module entry
        for mi in mods:
            for i, idx in zip(self.ids[mi.output].ravel(), _indices(self.shapes[mi.output])):
                entry_of[int(i)] = entry_name(mi.output, idx)
        outs = self.op_out[self.order]
        k = 0
        for o in outs.tolist():
            if o in entry_of:
                names[o] = entry_of[o]
            else:
                k += 1
                names[o] = f"{prefix}[{k}]"
        J_name = mods[-1].output
        J_kind = by_name[J_name].kind
        owners = self.op_owner[self.order].tolist()
        entries = self.node_entry[outs].tolist()
        group_mod = [g.mod for g in b.groups]
        self.op_mods = [group_mod[g] for g in self.op_group[self.order].tolist()]
        ins = self.op_in[:, self.order]
        part = [[(mi.name, mi.output, idx) for idx in _indices(self.shapes[mi.output])]
                for mi in mods]                      # what an operation's output belongs to
        op_text = {id(m): (type(m).__name__, tuple(m.consts.items()),
                           base_label(type(m), type(m).__name__, m.consts.items()))
                   for m in group_mod}
        modules = []
        count = [0] * len(mods)                      # operations of each module so far
        for o, owner, e, mod, a, c in zip(outs.tolist(), owners, entries, self.op_mods,
                                          ins[0].tolist(), ins[1].tolist()):
            count[owner] += 1
            name = f"{mods[owner].name}.{count[owner]}"        # M_1.3: M_1's third operation
            info[o] = _fast(NodeInfo, name=names[o], kind="value", module=name, display=None,
                            part_of=part[owner][e])
            op, consts, symbol = op_text[id(mod)]
            modules.append(_fast(ModuleInfo, name=name, op=op, inputs=(names[a],) if c < 0 else
                                 (names[a], names[c]), params=(), output=names[o],
                                 given_name=None, consts=consts, symbol=symbol))
        J = info[outs[-1]] if outs.size else None
        if J is not None and J.name == J_name:
            info[outs[-1]] = NodeInfo(J.name, J_kind, J.module, None, J.part_of)
        node_order = list(range(self.n_given)) + self.const_ids.tolist() + outs.tolist()
        self.nodes = tuple(info[i] for i in node_order)
        self.modules = tuple(modules)
        if len(set(names.tolist())) != b.n:
            raise BackpropError("circuit: two scalar nodes got the same name; rename the inputs "
                                "(names such as u[1]₂ are given to the entries of u[1])")
        self.names = names
        self.id_of = {t: i for i, t in enumerate(names.tolist())}
        self.given_index = {names[i]: i for i in node_order[:self.n_given + self.const_ids.size]}
        self.J = self.id_of[J_name]
        self.input_grad = any(Key.gradient(n.name) in trace for n in trace.nodes
                              if n.kind == "input")

    # -- the steps: what Program's compile makes of these equations, built from the arrays ------
    def _make_specs(self):
        """The steps (F) for every operation, the seed, then for M_N, …, M_1 the (B1) steps of
        the inputs that need a gradient and the sums (7.53) of the values with several users, in
        the order ``Program`` gives them (a test checks that both agree), with where each
        step's number is found and the operation counts."""
        n = self.builder.n
        outs = self.op_out[self.order].tolist()
        ins_a, ins_b = (x.tolist() for x in self.op_in[:, self.order])
        mods, names, J = self.op_mods, self.names.tolist(), self.J
        need, users = self._needs(outs, ins_a, ins_b)
        vkey = [Key(t) for t in names]
        gkey = [Key(t, True) if need[i] or i == J else None for i, t in enumerate(names)]
        mname = [m.name for m in self.modules]
        rules = _RuleTable()
        specs, src = [], []
        fwd_subs = []
        for r, (mod, a, c, o) in enumerate(zip(mods, ins_a, ins_b, outs)):   # (F)
            syms, rule, at = rules.forward(mod)
            subs = ((syms[0], vkey[a]),) if c < 0 else ((syms[0], vkey[a]), (syms[1], vkey[c]))
            fwd_subs.append(subs)
            specs.append(_spec("forward", "F", mname[r], None, vkey[o], subs, rule,
                               _reads(subs, at)))
        src += outs
        specs.append(_spec("backward", "seed", None, None, gkey[J], (), R.SEED, ()))
        src.append(n + J)

        def contribution(z, r, j):
            if len(users[z]) == 1:
                return gkey[z]
            return Key(names[z], True, mname[r], (j + 1) if ins_a[r] == ins_b[r] else 0)

        slot = (self.slot_of_op[self.order] + 2 * n).tolist()
        stride = self.op_stride[self.order].tolist()
        result = self.chain_result[self.order].tolist()
        b1_ops, acc_ops = [], []                     # for the counts: the operation of each step
        for r in range(len(outs) - 1, -1, -1):       # (B1) and the sums, M_N, …, M_1
            o = outs[r]
            if not need[o] or (o not in users and o != J):
                continue
            a, c = ins_a[r], ins_b[r]
            mod, subs = mods[r], fwd_subs[r] + (("v", gkey[o]),)
            inputs = (a,) if c < 0 else (a, c)
            for j, node in enumerate(inputs):
                if need[node]:
                    rule, at = rules.backward(mod, j, subs)
                    specs.append(_spec("backward", "B1", mname[r], j, contribution(node, r, j),
                                       subs, rule, _reads(subs, at)))
                    src.append(slot[r] + j * stride[r] if result[r] < 0 else n + result[r])
                    b1_ops.append(r)
            for node in (inputs if c != a else (a,)):
                us = users.get(node, ())
                if len(us) > 1 and us[0] == r:
                    keys = tuple(contribution(node, u, j) for u in dict.fromkeys(us)
                                 for j in ((0, 1) if ins_a[u] == ins_b[u] else
                                           (0 if ins_a[u] == node else 1,)))
                    subs_acc = tuple((f"c{i}", k) for i, k in enumerate(keys))
                    specs.append(_spec("backward", "acc", None, None, gkey[node], subs_acc, R.ACC,
                                       keys))
                    src.append(n + node)
                    acc_ops.append((r, len(keys) - 1))
        self.specs = tuple(specs)
        self.step_src = np.array(src, dtype=np.int64)
        self.where = {s.writes: i for i, s in enumerate(specs)}
        if len(self.where) != len(specs):
            raise BackpropError("circuit: a key is written twice (a bug in the circuit)")
        self.counts = self._count(b1_ops, acc_ops, len(specs))
        used = np.zeros(self.n_slots, dtype=bool)
        used[self.step_src[self.step_src >= 2 * n] - 2 * n] = True
        for run in self.run:
            if not isinstance(run, ChainRunner):
                run.only(used)

    def _needs(self, outs, ins_a, ins_b):
        """Which nodes need a gradient (parameters, inputs if asked, and what depends on them),
        and the users of each on the way to J, in order (as Program finds them)."""
        n, J = self.builder.n, self.J
        wanted = ("param", "input") if self.input_grad else ("param",)
        need = [nd.kind in wanted for nd in self.nodes[:self.n_given]] + [False] * (n - self.n_given)
        for a, c, o in zip(ins_a, ins_b, outs):
            need[o] = need[a] or (c >= 0 and need[c])
        live = [False] * n
        live[J] = True
        for a, c, o in zip(reversed(ins_a), reversed(ins_b), reversed(outs)):
            if live[o]:
                live[a] = True
                if c >= 0:
                    live[c] = True
        users: dict[int, list[int]] = {}
        for r, (a, c, o) in enumerate(zip(ins_a, ins_b, outs)):
            if live[o]:
                if need[a]:
                    users.setdefault(a, []).append(r)
                if c >= 0 and need[c]:
                    users.setdefault(c, []).append(r)
        return need, users

    def _count(self, b1_ops, acc_ops, n_steps) -> Counts:
        """Forward operations by kind and module; backward: a (B1) step is one operation of its
        operation's kind, a sum (7.53) of n contributions n − 1 additions."""
        mods = self.module_names
        kind = np.array([KIND[type(m).__name__] for m in self.op_mods], dtype=object)
        owner = np.array(mods, dtype=object)[self.op_owner[self.order]] if self.order.size \
            else np.zeros(0, object)
        b1 = np.array(b1_ops, dtype=np.int64)
        acc_r = np.array([r for r, _ in acc_ops], dtype=np.int64)
        acc_n = np.array([k for _, k in acc_ops], dtype=np.int64)

        def tally(labels, weights=None):
            out = {}
            for lab, w in zip(labels.tolist(), (np.ones(len(labels), np.int64) if weights is None
                                                else weights).tolist()):
                out[lab] = out.get(lab, 0) + w
            return out
        fk, fm = tally(kind), tally(owner)
        bk, bm = tally(kind[b1]), tally(owner[b1])
        if acc_ops:
            bk[SUM_KIND] = int(acc_n.sum())
            for lab, w in tally(owner[acc_r], acc_n).items():
                bm[lab] = bm.get(lab, 0) + w
        nf = len(self.modules)
        return Counts(nf, sum(bk.values()), fk, bk, {m: fm[m] for m in mods if m in fm},
                      {m: bm[m] for m in mods if m in bm}, (nf, n_steps - nf))

    def program(self) -> Program:
        """The same circuit as a ``Program`` of equations (its ``run`` is the reference that
        computes one operation at a time); built when first asked."""
        if not hasattr(self, "_program"):
            eqns = [Eqn(mod, m.name, m.inputs, (), m.output)
                    for mod, m in zip(self.op_mods, self.modules)]
            self._program = Program(list(self.nodes), eqns, self.input_grad)
        return self._program

    # -- the vectorized engine ---------------------------------------------------------------
    def _make_engine(self, b):
        """Per group: its functions and where each operation's (B1) values are: in the array of
        (B1) values (input j of operation k of a group at slot + j·n + k), or for an addition
        of a chain, the gradient of the chain's result (its (B1) values are that number)."""
        slot = 0
        n_ops = self.op_out.size
        self.slot_of_op = np.full(n_ops, -1, dtype=np.int64)        # creation order
        self.op_stride = np.zeros(n_ops, dtype=np.int64)
        self.chain_result = np.full(n_ops, -1, dtype=np.int64)
        pos = 0
        run = []
        for g in b.groups:
            k = g.out.size
            if g.chain:
                self.chain_result[pos:pos + k] = np.repeat(g.out[:, -1], g.out.shape[1])
                run.append(ChainRunner(g))
            else:
                self.slot_of_op[pos:pos + k] = slot + np.arange(k)
                self.op_stride[pos:pos + k] = k
                run.append(GroupRunner(g, slot))
                slot += len(g.ins) * k
            pos += k
        self.n_slots, self.run = slot, run
        self.template = np.zeros(b.n)
        self.template[self.const_ids] = self.const_vals

    # -- shared look-ups of every circuit of this structure -------------------------------------
    def module_info(self) -> dict:
        """M_i's ModuleInfo by name."""
        if not hasattr(self, "_module_info"):
            self._module_info = {m.name: m for m in self.modules}
        return self._module_info

    def node_info(self) -> dict:
        """Every node's NodeInfo by name."""
        if not hasattr(self, "_node_info"):
            self._node_info = {n.name: n for n in self.nodes}
        return self._node_info

    def known_at(self) -> dict:
        """Key → the step after which it is known (0: given)."""
        if not hasattr(self, "_known_at"):
            at = {Key(n): 0 for n in self.given_index}
            at.update((s.writes, i + 1) for i, s in enumerate(self.specs))
            self._known_at = at
        return self._known_at

    def travelled_at(self) -> dict:
        """(module, node) → the first backward step that crosses that edge."""
        if not hasattr(self, "_travel_at"):
            at = {}
            for i, s in enumerate(self.specs):
                if s.phase == "backward" and s.module is not None:
                    at.setdefault((s.module, s.node), i + 1)
            self._travel_at = at
        return self._travel_at

    # -- one example -------------------------------------------------------------------------
    def values(self, trace: Trace):
        """One example: (the value of every node, the gradient of every node, every step's
        number). The forward groups run in order on one array of values, the backward groups in
        reverse on one array of gradients (seeded with ∂J/∂J = 1), writing their (B1) values
        into a third array; the steps' numbers are then one gather from the three."""
        val = self.template.copy()
        if self.given_layout:
            val[:self.n_given] = np.concatenate([np.ravel(trace.given[name])
                                                 for name, _ in self.given_layout])
        with np.errstate(all="ignore"):
            for r in self.run:
                r.forward(val)
            if not np.isfinite(val).all():
                raise self._overflow(val)
            grad = np.zeros_like(val)
            grad[self.J] = 1.0                        # ∂J/∂J = 1
            cval = np.empty(self.n_slots)
            for r in reversed(self.run):
                r.backward(val, grad, cval)
        out = np.concatenate((val, grad, cval))[self.step_src]
        return val, grad, out

    def _overflow(self, val) -> BackpropError:
        bad = np.flatnonzero(~np.isfinite(val[self.op_out[self.order]]))[0]
        m = self.modules[bad]
        owner = self.module_names[int(self.op_owner[self.order[bad]])]
        return BackpropError(
            f"circuit: {m.name} = {m.label} (forward step {bad + 1}, (F)) of {owner} gives "
            f"{m.output} = {val[self.op_out[self.order[bad]]]}: the circuit computes each module's "
            f"formula literally (ℓ_logistic as log(1 + exp(t)), ℓ_ce as log Σ exp(t) − Σ y t) "
            f"and overflows here, although the module-level pass, written to stay finite, does "
            f"not; smaller logits (or the module-level view) avoid it")


def _indices(shape):
    """The indices of an array of this shape in C order, as tuples of ints (() for a number)."""
    if not shape:
        return [()]
    return [tuple(int(j) for j in t) for t in np.ndindex(*shape)]


class _RuleTable:
    """The rules of the atomic operations and the positions of the symbols each one reads, found
    once per operation (there are a dozen kinds, and hundreds of thousands of steps)."""

    def __init__(self):
        self._f, self._b = {}, {}

    def forward(self, mod):
        hit = self._f.get(id(mod))
        if hit is None:
            rule = mod.rule("F")
            hit = self._f[id(mod)] = (mod.inputs, rule, _used_at(mod, rule, mod.inputs))
        return hit

    def backward(self, mod, j, subs):
        hit = self._b.get((id(mod), j))
        if hit is None:
            rule = mod.rule("B1", j)
            hit = self._b[(id(mod), j)] = (rule, _used_at(mod, rule, [t for t, _ in subs]))
        return hit


def _used_at(mod, rule, syms) -> tuple:
    """The positions in a step's symbols of those its rule's expression uses (make_spec's reads)."""
    e = rule.expression(R.Context({}, mod.consts))
    used = e.symbols() if e is not None else tuple(syms)
    return tuple(list(syms).index(t) for t in used if t in syms)


def _reads(subs, at) -> tuple:
    """The keys at these positions, each once (a circuit has one Key object per node, so the
    same key is the same object)."""
    if len(at) == 1:
        return (subs[at[0]][1],)
    keys = []
    for i in at:
        k = subs[i][1]
        if not any(k is seen for seen in keys):
            keys.append(k)
    return tuple(keys)


def _spec(phase, kind, module, which, writes, subs, rule, reads) -> StepSpec:
    """A StepSpec with its fields set directly (a large circuit makes hundreds of thousands)."""
    return _fast(StepSpec, phase=phase, kind=kind, module=module, which=which, writes=writes,
                 subs=subs, rule=rule, reads=reads)


def _fast(cls, **fields):
    """A frozen dataclass made by setting its fields directly, without its ``__init__`` (which
    has no checks, and costs a microsecond each for a large circuit)."""
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    return obj


def _block(idx):
    """A slice if these ids are one block in order (read and written as a view), else the ids."""
    idx = np.asarray(idx)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


# --- the group runners: one group of operations on the arrays of values and gradients ---------

class GroupRunner:
    """How one group runs on the arrays: forward (F) u_k = M(a_k, b_k) on the values, backward
    (B1) ∂J/∂a_k += B[M, a_k](∂J/∂u_k) on the gradients, summed over users (7.53)."""

    def __init__(self, g: OpGroup, slot: int):
        self.o0, self.o1 = int(g.out[0]), int(g.out[-1]) + 1      # a group's outputs: a block
        self.c0, self.n = slot, g.out.size
        self.f = g.mod.function("F")
        self.ins = tuple(_block(i) for i in g.ins)
        self.ids = tuple(g.ins)
        self.b1 = tuple(g.mod.function("B1", j) for j in range(len(g.ins)))
        self.active = ()
        if self.n == 1:          # one operation: on numbers, not on arrays of one number
            self.ins = tuple(int(i[0]) for i in g.ins)
            self.forward, self.backward = self._forward1, self._backward1

    def only(self, used_slots: np.ndarray):
        """Keep the backward work of the inputs some step reads (a label, a constant, or x in a
        network that does not ask for ∂J/∂x needs none), and pick how each one is added: a
        block of ids with +=, distinct ids with fancy +=, repeated ids with np.add.at (7.53)."""
        active = []
        for j, idx in enumerate(self.ids):
            c = self.c0 + j * self.n
            if not used_slots[c:c + self.n].any():
                continue
            where = self.ins[j]
            repeated = not isinstance(where, (slice, int)) and np.unique(idx).size < idx.size
            active.append((self.b1[j], c, where, repeated))
        self.active = tuple(active)

    def forward(self, val):
        """(F) for every operation of the group: one call of the module's forward on arrays."""
        val[self.o0:self.o1] = self.f(*[val[i] for i in self.ins])

    def backward(self, val, grad, cval):
        """(B1) for every operation and input: into ``cval``, and added into ``grad`` (7.53)."""
        if not self.active:
            return
        v = grad[self.o0:self.o1]
        args = [val[i] for i in self.ins]
        n = self.n
        for fn, c, where, repeated in self.active:
            contrib = fn(*args, v)
            cval[c:c + n] = contrib
            if repeated:
                np.add.at(grad, where, contrib)
            else:
                grad[where] += contrib

    def _forward1(self, val):
        val[self.o0] = self.f(*[val[i] for i in self.ins])

    def _backward1(self, val, grad, cval):
        v = grad[self.o0]
        args = [val[i] for i in self.ins]
        for fn, c, where, _ in self.active:
            contrib = fn(*args, v)
            cval[c] = contrib
            grad[where] += contrib


class ChainRunner:
    """A group of chains of additions: forward a cumulative sum (the chain's own order of
    additions); backward, by (7.58) for +, every partial sum and every term of a chain gets
    ∂J/∂(the chain's result), so only the terms are updated (a partial sum's one user is the
    next addition, and its steps read the result's gradient, the same number). The partial
    sums are numbered step by step: the block holds the k-th sums of all chains together,
    k = 1, 2, …, so the chains' results are the end of the block."""

    def __init__(self, g: ChainGroup):
        self.terms = g.terms
        self.o0, self.o1 = int(g.out.min()), int(g.out.max()) + 1
        r, self.per_row = g.out.shape
        self.shape = (self.per_row, r)
        self.last = slice(self.o1 - r, self.o1)
        self.repeated = np.unique(g.terms).size < g.terms.size

    def forward(self, val):
        """p_k = p_{k−1} + t_k for every chain at once: a cumulative sum in the chain's order."""
        val[self.o0:self.o1].reshape(self.shape)[...] = \
            np.cumsum(val[self.terms], axis=1)[:, 1:].T

    def backward(self, val, grad, cval):
        """∂J/∂t_k += ∂J/∂(the chain's result) for every term (7.58), summed over users (7.53)."""
        v = grad[self.last]
        if self.repeated:
            np.add.at(grad, self.terms, v[:, None])
        else:
            grad[self.terms] += v[:, None]


# --- the caches: a structure is compiled once per module graph and shapes ---------------------

def structure_key(trace: Trace) -> tuple:
    """What the structure depends on: the module graph, the shapes, the gradients computed."""
    return (trace.nodes, trace.modules,
            tuple(np.shape(trace.value(n.name)) for n in trace.nodes),
            tuple(s.writes for s in trace.specs if s.writes.grad and s.writes.node in trace.given))


def compile_structure(trace: Trace) -> Structure:
    """The compiled structure for this module graph, from the cache if it was built before.

    Traces of one network share their steps (one compiled program), so the structure of the
    steps object last seen is found by identity, without hashing the whole graph.
    """
    shapes = tuple(np.shape(x) for x in trace.given.values())
    hit = _RECENT.get(id(trace.specs))
    if hit is not None and hit[0] is trace.specs and hit[1] == shapes:
        return hit[2]
    key = structure_key(trace)
    st = _CACHE.get(key)
    if st is None:
        # the structure is hundreds of thousands of small acyclic objects: the cyclic garbage
        # collector would scan them again and again while they are made, for nothing
        enabled = gc.isenabled()
        gc.disable()
        try:
            st = Structure(trace)
        finally:
            if enabled:
                gc.enable()
        _CACHE[key] = st
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    if len(_RECENT) > CACHE_SIZE:
        _RECENT.clear()
    _RECENT[id(trace.specs)] = (trace.specs, shapes, st)
    return st


def clear_caches(trace: Trace | None = None) -> None:
    """Forget the compiled structures: the one of this trace's graph and shapes, or (None) all of
    them, so that the next ``compile_structure`` builds it again (a cold start)."""
    if trace is None:
        _CACHE.clear()
        _RECENT.clear()
        return
    _CACHE.pop(structure_key(trace), None)
    _RECENT.pop(id(trace.specs), None)
