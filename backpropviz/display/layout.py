"""One Graphviz layout per graph, kept for every step and every trace of the same graph.

Graphviz lays each graph out once, with every node at its final size (value and gradient rows
reserved, whatever the numbers); stepping then writes the SVG from that geometry with new text and
styles (paint.py), without running Graphviz again.

``layout_for`` keeps layouts in this process and, in front of Graphviz, in a disk cache shared by
every process of the machine (the 30 kernels of a classroom lay a graph out once): a folder of
JSON files, one per graph, holding only the geometry Graphviz computed. The folder is
$BPV_LAYOUT_CACHE ("off" or empty: no disk cache), else $XDG_CACHE_HOME/backpropviz/layouts, else
~/.cache/backpropviz/layouts. An entry is data from elsewhere: checked field by field against the
graph being drawn, and anything else is deleted and laid out again. A folder that cannot be written
leaves layouts in this process only, silently.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import keys as K
from ..core.errors import BackpropError
from ..core.jsonfile import Bad, finite_number, list_of, need, obj, read_json
from ..core.keys import Key
from ..core.trace import Trace
from . import engines
from .style import LEGEND_H, legend_places
from .text import array_lines, shape_text

MAX_NODES = 3000
MAX_SCALAR_VALUES = 1200     # value nodes of a scalar circuit drawn at most
MAX_KEPT = 64                # layouts kept (the most recent graphs)
DISK_FORMAT = 1              # of a disk cache entry: a new number never reads an old entry
MAX_DISK_ENTRIES = 256       # entries on disk, and their bytes together; the least recently used
MAX_DISK_BYTES = 64 << 20    # go first
MAX_ENTRY_BYTES = 16 << 20   # a larger file is refused unread (the 986-value circuit: 0.3 MB)
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
    same graph and shapes); ``disk``: taken from (else put in) the disk cache."""

    def __init__(self, trace: Trace, engine: str | None = None, place: bool = True,
                 disk: bool = False):
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
            self._place(disk)

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
        # an edge is labelled with its value's shape, except at a single number of the scalar
        # circuit: there every edge would say "scalar" (as the box's title does), side by side
        scalar = {n.name for n in trace.nodes if getattr(n, "part_of", None) is not None}
        shape = lambda t: "" if t in scalar else shape_text(trace.value(t))
        self.edges = []
        for m in trace.modules:
            for z in m.inputs:
                self.edges.append(Edge(self.boxes[z].id, self.ovals[m.name].id, shape(z),
                                       m.name, z))
            for p in m.params:
                self.edges.append(Edge(self.boxes[p].id, self.ovals[m.name].id, shape(p),
                                       m.name, p, param=True))
            self.edges.append(Edge(self.ovals[m.name].id, self.boxes[m.output].id,
                                   shape(m.output), m.name, m.output))

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

    def _place(self, disk: bool):
        """Every node and edge placed: from the disk cache when it has this graph, else by
        Graphviz (and then stored there)."""
        src, folder, geometry = self.dot_source(), cache_dir() if disk else None, None
        if folder is not None:
            # the DOT source is exactly what Graphviz lays out: any change of graph, shapes or
            # node sizes (even one made in this file) is another entry
            key = hashlib.blake2b(f"{DISK_FORMAT}\n{engines.find_engine(self.engine)}\n{src}"
                                  .encode(), digest_size=20).hexdigest()
            geometry = _read_entry(folder, key, self)
        if geometry is None:
            geometry = self._graphviz(src)
            if folder is not None:
                _write_entry(folder, key, geometry)
        self._apply(geometry)

    def _graphviz(self, src: str) -> dict:
        """The geometry Graphviz computes for this graph, as plain JSON data."""
        data = json.loads(engines.run_engine(src, "json", self.engine))
        x0, y0, x1, y1 = map(float, data["bb"].split(","))
        top = CAPTION_H                       # graph coordinates have y upward; SVG downward
        fy = lambda y: top + (y1 - y)
        by_id = {}
        for o in data.get("objects", []):
            if "pos" in o:
                x, y = map(float, o["pos"].split(","))
                by_id[o["name"]] = [x - x0, fy(y)]
        drawn = {d.get("id"): d for d in data.get("edges", [])}
        edges = []
        for i in range(len(self.edges)):
            d, path, arrow, lx, ly = drawn[f"e{i}"], "", "", 0.0, 0.0
            pts = [p for op in d.get("_draw_", []) if op["op"] == "b" for p in op["points"]]
            if pts:
                P = [(px - x0, fy(py)) for px, py in pts]
                path = f"M{P[0][0]:.1f},{P[0][1]:.1f} C" + " ".join(
                    f"{px:.1f},{py:.1f}" for px, py in P[1:])
            heads = [op["points"] for op in d.get("_hdraw_", []) if op["op"] in ("P", "p")]
            if heads:
                arrow = " ".join(f"{px - x0:.1f},{fy(py):.1f}" for px, py in heads[0])
            if "lp" in d:
                lx, ly = map(float, d["lp"].split(","))
                lx, ly = lx - x0, fy(ly)
            edges.append([path, arrow, lx, ly])
        return {"width": max(x1 - x0, 560.0), "height": y1 - y0,
                "boxes": [by_id[b.id] for b in self.boxes.values()],
                "ovals": [by_id[o.id] for o in self.ovals.values()], "edges": edges}

    def _apply(self, g: dict):
        """Put the geometry on the boxes, ovals and edges built from the trace."""
        self.width, self.height = float(g["width"]), float(g["height"])
        for item, (x, y) in zip(list(self.boxes.values()) + list(self.ovals.values()),
                                g["boxes"] + g["ovals"]):
            item.x, item.y = float(x), float(y)
        for e, (path, arrow, lx, ly) in zip(self.edges, g["edges"]):
            e.path, e.arrow, e.lx, e.ly = path, arrow, float(lx), float(ly)
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
    graph (the MAX_KEPT most recent in this process, else the disk cache's)."""
    sig = (graph_signature(trace), engines.engine_choice(engine))
    layout = _LAYOUTS.get(sig)
    if layout is None:
        layout = _LAYOUTS[sig] = Layout(trace, engine, disk=True)
        if len(_LAYOUTS) > MAX_KEPT:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
    return layout


def forget_layouts(disk: bool = False):
    """Drop every layout kept in this process (the next drawing of a graph reads the disk cache
    or runs Graphviz); ``disk``: empty the disk cache too."""
    _LAYOUTS.clear()
    folder = cache_dir()
    if disk and folder is not None:
        for name in _cache_files(folder):
            _remove(folder / name)


# --- the disk cache: geometry only, as JSON, checked on reading -----------------------------------

_ENTRY = re.compile(r"[0-9a-f]{40}\.json")          # the only files it reads or deletes
_TEMP = re.compile(r"\.[0-9a-f]{40}\.\w+\.tmp")       # a write under way (or left by a crash)
_PT = r"-?\d+\.\d,-?\d+\.\d"                           # "x,y" as _graphviz writes it
_PATH = re.compile(rf"(?:M{_PT} C(?:{_PT}(?: {_PT})*)?)?")
_ARROW = re.compile(rf"(?:{_PT}(?: {_PT})*)?")


def cache_dir() -> Path | None:
    """The disk cache's folder (see the module's docstring); None: switched off."""
    env = os.environ.get("BPV_LAYOUT_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off") else Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    try:
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"   # XDG: absolute only
    except RuntimeError:                      # no home directory: this process only
        return None
    return base / "backpropviz" / "layouts"


def _cache_files(folder: Path) -> list[str]:
    """The entries and temporary files in the folder: nothing else there is ever touched."""
    try:
        return [n for n in os.listdir(folder) if _ENTRY.fullmatch(n) or _TEMP.fullmatch(n)]
    except OSError:
        return []


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _read_entry(folder: Path, key: str, layout: Layout) -> dict | None:
    """The geometry stored for ``key``, checked against ``layout``'s graph; None if there is
    none, and a damaged or foreign entry is deleted (the caller lays the graph out again)."""
    path = folder / f"{key}.json"
    try:      # O_NONBLOCK: a FIFO put there cannot block the kernel
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            need(stat.S_ISREG(st.st_mode) and st.st_size <= MAX_ENTRY_BYTES, "entry",
                 "not a file, or too large")
            raw = f.read(MAX_ENTRY_BYTES + 1)
        geometry = _checked(read_json(raw, "layout cache entry", MAX_ENTRY_BYTES), key, layout)
    except (Bad, BackpropError, OSError, TypeError, ValueError):
        _remove(path)
        return None
    try:                                       # used now: the last to be evicted
        os.utime(path)
    except OSError:
        pass
    return geometry


def _checked(data, key: str, layout: Layout) -> dict:
    """An entry's geometry, every field checked, its counts those of ``layout``'s graph."""
    obj(data, ("format", "key", "width", "height", "boxes", "ovals", "edges"), "entry")
    need(type(data["format"]) is int and data["format"] == DISK_FORMAT and data["key"] == key,
         "entry", "another format or another graph")
    need(finite_number(data["width"]) and finite_number(data["height"]), "entry", "size")
    for name, n in (("boxes", len(layout.boxes)), ("ovals", len(layout.ovals))):
        for p in list_of(data[name], name, n):
            need(type(p) is list and len(p) == 2 and all(map(finite_number, p)), name, "x, y")
    for e in list_of(data["edges"], "edges", len(layout.edges)):
        # the path and the arrow go into the SVG as they are: numbers only
        need(type(e) is list and len(e) == 4 and type(e[0]) is str and type(e[1]) is str
             and _PATH.fullmatch(e[0]) and _ARROW.fullmatch(e[1])
             and finite_number(e[2]) and finite_number(e[3]), "edges", "path, arrow, lx, ly")
    return data


def _write_entry(folder: Path, key: str, geometry: dict):
    """Store an entry atomically (a whole file or none), then evict down to the bounds; a
    folder that cannot be written is no error (the layout stays in this process)."""
    text = json.dumps({"format": DISK_FORMAT, "key": key, **geometry}, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")
    if len(text) > MAX_ENTRY_BYTES:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text)
            os.replace(tmp, folder / f"{key}.json")
        except BaseException:
            _remove(tmp)
            raise
        _evict(folder)
    except OSError:
        pass


def _evict(folder: Path):
    """At most MAX_DISK_ENTRIES entries and MAX_DISK_BYTES: the least recently used go."""
    entries, now = [], time.time()
    for name in _cache_files(folder):
        try:
            st = os.stat(folder / name, follow_symlinks=False)
        except OSError:
            continue
        if _ENTRY.fullmatch(name):
            entries.append((st.st_mtime, st.st_size, name))
        elif now - st.st_mtime > 3600:        # a temporary file left by a writer that died
            _remove(folder / name)
    total = 0
    for i, (_, size, name) in enumerate(sorted(entries, reverse=True)):
        total += size
        if i >= MAX_DISK_ENTRIES or total > MAX_DISK_BYTES:
            _remove(folder / name)
