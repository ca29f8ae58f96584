"""Draw a trace as known after step k: every u[i], θ[i] and, once computed, ∂J/∂u[i], ∂J/∂θ[i].

Graphviz lays each graph out once, with every node at its final size (value and gradient rows
reserved, whatever the numbers); stepping then writes the SVG from that geometry with new text and
styles, without running Graphviz again.

Legend (colour-blind safe, Okabe–Ito colours; each also differs in line style):
  * blue, solid        forward pass (F): the module applied and the value it wrote
  * vermillion, dashed backward pass (B1)/(B2): the gradient written; edges it has travelled
  * thick outline      the current step's module and the node it wrote (written)
  * dotted outline     the nodes whose value or gradient the current rule reads (read)
  * dashed grey edge   a parameter θ going into its module
  * cream box          J, the loss u[k]
  * grey bar           not yet computed (blank, not zero)
  * red text, ⚠        NaN or inf
  * purple frame, ✘    a "marked" node (optional: ``render(trace, k, marked={"u[1]"})``; the
                       legend then says what the marks mean, e.g. "disagrees with finite
                       differences" in ``bpv.check``'s drawings)

Every format (SVG, DOT/PNG/GIF, flipbook) takes its highlights from ``present.node_state`` and
``present.edge_state`` through the one table ``STYLES`` below.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import keys as K
from ..core.errors import BackpropError
from ..core.keys import Key
from .presentation import Highlight, edge_state, formula, node_state, present
from ..core.trace import Trace
from .text import array_lines, shape_text

MAX_NODES = 3000
MAX_SCALAR_VALUES = 1200     # value nodes of a scalar circuit drawn at most
MAX_GIF_FRAMES, MAX_GIF_NODES = 120, 400   # a GIF is one Graphviz run per frame
PROGRESS_FROM = 200       # steps or frames: exports longer than this show a progress bar
FWD, BWD, INK, GREY, BAD = "#0072B2", "#D55E00", "#222222", "#BBBBBB", "#CC0000"
MARK = "#CC79A7"                         # Okabe–Ito reddish purple: marked nodes (a frame and ✘)
CHAR_W, LINE_H, PAD = 7.3, 16.0, 8.0     # monospace 12px: width of a character, height of a line
CAPTION_H, LEGEND_H = 70.0, 26.0       # LEGEND_H: one row of the legend
LEGEND_CHAR_W = 8.0                     # a character of the legend's 13px sans-serif text
FIT = "max-width:100%;max-height:82vh;width:auto;height:auto"    # a static picture: fit the output


class EngineMissing(BackpropError):
    """No Graphviz engine: neither a system dot nor graphviz-pure."""


# --- engines ---------------------------------------------------------------------------------

def find_engine(prefer: str | None = None) -> str:
    """The Graphviz binary to lay out with: system dot, else PyPI's graphviz-pure.

    ``prefer`` (or the environment variable BACKPROPVIZ_ENGINE) is "dot" or "graphviz-pure".
    """
    prefer = prefer or os.environ.get("BACKPROPVIZ_ENGINE")
    names = [prefer] if prefer else ["dot", "graphviz-pure"]
    for name in names:
        path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if path:
            return path
    raise EngineMissing(
        "no Graphviz engine found to draw the graph"
        + (f" (asked for {prefer!r})" if prefer else "") + ". Get one of: "
        "(1) apt-get install graphviz   (2) conda install -c conda-forge graphviz   "
        "(3) pip install graphviz-pure.  Meanwhile bpv.step_text(trace, k) shows the step as text.")


def run_engine(dot_source: str, fmt: str = "json", engine: str | None = None) -> bytes:
    """Run Graphviz quietly: its warnings never reach a notebook's output."""
    exe = find_engine(engine)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode("utf-8"),
                          capture_output=True, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        # Graphviz's own error lines, not a stream of font warnings cut off at some length
        lines = proc.stderr.decode("utf-8", "replace").splitlines()
        errors = [ln for ln in lines if "rror" in ln] or lines[-1:] or ["no output"]
        raise BackpropError(f"Graphviz ({Path(exe).name}) failed: " + "; ".join(errors[:3])[:400])
    return proc.stdout


def short(text: str, n: int = 48) -> str:
    """A name as drawn: long names are shortened (the full name stays in the data attributes
    and the text output)."""
    return text if len(text) <= n else text[:n - 1] + "…"


def esc(text: str) -> str:
    """Escape text for SVG/HTML content and attributes (and HTML-like DOT labels)."""
    return html.escape(str(text), quote=True).replace("\n", "&#10;")


# --- what is drawn: boxes for values, ellipses for modules ------------------------------------

@dataclass
class Box:
    """A value node: its name, its rows of keys and the reserved text width of each row."""

    id: str
    name: str
    kind: str
    title: str
    keys: list[Key]                      # value key, then gradient keys (contributions, total)
    width: float = 0.0
    height: float = 0.0
    x: float = 0.0                       # centre, after layout
    y: float = 0.0


@dataclass
class Oval:
    id: str
    module: str
    label: str
    width: float = 0.0
    height: float = 0.0
    x: float = 0.0
    y: float = 0.0


@dataclass
class Edge:
    tail: str                            # ids
    head: str
    label: str
    module: str                          # the module this edge feeds or leaves
    node: str                            # the value node at its other end
    param: bool = False
    path: str = ""
    arrow: str = ""
    lx: float = 0.0
    ly: float = 0.0


