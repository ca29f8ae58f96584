"""The report of ``bpv.check``: each backward function's cases (a counterexample, the numerical
and the learner's numbers, the likely slip), the small network run with the nodes that disagree
with finite differences marked, as deterministic text and as HTML with the drawing in Jupyter."""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from ..core import keys as K
from ..core import rules as R
from ..core.errors import BackpropError, shape_str
from ..core.keys import Key
from ..core.numerics import close
from ..display.text import fnum, inline

MARK_LABEL = "disagrees with finite differences"


# --- the report --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One try of one function: its inputs (by the rule's symbols), the numerical answer and the
    learner's (or what went wrong)."""

    label: str                              # "single example 2", "batch 1 (B = 4)"
    inputs: tuple[tuple[str, object], ...]  # (symbol, value): W, b, z, v or t, y, v
    expected: np.ndarray
    got: np.ndarray | None
    error: str | None                       # the learner's code raised, returned None, …
    ok: bool
    rule: str = ""                          # the rule for this case (with 1/B for a batch)
    slip: R.Slip | None = None

    @property
    def batch(self) -> bool:
        return self.label.startswith("batch")


@dataclass(frozen=True)
class FunctionReport:
    """One backward function: (B1) B[M, z](v) or a parameter's (B2) B[M, θ](v)."""

    method: str             # "backward", "grad_W"
    kind: str               # "B1" or "B2"
    wrt: str                # z, t, W, b, …
    owner: str              # the class whose method this is
    mine: bool              # written in the learner's class (not inherited from backpropviz)
    name: str               # "B[MM, z](v) = ∂J/∂z"
    rule: str               # "Wᵀ v (7.63)"
    cases: tuple[Case, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases)

    @property
    def n_ok(self) -> int:
        return sum(c.ok for c in self.cases)

    @property
    def counterexample(self) -> Case | None:
        """The first failing case whose slip is recognised, else the first failing case with
        numbers, else the first failing case."""
        bad = [c for c in self.cases if not c.ok]
        for pick in (lambda c: c.slip is not None, lambda c: c.got is not None, lambda c: True):
            for c in bad:
                if pick(c):
                    return c
        return None

    @property
    def slip(self) -> R.Slip | None:
        c = self.counterexample
        return None if c is None else c.slip


