"""One presentation of a step, for every output: text, TeX, the graph's caption and highlights.

``present(trace, k)`` gives the state after step k (0 = before the first step): its header, the
rule with symbols, with numbers substituted and its result (plain text), the rule in TeX, and the
highlight (which module is applied, which node is written, which nodes the rule reads).
``node_state`` and ``edge_state`` turn the highlight into the classes every drawing uses, so the
SVG, the DOT/PNG/GIF and the flipbook highlight the same things.

Notations (``NOTATIONS``): "modules" writes a step in the names of §7.4.2, u[i] and M_i, with the
rule's tag, and, where the step is an instance of one, the equation of §7.4.4 for an MLP in the
shape of (7.72): (7.72), (7.73), (7.74), (7.75). "algorithm3" (an MLP on one example) writes it
as the line of the notes' Algorithm 3 it performs, (7.72) and (7.76)–(7.80) as corrected by the
errata, in the algorithm's names z[k], a[k], with the module form beside it
(``algorithm3_line``). ``node_details`` is what the Stepper's inspector says about one node: its
names in the notes, and how its gradient was computed, entry by entry ((7.53)–(7.59), (7.62),
(7.64), (7.66)–(7.69)).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..core import expr as E
from ..core import keys as K
from ..core.errors import BackpropError, brief
from ..core.modules import MM, Activation
from ..core.modules.routing import subscript
from ..core.trace import StepSpec, Trace
from ..core.rules import Context
from . import notation as N
from .text import SMALL_VECTOR, fnum, inline

GIVEN_ORDER = ("input", "param", "label", "const")
NOTATIONS = ("modules", "algorithm3")


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


def renamed(key: K.Key, names: dict | None) -> K.Key:
    """The key with its node called by ``names`` (u[3] → z[2] in Algorithm 3), if it is there."""
    if not names or key.node not in names:
        return key
    return K.Key(names[key.node], key.grad, key.user, key.n)


def _format(trace: Trace, spec: StepSpec, mode: str, batch: int | None,
            names: dict | None = None) -> E.Format:
    keys = dict(spec.subs)

    def sym(name, as_=None):
        if name == "B":                   # the batch size: a letter in the rule, a number after
            return str(batch) if mode == "numbers" else "B"
        key = keys[name]
        if mode == "text":
            return K.text(renamed(key, names))
        if mode == "tex":
            return K.tex(renamed(key, names))
        if as_ == "ones":
            return inline(np.ones_like(trace[key]))
        return inline(trace[key], as_)
    return E.Format(mode == "tex", mode == "numbers", sym,
                    lambda name: np.ndim(trace[keys[name]]) if name in keys else 0)


def rhs(trace: Trace, spec: StepSpec, mode: str = "text", names: dict | None = None) -> str:
    """The rule's right-hand side: mode "text" (keys), "tex", or "numbers" (values); ``names``
    renames nodes (Algorithm 3's z[k], a[k] for u[i])."""
    ctx = context(trace, spec)
    return expression(trace, spec).render(_format(trace, spec, mode, ctx.batch, names))


def lhs_text(spec: StepSpec, names: dict | None = None) -> str:
    return K.text(renamed(spec.writes, names))


def formula(trace: Trace, spec: StepSpec, names: dict | None = None) -> str:
    """'∂J/∂u[1] = W[2]ᵀ ∂J/∂u[2]': the rule in the notes' notation."""
    return lhs_text(spec, names) + " = " + rhs(trace, spec, "text", names)


def tex_formula(trace: Trace, spec: StepSpec, names: dict | None = None) -> str:
    return K.tex(renamed(spec.writes, names)) + " = " + rhs(trace, spec, "tex", names)


# --- Algorithm 3 -----------------------------------------------------------------------------------

def check_notation(trace: Trace, notation: str) -> str:
    """The notation, if this trace can be written in it; else a BackpropError saying why."""
    if not isinstance(notation, str) or notation not in NOTATIONS:
        raise BackpropError(f"notation: choose one of {', '.join(NOTATIONS)}; got "
                            f"{brief(notation)}")
    if notation == "algorithm3":
        reason = N.algorithm3_reason(trace)
        if reason:
            raise BackpropError(f"notation algorithm3: {reason}")
    return notation


@dataclass(frozen=True)
class Algorithm3Line:
    """Step ``step`` of an MLP's trace as a line of the notes' Algorithm 3 (with the errata's
    corrections: the loop k = r − 1 down to 0; ∂J/∂a[k] = W[k+1]ᵀ ∂J/∂z[k+1] (7.79);
    ∂J/∂z[k] = σ'(z[k]) ⊙ ∂J/∂a[k] (7.80); ∂J/∂W[k+1] = ∂J/∂z[k+1] a[k]ᵀ (7.77)).

    ``tag``: "(7.72)" for a forward step (the algorithm's line 1, the forward pass), "(7.76)" the
    loss's backward step, "(7.77)"–"(7.80)" the loop, "" the seed. ``k``: the loop's k for
    (7.77)–(7.80), the layer for a forward step of an MM or a σ, else None. ``writes`` and
    ``formula``: what the step writes and its rule in the algorithm's names (∂J/∂W[3],
    '∂J/∂W[3] = ∂J/∂z[3] a[2]ᵀ'); ``module_formula``: the same rule in the tool's names
    (u[i], M_i); ``note``: '' or what differs from the notes' line (another loss).
    """

    step: int
    tag: str
    k: int | None
    writes: str
    formula: str
    module_formula: str
    note: str = ""

    @property
    def label(self) -> str:
        """'(7.77), k = 2'; '(7.72), the forward pass, k = 1'; 'seed: ∂J/∂J = 1, the 1 in (7.76)'."""
        if not self.tag:
            return "seed: ∂J/∂J = 1" + (f", {self.note}" if self.note else "")
        what = ", the forward pass" if self.tag == "(7.72)" else ""
        k = f", k = {self.k}" if self.k is not None else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.tag}{what}{k}{note}"


