"""The notes' names for the values of a chain and of an MLP, and the line of Algorithm 3 each
step of an MLP's pass performs.

A **chain** is (7.60), J = M_k(M_{k−1}(⋯M_1(x))): u[0] = x and each module M_i reads u[i−1]
(besides its parameters θ[i], a label, constants) and writes u[i] (F). ``chain`` finds it in a
trace; the steps of a chain can then be read in the names of the chain rule (7.52) and of (7.61).

An **MLP** in the shape of (7.72) is the chain MM[W[1], b[1]], σ, MM[W[2], b[2]], σ, …,
MM[W[r], b[r]], then a loss, on one example. The tool names its values u[i], the output of
M_i (§7.4.2); (7.72) names them a[i], with the same i; the notes' Algorithm 3 names them by
layer k: z[k] = MM[W[k], b[k]](a[k−1]), the pre-activation, a[k] = σ(z[k]), the activation,
and a[0] = x. ``mlp_layout`` finds the layers in a trace, also with one more σ after the last
MM (the notes' final example: a sigmoid output under the squared loss), which is in neither
(7.72) nor Algorithm 3.

Algorithm 3, as the errata and lesson 04 correct it (the notes print the loop as k = r → 1 and
swap z and a in (7.79) and (7.80)):

    line 1  the forward pass (7.72): every z[k], a[k], and J
    (7.76)  ∂J/∂z[r] = B[ℓ_logistic, z[r]](1) = σ(z[r]) − y
    for k = r − 1 down to 0:
    (7.77)  ∂J/∂W[k+1] = B[MM, W[k+1]](∂J/∂z[k+1]) = ∂J/∂z[k+1] a[k]ᵀ
    (7.78)  ∂J/∂b[k+1] = B[MM, b[k+1]](∂J/∂z[k+1]) = ∂J/∂z[k+1]
    (7.79)  when k ≥ 1: ∂J/∂a[k] = B[MM, a[k]](∂J/∂z[k+1]) = W[k+1]ᵀ ∂J/∂z[k+1]
    (7.80)  when k ≥ 1: ∂J/∂z[k] = B[σ, z[k]](∂J/∂a[k]) = σ'(z[k]) ⊙ ∂J/∂a[k]

``algorithm3_place(trace, spec)`` says which of these lines a step is (and its k), or None.
Everything here reads the trace's structure only (its modules and nodes), never its numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.keys import Key
from ..core.modules import MM, Activation, LogisticLoss, Loss
from ..core.trace import ModuleInfo, StepSpec, Trace

VALUE_KINDS = ("input", "value", "loss")


def _is(m: ModuleInfo, kind: type) -> bool:
    return m.cls is not None and issubclass(m.cls, kind)


# --- a chain: J = M_k(⋯M_1(x)) (7.60) ------------------------------------------------------------

def chain(trace: Trace) -> tuple[ModuleInfo, ...] | None:
    """The modules M_1 … M_k if the trace is the chain (7.60): M_1 reads the input u[0], each
    M_i reads the output of M_{i−1} and otherwise only parameters, labels and constants, and the
    last output is J. None for any other graph (a skip connection, a circuit)."""
    mods = trace.modules
    if not mods or trace.n_forward != len(mods):
        return None
    prev = None
    for m in mods:
        values = [n for n in m.inputs if trace.node(n).kind in VALUE_KINDS]
        if len(values) != 1 or values[0] != (prev.output if prev else values[0]):
            return None
        if prev is None and trace.node(values[0]).kind != "input":
            return None
        prev = m
    return mods if trace.node(mods[-1].output).kind == "loss" else None


def composition(trace: Trace) -> str | None:
    """'J = M_3(M_2(M_1(x)))' for a chain (7.60), shortened with ⋯ beyond three modules."""
    mods = chain(trace)
    if mods is None:
        return None
    names = [m.name for m in mods]
    inner = "x"
    shown = names if len(names) <= 3 else names[:1] + ["⋯"] + names[-2:]
    for name in shown:
        inner = f"⋯{inner}" if name == "⋯" else f"{name}({inner})"
    return f"J = {inner}"


def rest_of_chain(mods: tuple[ModuleInfo, ...], i: int, arg: str = "u") -> str:
    """f in (7.52) for the module at position i (0-based) of a chain: the modules after it,
    'M_6(M_5(u))', or 'u' for the last module (J is its output)."""
    after = [m.name for m in mods[i + 1:]]
    if len(after) > 3:
        after = after[:1] + ["⋯"] + after[-1:]
    out = arg
    for name in after:                      # the first module after it is applied first
        out = f"⋯{out}" if name == "⋯" else f"{name}({out})"
    return out


# --- an MLP: its layers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MLPLayout:
    """The layers of an MLP in a trace: layer k = 1 … r is ``mms[k − 1]``, followed (k < r) by
    its activation ``acts[k − 1]``; ``out_act`` is a σ after the last MM (None in (7.72)'s shape),
    ``loss`` the last module."""

    mms: tuple[ModuleInfo, ...]
    acts: tuple[ModuleInfo, ...]
    out_act: ModuleInfo | None
    loss: ModuleInfo
    x: str                              # the input node, u[0]

    @property
    def r(self) -> int:
        return len(self.mms)

    @property
    def strict(self) -> bool:
        """The shape of (7.72) and Algorithm 3: the loss reads the last MM's output z[r]."""
        return self.out_act is None

    @property
    def logistic(self) -> bool:
        return _is(self.loss, LogisticLoss)

    def layer(self, module: str | None) -> tuple[str, int] | None:
        """('mm', k), ('act', k), ('out', r) or ('loss', r) for a module's name; None if none."""
        for k, m in enumerate(self.mms, 1):
            if m.name == module:
                return "mm", k
        for k, m in enumerate(self.acts, 1):
            if m.name == module:
                return "act", k
        if self.out_act is not None and self.out_act.name == module:
            return "out", self.r
        return ("loss", self.r) if self.loss.name == module else None


def mlp_layout(trace: Trace) -> MLPLayout | None:
    """The layers if the trace is an MLP on one example: the chain MM, σ, MM, σ, …, MM (one more
    σ allowed), then a loss; None otherwise (a batch, another module, another wiring)."""
    mods = chain(trace)
    if mods is None or len(mods) < 2 or not _is(mods[-1], Loss):
        return None
    body, loss = list(mods[:-1]), mods[-1]
    out_act = None
    if len(body) % 2 == 0 and _is(body[-1], Activation):
        out_act = body.pop()
    mms, acts = tuple(body[0::2]), tuple(body[1::2])
    if not all(_is(m, MM) and len(m.params) == 2 for m in mms) or \
            not all(_is(m, Activation) for m in acts) or len(acts) != len(mms) - 1:
        return None
    x = mods[0].inputs[0]
    if np.ndim(trace[Key(x)]) > 1:          # a batch: Algorithm 3 is written for one example
        return None
    return MLPLayout(mms, acts, out_act, loss, x)


def algorithm3_reason(trace: Trace) -> str:
    """Why the trace has no Algorithm 3 names ('' if it has them)."""
    if mlp_layout(trace) is not None:
        return ""
    return ("Algorithm 3 is the backward pass of an MLP on one example: MM[W[1], b[1]], σ, "
            "MM[W[2], b[2]], σ, …, MM[W[r], b[r]], then a loss; this pass is not one")


def algorithm3_names(trace: Trace) -> dict[str, str]:
    """Each value's name in Algorithm 3: u[0] → a[0] (= x), the output of layer k's MM → z[k],
    of its σ → a[k], the loss's → J. Parameters, labels and constants keep their names (W[k],
    b[k], y). Empty if the trace is not an MLP (``algorithm3_reason`` says why)."""
    lay = mlp_layout(trace)
    if lay is None:
        return {}
    names = {lay.x: "a[0]", lay.loss.output: "J"}
    for k, m in enumerate(lay.mms, 1):
        names[m.output] = f"z[{k}]"
    for k, m in enumerate(lay.acts, 1):
        names[m.output] = f"a[{k}]"
    if lay.out_act is not None:
        names[lay.out_act.output] = f"a[{lay.r}]"
    return names


def eq772_names(trace: Trace) -> dict[str, str]:
    """Each value's name in (7.72), for an MLP in its shape: u[0] → x, u[i] → a[i], the loss's
    output → J. Empty for any other trace."""
    lay = mlp_layout(trace)
    if lay is None or not lay.strict:
        return {}
    names = {lay.x: "x", lay.loss.output: "J"}
    for m in (*lay.mms, *lay.acts):
        names[m.output] = "a[" + m.output.rsplit("[", 1)[-1] if m.output.startswith("u[") \
            else m.output
    return names


# --- which line of the notes a step is ------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """A step's place in Algorithm 3: the line's tag ('' for the seed), the loop's k (the layer
    for a forward step; None for (7.76) and the seed) and a note ('' or what differs)."""

    tag: str
    k: int | None = None
    note: str = ""


def _loss_note(lay: MLPLayout) -> str:
    return "" if lay.logistic else f"with {lay.loss.base} in place of ℓ_logistic"


def algorithm3_place(trace: Trace, spec: StepSpec, lay: MLPLayout | None = None) -> Place | None:
    """Which line of Algorithm 3 the step performs, or None (a step of an output σ, the loss's
    steps after one, ∂J/∂x, a trace that is not an MLP)."""
    lay = lay or mlp_layout(trace)
    if lay is None:
        return None
    if spec.kind == "seed":
        return Place("", None, "the 1 in (7.76)" if lay.strict else "")
    where = lay.layer(spec.module)
    if where is None:
        return None
    part, k = where
    if part == "out" or (part == "loss" and not lay.strict):
        return None
    if spec.kind == "F":
        return Place("(7.72)", None if part == "loss" else k,
                     _loss_note(lay) if part == "loss" else "")
    if part == "loss":
        return Place("(7.76)", None, _loss_note(lay)) if spec.kind == "B1" else None
    if part == "act":
        return Place("(7.80)", k) if spec.kind == "B1" else None
    if spec.kind == "B2":                   # MM of layer k: W[k] = W[(k − 1) + 1]
        return Place({"W": "(7.77)", "b": "(7.78)"}[spec.which], k - 1) \
            if spec.which in ("W", "b") else None
    return Place("(7.79)", k - 1) if spec.kind == "B1" and k >= 2 else None


def mlp_tags(trace: Trace, spec: StepSpec, lay: MLPLayout | None = None) -> tuple[str, ...]:
    """The equations of §7.4.4 a step of an MLP in (7.72)'s shape is an instance of, in the
    tool's own names: a forward line of (7.72), the recursion (7.74) (each MM's and each σ's
    (B1)), the parameters' (7.75); and (7.73) for the logistic loss's backward at v = 1 (any
    trace on one example)."""
    tags = []
    if spec.kind == "B1" and spec.module is not None:
        m = trace.module(spec.module)
        t = trace[dict(spec.subs)["t"]] if _is(m, LogisticLoss) and "t" in dict(spec.subs) \
            else None
        if t is not None and np.ndim(t) <= 1:
            tags.append("(7.73)")
    lay = lay or mlp_layout(trace)
    if lay is None or not lay.strict:
        return tuple(tags)
    where = lay.layer(spec.module)
    if where is None:
        return tuple(tags)
    part, k = where
    if spec.kind == "F" and (part != "loss" or lay.logistic):
        tags.append("(7.72)")
    elif spec.kind == "B1" and (part == "act" or part == "mm" and k >= 2):
        tags.append("(7.74)")
    elif spec.kind == "B2" and part == "mm":
        tags.append("(7.75)")
    return tuple(tags)