def _reserved_chars(a) -> int:
    """Characters a value may need, whatever its numbers: fixed by its shape only."""
    a = np.asarray(a)
    lines = array_lines(np.full(a.shape, -1.2345e-05)) if a.size else ["[]"]
    return max(len(line) for line in lines) + 2


def _rows(a) -> int:
    return len(array_lines(np.zeros(np.shape(a))))


class Layout:
    """One Graphviz layout of a trace's graph, reused for every step (and every trace with the
    same graph and shapes)."""

    def __init__(self, trace: Trace, engine: str | None = None, place: bool = True):
        n_nodes = len(trace.nodes) + len(trace.modules)
        scalar_values = sum(1 for n in trace.nodes if getattr(n, "part_of", None) is not None)
        if scalar_values > MAX_SCALAR_VALUES:
            # measured here: dot lays out ~1,000 value nodes in about 1 s, ~3,000 in about 30 s
            raise BackpropError(
                f"this scalar circuit has {scalar_values} value nodes and {len(trace.modules)} "
                f"operations, more than the {MAX_SCALAR_VALUES} value nodes drawn (the layout would "
                f"take tens of seconds and be unreadable); expand one module instead "
                f"(bpv.circuit(trace, expand=\"M_1\"), or 'expand' in the Stepper), step through "
                f"it as text (bpv.step_text), or count it (circuit.counts)")
        if n_nodes > MAX_NODES:
            raise BackpropError(
                f"the graph has {n_nodes} nodes, more than the {MAX_NODES} that can be drawn "
                f"legibly; draw the module-level view instead (bpv.Sequential with MM modules, "
                f"or fewer ops in bpv.trace), or step through it as text with bpv.step_text")
        self.signature = graph_signature(trace)
        self.engine = engine
        self._build(trace)
        if place:           # place=False: the DOT source only, no Graphviz binary needed
            self._layout(trace)

    def _build(self, trace: Trace):
        self.boxes: dict[str, Box] = {}
        keys_of: dict[str, list[Key]] = {}
        for s in trace.specs:
            if s.kind != "F":
                keys_of.setdefault(s.node, []).append(s.writes)
        for i, n in enumerate(trace.nodes):
            shown = n.name if n.display is None else f"{n.display} = {n.name}"
            value = trace.value(n.name)
            box = Box(f"v{i}", n.name, n.kind, f"{short(shown)}  {shape_text(value)}",
                      [Key(n.name)] + keys_of.get(n.name, []))
            chars = max(len(box.title), max(len(K.label(k)) + 2 + _reserved_chars(trace[k])
                                            for k in box.keys))
            lines = 1 + sum(_rows(trace[k]) for k in box.keys)
            box.width, box.height = chars * CHAR_W + 2 * PAD, lines * LINE_H + 2 * PAD
            self.boxes[n.name] = box
        self.ovals = {}
        for i, m in enumerate(trace.modules):
            label = f"{m.name}: {short(m.label)}"
            self.ovals[m.name] = Oval(f"m{i}", m.name, label, len(label) * CHAR_W + 34, 36.0)
        self.edges = []
        for m in trace.modules:
            for z in m.inputs:
                self.edges.append(Edge(self.boxes[z].id, self.ovals[m.name].id,
                                       shape_text(trace.value(z)), m.name, z))
            for p in m.params:
                self.edges.append(Edge(self.boxes[p].id, self.ovals[m.name].id,
                                       shape_text(trace.value(p)), m.name, p, param=True))
            self.edges.append(Edge(self.ovals[m.name].id, self.boxes[m.output].id,
                                   shape_text(trace.value(m.output)), m.name, m.output))

    def digraph(self, style=None, caption: str | None = None):
        """A ``graphviz.Digraph`` with every node at its final size (its quoting makes the DOT);
        ``style(item) -> dict`` gives a step's label and highlight attributes."""
        import graphviz
        g = graphviz.Digraph("backprop", graph_attr={"rankdir": "TB", "nodesep": "0.3",
                                                     "ranksep": "0.35"},
                             node_attr={"fixedsize": "true", "fontname": "DejaVu Sans Mono",
                                        "fontsize": "10"},
                             edge_attr={"fontname": "DejaVu Sans", "fontsize": "9",
                                        "arrowsize": "0.7"})
        if caption is not None:
            g.attr(labelloc="t", labeljust="l", fontname="DejaVu Sans", fontsize="12",
                   label=caption)
        for item, shape in [(x, "box") for x in self.boxes.values()] + \
                [(x, "ellipse") for x in self.ovals.values()]:
            g.node(item.id, shape=shape, width=f"{item.width / 72:.4f}",
                   height=f"{item.height / 72:.4f}", **(style(item) if style else {"label": ""}))
        for i, e in enumerate(self.edges):
            attrs = {"style": "dashed", "color": "#888888"} if e.param else {}
            attrs.update(style(e) if style else {})
            g.edge(e.tail, e.head, id=f"e{i}", label=e.label, **attrs)
        return g

    def dot_source(self) -> str:
        return self.digraph().source

    def _layout(self, trace: Trace):
        data = json.loads(run_engine(self.dot_source(), "json", self.engine))
        x0, y0, x1, y1 = map(float, data["bb"].split(","))
        self.width, self.height = max(x1 - x0, 560.0), y1 - y0
        top = CAPTION_H                       # graph coordinates have y upward; SVG downward
        fy = lambda y: top + (y1 - y)
        by_id = {}
        for obj in data.get("objects", []):
            if "pos" in obj:
                x, y = map(float, obj["pos"].split(","))
                by_id[obj["name"]] = (x - x0, fy(y))
        for item in list(self.boxes.values()) + list(self.ovals.values()):
            item.x, item.y = by_id[item.id]
        drawn = {d.get("id"): d for d in data.get("edges", [])}
        for i, e in enumerate(self.edges):
            d = drawn[f"e{i}"]
            pts = [p for op in d.get("_draw_", []) if op["op"] == "b" for p in op["points"]]
            if pts:
                P = [(px - x0, fy(py)) for px, py in pts]
                e.path = f"M{P[0][0]:.1f},{P[0][1]:.1f} C" + " ".join(
                    f"{px:.1f},{py:.1f}" for px, py in P[1:])
            heads = [op["points"] for op in d.get("_hdraw_", []) if op["op"] in ("P", "p")]
            if heads:
                e.arrow = " ".join(f"{px - x0:.1f},{fy(py):.1f}" for px, py in heads[0])
            if "lp" in d:
                lx, ly = map(float, d["lp"].split(","))
                e.lx, e.ly = lx - x0, fy(ly)
        self.legend = legend_places(self.width)
        self.legend_rows = 1 + max(row for _, row in self.legend)
        self.total_h = CAPTION_H + self.height + self.legend_rows * LEGEND_H + 10