def algorithm3_line(trace: Trace, k: int) -> Algorithm3Line | None:
    """The line of Algorithm 3 that step k (1 … len(trace)) of an MLP's trace performs, with
    its k: (7.72) forward, (7.76) start, then for k = r − 1 down to 0 (7.77) ∂J/∂W[k+1],
    (7.78) ∂J/∂b[k+1] and, when k ≥ 1, (7.79) ∂J/∂a[k], (7.80) ∂J/∂z[k]; the seed ∂J/∂J = 1
    has tag "". None for a step that is no line of the algorithm (an output σ after z[r] and
    the loss's steps after it, ∂J/∂x). A BackpropError if the trace is not an MLP on one
    example (``bpv.mlp`` or a ``Sequential`` of MM, σ, …, MM and a loss)."""
    check_notation(trace, "algorithm3")
    spec = trace.spec(k)
    place = N.algorithm3_place(trace, spec)
    if place is None:
        return None
    names = N.algorithm3_names(trace)
    return Algorithm3Line(int(k), place.tag, place.k, lhs_text(spec, names),
                          formula(trace, spec, names), formula(trace, spec), place.note)


def _algorithm3_header(trace: Trace) -> str:
    """'Algorithm 3, r = 3: (7.72), (7.76), then (7.77)–(7.80) for k = 2 down to 0'; with a σ
    after z[r], only the loop is the algorithm's."""
    lay = N.mlp_layout(trace)
    r = lay.r
    loop = f"(7.77)–(7.80) for k = {r - 1} down to 0" if r > 1 else "(7.77), (7.78) for k = 0"
    if lay.strict:
        return f"Algorithm 3, r = {r}: (7.72), (7.76), then {loop}"
    out = lay.out_act
    return (f"Algorithm 3, r = {r}: its forward pass (7.72) up to z[{r}], then {loop}; "
            f"{out.name} = {out.label} after z[{r}] and the loss's steps are not in it")


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


