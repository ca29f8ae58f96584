"""One Graphviz layout per graph, kept for every step and every trace of the same graph.

Graphviz lays each graph out once, with every node at its final size (value and gradient rows
reserved, whatever the numbers); stepping then writes the SVG from that geometry with new text and
styles (paint.py), without running Graphviz again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..core import keys as K
from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.trace import Trace
from . import engines
from .style import LEGEND_H, legend_places
from .text import array_lines, shape_text

MAX_NODES = 3000
MAX_SCALAR_VALUES = 1200     # value nodes of a scalar circuit drawn at most
MAX_KEPT = 64                # layouts kept (the most recent graphs)
CHAR_W, LINE_H, PAD = 7.3, 16.0, 8.0     # monospace 12px: width of a character, height of a line
CAPTION_H = 70.0


def short(text: str, n: int = 48) -> str:
    """A name as drawn: long names are shortened (the full name stays in the data attributes
    and the text output)."""
    return text if len(text) <= n else text[:n - 1] + "…"


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
        data = json.loads(engines.run_engine(self.dot_source(), "json", self.engine))
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


def graph_signature(trace: Trace) -> tuple:
    """What fixes the layout: the graph and the shapes, not the numbers."""
    return (tuple(trace.nodes), tuple(trace.modules),
            tuple((s.writes, s.kind) for s in trace.specs),
            tuple(np.shape(trace.value(n.name)) for n in trace.nodes))


_LAYOUTS: dict[tuple, Layout] = {}


def layout_for(trace: Trace, engine: str | None = None) -> Layout:
    """The layout of this trace's graph, reusing the layout of any earlier trace with the same
    graph (the MAX_KEPT most recent)."""
    sig = (graph_signature(trace), engines.engine_choice(engine))
    layout = _LAYOUTS.get(sig)
    if layout is None:
        layout = _LAYOUTS[sig] = Layout(trace, engine)
        if len(_LAYOUTS) > MAX_KEPT:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
    return layout


def forget_layouts():
    """Drop every kept layout (the next drawing of each graph runs Graphviz again)."""
    _LAYOUTS.clear()
