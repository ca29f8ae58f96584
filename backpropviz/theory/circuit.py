"""The scalar circuit: the same pass at the granularity of atomic operations (Theorem 7.4.1).

``bpv.circuit(trace)`` takes a module-level trace (``net.backprop(x, y)`` or ``bpv.trace(f, x)``)
and returns the pass as the notes' Remark 7.4.3 describes it for the proof of Theorem 7.4.1: a
composition of many atomic operations M_1, …, M_N on single numbers (+, −, ×, ÷, exp, log,
max(0, ·), σ, tanh, sin, cos, (·)^p, id), each with its forward value (F) and its backward rule
(B1) from the rule table, the sums (7.53) where a number has several users, and the seed
∂J/∂J = 1. It is a ``Trace``, so stepping, text, drawing and JSON work on it unchanged.

Names. Entries of the module-level values keep their node's name with subscripts counted from 1,
as the notes write z_1, …, z_n: ``u[1]₂`` is entry 2 of u[1], ``W[1]₁,₂`` the entry in row 1 and
column 2 of W[1], and in a batch (one example per column) ``u[1]₂,₃`` is entry 2 of example 3.
Numbers inside a module (the products W_ij z_j, the partial sums) are ``s[1]``, ``s[2]``, … in
the order they are computed; constants the decomposition needs (the 1 in 1 + e^t, ½, 1/B)
continue the module-level c[k]. Every node records what it belongs to in ``NodeInfo.part_of``:
(module-level module, module-level node, 0-based index of the entry).

Steps. The forward steps go module by module and, within a module, entry by entry (the products
of u[1]₁, then its additions, then those of u[1]₂, …); then the seed ∂J/∂J = 1 (tagged (§7.4.2):
in the circuit J comes out of an addition or a multiplication, not out of a loss module); then,
for M_N back to M_1, the (B1) step of every input that needs a gradient and the sum (7.53) of
each number with several users once its last contribution is in: exactly what ``Program`` makes
of these equations. ``circuit.counts`` counts them (see ``Counts``).

Decompositions (per module-level module):

* MM[W, b](z) = Wz + b: the products W_ij z_j (m·n multiplications), then for each output entry a
  *chain* of additions ((W_i1 z_1 + W_i2 z_2) + ⋯ + W_in z_n) + b_i (n additions), so a 2×2 MM
  with bias has 4 multiplications and 4 additions; a batch repeats this for every column.
* activations σ(z) and elementwise ops: one operation per entry (ReLU is max(0, ·)).
* a + b, a − b, a ⊙ b, a / b (with broadcasting), a @ b (products, then chains), Σ z (a chain).
* z[i] (Index): one identity operation per selected entry (selection itself is wiring; the
  identity gives each entry of the result its own node), so the scatter-into-zeros backward
  becomes the sums (7.53) over the users of each entry.
* ℓ_logistic(t, y) = log(1 + exp(t)) − y t: exp, 1 + ·, log, y ×, −, then Σ over the entries.
* ℓ_sq(t, y) = ½‖t − y‖²: −, ×, Σ, ½ ×.
* ℓ_ce(t, y) = log Σ_i exp(t_i) − Σ_i y_i t_i per example: exp, Σ, log, y ×, Σ, −.
* a batch of B examples: the losses are summed over the batch and multiplied by 1/B.

The losses are written as the formulas read, without the max-shift or logaddexp that the
module-level losses use to stay finite for large |t|: a circuit whose exp overflows is refused
with the operation that overflowed.

How it is computed. The structure (nodes, operations, steps) depends only on the module graph and
the shapes, so it is compiled once and cached (keyed by the module graph and the shapes; traces of
one network share their steps, so the last structure of those steps is found by identity). Each
example is then a few dozen NumPy calls on three arrays: the operations are kept in the groups
the decompositions create (all products of an MM, its chains of additions, an activation on
every entry, one loss operation), and

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

``Program.run`` on the same scalar program (``circuit.program``) makes the same steps with the
same numbers, one operation at a time (the tests check both).
"""
from __future__ import annotations

