"""SVG per step: the fixed layout restyled for step k (new text, classes and blanks; Graphviz does
not run again)."""
from __future__ import annotations

import hashlib
import html

import numpy as np

from ..core import keys as K
from ..core.errors import BackpropError
from ..core.keys import Key
from ..core.trace import Trace
from .layout import CAPTION_H, CHAR_W, LINE_H, PAD, Box, Layout
from .presentation import Highlight, StepView, edge_state, formula, node_state, present
from .style import LEGEND, LEGEND_H, SVG_STYLE, legend_places, legend_with_mark, state_style
from .text import array_lines

FIT = "max-width:100%;max-height:82vh;width:auto;height:auto"    # a static picture: fit the output


def esc(text: str) -> str:
    """Escape text for SVG/HTML content and attributes (and HTML-like DOT labels)."""
    return html.escape(str(text), quote=True).replace("\n", "&#10;")


def caption_lines(view: StepView) -> list[str]:
    """A drawing's caption: the step's lines, with the numbers and the result on one line."""
    lines = view.lines
    if len(lines) == 4:
        lines = [lines[0], lines[1], lines[2].strip() + "  " + lines[3].strip()]   # = A B = R
    return lines


class Painter:
    """Draws one trace as SVG at any step from one layout. Text of every row is formatted once
    (known and blank, escaped); a step only chooses between them and sets the classes."""

    def __init__(self, trace: Trace, layout: Layout | None = None, engine: str | None = None):
        # a given layout must be of this graph (``layout_for`` matches them by signature)
        layout = layout or Layout(trace, engine)
        self.trace, self.layout = trace, layout
        self.row_lines = {k: array_lines(trace[k]) for b in layout.boxes.values() for k in b.keys}
        self._bad = {k for k in self.row_lines
                     if not np.isfinite(np.asarray(trace[k], float)).all()}
        self.edge_parts = self._static_edges()
        self._oval_svg = self._static_ovals()
        self.box_parts = {b.id: self._parts_of(b) for b in layout.boxes.values()}
        self._template = self._drawing = None

    def _static_edges(self) -> list[tuple]:
        """Each edge's SVG before and after its class, and when the backward pass crosses it."""
        out = []
        for i, e in enumerate(self.layout.edges):
            out.append((f'<path data-id="e{i}" class="', f'" d="{e.path}"/>'
                        + (f'<polygon class="arr" points="{e.arrow}"/>' if e.arrow else "")
                        + f'<text class="elab" x="{e.lx:.1f}" y="{e.ly + 3:.1f}" '
                          f'text-anchor="middle">{esc(e.label)}</text>',
                        self.trace.travelled_at(e.module, e.node)))
        return out

    def _static_ovals(self) -> dict[str, tuple]:
        out = {}
        for o in self.layout.ovals.values():
            out[o.module] = (f'<g id="{o.id}" class="module" data-module="{esc(o.module)}">'
                             f'<ellipse data-id="{o.id}" class="',
                             f'" cx="{o.x:.1f}" cy="{o.y:.1f}" rx="{o.width / 2:.1f}" '
                             f'ry="{o.height / 2:.1f}"/><text x="{o.x:.1f}" y="{o.y + 4:.1f}" '
                             f'text-anchor="middle">{esc(o.label)}</text></g>')
        return out

    # one SVG per step; the geometry is fixed, only classes, text and blanks change
    def svg(self, k: int, caption: bool = True, marked=frozenset(),
            mark_label: str = "marked", fit: bool = True, notation: str = "modules") -> str:
        """Step k's picture (0 = before the first step); without the caption (a widget shows
        the equation beside it) the view starts below it. ``marked`` node names get a purple
        frame and ✘, explained in the legend by ``mark_label``. ``fit``: shrink to the width of
        the output (a static picture); without it the drawing keeps its size, its labels stay
        readable, and the panel around it scrolls (the Stepper). ``notation``: the caption's
        (the graph keeps the tool's names)."""
        view = present(self.trace, k, notation)
        L = self.layout
        marked = self.marked_nodes(marked)
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
                 SVG_STYLE, self._caption(view) if caption else ""]
        parts.append(self.body(k, view))
        for b in L.boxes.values():
            if b.name in marked:
                x, y = b.x - b.width / 2, b.y - b.height / 2
                parts.append(f'<g class="marked" data-marked="{esc(b.name)}">'
                             f'<rect class="mark" x="{x - 4:.1f}" y="{y - 4:.1f}" '
                             f'width="{b.width + 8:.1f}" height="{b.height + 8:.1f}" rx="6"/>'
                             f'<text class="mark-t" x="{x + b.width + 7:.1f}" y="{y + 8:.1f}">'
                             f'✘</text></g>')
        parts.append(self.legend(legend, places))
        parts.append("</svg>")
        return "".join(parts)

    def drawing(self) -> str:
        """The graph without a step (every slot of the scene empty, no caption): what the
        Stepper's front end receives once per graph, then fills with each step's scene."""
        if self._drawing is not None:
            return self._drawing
        L = self.layout
        top = CAPTION_H - 8
        h = L.total_h - top
        body = "".join(p if isinstance(p, str) else "" for p in self.template())
        self._drawing = (f'<svg xmlns="http://www.w3.org/2000/svg" class="bpv" width="{L.width:.0f}" '
                f'height="{h:.0f}" viewBox="0 {top:.0f} {L.width:.0f} {h:.0f}" role="img" '
                f'style="display:block"><title></title><desc></desc>{SVG_STYLE}{body}'
                f'{self.legend()}</svg>')
        return self._drawing

    def marked_nodes(self, marked) -> frozenset:
        """The marked node names, each a node of this graph."""
        marked = frozenset([marked] if isinstance(marked, str) else marked or ())
        unknown = sorted(marked - set(self.layout.boxes))
        if unknown:
            raise BackpropError(f"marked: no node named {', '.join(unknown)} in this graph; "
                                f"nodes: {', '.join(self.layout.boxes)}")
        return marked

    # --- one step's scene: what changes from step to step, element by element -------------------
    def scene(self, k: int, view: StepView | None = None) -> dict[str, str]:
        """Step k as {data-id: value}: each edge's, module's and box's class, each box's hover
        text and each row's markup (known numbers or the blank). The SVG (``body``) and the
        Stepper's front end (which receives only the entries that change) are both made of it."""
        hl = (view or present(self.trace, k)).highlight
        edge_cls = {(state, param): " ".join(c for c in ("edge", "param" if param else "",
                                                         state_style(state, hl)[0]) if c)
                    for state in (None, "now", "travelled") for param in (False, True)}
        out = {}
        for i, (e, (_, _, travel)) in enumerate(zip(self.layout.edges, self.edge_parts)):
            out[f"e{i}"] = edge_cls[edge_state(self.trace, hl, e.module, e.node, travel), e.param]
        current = ("oval " + state_style("module", hl)[0]).strip()
        for o in self.layout.ovals.values():
            out[o.id] = current if o.module == hl.module else "oval"
        for b in self.layout.boxes.values():
            self._box_scene(b, hl, out)
        return out

    def _box_scene(self, b: Box, hl: Highlight, out: dict):
        rows, tips = self.box_parts[b.id][1], self.box_parts[b.id][2]
        out[b.id] = f"box {b.kind} {state_style(node_state(hl, b.name), hl)[0]}".strip()
        j = 0
        for i, (at, _, known, blank, _) in enumerate(rows):
            out[f"{b.id}.{i}"] = known if at <= hl.k else blank
            j += at <= hl.k
        # a hover shows what is known at this step only (predict mode must not give it away);
        # rows that become known in order (value, then gradient) have their texts ready
        out[f"{b.id}.t"] = tips[j] if tips else "\n".join(
            t[0] if at <= hl.k else t[1] for at, *_, t in rows)

    def template(self) -> list:
        """The graph's SVG as static markup and the data-ids of the scene between (str parts
        are markup, 1-tuples are slots): filled with a scene it is the drawing of that step."""
        if self._template is None:
            parts = []
            for before, after, _ in self.edge_parts:
                i = before.split('"')[1]
                parts += (before, (i,), after)
            for o in self.layout.ovals.values():
                before, after = self._oval_svg[o.module]
                parts += (before, (o.id,), after)
            for b in self.layout.boxes.values():
                head, rows, _ = self.box_parts[b.id]
                parts += (head[0] + f'<title data-id="{b.id}.t">', (f"{b.id}.t",),
                          f'</title><rect data-id="{b.id}" '
                          f'class="', (b.id,), head[1])
                for i, (_, lab, _, _, _) in enumerate(rows):
                    parts += (lab, f'<g data-id="{b.id}.{i}">', (f"{b.id}.{i}",), "</g>")
                parts.append("</g>")
            # neighbouring static parts as one string: filling it is a join of fewer parts
            merged = []
            for p in parts:
                if isinstance(p, str) and merged and isinstance(merged[-1], str):
                    merged[-1] += p
                else:
                    merged.append(p)
            self._template = merged
        return self._template

    def body(self, k: int, view: StepView | None = None, scene: dict | None = None) -> str:
        """The graph's edges, modules and boxes at step k (the SVG between caption and legend)."""
        scene = self.scene(k, view) if scene is None else scene
        return "".join(p if isinstance(p, str) else scene[p[0]] for p in self.template())

    def _parts_of(self, b: Box) -> tuple:
        """A box's SVG apart from its outline's class and its rows: the group's opening and the
        outline's geometry with the title; each row's label, numbers known and the blank; and
        the hover texts (all escaped once per trace; a step only chooses)."""
        x, y = b.x - b.width / 2, b.y - b.height / 2
        head = (f'<g id="{b.id}" class="node" data-node="{esc(b.name)}">',
                f'" x="{x:.1f}" y="{y:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" rx="3"/>'
                f'<text class="ttl" x="{x + PAD:.1f}" y="{y + PAD + 11:.1f}">{esc(b.title)}</text>')
        rows, line = [], 1
        for key in b.keys:
            label = K.label(key)
            lines = self.row_lines[key]
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
            rows.append((at, lab, known, blank, self._tip(key, at, lines)))
            line += len(lines)
        ats = [r[0] for r in rows]
        tips = tuple("\n".join([t[0] for *_, t in rows[:j]] + [t[1] for *_, t in rows[j:]])
                     for j in range(len(rows) + 1)) if ats == sorted(ats) else ()
        return head, rows, tips

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

    def _caption(self, view) -> str:
        return "".join(f'<text class="cap{" head" if i == 0 else ""}" x="8" y="{18 + 20 * i}">'
                       f'{esc(s)}</text>' for i, s in enumerate(caption_lines(view)) if s)

    def legend(self, entries: tuple = LEGEND, places=None) -> str:
        """The legend below the graph: ``entries`` at ``places`` (default: the layout's)."""
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
