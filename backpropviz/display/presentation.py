"""One presentation of a step, for every output: text, TeX, the graph's caption and highlights.

``present(trace, k)`` gives the state after step k (0 = before the first step): its header, the
rule with symbols, with numbers substituted and its result (plain text), the rule in TeX, and the
highlight (which module is applied, which node is written, which nodes the rule reads).
``node_state`` and ``edge_state`` turn the highlight into the classes every drawing uses, so the
SVG, the DOT/PNG/GIF and the flipbook highlight the same things.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..core import expr as E
from ..core import keys as K
from ..core.trace import StepSpec, Trace
from ..core.rules import Context
from .text import inline

GIVEN_ORDER = ("input", "param", "label", "const")


@dataclass(frozen=True)
class Highlight:
    """What step k touches: its phase, the module applied, the node written, the nodes read."""

    k: int
    phase: str | None = None
    module: str | None = None
    wrote: str | None = None
    read: frozenset = frozenset()


# --- a rule's expression, bound to a step ------------------------------------------------------

def context(trace: Trace, spec: StepSpec) -> Context:
    keys = dict(spec.subs)
    ndims = {s: np.ndim(trace[k]) for s, k in keys.items()}
    if spec.module is None:
        return Context(ndims, {"n": len(keys)})
    m = trace.module(spec.module)
    batch = None
    if m.cls is not None and m.cls.batched and m.inputs:
        first = trace.value(m.inputs[0])
        batch = first.shape[1] if first.ndim == 2 else None
    return Context(ndims, dict(m.consts), batch)


def expression(trace: Trace, spec: StepSpec) -> E.Expr:
    """The rule's expression for this step (a module without one: B[M, z](v) by name)."""
    ctx = context(trace, spec)
    e = spec.rule.expression(ctx)
    if e is not None:
        return e
    m = trace.module(spec.module)
    base = m.base
    tname = K.tex_name(base)
    ins = [s for s, _ in spec.subs if s != "v"][:max(1, len(m.inputs))]
    marks = ", ".join(f"⟨{s}⟩" for s in ins)
    if spec.kind == "F":
        return E.Template(f"{base}({marks})", f"{tname}({marks})", tuple(ins))
    wrt = spec.which if spec.kind == "B2" else ins[spec.which]
    return E.Template(f"B[{base}, ⟨{wrt}⟩](⟨v⟩)", rf"\mathcal{{B}}[{tname}, ⟨{wrt}⟩](⟨v⟩)",
                      (wrt, "v"))


def _format(trace: Trace, spec: StepSpec, mode: str, batch: int | None) -> E.Format:
    keys = dict(spec.subs)

    def sym(name, as_=None):
        if name == "B":                   # the batch size: a letter in the rule, a number after
            return str(batch) if mode == "numbers" else "B"
        key = keys[name]
        if mode == "text":
            return K.text(key)
        if mode == "tex":
            return K.tex(key)
        if as_ == "ones":
            return inline(np.ones_like(trace[key]))
        return inline(trace[key], as_)
    return E.Format(mode == "tex", mode == "numbers", sym,
                    lambda name: np.ndim(trace[keys[name]]) if name in keys else 0)


def rhs(trace: Trace, spec: StepSpec, mode: str = "text") -> str:
    """The rule's right-hand side: mode "text" (keys), "tex", or "numbers" (values)."""
    ctx = context(trace, spec)
    return expression(trace, spec).render(_format(trace, spec, mode, ctx.batch))


def lhs_text(spec: StepSpec) -> str:
    return K.text(spec.writes)


def formula(trace: Trace, spec: StepSpec) -> str:
    """'∂J/∂u[1] = W[2]ᵀ ∂J/∂u[2]': the rule in the notes' notation."""
    return lhs_text(spec) + " = " + rhs(trace, spec)


def tex_formula(trace: Trace, spec: StepSpec) -> str:
    return K.tex(spec.writes) + " = " + rhs(trace, spec, "tex")


# --- the presentation of step k ------------------------------------------------------------------

def given_text(trace: Trace) -> str:
    """What is known before the first step: 'x = u[0], θ = W[1], b[1], y' in the notes' roles."""
    by_kind = {kind: [n.name for n in trace.nodes if n.kind == kind and n.name in trace.given]
               for kind in GIVEN_ORDER}
    role = {"input": "x", "param": "θ", "label": "y", "const": "constants"}
    parts = []
    for kind in GIVEN_ORDER:
        names = by_kind[kind]
        if not names:
            continue
        shown = ", ".join(names)
        parts.append(shown if shown == role[kind] else f"{role[kind]} = {shown}")
    return "; ".join(parts)