import gc
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core import expr as E
from ..core import modules as M
from ..core import rules as R
from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.program import Eqn, Program
from ..core.expr import v, z
from ..core.trace import ModuleInfo, NodeInfo, StepSpec, Trace
from ..core.rules import rule

__all__ = ["circuit", "Circuit", "Counts", "entry_name", "to_circuit", "to_modules",
           "decomposition_reason", "expand", "Expanded", "expandable", "expanded_step",
           "unexpanded_step", "Entry", "Stack"]

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_UNSUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_CACHE: OrderedDict = OrderedDict()      # structure key → _Structure, most recent last
CACHE_SIZE = 8            # a circuit of 100,000 operations takes about 400 MB

# the atomic operations, one shared module object per kind (modules are immutable)
ADD, SUB, MUL, DIV = M.Add(), M.Sub(), M.Mul(), M.Div()
EXP, LOG, IDENTITY = M.Exp(), M.Log(), M.Identity()
ELEMENTWISE = {"ReLU": M.ReLU(), "Sigmoid": M.Sigmoid(), "Tanh": M.Tanh(),
               "Identity": IDENTITY, "Exp": EXP, "Log": LOG, "Sin": M.Sin(), "Cos": M.Cos()}
BINARY = {"Add": ADD, "Sub": SUB, "Mul": MUL, "Div": DIV}
KIND = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Exp": "exp", "Log": "log",
        "ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Sin": "sin", "Cos": "cos",
        "Power": "power", "Identity": "id"}
SUM_KIND = "sum (7.53)"


def entry_name(node: str, index: tuple) -> str:
    """The name of one entry: u[1]₂ (entry 2 of u[1]), W[1]₁,₂; a single number keeps its name."""
    if not index:
        return node
    return node + ",".join(str(i + 1).translate(_SUB) for i in index)


# --- building the structure: operations created in groups, on arrays of node ids ---------------

class _Group:
    """Operations of one kind created together: out[k] = mod(ins[0][k], ins[1][k])."""

    chain = False

    def __init__(self, mod, ins, out, owner):
        self.mod, self.ins, self.out, self.owner = mod, ins, out, owner
        self.n = out.size

    def op_inputs(self):
        """(inputs of each operation: arity × n node ids, outputs: n node ids), in group order."""
        return np.stack(self.ins), self.out


class _Chain(_Group):
    """r chains of additions over n terms each: p_1 = t_0 + t_1, p_k = p_{k−1} + t_k (k < n)."""

    chain = True

    def __init__(self, terms, out, owner):
        super().__init__(ADD, (terms,), out, owner)        # out: r × (n − 1) partial sums
        self.terms = terms

    def op_inputs(self):
        first = np.concatenate([self.terms[:, :1], self.out[:, :-1]], axis=1)
        return np.stack([first.ravel(), self.terms[:, 1:].ravel()]), self.out.ravel()


class _Builder:
    """Allocates node ids and records operation groups while the modules are expanded."""

    def __init__(self):
        self.n = 0
        self.groups: list[_Group] = []
        self.owner = -1                      # the module-level module being expanded
        self.consts: dict = {}               # (owner, value) → node id
        self.const_values: list = []         # (node id, value, owner)

    def alloc(self, shape) -> np.ndarray:
        k = int(np.prod(shape))
        ids = np.arange(self.n, self.n + k, dtype=np.int64).reshape(shape)
        self.n += k
        return ids

    def const(self, value: float) -> np.ndarray:
        key = (self.owner, float(value))
        if key not in self.consts:
            self.consts[key] = int(self.alloc(()))
            self.const_values.append((self.consts[key], float(value), self.owner))
        return np.asarray(self.consts[key])

    def op(self, mod, *ins) -> np.ndarray:
        """One operation per entry of the broadcast inputs; returns the output ids."""
        ins = np.broadcast_arrays(*[np.asarray(i, dtype=np.int64) for i in ins])
        out = self.alloc(ins[0].shape)
        self.groups.append(_Group(mod, tuple(np.ascontiguousarray(i).ravel() for i in ins),
                                  out.ravel(), self.owner))
        return out

    def chain(self, terms) -> np.ndarray:
        """Σ over the last axis as a chain of additions, left to right (n − 1 of them)."""
        terms = np.asarray(terms, dtype=np.int64)
        n = terms.shape[-1]
        if n == 1:
            return terms[..., 0]
        rows = np.ascontiguousarray(terms.reshape(-1, n))
        # partial sums numbered step by step (all first sums, then all second, …), so that the
        # results of the chains are one block of ids, read as a slice by the next group
        out = self.alloc((n - 1, rows.shape[0])).T
        self.groups.append(_Chain(rows, out, self.owner))
        return out[:, -1].reshape(terms.shape[:-1])


