"""The scalar decompositions: each module-level module written as atomic operations on single
numbers (Remark 7.4.3, for the proof of Theorem 7.4.1).

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
with the operation that overflowed (engine.py).

A decomposition works on arrays of node ids, not on numbers: ``Builder`` allocates the ids and
records the operations in the groups the decompositions create (all products of an MM, its
chains of additions, an activation on every entry, one loss operation), which the engine
(engine.py) compiles and runs.
"""
from __future__ import annotations

import numpy as np

from ..core import modules as M
from ..core.errors import BackpropError
from ..core.trace import ModuleInfo

__all__ = ["OpGroup", "ChainGroup", "Builder", "EXPANDERS", "decomposition", "ADD", "SUB", "MUL",
           "DIV", "EXP", "LOG", "IDENTITY", "ELEMENTWISE", "BINARY", "KIND"]

# the atomic operations, one shared module object per kind (modules are immutable)
ADD, SUB, MUL, DIV = M.Add(), M.Sub(), M.Mul(), M.Div()
EXP, LOG, IDENTITY = M.Exp(), M.Log(), M.Identity()
ELEMENTWISE = {"ReLU": M.ReLU(), "Sigmoid": M.Sigmoid(), "Tanh": M.Tanh(),
               "Identity": IDENTITY, "Exp": EXP, "Log": LOG, "Sin": M.Sin(), "Cos": M.Cos()}
BINARY = {"Add": ADD, "Sub": SUB, "Mul": MUL, "Div": DIV}
KIND = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Exp": "exp", "Log": "log",
        "ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Sin": "sin", "Cos": "cos",
        "Power": "power", "Identity": "id"}


# --- building the structure: operations created in groups, on arrays of node ids ---------------

class OpGroup:
    """Operations of one kind created together: out[k] = mod(ins[0][k], ins[1][k])."""

    chain = False

    def __init__(self, mod, ins, out, owner):
        self.mod, self.ins, self.out, self.owner = mod, ins, out, owner
        self.n = out.size

    def op_inputs(self):
        """(inputs of each operation: arity × n node ids, outputs: n node ids), in group order."""
        return np.stack(self.ins), self.out


class ChainGroup(OpGroup):
    """r chains of additions over n terms each: p_1 = t_0 + t_1, p_k = p_{k−1} + t_k (k < n)."""

    chain = True

    def __init__(self, terms, out, owner):
        super().__init__(ADD, (terms,), out, owner)        # out: r × (n − 1) partial sums
        self.terms = terms

    def op_inputs(self):
        """The chains' additions one by one: (p_{k−1} or t_0, t_k) → p_k, in group order."""
        first = np.concatenate([self.terms[:, :1], self.out[:, :-1]], axis=1)
        return np.stack([first.ravel(), self.terms[:, 1:].ravel()]), self.out.ravel()


class Builder:
    """Allocates node ids and records operation groups while the modules are expanded."""

    def __init__(self):
        self.n = 0
        self.groups: list[OpGroup] = []
        self.owner = -1                      # the module-level module being expanded
        self.consts: dict = {}               # (owner, value) → node id
        self.const_values: list = []         # (node id, value, owner)

    def alloc(self, shape) -> np.ndarray:
        """Fresh node ids, one per entry of an array of this shape."""
        k = int(np.prod(shape))
        ids = np.arange(self.n, self.n + k, dtype=np.int64).reshape(shape)
        self.n += k
        return ids

    def const(self, value: float) -> np.ndarray:
        """The node of a constant c the decomposition needs (1 in 1 + e^t, ½, 1/B), one per
        module and value."""
        key = (self.owner, float(value))
        if key not in self.consts:
            self.consts[key] = int(self.alloc(()))
            self.const_values.append((self.consts[key], float(value), self.owner))
        return np.asarray(self.consts[key])

    def op(self, mod, *ins) -> np.ndarray:
        """One operation per entry of the broadcast inputs; returns the output ids."""
        ins = np.broadcast_arrays(*[np.asarray(i, dtype=np.int64) for i in ins])
        out = self.alloc(ins[0].shape)
        self.groups.append(OpGroup(mod, tuple(np.ascontiguousarray(i).ravel() for i in ins),
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
        self.groups.append(ChainGroup(rows, out, self.owner))
        return out[:, -1].reshape(terms.shape[:-1])

    def own_entries(self, out: np.ndarray, first: int) -> np.ndarray:
        """Every entry of a module's output gets a node of its own made by the module: an
        identity operation for an entry that is an input (Σ of one number, z[i]) or is selected
        twice. ``first``: the first node id the module made."""
        flat = out.ravel().copy()
        _, first_at = np.unique(flat, return_index=True)
        fresh = np.zeros(flat.size, dtype=bool)
        fresh[first_at] = True
        need = ~((flat >= first) & fresh)
        if need.any():
            flat[need] = self.op(IDENTITY, flat[need])
        return flat.reshape(out.shape)


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
    """z[i]: the selected entries (``Builder.own_entries`` adds an identity operation for each)."""
    _, pos = M.index_from_consts(dict(mi.consts))
    return z.ravel()[pos]


def _elementwise(name):
    """σ(z) entry by entry: σ(z_i), one operation per entry."""
    return lambda b, mi, shapes, z: b.op(ELEMENTWISE[name], z)


def _binary(name):
    """a ∘ b for ∘ in +, −, ⊙, / (with broadcasting): a_i ∘ b_i, one operation per entry."""
    return lambda b, mi, shapes, x, y: b.op(BINARY[name], x, y)


def _power(b, mi, shapes, z):
    """z^p entry by entry: one operation per entry."""
    return b.op(M.Power(dict(mi.consts)["p"]), z)


def _sum(b, mi, shapes, z):
    """Σ_i z_i: a chain of additions ((z_1 + z_2) + ⋯) + z_n."""
    return b.chain(z.reshape(1, -1))[0]


EXPANDERS = {"MM": _mm, "MatMul": _matmul, "LogisticLoss": _logistic, "SquaredLoss": _squared,
             "CrossEntropyLoss": _cross_entropy, "Index": _index, "Power": _power, "Sum": _sum,
             **{n: _elementwise(n) for n in ELEMENTWISE}, **{n: _binary(n) for n in BINARY}}
"""Module class name → decomposition(builder, module info, shapes, *input ids, *parameter ids)."""


def decomposition(mi: ModuleInfo):
    """The decomposition of M_i from ``EXPANDERS``, or a BackpropError naming the modules that
    have one (a learner's own module class has none)."""
    cls = M.REGISTRY.get(mi.op)
    fn = EXPANDERS.get(mi.op)
    if fn is None or cls is None or not M.is_builtin(cls):
        known = ", ".join(sorted(EXPANDERS))
        raise BackpropError(f"circuit: {mi.name} = {mi.label} has no decomposition into atomic "
                            f"operations; modules that have one: {known}")
    return fn