# the legend's entries: a swatch (drawn at x, y; its width) and the words
LEGEND = (
    (lambda x, y: f'<line x1="{x}" y1="{y + 6}" x2="{x + 26}" y2="{y + 6}" stroke="{FWD}" '
                  f'stroke-width="3"/>', 26, "forward (F)"),
    (lambda x, y: f'<line x1="{x}" y1="{y + 6}" x2="{x + 26}" y2="{y + 6}" stroke="{BWD}" '
                  f'stroke-width="3" stroke-dasharray="7 3"/>', 26, "backward (B1)/(B2)"),
    (lambda x, y: f'<rect x="{x}" y="{y}" width="22" height="12" fill="none" stroke="{INK}" '
                  f'stroke-width="3"/>', 22, "written"),
    (lambda x, y: f'<rect x="{x}" y="{y}" width="22" height="12" fill="none" stroke="{INK}" '
                  f'stroke-width="2" stroke-dasharray="3 2"/>', 22, "read"),
    (lambda x, y: f'<line x1="{x}" y1="{y + 6}" x2="{x + 26}" y2="{y + 6}" stroke="#888888" '
                  f'stroke-width="1.2" stroke-dasharray="4 3"/>', 26, "parameter θ"),
    (lambda x, y: f'<rect x="{x}" y="{y}" width="22" height="12" fill="#FFF8E7" '
                  f'stroke="#777777"/>', 22, "loss J"),
    (lambda x, y: f'<rect class="blank" x="{x}" y="{y}" width="22" height="12"/>', 22,
     "not yet computed"),
    (None, 0, "⚠ NaN/inf"),
)


def _mark_swatch(x, y):
    return (f'<rect class="mark" x="{x}" y="{y - 2}" width="22" height="16" rx="4"/>'
            f'<text class="mark-t" x="{x + 6}" y="{y + 11}">✘</text>')


def legend_with_mark(label: str) -> tuple:
    """The legend with the marked style explained by ``label`` (added only when marks exist)."""
    return LEGEND + ((_mark_swatch, 22, label),)


def legend_places(width: float, entries: tuple = LEGEND) -> list[tuple[float, int]]:
    """Where each legend entry starts (x, row): left to right, wrapping at the drawing's width,
    so no entry is cut off by a narrow drawing."""
    out, x, row = [], 8.0, 0
    for _, sw, label in entries:
        w = sw + (6 if sw else 0) + len(label) * LEGEND_CHAR_W
        if x > 8 and x + w > width - 8:
            x, row = 8.0, row + 1
        out.append((x, row))
        x += w + 22
    return out


def graph_signature(trace: Trace) -> tuple:
    """What fixes the layout: the graph and the shapes, not the numbers."""
    return (tuple(trace.nodes), tuple(trace.modules),
            tuple((s.writes, s.kind) for s in trace.specs),
            tuple(np.shape(trace.value(n.name)) for n in trace.nodes))


# --- one table of styles: the scene's states as CSS classes (SVG) and as DOT attributes ----------

def _phase(hl: Highlight) -> str:
    return "F" if hl.phase == "forward" else "B"


# (state, phase) → (CSS class, DOT attributes)
STYLES = {
    ("written", "F"): ("cur-F", {"color": FWD, "penwidth": "3"}),
    ("written", "B"): ("cur-B", {"color": BWD, "penwidth": "3", "style": "dashed"}),
    ("read", "F"): ("read read-F", {"color": FWD, "penwidth": "2", "style": "dotted"}),
    ("read", "B"): ("read read-B", {"color": BWD, "penwidth": "2", "style": "dotted"}),
    ("module", "F"): ("cur-F", {"color": FWD, "penwidth": "3"}),
    ("module", "B"): ("cur-B", {"color": BWD, "penwidth": "3", "style": "dashed"}),
    ("now", "F"): ("now-F", {"color": FWD, "penwidth": "3", "style": "solid"}),
    ("now", "B"): ("now-B", {"color": BWD, "penwidth": "3", "style": "dashed"}),
    ("travelled", "F"): ("back", {"color": BWD, "penwidth": "2", "style": "dashed"}),
    ("travelled", "B"): ("back", {"color": BWD, "penwidth": "2", "style": "dashed"}),
}


def _style(state: str | None, hl: Highlight):
    return STYLES.get((state, _phase(hl)), ("", {}))