def header(trace: Trace, k: int, notation: str = "modules") -> str:
    """'step 9/14 · backward 4/9 · (B2) (7.65) · M_3 = MM[W[2], b[2]]', then, for a step of an
    MLP in the shape of (7.72), the equation of §7.4.4 it is an instance of (' · in (7.75)'); the
    logistic loss's backward step, at v = ∂J/∂J = 1, is (7.73). Before the first step: the chain
    J = M_k(⋯M_1(x)) (7.60) and what is given. In the notation "algorithm3": the step's line of
    Algorithm 3 first ('(7.77), k = 2'), then the rule's tags."""
    n, nf = len(trace), trace.n_forward
    if k == 0:
        comp = N.composition(trace)
        alg3 = f"{_algorithm3_header(trace)} · " if notation == "algorithm3" else ""
        comp = f"{comp} (7.60) · " if comp else ""
        return f"step 0/{n} · before the first step · {alg3}{comp}given {given_text(trace)}"
    s = trace.specs[k - 1]
    pos = f"forward {k}/{nf}" if s.phase == "forward" else f"backward {k - nf}/{n - nf}"
    label = s.rule.label
    tag = f" {s.tag}" if s.tag != label and s.kind != "seed" else ""
    mod = f" · {s.module} = {trace.module(s.module).label}" if s.module is not None else ""
    if notation == "algorithm3":
        line = algorithm3_line(trace, k)
        where = "Algorithm 3 " + line.label if line is not None and line.tag else \
            "not a line of Algorithm 3" if line is None else ""
        rule = f"{label}{tag}" if s.kind != "seed" else label + (
            f", {line.note}" if line is not None and line.note else "")
        return f"step {k}/{n} · {pos} · " + (f"{where} · " if where else "") + f"{rule}{mod}"
    more = "".join(" · at v = ∂J/∂J = 1: (7.73)" if t == "(7.73)" else f" · in {t}"
                   for t in N.mlp_tags(trace, s))
    return f"step {k}/{n} · {pos} · {label}{tag}{mod}{more}"


def highlight(trace: Trace, k: int) -> Highlight:
    if k == 0:
        return Highlight(0)
    s = trace.specs[k - 1]
    return Highlight(k, s.phase, s.module, s.node, frozenset(key.node for key in s.reads))


@dataclass(frozen=True, eq=False)
class StepView:
    """Step k of a trace as every output shows it, in a notation of ``NOTATIONS``."""

    trace: Trace
    k: int
    notation: str = "modules"

    @cached_property
    def spec(self) -> StepSpec | None:
        return self.trace.specs[self.k - 1] if self.k else None

    @cached_property
    def names(self) -> dict:
        """The notation's names of the nodes (empty: the tool's own, u[i])."""
        return N.algorithm3_names(self.trace) if self.notation == "algorithm3" else {}

    @cached_property
    def header(self) -> str:
        return header(self.trace, self.k, self.notation)

    @cached_property
    def symbolic(self) -> str:
        """The rule with keys ('∂J/∂u[1] = W[2]ᵀ ∂J/∂u[2]'); at step 0, the next rule."""
        if self.k == 0:
            return "next: " + formula(self.trace, self.trace.specs[0], self.names) \
                if self.trace.specs else "no steps"
        return formula(self.trace, self.spec, self.names)

    @cached_property
    def aside(self) -> str:
        """In the notation "algorithm3", the same rule in the tool's names ('' otherwise)."""
        if not self.names or not self.k:
            return ""
        return "as modules: " + formula(self.trace, self.spec)

    @cached_property
    def numbers(self) -> str:
        """The right-hand side with the numbers substituted ('' at step 0)."""
        return rhs(self.trace, self.spec, "numbers") if self.k else ""

    @cached_property
    def result(self) -> str:
        return inline(self.trace[self.spec.writes]) if self.k else ""

    @cached_property
    def tex(self) -> str:
        return tex_formula(self.trace, self.spec, self.names) if self.k else ""

    @cached_property
    def tag(self) -> str:
        """The equation's tag beside its formula: the rule's; in the notation "algorithm3", the
        line's (7.72), (7.76)–(7.80) where the step is one."""
        if not self.k:
            return ""
        if self.notation == "algorithm3":
            line = algorithm3_line(self.trace, self.k)
            if line is not None and line.tag:
                return line.tag
        return self.spec.tag

    @cached_property
    def highlight(self) -> Highlight:
        return highlight(self.trace, self.k)

    @property
    def lines(self) -> list[str]:
        """Header, rule, numbers, result: the caption of every drawing and the text output (in
        the notation "algorithm3", the rule in the tool's names after the rule)."""
        if self.k == 0:
            return [self.header, self.symbolic]
        pad = " " * len(lhs_text(self.spec, self.names))
        aside = [self.aside] if self.aside else []
        rhs = self.symbolic.split(" = ", 1)[-1]
        # a line that says again what the line above said (the seed's "= 1") is left out
        steps = [x for i, x in enumerate([rhs, self.numbers, self.result]) if i == 0 or
                 x != [rhs, self.numbers][i - 1]][1:]
        return [self.header, self.symbolic, *aside, *(f"{pad} = {x}" for x in steps)]

    @property
    def text(self) -> str:
        known = ", ".join(K.text(renamed(x, self.names)) for x in self.trace.known(self.k))
        return "\n".join(self.lines + ["known: " + known])