# --- decompositions of the module-level modules into atomic operations -----------------------

def _mm(b, mi, shapes, z, W, bias):
    """Wz + b: products W_ij z_j, then ((W_i1 z_1 + W_i2 z_2) + ⋯ + W_in z_n) + b_i."""
    zz = z if z.ndim == 2 else z[:, None]                     # n × B
    m, B = W.shape[0], zz.shape[1]
    P = b.op(MUL, W[:, :, None], zz[None, :, :])              # m × n × B: W_ij z_jk
    terms = np.concatenate([np.moveaxis(P, 1, 2),
                            np.broadcast_to(bias[:, None, None], (m, B, 1))], axis=2)
    out = b.chain(terms)                                       # m × B
    return out if z.ndim == 2 else out[:, 0]


def _matmul(b, mi, shapes, A, Bm):
    """a @ b: products a_ij b_jk, then a chain of additions over j."""
    a2 = A[None, :] if A.ndim == 1 else A
    b2 = Bm[:, None] if Bm.ndim == 1 else Bm
    P = b.op(MUL, a2[:, :, None], b2[None, :, :])             # m × n × p
    out = b.chain(np.moveaxis(P, 1, 2))                        # m × p
    if A.ndim == 1:
        out = out[0]
    return out[..., 0] if Bm.ndim == 1 else out


def _batch_mean(b, J, t):
    """J × (1/B) for a batch of B examples (one example per column)."""
    return b.op(MUL, b.const(1.0 / t.shape[1]), J) if t.ndim == 2 else J


def _logistic(b, mi, shapes, t, y):
    """log(1 + exp(t)) − y t per entry, summed: exp, 1 + ·, log, y ×, −, Σ (× 1/B)."""
    e = b.op(EXP, t)
    s = b.op(ADD, b.const(1.0), e)
    d = b.op(SUB, b.op(LOG, s), b.op(MUL, y, t))
    return _batch_mean(b, b.chain(d.reshape(1, -1))[0], t)


def _squared(b, mi, shapes, t, y):
    """½ Σ (t − y)²: −, ×, Σ, ½ × (× 1/B)."""
    d = b.op(SUB, t, y)
    S = b.chain(b.op(MUL, d, d).reshape(1, -1))[0]
    return _batch_mean(b, b.op(MUL, b.const(0.5), S), t)


def _cross_entropy(b, mi, shapes, t, y):
    """log Σ_i exp(t_i) − Σ_i y_i t_i per example: exp, Σ, log, y ×, Σ, −; then Σ (× 1/B)."""
    tt, yy = (t, y) if t.ndim == 2 else (t[:, None], y[:, None])
    lse = b.op(LOG, b.chain(b.op(EXP, tt).T))                 # one per example
    J = b.op(SUB, lse, b.chain(b.op(MUL, yy, tt).T))
    return _batch_mean(b, b.chain(J[None, :])[0], t)


def _index(b, mi, shapes, z):
    """z[i]: the selected entries (identity operations are added for them below)."""
    _, pos = M.index_from_consts(dict(mi.consts))
    return z.ravel()[pos]


def _elementwise(name):
    return lambda b, mi, shapes, z: b.op(ELEMENTWISE[name], z)


def _binary(name):
    return lambda b, mi, shapes, x, y: b.op(BINARY[name], x, y)


def _power(b, mi, shapes, z):
    return b.op(M.Power(dict(mi.consts)["p"]), z)


def _sum(b, mi, shapes, z):
    return b.chain(z.reshape(1, -1))[0]