# --- SVG writer: restyles the fixed layout for a step ----------------------------------------

_STYLE = f"""<style>
.bpv text {{ font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px;
  white-space: pre; fill: {INK}; }}
.bpv .cap {{ font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 13px; }}
.bpv .cap.head {{ font-weight: bold; }}
.bpv .lab {{ fill: #666666; }}
.bpv .ttl {{ font-weight: bold; }}
.bpv .bad {{ fill: {BAD}; font-weight: bold; }}
.bpv .blank {{ fill: #EEEEEE; stroke: {GREY}; stroke-dasharray: 2 2; }}
.bpv .box {{ fill: #FFFFFF; stroke: #777777; stroke-width: 1; }}
.bpv .box.param {{ fill: #F7F7F7; }}
.bpv .box.loss {{ fill: #FFF8E7; }}
.bpv .oval {{ fill: #F2F2F2; stroke: #777777; stroke-width: 1; }}
.bpv .cur-F {{ stroke: {FWD}; stroke-width: 3.5; }}
.bpv .cur-B {{ stroke: {BWD}; stroke-width: 3.5; stroke-dasharray: 7 3; }}
.bpv .read {{ stroke-dasharray: 3 2; stroke-width: 2; }}
.bpv .read-F {{ stroke: {FWD}; }} .bpv .read-B {{ stroke: {BWD}; }}
.bpv .edge {{ fill: none; stroke: #888888; stroke-width: 1.2; }}
.bpv .edge.param {{ stroke-dasharray: 4 3; }}
.bpv .edge.back {{ stroke: {BWD}; stroke-width: 2.2; stroke-dasharray: 7 3; }}
.bpv .edge.now-F {{ stroke: {FWD}; stroke-width: 3; stroke-dasharray: none; }}
.bpv .edge.now-B {{ stroke: {BWD}; stroke-width: 3.2; stroke-dasharray: 7 3; }}
.bpv .arr {{ fill: #888888; }}
.bpv .elab {{ font-size: 11px; fill: #555555; }}
.bpv .mark {{ fill: none; stroke: {MARK}; stroke-width: 3; }}
.bpv .mark-t {{ fill: {MARK}; font-weight: bold; }}
</style>"""