def present(trace: Trace, k: int, notation: str = "modules") -> StepView:
    """The state after step k (0 … len(trace)), as every output shows it, in ``notation``
    ("modules", or "algorithm3" for an MLP: see ``NOTATIONS``)."""
    return StepView(trace, trace.check_step(k), check_notation(trace, notation))


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



def step_text(trace: Trace, k: int, notation: str = "modules") -> str:
    """Step k as plain text: header, the rule with symbols and with numbers, what is known;
    ``notation="algorithm3"`` writes an MLP's step as its line of Algorithm 3."""
    return present(trace, k, notation).text


def trace_text(trace: Trace, notation: str = "modules") -> str:
    """Every step, one per line: the whole pass as a table of equations (in the notation
    "algorithm3", each step's line of Algorithm 3 and its k, '—' for a step that is none)."""
    check_notation(trace, notation)
    if notation == "modules":
        return "\n".join(f"{k:>3} {s.phase:<8} {s.tag:<9} {lhs_text(s)} = "
                         f"{inline(trace[s.writes])}" for k, s in enumerate(trace.specs, 1))
    names = N.algorithm3_names(trace)
    rows = []
    for k, s in enumerate(trace.specs, 1):
        line = algorithm3_line(trace, k)
        tag = "—" if line is None else line.tag or "seed"
        at = "" if line is None or line.k is None else f"k = {line.k}"
        rows.append(f"{k:>3} {s.phase:<8} {tag:<7} {at:<6} {lhs_text(s, names)} = "
                    f"{inline(trace[s.writes])}")
    return "\n".join(rows)


# --- one node in detail: the inspector's text ------------------------------------------------------

MAX_JACOBIAN = 64        # a module with more outputs is not taken apart (its matrix, its sums)


def _entry(key: K.Key, index: tuple) -> str:
    """An entry as the circuit names it, counted from 1: u[3]₁, ∂J/∂W[2]₁,₂, (∂J/∂u[0] via M_1)₂."""
    text = K.text(key)
    return (f"({text})" if key.is_contribution else text) + subscript(index)


def _index(shape: tuple, entry) -> tuple:
    """The 0-based index of the entry asked for (default: the first), checked against shape."""
    if entry is None:
        return (0,) * len(shape)
    index = (entry,) if isinstance(entry, (int, np.integer)) else tuple(entry)
    if len(index) != len(shape) or not all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < n
            for i, n in zip(index, shape)):
        raise BackpropError(f"entry: give a 0-based index into shape {shape}; got {brief(entry)}")
    return tuple(int(i) for i in index)


def _factor(x) -> str:
    s = fnum(x)
    return f"({s})" if s.startswith("-") else s


def _product(pairs, result) -> str:
    """'0.2 × 1 + 0 × (-1) = 0.2': a sum of products with its numbers, at most 6 terms shown."""
    terms = [f"{_factor(a)} × {_factor(b)}" for a, b in pairs[:SMALL_VECTOR]]
    more = f" + … ({len(pairs)} terms)" if len(pairs) > SMALL_VECTOR else ""
    return " + ".join(terms) + more + f" = {fnum(result)}"


def _derivatives(trace: Trace, spec: StepSpec) -> tuple[str, np.ndarray] | None:
    """The partial derivatives ∂g_j/∂z_i of a (B1) step of one example, from the rule's own
    expression applied to v = e_j (the backward function is linear in v): ("full", the matrix
    with row i, column j = ∂g_j/∂z_i), or ("diag", its diagonal) for an activation, whose
    matrix is diagonal (7.67), (7.68). None where they cannot be had (a batch, a rule without an
    expression, more than MAX_JACOBIAN outputs)."""
    m = trace.module(spec.module)
    keys = dict(spec.subs)
    e = expression(trace, spec)
    if isinstance(e, E.Template) or "v" not in keys:
        return None              # a learner's backward function: no formula to take apart
    v = np.asarray(trace[keys["v"]], dtype=float)
    if np.ndim(v) > 1 or context(trace, spec).batch or \
            any(np.ndim(trace[key]) > 1 for key in keys.values() if key != keys.get("W")):
        return None
    if m.cls is not None and issubclass(m.cls, MM) and "W" in keys:
        return "full", np.asarray(trace[keys["W"]], dtype=float).T        # (7.62)
    env = {sym: E.columns(trace[key]) for sym, key in keys.items()}

    def apply(w):
        env["v"] = E.columns(w)
        with np.errstate(all="ignore"):
            return np.asarray(e.eval(env), dtype=float).ravel()
    n_z = np.size(trace[spec.writes])
    try:
        if m.cls is not None and issubclass(m.cls, Activation):
            d = apply(np.ones_like(v))
            return ("diag", d) if d.size == n_z else None
        if v.size > MAX_JACOBIAN:
            return None
        out = np.stack([apply(np.eye(v.size)[j].reshape(v.shape)) for j in range(v.size)],
                       axis=1)
    except (TypeError, ValueError, KeyError):
        return None
    return ("full", out) if out.shape[0] == n_z else None