EXPANDERS = {"MM": _mm, "MatMul": _matmul, "LogisticLoss": _logistic, "SquaredLoss": _squared,
             "CrossEntropyLoss": _cross_entropy, "Index": _index, "Power": _power, "Sum": _sum,
             **{n: _elementwise(n) for n in ELEMENTWISE}, **{n: _binary(n) for n in BINARY}}
"""Module class name → decomposition(builder, module info, shapes, *input ids, *parameter ids)."""


def _expander(mi: ModuleInfo):
    cls = M.REGISTRY.get(mi.op)
    fn = EXPANDERS.get(mi.op)
    if fn is None or cls is None or not M.is_builtin(cls):
        known = ", ".join(sorted(EXPANDERS))
        raise BackpropError(f"circuit: {mi.name} = {mi.label} has no decomposition into atomic "
                            f"operations; modules that have one: {known}")
    return fn


# --- the compiled structure of one module graph -----------------------------------------------

@dataclass(frozen=True)
class Counts:
    """Operation counts of a scalar circuit (Theorem 7.4.1).

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


class _Given(Mapping):
    """The given numbers of a circuit (entries of x, θ, y and the constants), read from the array
    of values when asked: a circuit has hundreds of them, and most are never looked at one by one."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict, values: np.ndarray):
        self._index, self._values = index, values

    def __getitem__(self, name):
        return _scalar(self._values[self._index[name]])

    def __contains__(self, name):
        return name in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)


def _scalar(x) -> np.ndarray:
    a = np.array(x, dtype=float)
    a.flags.writeable = False
    return a


class _Structure:
    """Everything about a circuit that does not depend on the numbers: nodes, operations,
    steps, the groups that compute them, and where each step's number comes from."""

    def __init__(self, trace: Trace):
        b = _Builder()
        shapes = {n.name: np.shape(trace.value(n.name)) for n in trace.nodes}
        self.given_layout = [(n.name, shapes[n.name]) for n in trace.nodes if n.name in trace.given]
        ids: dict[str, np.ndarray] = {}
        for name, shape in self.given_layout:
            ids[name] = b.alloc(shape)
        self.n_given = b.n
        self.module_names = [mi.name for mi in trace.modules]
        for k, mi in enumerate(trace.modules):
            b.owner, first = k, b.n
            fn = _expander(mi)
            out = fn(b, mi, shapes, *[ids[n] for n in mi.inputs], *[ids[p] for p in mi.params])
            out = np.asarray(out, dtype=np.int64)
            if out.shape != shapes[mi.output]:      # a decomposition that does not fit is a bug
                raise BackpropError(f"circuit: {mi.name} gives {out.shape}, not "
                                    f"{shapes[mi.output]}")
            ids[mi.output] = _own_entries(b, out, first)
        self.ids, self.shapes, self.builder = ids, shapes, b
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
        op_text = {id(m): (type(m).__name__, tuple(m.consts.items())) for m in group_mod}
        modules = []
        for r, (o, owner, e, mod, a, c) in enumerate(zip(outs.tolist(), owners, entries,
                                                          self.op_mods, ins[0].tolist(),
                                                          ins[1].tolist())):
            name = f"M_{r + 1}"
            info[o] = _fast(NodeInfo, name=names[o], kind="value", module=name, display=None,
                            part_of=part[owner][e])
            op, consts = op_text[id(mod)]
            modules.append(_fast(ModuleInfo, name=name, op=op, inputs=(names[a],) if c < 0 else
                                 (names[a], names[c]), params=(), output=names[o],
                                 given_name=None, consts=consts))
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
            if not isinstance(run, _RunChain):
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
                run.append(_RunChain(g))
            else:
                self.slot_of_op[pos:pos + k] = slot + np.arange(k)
                self.op_stride[pos:pos + k] = k
                run.append(_Run(g, slot))
                slot += len(g.ins) * k
            pos += k
        self.n_slots, self.run = slot, run
        self.template = np.zeros(b.n)
        self.template[self.const_ids] = self.const_vals

    # -- shared look-ups of every circuit of this structure -------------------------------------
    def module_info(self) -> dict:
        if not hasattr(self, "_module_info"):
            self._module_info = {m.name: m for m in self.modules}
        return self._module_info

    def node_info(self) -> dict:
        if not hasattr(self, "_node_info"):
            self._node_info = {n.name: n for n in self.nodes}
        return self._node_info

    def known_at(self) -> dict:
        if not hasattr(self, "_known_at"):
            at = {Key(n): 0 for n in self.given_index}
            at.update((s.writes, i + 1) for i, s in enumerate(self.specs))
            self._known_at = at
        return self._known_at

    def travelled_at(self) -> dict:
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