class Renderer:
    """Draws one trace at any step from one layout. Text of every row is formatted once."""

    def __init__(self, trace: Trace, layout: Layout | None = None, engine: str | None = None):
        # a given layout must be of this graph (``renderer()`` matches them by signature)
        layout = layout or Layout(trace, engine)
        self.trace, self.layout = trace, layout
        self._rows = {k: array_lines(trace[k]) for b in layout.boxes.values() for k in b.keys}
        self._bad = {k for k in self._rows if not np.isfinite(np.asarray(trace[k], float)).all()}
        self._edge_svg = self._static_edges()
        self._oval_svg = self._static_ovals()
        self._boxes = {b.id: self._box_parts(b) for b in layout.boxes.values()}

    def _static_edges(self) -> list[tuple]:
        """Each edge's SVG before and after its class, and when the backward pass crosses it."""
        out = []
        for e in self.layout.edges:
            out.append(('<path class="', f'" d="{e.path}"/>'
                        + (f'<polygon class="arr" points="{e.arrow}"/>' if e.arrow else "")
                        + f'<text class="elab" x="{e.lx:.1f}" y="{e.ly + 3:.1f}" '
                          f'text-anchor="middle">{esc(e.label)}</text>',
                        self.trace.travelled_at(e.module, e.node)))
        return out

    def _static_ovals(self) -> list[tuple]:
        out = []
        for o in self.layout.ovals.values():
            out.append((o.module, f'<g id="{o.id}" class="module" data-module="{esc(o.module)}">'
                        f'<ellipse class="', f'" cx="{o.x:.1f}" cy="{o.y:.1f}" '
                        f'rx="{o.width / 2:.1f}" ry="{o.height / 2:.1f}"/>'
                        f'<text x="{o.x:.1f}" y="{o.y + 4:.1f}" text-anchor="middle">'
                        f'{esc(o.label)}</text></g>'))
        return out

    # one SVG per step; the geometry is fixed, only classes, text and blanks change
    def svg(self, k: int, caption: bool = True, marked=frozenset(),
            mark_label: str = "marked", fit: bool = True) -> str:
        """Step k's picture (0 = before the first step); without the caption (a widget shows
        the equation beside it) the view starts below it. ``marked`` node names get a purple
        frame and ✘, explained in the legend by ``mark_label``. ``fit``: shrink to the width of
        the output (a static picture); without it the drawing keeps its size, its labels stay
        readable, and the panel around it scrolls (the Stepper)."""
        view = present(self.trace, k)
        hl = view.highlight
        L = self.layout
        marked = self._marked(marked)
        legend = legend_with_mark(mark_label) if marked else LEGEND
        places = legend_places(L.width, legend) if marked else L.legend
        rows = 1 + max(row for _, row in places)
        top = 0 if caption else CAPTION_H - 8
        h = L.total_h + (rows - L.legend_rows) * LEGEND_H - top
        title = view.header
        desc = "\n".join(view.lines[1:]) or view.header
        if marked:
            desc += f"\n{mark_label}: " + ", ".join(n for n in L.boxes if n in marked)
        # a notebook page holds many drawings: ids named after what they say, so that two
        # drawings share an id only where they say the same (aria-labelledby takes the first)
        tag = hashlib.blake2s(f"{title}\n{desc}".encode("utf-8"), digest_size=5).hexdigest()
        tid, did = f"bpv-t{k}-{tag}", f"bpv-d{k}-{tag}"
        pad = 10 if marked else 0           # room for the frames and ✘ of marked nodes
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpv" '
                 f'width="{L.width + 2 * pad:.0f}" height="{h:.0f}" '
                 f'viewBox="{-pad} {top:.0f} {L.width + 2 * pad:.0f} {h:.0f}" role="img" '
                 f'aria-labelledby="{tid} {did}" '
                 f'style="{FIT if fit else "display:block"}" data-step="{k}">',
                 f'<title id="{tid}">{esc(title)}</title><desc id="{did}">{esc(desc)}</desc>',
                 _STYLE, self._caption(view) if caption else ""]
        # the classes of each state, once per step (the states themselves come from present.py)
        edge_cls = {(state, param): " ".join(c for c in ("edge", "param" if param else "",
                                                         _style(state, hl)[0]) if c)
                    for state in (None, "now", "travelled") for param in (False, True)}
        for e, (before, after, travel) in zip(L.edges, self._edge_svg):
            state = edge_state(self.trace, hl, e.module, e.node, travel)
            parts += (before, edge_cls[state, e.param], after)
        current = ("oval " + _style("module", hl)[0]).strip()
        for module, before, after in self._oval_svg:
            parts += (before, current if module == hl.module else "oval", after)
        for b in L.boxes.values():
            parts.append(self._box(b, hl))
            if b.name in marked:
                x, y = b.x - b.width / 2, b.y - b.height / 2
                parts.append(f'<g class="marked" data-marked="{esc(b.name)}">'
                             f'<rect class="mark" x="{x - 4:.1f}" y="{y - 4:.1f}" '
                             f'width="{b.width + 8:.1f}" height="{b.height + 8:.1f}" rx="6"/>'
                             f'<text class="mark-t" x="{x + b.width + 7:.1f}" y="{y + 8:.1f}">'
                             f'✘</text></g>')
        parts.append(self._legend(legend, places))
        parts.append("</svg>")
        return "".join(parts)

    def _marked(self, marked) -> frozenset:
        """The marked node names, each a node of this graph."""
        marked = frozenset([marked] if isinstance(marked, str) else marked or ())
        unknown = sorted(marked - set(self.layout.boxes))
        if unknown:
            raise BackpropError(f"marked: no node named {', '.join(unknown)} in this graph; "
                                f"nodes: {', '.join(self.layout.boxes)}")
        return marked

    def _box_parts(self, b: Box) -> tuple:
        """A box's SVG apart from its outline's class: its title, and each row both known and
        blank (escaped once per trace; a step only chooses)."""
        x, y = b.x - b.width / 2, b.y - b.height / 2
        head = (f'<g id="{b.id}" class="node" data-node="{esc(b.name)}">', 
                f'" x="{x:.1f}" y="{y:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" rx="3"/>'
                f'<text class="ttl" x="{x + PAD:.1f}" y="{y + PAD + 11:.1f}">{esc(b.title)}</text>')
        rows, line = [], 1
        for key in b.keys:
            label = K.label(key)
            lines = self._rows[key]
            ty = y + PAD + 11 + line * LINE_H
            lab_w = (len(label) + 2) * CHAR_W
            lab = f'<text class="lab" x="{x + PAD:.1f}" y="{ty:.1f}">{esc(label)}</text>'
            tcls = ' class="bad"' if key in self._bad else ""
            known = "".join(f'<text{tcls} x="{x + PAD + lab_w:.1f}" y="{ty + j * LINE_H:.1f}" '
                            f'data-key="{esc(K.text(key))}">{esc(r)}'
                            f'{" ⚠" if tcls and j == 0 else ""}</text>'
                            for j, r in enumerate(lines))
            blank = (f'<rect class="blank" x="{x + PAD + lab_w:.1f}" y="{ty - 11:.1f}" '
                     f'width="{b.width - 2 * PAD - lab_w:.1f}" height="{len(lines) * LINE_H - 3:.1f}" '
                     f'data-blank="{esc(K.text(key))}"/>')
            at = self.trace.known_at(key)
            rows.append((at, lab + known, lab + blank, self._tip(key, at, lines)))
            line += len(lines)
        ats = [r[0] for r in rows]
        tips = tuple("<title>" + "\n".join([t[0] for *_, t in rows[:j]]
                                             + [t[1] for *_, t in rows[j:]]) + "</title>"
                     for j in range(len(rows) + 1)) if ats == sorted(ats) else ()
        return head + (tips,), rows

    def _tip(self, key: Key, at: float, lines: list) -> tuple[str, str]:
        """What hovering shows of one key, (known, not yet): its numbers and the rule that wrote
        it (escaped once per trace; a step only chooses, as for the rows)."""
        name = K.text(key)
        if at == 0:
            known = f"{name} = {' '.join(l.strip() for l in lines)} (given)"
        else:
            spec = self.trace.specs[int(at) - 1]
            known = (f"{name} = {' '.join(l.strip() for l in lines)}\nwritten at step {int(at)}, {spec.tag}: "
                     f"{formula(self.trace, spec)}")
        return esc(known), esc(f"{name}: not yet computed")

    def _box(self, b: Box, hl: Highlight) -> str:
        head, rows = self._boxes[b.id]
        cls = f"box {b.kind} " + _style(node_state(hl, b.name), hl)[0]
        k = hl.k
        body, j = [], 0
        for at, shown, blank, _ in rows:
            if at <= k:
                body.append(shown)
                j += 1
            else:
                body.append(blank)
        # a hover shows what is known at this step only (predict mode must not give it away);
        # rows that become known in order (value, then gradient) have their titles ready
        tip = head[2][j] if head[2] else "<title>" + "\n".join(
            t[0] if at <= k else t[1] for at, _, _, t in rows) + "</title>"
        return head[0] + tip + f'<rect class="{cls.strip()}' + head[1] + "".join(body) + "</g>"

    def _caption(self, view) -> str:
        lines = view.lines
        if len(lines) == 4:         # the numbers and the result on one line
            lines = [lines[0], lines[1], lines[2].strip() + "   " + lines[3].strip()[2:]]
        return "".join(f'<text class="cap{" head" if i == 0 else ""}" x="8" y="{18 + 20 * i}">'
                       f'{esc(s)}</text>' for i, s in enumerate(lines) if s)

    def _legend(self, entries: tuple = LEGEND, places=None) -> str:
        L = self.layout
        places = L.legend if places is None else places
        top = L.total_h - L.legend_rows * LEGEND_H
        parts = []
        for (swatch, sw, label), (x, row) in zip(entries, places):
            y = top + row * LEGEND_H + 4
            tx = x + sw + 6 if sw else x
            parts.append((swatch(round(x, 1), y) if swatch else "")
                         + f'<text class="cap" x="{tx:.1f}" y="{y + 11}">{esc(label)}</text>')
        return '<g class="legend">' + "".join(parts) + "</g>"

    # --- DOT and raster output: the same picture, drawn by Graphviz itself ---------------------
    def digraph(self, k: int, marked=frozenset()):
        """Step k as a ``graphviz.Digraph`` with the same fixed node sizes and highlights
        (``marked`` nodes: a double purple outline)."""
        import graphviz
        view = present(self.trace, k)
        hl = view.highlight
        marked = self._marked(marked)

        def style(item):
            if isinstance(item, Box):
                rows = [f'<TR><TD ALIGN="LEFT"><B>{esc(item.title)}</B></TD></TR>']
                for key in item.keys:
                    known = self.trace.is_known(key, k)
                    lines = self._rows[key] if known else ["·" * 6]
                    for j, line in enumerate(lines):
                        head = esc(K.label(key)) + ": " if j == 0 else "&#160;" * 4
                        rows.append(f'<TR><TD ALIGN="LEFT">{head}{esc(line)}</TD></TR>')
                attrs = dict(_style(node_state(hl, item.name), hl)[1])
                if item.name in marked:
                    attrs.update(color=MARK, peripheries="2", penwidth="2.5")
                attrs["label"] = '<<TABLE BORDER="0" CELLSPACING="0">' + "".join(rows) + "</TABLE>>"
                return attrs
            if isinstance(item, Oval):
                attrs = dict(_style("module", hl)[1]) if item.module == hl.module else {}
                attrs["label"] = graphviz.escape(item.label)
                return attrs
            return dict(_style(edge_state(self.trace, hl, item.module, item.node), hl)[1])
        # each caption line escaped on its own, then left-aligned (\l): no \l from a name
        caption = "".join(graphviz.escape(line).replace('"', '\\"') + "\\l"
                          for line in view.lines)
        return self.layout.digraph(style, caption)

    def dot(self, k: int, marked=frozenset()) -> str:
        """DOT for step k with the same fixed node sizes (so Graphviz lays it out the same)."""
        return self.digraph(k, marked).source

    def png(self, k: int, marked=frozenset()) -> bytes:
        return run_engine(self.dot(k, marked), "png", self.layout.engine)

    def flipbook(self, title: str = "backpropviz") -> str:
        """One offline HTML file of the whole pass: the drawing once, with every row both
        known and blank, and per step only what changes (what is highlighted, the caption, the
        equations); a script shows step k. Its size grows with the graph plus the steps, not
        their product."""
        tr, L, n = self.trace, self.layout, len(self.trace)
        never = n + 1
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpv" width="{L.width:.0f}" '
                 f'height="{L.total_h:.0f}" viewBox="0 0 {L.width:.0f} {L.total_h:.0f}" '
                 f'role="img" aria-labelledby="fb-title fb-desc" style="max-width:100%;height:auto">'
                 f'<title id="fb-title"></title><desc id="fb-desc"></desc>', _STYLE,
                 "".join(f'<text class="cap{" head" if i == 0 else ""}" x="8" y="{18 + 20 * i}" '
                         f'data-line="{i}"></text>' for i in range(3))]
        for e, (before, after, travel) in zip(L.edges, self._edge_svg):
            before = before.replace("<path ", f'<path data-m="{esc(e.module)}" '
                                    f'data-n="{esc(e.node)}" data-t="{min(travel, never)}" ', 1)
            parts += (before, "edge param" if e.param else "edge", after)
        for o in L.ovals.values():
            parts.append(f'<g class="module" data-module="{esc(o.module)}"><ellipse class="oval" '
                         f'data-m="{esc(o.module)}" cx="{o.x:.1f}" cy="{o.y:.1f}" '
                         f'rx="{o.width / 2:.1f}" ry="{o.height / 2:.1f}"/><text x="{o.x:.1f}" '
                         f'y="{o.y + 4:.1f}" text-anchor="middle">{esc(o.label)}</text></g>')
        for b in L.boxes.values():
            head, rows = self._boxes[b.id]
            parts.append(head[0] + f'<rect data-box="{esc(b.name)}" class="box {b.kind}' + head[1]
                         + "".join(f'<g class="fk" data-at="{min(t, never)}">{shown}</g>'
                                   f'<g class="fb" data-at="{min(t, never)}">{blank}</g>'
                                   for t, shown, blank, _ in rows) + "</g>")
        parts += [self._legend(), "</svg>"]
        steps = [[s.phase[0].upper(), s.module, s.node, sorted({k.node for k in s.reads})]
                 for s in tr.specs]
        views = [present(tr, k) for k in progress(range(n + 1), "flipbook")]
        caption = [(v.lines + ["", "", ""])[:3] if k == 0 else
                   [v.lines[0], v.lines[1], v.lines[2].strip() + "   " + v.lines[3].strip()[2:]]
                   for k, v in enumerate(views)]
        equations = ["\n".join(v.lines) for v in views]
        data = _script_json({"n": n, "steps": steps, "caption": caption, "eq": equations})
        return _FLIPBOOK.format(title=esc(title), n=n, svg="".join(parts), data=data)

    def gif(self, ms_per_step: int = 900, steps=None) -> bytes:
        """An animated GIF, one frame per step (drawn by Graphviz, one run per frame): the whole
        pass, or ``steps`` (step numbers). Bounded: at most MAX_GIF_FRAMES frames of a graph of
        at most MAX_GIF_NODES nodes; the flipbook has no such limit."""
        import io
        from PIL import Image
        steps = list(range(len(self.trace) + 1) if steps is None else steps)
        for k in steps:
            self.trace.check_step(k)
        nodes = len(self.layout.boxes) + len(self.layout.ovals)
        if len(steps) > MAX_GIF_FRAMES or nodes > MAX_GIF_NODES:
            raise BackpropError(
                f"a GIF of {len(steps)} frames of a {nodes}-node graph is too big (at most "
                f"{MAX_GIF_FRAMES} frames of at most {MAX_GIF_NODES} nodes: Graphviz draws each "
                f"frame anew). Pass steps=range(a, b) with fewer steps, draw the module-level "
                f"view, or save the flipbook (save_flipbook), which has every step")
        frames = [Image.open(io.BytesIO(self.png(k))).convert("RGB")
                  for k in progress(steps, "GIF frames")]
        w = max(f.width for f in frames)
        h = max(f.height for f in frames)
        canvas = []
        for f in frames:
            c = Image.new("RGB", (w, h), "white")
            c.paste(f, (0, 0))
            canvas.append(c.convert("P", palette=Image.Palette.ADAPTIVE))
        out = io.BytesIO()
        canvas[0].save(out, format="GIF", save_all=True, append_images=canvas[1:],
                       duration=ms_per_step, loop=0)
        return out.getvalue()

    def text(self, k: int) -> str:
        return present(self.trace, k).text