def _b1_details(trace: Trace, s: StepSpec, index: tuple) -> list[str]:
    m = trace.module(s.module)
    keys = dict(s.subs)
    sym = m.cls.inputs[s.which] if m.cls is not None and isinstance(s.which, int) and \
        s.which < len(m.cls.inputs) else None
    zkey, vkey = keys.get(sym), keys["v"]
    g = f"{m.name} = {m.label}"
    if zkey is None:
        return [f"(B1): {K.text(s.writes)} = B[{m.base}, ·]({K.text(vkey)}), (7.57) for {g}"]
    z, u = K.text(zkey), m.output
    lines = [(f"(B1): {K.text(s.writes)} = B[{m.base}, {z}]({K.text(vkey)}): the backward "
              f"function (7.57) of g = {g}")]
    inputs = ", ".join(n for n in m.inputs if trace.node(n).kind != "const")
    mods = N.chain(trace)
    if mods is not None:
        i = [x.name for x in mods].index(m.name)
        lines.append(f"(7.52) with z = {z}, u = g(z) = {u}, J = f(u) = "
                     f"{N.rest_of_chain(mods, i)}")
        lines.append(f"(7.56), (7.61): {K.text(vkey)} → {K.text(s.writes)} needs only {m.name} "
                     f"and {inputs}")
    else:
        lines.append(f"(7.56): {K.text(vkey)} → {K.text(s.writes)} needs only {m.name} and "
                     f"{inputs}")
    d = _derivatives(trace, s)
    if d is None:
        return lines
    kind, jac = d
    v = np.ravel(np.asarray(trace[vkey], dtype=float))
    i = int(np.ravel_multi_index(index, np.shape(trace[s.writes]))) if index else 0
    result = float(np.ravel(trace[s.writes])[i])
    want = _entry(s.writes, index)
    if np.size(jac) == 1 and np.ndim(trace[zkey]) == 0:   # single numbers (a circuit): no matrix
        return lines + [f"(7.53), (7.58): {want} = ∂g/∂z {K.text(vkey)} = "
                        + _product([(float(np.ravel(jac)[0]), v[0])], result)]
    is_mm = m.cls is not None and issubclass(m.cls, MM)
    is_act = kind == "diag"
    if is_mm:
        lines.append(f"(7.62): ∂(Wz + b)_j/∂z_i = W_ji, so the matrix [∂g_j/∂z_i] of (7.59) is "
                     f"{K.text(K.Key(keys['W'].node))}ᵀ and B[MM, z](v) = Wᵀ v (7.63)")
    elif is_act:
        lines.append("(7.67): ∂σ_j(z)/∂z_i = 0 for i ≠ j, so the matrix [∂g_j/∂z_i] of (7.59) "
                     "is diag(σ'(z_1), …, σ'(z_n)) (7.68) and B[σ, z](v) = σ'(z) ⊙ v (7.69)")
    else:
        lines.append("(7.54), (7.59): B[g, z](v) = [∂g_j/∂z_i] v, the matrix's row i, column j "
                     "being ∂g_j/∂z_i")
    shown = np.diag(jac) if is_act and jac.size <= SMALL_VECTOR else jac
    if shown.ndim == 2 and shown.shape[0] <= SMALL_VECTOR and shown.shape[1] <= SMALL_VECTOR:
        lines.append(f"[∂g_j/∂z_i] = {inline(shown)}  ({shown.shape[0]} × {shown.shape[1]})")
    if is_act:
        lines.append(f"(7.69): {want} = σ'({_entry(zkey, index)}) {_entry(vkey, index)} = "
                     + _product([(jac[i], v[i])], result))
    else:
        vj = _entry(vkey, ()) + ("_j" if v.size > 1 else "")
        dg = ("∂g_j" if v.size > 1 else "∂g") + "/∂z" + subscript(index)
        lines.append(f"(7.53), (7.58): {want} = " + ("Σ_j " if v.size > 1 else "")
                     + f"{dg} {vj} = " + _product(list(zip(jac[i], v)), result))
    return lines