def _own_entries(b: _Builder, out: np.ndarray, first: int) -> np.ndarray:
    """Every entry of a module's output gets a node of its own made by the module: an identity
    operation for an entry that is an input (Σ of one number, z[i]) or is selected twice."""
    flat = out.ravel().copy()
    _, first_at = np.unique(flat, return_index=True)
    fresh = np.zeros(flat.size, dtype=bool)
    fresh[first_at] = True
    need = ~((flat >= first) & fresh)
    if need.any():
        flat[need] = b.op(IDENTITY, flat[need])
    return flat.reshape(out.shape)


def _block(idx):
    """A slice if these ids are one block in order (read and written as a view), else the ids."""
    idx = np.asarray(idx)
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


class _Run:
    """How one group runs on the arrays: forward on the values, backward on the gradients."""

    def __init__(self, g: _Group, slot: int):
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
        val[self.o0:self.o1] = self.f(*[val[i] for i in self.ins])

    def backward(self, val, grad, cval):
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


class _RunChain:
    """A group of chains of additions: forward a cumulative sum (the chain's own order of
    additions); backward, by (7.58) for +, every partial sum and every term of a chain gets
    ∂J/∂(the chain's result), so only the terms are updated (a partial sum's one user is the
    next addition, and its steps read the result's gradient, the same number). The partial
    sums are numbered step by step: the block holds the k-th sums of all chains together,
    k = 1, 2, …, so the chains' results are the end of the block."""

    def __init__(self, g: _Chain):
        self.terms = g.terms
        self.o0, self.o1 = int(g.out.min()), int(g.out.max()) + 1
        r, self.per_row = g.out.shape
        self.shape = (self.per_row, r)
        self.last = slice(self.o1 - r, self.o1)
        self.repeated = np.unique(g.terms).size < g.terms.size

    def forward(self, val):
        val[self.o0:self.o1].reshape(self.shape)[...] = \
            np.cumsum(val[self.terms], axis=1)[:, 1:].T

    def backward(self, val, grad, cval):
        v = grad[self.last]
        if self.repeated:
            np.add.at(grad, self.terms, v[:, None])
        else:
            grad[self.terms] += v[:, None]


def structure_key(trace: Trace) -> tuple:
    """What the structure depends on: the module graph, the shapes, the gradients computed."""
    return (trace.nodes, trace.modules,
            tuple(np.shape(trace.value(n.name)) for n in trace.nodes),
            tuple(s.writes for s in trace.specs if s.writes.grad and s.writes.node in trace.given))


_RECENT: dict = {}       # id of a compiled program's steps → (those steps, given shapes, structure)


def compile_structure(trace: Trace) -> _Structure:
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
            st = _Structure(trace)
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


# --- the circuit as a trace ------------------------------------------------------------------