@dataclass(frozen=True, eq=False)
class CheckReport:
    """What ``bpv.check`` found: one ``FunctionReport`` per backward function, the network run,
    the marked nodes. ``str(report)`` is the text; in Jupyter it also draws the network."""

    module: str                                  # the learner's class name
    label: str                                   # the notes' symbol of the module
    functions: tuple[FunctionReport, ...]
    setup: str                                   # what the cases were
    rtol: float
    atol: float
    eps: float
    seed: int
    network: str = ""                            # the network's modules, in words
    network_note: str = ""                       # what backprop through it found
    marked: frozenset = frozenset()              # nodes whose ∂J/∂· disagrees with FD
    trace: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True only when every function agrees with finite differences on every case."""
        return all(f.ok for f in self.functions)

    def __bool__(self):
        return self.ok

    def function(self, method: str) -> FunctionReport:
        for f in self.functions:
            if f.method == method:
                return f
        raise BackpropError(f"check({self.module}): no function {method!r}; functions: "
                            + ", ".join(f.method for f in self.functions))

    @property
    def errors(self) -> tuple[BackpropError, ...]:
        """What made the learner's functions unusable, one BackpropError per distinct problem,
        each naming the module and the function: an exception raised inside the learner's code
        (as a message, with the learner's line), None or non-numbers returned, an input changed
        in place, or a result of the wrong shape (§7.4.1)."""
        out = {}
        for f in self.functions:
            for c in f.cases:
                if c.error is not None:
                    msg = c.error
                elif c.got.shape != c.expected.shape:
                    msg = (f"{self.module}.{f.method} returned shape {shape_str(c.got)}, but "
                           f"{K.text(Key.gradient(f.wrt))} has the shape of {f.wrt}, "
                           f"{shape_str(c.expected)} (§7.4.1; {c.label})")
                else:
                    continue
                out.setdefault(msg, BackpropError(msg))
        return tuple(out.values())

    def raise_errors(self) -> "CheckReport":
        """Raise the first of ``errors`` (a BackpropError, without the learner's traceback);
        return the report if there is none (it may still have wrong numbers: see ``ok``)."""
        if self.errors:
            raise BackpropError(str(self.errors[0])) from None
        return self

    @property
    def slips(self) -> dict[str, str]:
        """The named slip of each wrong function, by method: {"backward": "transpose"}."""
        return {f.method: f.slip.name for f in self.functions if f.slip is not None}

    @property
    def verdict(self) -> str:
        n, good = len(self.functions), sum(f.ok for f in self.functions)
        tol = f"rtol {self.rtol:g}, atol {self.atol:g}"
        if self.ok:
            return (f"OK: {self.module}'s {'function agrees' if n == 1 else f'{n} functions agree'}"
                    f" with central differences ({tol}).")
        return f"NOT YET: {good} of {n} functions of {self.module} agree ({tol})."

    @property
    def text(self) -> str:
        width = max(len(f.method) for f in self.functions)
        rule_w = max(len(f.name + f.rule) for f in self.functions) + 3
        lines = [f"bpv.check({self.module}): the backward functions of {self.label} against "
                 f"central differences of its forward", self.setup,
                 f"A case agrees when |yours − numerical| ≤ {self.atol:g} + {self.rtol:g}·"
                 f"|numerical| in every entry.", ""]
        for f in self.functions:
            note = "" if f.mine else f"  ({f.owner}'s own, not yours)"
            lines.append(f"  {'✔' if f.ok else '✘'} {f.method:<{width}}  "
                         f"{f.name + ' = ' + f.rule:<{rule_w}}  "
                         f"{f.n_ok} of {len(f.cases)} cases agree{note}")
        for f in self.functions:
            if not f.ok:
                lines += [""] + _explain(f)
        if self.network:
            lines += ["", f"In a network: {self.network}.", "  " + self.network_note]
        lines += ["", self.verdict]
        return "\n".join(lines)

    def __str__(self):
        return self.text

    __repr__ = __str__

    def picture(self, engine: str | None = None) -> "Drawing | None":
        """The network after its last step, the nodes whose gradient disagrees with finite
        differences framed and marked ✘ (None if the network could not be run). Drawn without
        the caption: the caption would state the rule the learner was asked for beside the
        learner's numbers."""
        if self.trace is None:
            return None
        from ..display.draw import render
        pic = render(self.trace, engine=engine, marked=self.marked, mark_label=MARK_LABEL)
        svg = pic.renderer.svg(pic.step, caption=False, marked=self.marked,
                               mark_label=MARK_LABEL)
        return Drawing(svg, f"{self.network}\n{self.network_note}")

    def _repr_mimebundle_(self, include=None, exclude=None):
        colour = "#1a7f37" if self.ok else "#b3261e"
        body = [f'<div class="bpv-check" style="border-left:4px solid {colour};padding-left:8px">'
                f'<pre class="tex2jax_ignore mathjax_ignore" style="white-space:pre-wrap">'
                f'{html.escape(self.text)}</pre>']
        try:
            pic = self.picture()
        except BackpropError as e:          # no Graphviz engine, or a graph too odd to draw
            pic, body = None, body + [f"<p>(no drawing: {html.escape(str(e))})</p>"]
        if pic is not None:
            body.append(pic.svg)
        body.append("</div>")
        return {"text/plain": self.text, "text/html": "".join(body)}


class Drawing:
    """The network drawn for a report: SVG in Jupyter, the network in words as text."""

    def __init__(self, svg: str, text: str):
        self.svg, self.text = svg, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/svg+xml": self.svg, "text/plain": self.text}

    def save_svg(self, path):
        from pathlib import Path
        Path(path).write_text(self.svg, encoding="utf-8")
        return Path(path)

    def __repr__(self):
        return self.text


def _worst_entry(got, want) -> str:
    err = np.abs(got - want)
    idx = np.unravel_index(int(np.argmax(err)), want.shape) if want.ndim else ()
    # 1-based, as the notes count
    where = f"entry ({', '.join(str(int(i) + 1) for i in idx)})" if idx else "the number"
    return f"{where} is off most: numerical {fnum(want[idx])}, yours {fnum(got[idx])}"


def _flat_outer(c) -> bool:
    """The outer product v zᵀ (7.65) written as v @ z.T on 1-D v and z: a dot product (a number)
    where the sizes agree, numpy's refusal where they do not."""
    flat = [val for sym, val in c.inputs if sym in ("v", "z")]
    if c.expected.ndim != 2 or len(flat) != 2 or any(np.ndim(x) != 1 for x in flat):
        return False
    return (c.error is None and c.got.ndim == 0) or (c.error is not None and
                                                     "@ could not multiply" in c.error)


def _explain(f: FunctionReport) -> list[str]:
    c = f.counterexample
    lines = [f"✘ {f.method}, {f.name}, is wrong."]
    if c.slip is not None:
        lines.append(f"  Likely slip ({c.slip.name}): " + c.slip.hint.replace("{rule}", c.rule))
    elif _flat_outer(c):
        lines.append("  Likely slip (v zᵀ with 1-D arrays): for a 1-D array .T changes nothing, "
                     "so v @ z.T is a dot product (one number), or fails when v and z differ "
                     "in size. Make v a column and z a row: np.outer(v, z), or "
                     "v[:, None] @ z[None, :] (7.65).")
    elif c.error is None and c.got.shape != c.expected.shape:
        flipped = c.got.ndim == 2 and c.got.shape[::-1] == c.expected.shape
        grad = K.text(Key.gradient(f.wrt))
        lines.append(f"  Wrong shape: yours is {shape_str(c.got)}, but {grad} has the shape of "
                     f"{f.wrt} itself, {shape_str(c.expected)} (§7.4.1)"
                     + (": a missing or extra transpose?" if flipped else "."))
    elif c.error is None:
        sign = close(c.got, -c.expected)
        lines.append("  Not quite: " + ("every sign is flipped; " if sign else "")
                     + f"the rule is {c.rule}.")
    if c.rule != f.rule:
        lines.append(f"  For a batch the rule is {c.rule}.")
    lines.append(f"  Counterexample ({c.label}):")
    for sym, val in c.inputs:
        lines.append(f"    {sym} = {inline(val)}")
    lines.append(f"    numerical: {inline(c.expected)}")
    if c.error is not None:
        lines.append(f"    yours: {c.error}")
    else:
        lines.append(f"    yours:     {inline(c.got)}")
        if c.got.shape == c.expected.shape:
            lines.append("    " + _worst_entry(c.got, c.expected))
    errors = {}
    others = [o for o in f.cases if o is not c and not o.ok]
    for other in others:
        if other.error is not None:
            errors.setdefault(other.error, []).append(other.label)
    for err, where in errors.items():
        said = ("the other case" if len(where) == 1 else f"the other {len(where)} cases") \
            if len(where) == len(others) else ", ".join(where)
        lines.append(f"  Also in {said}: {err}")
    return lines