def header(trace: Trace, k: int) -> str:
    """'step 9/14 · backward 4/9 · (B2) (7.65) · M_3 = MM[W[2], b[2]]'."""
    n, nf = len(trace), trace.n_forward
    if k == 0:
        return f"step 0/{n} · before the first step · given {given_text(trace)}"
    s = trace.specs[k - 1]
    pos = f"forward {k}/{nf}" if s.phase == "forward" else f"backward {k - nf}/{n - nf}"
    label = s.rule.label
    tag = f" {s.tag}" if s.tag != label else ""
    mod = f" · {s.module} = {trace.module(s.module).label}" if s.module is not None else ""
    return f"step {k}/{n} · {pos} · {label}{tag}{mod}"


def highlight(trace: Trace, k: int) -> Highlight:
    if k == 0:
        return Highlight(0)
    s = trace.specs[k - 1]
    return Highlight(k, s.phase, s.module, s.node, frozenset(key.node for key in s.reads))


@dataclass(frozen=True, eq=False)
class StepView:
    """Step k of a trace as every output shows it."""

    trace: Trace
    k: int

    @cached_property
    def spec(self) -> StepSpec | None:
        return self.trace.specs[self.k - 1] if self.k else None

    @cached_property
    def header(self) -> str:
        return header(self.trace, self.k)

    @cached_property
    def symbolic(self) -> str:
        """The rule with keys ('∂J/∂u[1] = W[2]ᵀ ∂J/∂u[2]'); at step 0, the next rule."""
        if self.k == 0:
            return "next: " + formula(self.trace, self.trace.specs[0]) if self.trace.specs \
                else "no steps"
        return formula(self.trace, self.spec)

    @cached_property
    def numbers(self) -> str:
        """The right-hand side with the numbers substituted ('' at step 0)."""
        return rhs(self.trace, self.spec, "numbers") if self.k else ""

    @cached_property
    def result(self) -> str:
        return inline(self.trace[self.spec.writes]) if self.k else ""

    @cached_property
    def tex(self) -> str:
        return tex_formula(self.trace, self.spec) if self.k else ""

    @property
    def tag(self) -> str:
        return self.spec.tag if self.k else ""

    @cached_property
    def highlight(self) -> Highlight:
        return highlight(self.trace, self.k)

    @property
    def lines(self) -> list[str]:
        """Header, rule, numbers, result: the caption of every drawing and the text output."""
        if self.k == 0:
            return [self.header, self.symbolic]
        pad = " " * len(lhs_text(self.spec))
        return [self.header, self.symbolic, f"{pad} = {self.numbers}", f"{pad} = {self.result}"]

    @property
    def text(self) -> str:
        known = ", ".join(K.text(x) for x in self.trace.known(self.k))
        return "\n".join(self.lines + ["known: " + known])


def present(trace: Trace, k: int) -> StepView:
    """The state after step k (0 … len(trace)), as every output shows it."""
    return StepView(trace, trace.check_step(k))


# --- the scene: classes of nodes and edges for step k ------------------------------------------

def node_state(hl: Highlight, name: str) -> str | None:
    """'written', 'read' or None: how a node is marked at this step."""
    if name == hl.wrote:
        return "written"
    return "read" if name in hl.read else None


def edge_state(trace: Trace, hl: Highlight, module: str, node: str,
               travelled_at: float | None = None) -> str | None:
    """'now' (the current rule goes along it), 'travelled' (the backward pass has) or None.
    ``travelled_at``: the edge's trace.travelled_at, when the caller has it at hand."""
    if module == hl.module and (node == hl.wrote or node in hl.read):
        return "now"
    if travelled_at is None:
        travelled_at = trace.travelled_at(module, node)
    return "travelled" if travelled_at <= hl.k else None



def step_text(trace: Trace, k: int) -> str:
    """Step k as plain text: header, the rule with symbols and with numbers, what is known."""
    return present(trace, k).text


def trace_text(trace: Trace) -> str:
    """Every step, one per line: the whole pass as a table of equations."""
    return "\n".join(f"{k:>3} {s.phase:<8} {s.tag:<9} {lhs_text(s)} = {inline(trace[s.writes])}"
                     for k, s in enumerate(trace.specs, 1))