class Circuit(Trace):
    """A trace at scalar granularity: every step is an atomic operation on single numbers.

    ``source`` is the module-level trace it expands; ``counts`` the operation counts
    (Theorem 7.4.1); ``entries(name)``, ``module_value(name)`` and ``module_grad(name)`` go from
    a module-level node to its scalar nodes and back.
    """

    __slots__ = ("source", "structure", "_val", "_grad")

    def __init__(self, structure: _Structure, source: Trace, val, grad, out):
        st = structure
        super().__init__(st.nodes, st.modules, st.specs, _Given(st.given_index, val), out,
                         st.where)
        self.source, self.structure, self._val, self._grad = source, structure, val, grad

    def __getitem__(self, key: Key) -> np.ndarray:
        i = self._where.get(key) if isinstance(key, Key) else None
        if i is not None:
            return _scalar(self._out[i])
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
            raise BackpropError(f"no module named {name!r}")
        return m

    @property
    def n_forward(self) -> int:
        return self.structure.counts.steps[0]

    def node(self, name: str) -> NodeInfo:
        n = self.structure.node_info().get(name)
        if n is None:
            return super().node(name)          # says which names there are
        return n

    # what is known when: shared by every circuit of the structure, found once
    def known_at(self, key: Key) -> float:
        return self.structure.known_at().get(key, float("inf"))

    def travelled_at(self, module: str, node: str) -> float:
        return self.structure.travelled_at().get((module, node), float("inf"))

    # --- module level ↔ scalar level ------------------------------------------------------------
    def _ids(self, name: str) -> np.ndarray:
        ids = self.structure.ids.get(name)
        if ids is None:
            raise BackpropError(f"no module-level node named {name!r}; nodes: "
                                f"{', '.join(n.name for n in self.source.nodes)}")
        return ids

    def entries(self, name: str) -> np.ndarray:
        """The scalar nodes of a module-level node, with its shape (an array of names)."""
        ids = self._ids(name)
        return self.structure.names[ids.ravel()].reshape(ids.shape)

    def module_value(self, name: str) -> np.ndarray:
        """A module-level value put together from its entries' scalar values."""
        return _readonly(self._val[self._ids(name)])

    def module_grad(self, name: str) -> np.ndarray:
        """∂J/∂(a module-level node) put together from the scalar gradients; an entry that J
        does not depend on has gradient 0 (Remark 7.4.2)."""
        self.source.grad(name)             # says why, if the module-level pass has none
        return _readonly(self._grad[self._ids(name)])

    def __repr__(self):
        c = self.counts
        return (f"<Circuit: {c.forward} operations from {len(self.source.modules)} modules, "
                f"{len(self.specs)} steps ({self.n_forward} forward), J = {self.loss:.6g}>")


def _readonly(a):
    a = np.asarray(a, dtype=float)
    a.flags.writeable = False
    return a


def circuit(trace, *args, expand: str | None = None) -> Circuit:
    """The pass at scalar granularity: ``bpv.circuit(trace)`` or ``bpv.circuit(net, x, y)``.

    Every +, ×, exp, max(0, ·), … on single numbers is an atomic operation M_i with its forward
    value (F) and its backward rule (B1), (7.58); see the module's docstring for the
    decompositions and the names (u[1]₂ is entry 2 of u[1]).

    ``expand="M_1"``: only that module at scalar level, the rest at module level (``expand``).
    """
    if expand is not None:
        if args or not isinstance(trace, Trace):
            trace = circuit(trace, *args).source
        return globals()["expand"](trace, expand)
    if args or not isinstance(trace, Trace):
        backprop = getattr(trace, "backprop", None)
        if backprop is None:
            raise BackpropError(f"circuit: give a trace (net.backprop(x, y), bpv.trace(f, x)) or "
                                f"a network and its x, y; got {type(trace).__name__}")
        trace = backprop(*args)
    if isinstance(trace, Circuit):
        return trace
    st = compile_structure(trace)
    val, grad, out = st.values(trace)
    return Circuit(st, trace, val, grad, out)


# --- module-level steps ↔ circuit steps (the Stepper's granularity switch) --------------------

def decomposition_reason(trace: Trace) -> str:
    """Why no scalar circuit can be built from this trace ('' if every module decomposes)."""
    if isinstance(trace, Circuit):
        return ""
    for mi in trace.modules:
        try:
            _expander(mi)
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
    hit = getattr(st, "_step_map", None)
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
    owner_of_op = np.asarray(st.module_names, dtype=object)[st.op_owner[st.order]] \
        if st.order.size else np.zeros(0, object)
    info = st.node_info()
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
            owner = owner_of_op[int(s.module[2:]) - 1]
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
    st._step_map = (src.specs, out)
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
    last = getattr(c.structure, "_last_of", None)
    if last is None or last[0] is not m:
        done = np.zeros(len(c.source.specs) + 1, dtype=np.int64)
        np.maximum.at(done, m, np.arange(m.size))
        done = np.where(done > 0, done, np.maximum.accumulate(done))
        last = c.structure._last_of = (m, done)
    return int(last[1][k])


