"""The look of a drawing: colours, the one table of highlight styles, the SVG's stylesheet and
the legend.

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

from .presentation import Highlight

FWD, BWD, INK, GREY, BAD = "#0072B2", "#D55E00", "#222222", "#BBBBBB", "#CC0000"
MARK = "#CC79A7"                         # Okabe–Ito reddish purple: marked nodes (a frame and ✘)
LEGEND_H = 26.0                         # one row of the legend
LEGEND_CHAR_W = 8.0                     # a character of the legend's 13px sans-serif text


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


def state_style(state: str | None, hl: Highlight) -> tuple[str, dict]:
    """(CSS class, DOT attributes) of a node's or an edge's state at this step's phase."""
    return STYLES.get((state, _phase(hl)), ("", {}))


# --- the SVG's stylesheet: the classes of STYLES and of the painted parts ------------------------

SVG_STYLE = f"""<style>
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


# --- the legend ---------------------------------------------------------------------------------

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