def _b2_details(trace: Trace, s: StepSpec, index: tuple) -> list[str]:
    m = trace.module(s.module)
    keys = dict(s.subs)
    vkey = keys["v"]
    param = s.writes.node
    lines = [(f"(B2): {K.text(s.writes)} = B[{m.base}, {param}]({K.text(vkey)}): (7.57) with "
              f"z = θ = {param}, for {m.name} = {m.label}")]
    if m.cls is None or not issubclass(m.cls, MM) or s.which not in ("W", "b") or \
            np.ndim(trace[vkey]) != 1:
        return lines
    v = np.asarray(trace[vkey], dtype=float)
    result = float(np.asarray(trace[s.writes])[index])
    if s.which == "W":
        zkey = keys["z"]
        z = np.asarray(trace[zkey], dtype=float)
        i, j = index
        lines += [("(7.55): ∂J/∂W_ij = Σ_l ∂J/∂u_l ∂(Wz + b)_l/∂W_ij, and ∂(Wz + b)_l/∂W_ij "
                   "is z_j for l = i, else 0"),
                  ("(7.64): so ∂J/∂W_ij = v_i z_j (the notes print a garbled sum here; see the "
                   "errata), all of them v zᵀ (7.65)"),
                  f"{_entry(s.writes, index)} = {_entry(vkey, (i,))} {_entry(zkey, (j,))} = "
                  + _product([(v[i], z[j])], result)]
    else:
        lines += [("(7.66): ∂J/∂b_i = Σ_l ∂J/∂u_l ∂(Wz + b)_l/∂b_i = v_i, as ∂(Wz + b)_l/∂b_i "
                   "is 1 for l = i, else 0"),
                  f"{_entry(s.writes, index)} = {_entry(vkey, index)} = {fnum(result)}"]
    return lines


def node_details(trace: Trace, name: str, k: int, entry=None) -> list[str]:
    """What the inspector says about node ``name`` after step k, besides its value and gradient:
    its names in the notes ((7.72), Algorithm 3), the rule that computed its value (F), and
    how its gradient was computed, entry by entry, with the numbers of ``entry`` (a 0-based
    index, default the first entry): (B1) as (7.57), the chain rule's setting (7.52) and
    (7.56), (7.61); the matrix of (7.54), (7.59) ((7.62) for MM, (7.67), (7.68) for σ); the
    entry by (7.53), (7.58), (7.69); a parameter's by (7.55), (7.64), (7.66); a sum over users
    by (7.53). Plain text lines: the caller escapes them."""
    node = trace.node(name)
    k = trace.check_step(k)
    lines = []
    alg3, e772 = N.algorithm3_names(trace), N.eq772_names(trace)
    if name in alg3 or name in e772:
        said = [f"{e772[name]} in (7.72)"] if name in e772 and e772[name] != name else []
        said += [f"{alg3[name]} in Algorithm 3"] if name in alg3 else []
        lines.append(f"{name} is " + " and ".join(said))
    vkey = K.Key(name)
    if vkey in trace and trace.known_at(vkey) > 0 and trace.is_known(vkey, k):
        s = trace.specs[int(trace.known_at(vkey)) - 1]
        tags = "".join(f", {t}" for t in N.mlp_tags(trace, s))
        lines.append(f"{formula(trace, s)}: (F) at step {int(trace.known_at(vkey))}{tags}")
    gkey = K.Key.gradient(name)
    if gkey not in trace or not trace.is_known(gkey, k):
        return lines
    at = int(trace.known_at(gkey))
    s = trace.specs[at - 1]
    index = _index(np.shape(trace[gkey]), entry)
    if s.kind == "seed":
        lines.append(f"{K.text(gkey)} = ∂J/∂J = 1 at step {at}: the seed, the v = 1 that the "
                     f"first backward function is applied to")
    elif s.kind == "acc":
        lines.append(f"{formula(trace, s)}: (7.53) at step {at}, the sum over the users of "
                     f"{name} (∂J/∂z_i = Σ_j ∂J/∂u_j ∂g_j/∂z_i, one term per user)")
    else:
        tags = "".join(f", {t}" for t in N.mlp_tags(trace, s))
        lines.append(f"{formula(trace, s)}: {s.rule.label} {s.tag}{tags} at step {at}")
        if node.kind in ("input", "value", "param", "loss"):
            lines += (_b1_details if s.kind == "B1" else _b2_details)(trace, s, index)
    return lines