# --- one module expanded in place (the Stepper's "expand") --------------------------------------

def _sub(idx) -> str:
    return ",".join(str(i + 1).translate(_SUB) for i in idx)


class _EntryOf(E.Expr):
    """(z)₂ in a rule: one entry of z (numbers: its value)."""

    prec = E.POSTFIX

    def __init__(self, a, sub, position):
        self.a, self.sub, self.position = a, sub, position

    def children(self):
        return (self.a,)

    def _render(self, fmt):
        inner = self.a.render(fmt)
        return (f"({inner})_{{{self.sub.translate(_UNSUB)}}}" if fmt.tex
                else f"({inner}){self.sub}")

    def eval(self, env):
        return np.asarray(self.a.eval(env), dtype=float).ravel()[self.position]


class _UnitTimes(E.Expr):
    """v e₂: v put into entry 2 of zeros of z's shape (the backward function of (·)₂)."""

    prec = E.PRODUCT

    def __init__(self, v, sub, position, shape):
        self.v, self.sub, self.position, self.shape = v, sub, position, shape

    def children(self):
        return (self.v,)

    def _render(self, fmt):
        arg = self.v.render(fmt, E.PRODUCT)
        return arg + (rf"\, e_{{{self.sub.translate(_UNSUB)}}}" if fmt.tex else f" e{self.sub}")

    def eval(self, env):
        g = np.zeros(int(np.prod(self.shape)) if self.shape else 1)
        g[self.position] = float(np.asarray(self.v.eval(env)).ravel()[0])
        return g.reshape(self.shape)


class _Vector(E.Expr):
    """[z1, z2, …] in a rule: entries put together into a vector (or a matrix)."""

    def __init__(self, syms, shape):
        self.syms, self.shape = syms, shape

    def children(self):
        return tuple(self.syms)

    def _render(self, fmt):
        parts = [s.render(fmt) for s in self.syms]
        if len(self.shape) == 2:
            m, n = self.shape
            parts = ["[" + ", ".join(parts[i * n:(i + 1) * n]) + "]" for i in range(m)]
        return "[" + ", ".join(parts) + "]"

    def eval(self, env):
        return np.array([float(np.asarray(s.eval(env))) for s in self.syms]).reshape(self.shape)


def _entry_index(c: dict):
    shape, pos = M.index_from_consts(c)
    idx = np.unravel_index(int(pos), shape) if shape else ()
    return shape, int(pos), _sub(tuple(int(i) for i in idx))


class Entry(M.Index):
    """(z)₂: one entry of a module-level value as a number of its own (routing into an expanded
    module); backward by (7.58): v e₂, v in that entry of zeros."""

    label, can_overflow = "(·)ᵢ", False

    def __init__(self, position: int, shape, name=None):
        super().__init__(np.unravel_index(int(position), tuple(shape)), tuple(shape), name)

    @classmethod
    def label_for(cls, consts):
        if "on" not in consts:
            return cls.label
        return "(·)" + _entry_index(consts)[2]

    @rule("F", "(F)", lambda c: _EntryOf(z, _entry_index(c.consts)[2], _entry_index(c.consts)[1]))
    def forward(self, z):
        return super().forward(z)

    @rule("B1", R.TAG_CHAIN, lambda c: _UnitTimes(v, _entry_index(c.consts)[2],
                                                 _entry_index(c.consts)[1],
                                                 _entry_index(c.consts)[0]))
    def backward(self, z, v):
        return super().backward(z, v)


def _stack_shape(c: dict) -> tuple:
    return tuple(int(c[f"s{i}"]) for i in range(int(c.get("sn", 0))))