_FLIPBOOK = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: 'DejaVu Sans', Arial, sans-serif; margin: 16px; }}
.controls {{ display: flex; gap: 8px; align-items: center; margin-bottom: 8px; }}
.controls input[type=range] {{ width: 360px; }}
pre.eq {{ background: #f6f6f6; padding: 8px; white-space: pre-wrap; }}
</style></head><body>
<h1 style="font-size:18px">{title}</h1>
<div class="controls">
<button id="prev" aria-label="previous step">&#9664;</button>
<input id="slider" type="range" min="0" max="{n}" value="0" aria-label="step">
<button id="next" aria-label="next step">&#9654;</button>
<span id="counter" aria-live="polite"></span>
</div>
<div class="frame">{svg}</div>
<pre class="eq" id="eq" aria-live="polite"></pre>
<script id="bpv-data" type="application/json">{data}</script>
<script>
(function () {{
  var D = JSON.parse(document.getElementById('bpv-data').textContent), n = D.n;
  var slider = document.getElementById('slider'), svg = document.querySelector('.frame svg');
  var rows = svg.querySelectorAll('[data-at]'), edges = svg.querySelectorAll('path[data-m]');
  var ovals = svg.querySelectorAll('ellipse[data-m]'), boxes = svg.querySelectorAll('rect[data-box]');
  var caps = svg.querySelectorAll('text[data-line]');
  function setClass(el, name, on) {{ if (on) el.classList.add(name); else el.classList.remove(name); }}
  function show(k) {{
    k = Math.max(0, Math.min(n, k)); slider.value = k;
    var s = k > 0 ? D.steps[k - 1] : null, ph = s ? (s[0] === 'F' ? 'F' : 'B') : '';
    var reads = s ? s[3] : [];
    rows.forEach(function (g) {{
      var known = Number(g.dataset.at) <= k;
      g.style.display = (g.classList.contains('fk') === known) ? '' : 'none'; }});
    boxes.forEach(function (r) {{
      var name = r.dataset.box, wrote = s && name === s[2], read = s && !wrote && reads.indexOf(name) >= 0;
      ['cur-F', 'cur-B', 'read', 'read-F', 'read-B'].forEach(function (c) {{ r.classList.remove(c); }});
      if (wrote) r.classList.add('cur-' + ph);
      if (read) {{ r.classList.add('read'); r.classList.add('read-' + ph); }} }});
    ovals.forEach(function (o) {{
      setClass(o, 'cur-F', s && o.dataset.m === s[1] && ph === 'F');
      setClass(o, 'cur-B', s && o.dataset.m === s[1] && ph === 'B'); }});
    edges.forEach(function (e) {{
      var now = s && e.dataset.m === s[1] && (e.dataset.n === s[2] || reads.indexOf(e.dataset.n) >= 0);
      setClass(e, 'now-F', now && ph === 'F'); setClass(e, 'now-B', now && ph === 'B');
      setClass(e, 'back', !now && Number(e.dataset.t) <= k); }});
    caps.forEach(function (t, i) {{ t.textContent = D.caption[k][i] || ''; }});
    svg.querySelector('title').textContent = D.caption[k][0];
    svg.querySelector('desc').textContent = D.eq[k];
    document.getElementById('eq').textContent = D.eq[k];
    document.getElementById('counter').textContent = 'step ' + k + '/' + n;
  }}
  slider.addEventListener('input', function () {{ show(Number(slider.value)); }});
  document.getElementById('prev').onclick = function () {{ show(Number(slider.value) - 1); }};
  document.getElementById('next').onclick = function () {{ show(Number(slider.value) + 1); }};
  document.addEventListener('keydown', function (e) {{
    if (e.key === 'ArrowRight') show(Number(slider.value) + 1);
    if (e.key === 'ArrowLeft') show(Number(slider.value) - 1);
    if (e.key === 'Home') show(0);
    if (e.key === 'End') show(n);
  }});
  show(0);
}})();
</script></body></html>
"""


def _script_json(data) -> str:
    """JSON that is safe inside a <script> element whatever names it holds."""
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def progress(items, what: str):
    """A progress bar (tqdm: a widget in a notebook, text in a terminal) over an export that
    takes more than about a second; plain iteration for small ones."""
    items = list(items)
    if len(items) < PROGRESS_FROM:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=what, leave=False, delay=1.0)     # shown only after a second


# --- the object a notebook shows -----------------------------------------------------------------

class Picture:
    """A step's drawing: shows itself as SVG in Jupyter, with the text rendering beside it."""

    def __init__(self, renderer: Renderer, step: int, marked=frozenset(),
                 mark_label: str = "marked"):
        self.renderer, self.step = renderer, step
        self.marked, self.mark_label = renderer._marked(marked), mark_label

    @property
    def svg(self) -> str:
        return self.renderer.svg(self.step, marked=self.marked, mark_label=self.mark_label)

    @property
    def source(self) -> str:
        """The DOT source of this step."""
        return self.renderer.dot(self.step, self.marked)

    dot = source

    @property
    def text(self) -> str:
        return self.renderer.text(self.step)

    def graphviz(self):
        """This step as a ``graphviz.Digraph`` (render it, save it, change its attributes)."""
        return self.renderer.digraph(self.step, self.marked)

    def _repr_mimebundle_(self, include=None, exclude=None):
        # text/html: an <img> of the same SVG, which JupyterLab shows (fitted to the output's
        # width) even in a notebook not yet run, whose SVG outputs it does not trust
        svg = self.svg
        alt = "\n".join(present(self.renderer.trace, self.step).lines)
        return {"image/svg+xml": svg, "text/html": svg_img(svg, alt), "text/plain": self.text}

    def save_svg(self, path) -> Path:
        Path(path).write_text(self.svg, encoding="utf-8")
        return Path(path)

    def save_png(self, path) -> Path:
        Path(path).write_bytes(self.renderer.png(self.step, self.marked))
        return Path(path)

    def save_flipbook(self, path, title: str = "backpropviz") -> Path:
        """The whole trace as one offline HTML file (all steps, slider, buttons, equations)."""
        Path(path).write_text(self.renderer.flipbook(title), encoding="utf-8")
        return Path(path)

    def save_gif(self, path, ms_per_step: int = 900) -> Path:
        Path(path).write_bytes(self.renderer.gif(ms_per_step))
        return Path(path)

    def __repr__(self):
        return self.text


_LAYOUTS: dict[tuple, Layout] = {}


def renderer(trace: Trace, engine: str | None = None) -> Renderer:
    """A Renderer for this trace, reusing the layout of any earlier trace with the same graph."""
    sig = (graph_signature(trace), engine or os.environ.get("BACKPROPVIZ_ENGINE"))
    layout = _LAYOUTS.get(sig)
    if layout is None:
        layout = _LAYOUTS[sig] = Layout(trace, engine)
        if len(_LAYOUTS) > 64:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
    return Renderer(trace, layout)


def render(trace: Trace, step: int | None = None, engine: str | None = None,
           marked=frozenset(), mark_label: str = "marked") -> Picture:
    """The graph as known after ``step`` (0: before the first step; default len(trace): all
    done); the nodes named in ``marked`` are framed in purple with ✘, and the legend explains
    the frame with ``mark_label``."""
    step = len(trace) if step is None else trace.check_step(step)
    return Picture(renderer(trace, engine), step, marked, mark_label)


def show(trace: Trace, step: int | None = None):
    """render(), or the text rendering where no Graphviz engine is installed."""
    try:
        return render(trace, step)
    except EngineMissing as e:
        print(f"(drawing unavailable: {e})")
        return TextPicture(trace, len(trace) if step is None else trace.check_step(step))


def svg_img(svg: str, alt: str) -> str:
    """An SVG drawing as an <img> that fits its output's width, with the step as its alt text
    (what a notebook shows before it is run: JupyterLab sanitizes inline SVG in untrusted
    outputs, but keeps an image)."""
    import base64
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<img src="data:image/svg+xml;base64,{data}" alt="{esc(alt)}" '
            f'style="max-width:100%;height:auto">')


class TextPicture:
    def __init__(self, trace, step):
        self.trace, self.step = trace, step

    def __repr__(self):
        return present(self.trace, self.step).text