class Stack(M.Op):
    """[z1, z2, …]: the entries computed by an expanded module put back together into the
    module-level value; backward by (7.58): input j gets (v)_j, entry j of v."""

    label, symbol, can_overflow = "[·]", "[]", False
    inputs = ("z1",)

    def __init__(self, shape, name=None):
        super().__init__(name)
        self.shape = tuple(int(n) for n in shape)
        self.inputs = tuple(f"z{j + 1}" for j in range(int(np.prod(self.shape))))

    @property
    def consts(self):
        return {"sn": float(len(self.shape)), **{f"s{i}": float(n)
                                                 for i, n in enumerate(self.shape)}}

    @classmethod
    def rule(cls, kind, which=None):
        if kind == "F":
            return R.Rule("F", "(F)", lambda c: _Vector(
                [E.Sym(f"z{j + 1}") for j in range(int(np.prod(_stack_shape(c.consts))))],
                _stack_shape(c.consts)), None, (), "forward")
        if kind == "B1" and isinstance(which, int):
            def expr(c, j=which):
                shape = _stack_shape(c.consts)
                return _EntryOf(v, _sub(np.unravel_index(j, shape)), j)
            return R.Rule("B1", R.TAG_CHAIN, expr, which, (), "backward")
        raise BackpropError(f"Stack has no rule {kind} for {which!r}")

    def function(self, kind, which=None):
        if kind == "B1":
            return lambda *args: np.asarray(args[-1], dtype=float).ravel()[which]
        return self.forward

    def forward(self, *zs):
        return np.array([float(np.asarray(x)) for x in zs]).reshape(self.shape)

    def backward(self, *args):
        return tuple(self.function("B1", j)(*args) for j in range(len(self.inputs)))


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

    The expanded module's operations are those of the scalar circuit (same names, same
    ``part_of``); routing modules (·)ᵢ give each entry of its inputs and parameters a node of its
    own, and [·] gathers its scalar outputs back into the module-level u[i]. Built and run with
    the ordinary ``Program``: node names, values and gradients of the rest are the module-level
    ones.
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
    count = [0]
    new_name = {}

    def name_of(orig=None):
        count[0] += 1
        n = f"M_{count[0]}"
        if orig is not None:
            new_name[orig] = n
        return n

    eqns, owner_of = [], {}
    extra_nodes = []                      # nodes made by the expansion, in order
    for j, m in enumerate(trace.modules):
        if j != k:
            mod = _module_of(m, trace.given)
            n = name_of(m.name)
            eqns.append(Eqn(mod, n, m.inputs, m.params, m.output))
            owner_of[n] = m.name
            continue
        first = count[0] + 1
        for t in needed:                                      # (·)ᵢ: split into entries
            src, pos, shape = entry_of[t]
            n = name_of()
            eqns.append(Eqn(Entry(pos, shape), n, (src,), (), t))
            extra_nodes.append(NodeInfo(t, "value", n, None, info[t].part_of))
        for r in ops:                                         # the atomic operations
            op = st.modules[r]
            n = name_of()
            eqns.append(Eqn(st.op_mods[r], n, op.inputs, (), op.output))
            p = info[op.output]
            kind = by_name[op.output].kind if op.output in by_name else "value"
            extra_nodes.append(NodeInfo(op.output, kind, n, None, p.part_of))
        out_ids = st.ids[mi.output]
        if out_ids.ndim:                                      # [·]: back into u[i]
            n = name_of()
            eqns.append(Eqn(Stack(out_ids.shape), n,
                            tuple(st.names[i] for i in out_ids.ravel().tolist()), (), mi.output))
        for e in eqns[first - 1:]:
            owner_of[e.name] = m.name
        new_name[m.name] = eqns[-1].name
    # nodes: the module-level ones (modules renamed), with the expansion's before u[i]
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
            owner = new_name.get(nd.module) if nd.module != mi.name else readers.get(nd.name)
            nodes.append(NodeInfo(nd.name, nd.kind, owner, nd.display))
        elif nd.module is not None:
            nodes.append(NodeInfo(nd.name, nd.kind, new_name.get(nd.module, nd.module),
                                  nd.display))
        else:
            nodes.append(nd)
    given = dict(trace.given)
    for t in const_names:
        given[t] = c.given[t]
    input_grad = any(Key.gradient(n.name) in trace for n in trace.nodes if n.kind == "input")
    t = Program(nodes, eqns, input_grad).run(given)
    out = Expanded(t.nodes, t.modules, t.specs, t.given, t._out, t._where)
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
