"""The Stepper's inspector: one node's value and gradient with their shapes, a matrix also as a
heatmap of numbers, and how the gradient was computed entry by entry (for the entry picked): the
text of ``display.presentation.node_details``."""
from __future__ import annotations

import html

import ipywidgets as ipw
import numpy as np

from ..core import keys as K
from ..core.errors import shape_str
from ..display.text import array_lines, fnum
from .base import shown_in_widget
from .parts import StepperPart

MAX_ENTRIES = 64        # a node with more entries offers no entry choice (the first is shown)


def entry_options(shape: tuple) -> list[tuple[str, tuple]]:
    """(label, 0-based index) of each entry of a node of this shape, counted from 1 as the notes
    write z_i and W_ij ('1', '2,1'); empty for a single number or a large node."""
    size = int(np.prod(shape)) if shape else 1
    if size <= 1 or size > MAX_ENTRIES:
        return []
    return [(",".join(str(i + 1) for i in ix), tuple(int(i) for i in ix))
            for ix in np.ndindex(*shape)]


class Inspector(ipw.VBox, StepperPart):
    """One node's value and gradient, with shapes; matrices also as a heatmap; how its gradient
    was computed, for the entry picked."""

    def __init__(self, stepper):
        self.node_pick = ipw.Dropdown(options=self._options(stepper.model),
                                      description="inspect",
                                      layout=ipw.Layout(width="260px")).add_class("bpv-inspect")
        self.entry_pick = ipw.Dropdown(options=[], description="entry",
                                       layout=ipw.Layout(width="160px")).add_class("bpv-entry")
        self.follow = ipw.Checkbox(value=True, description="follow the current step",
                                   indent=False).add_class("bpv-follow")
        self.node_info = ipw.HTML().add_class("bpv-node-info")
        self.node_rules = ipw.HTML().add_class("bpv-node-rules")
        self.heatmap = ipw.HTML(layout=ipw.Layout(max_width="100%", overflow="auto"))
        self.heatmap.add_class("bpv-heatmap")
        wrap = ipw.Layout(flex_flow="row wrap", align_items="flex-start")
        super().__init__([ipw.HBox([self.node_pick, self.entry_pick, self.follow], layout=wrap),
                          ipw.HBox([self.node_info, self.heatmap], layout=wrap),
                          self.node_rules])
        self.add_class("bpv-inspector")
        self._attach(stepper)
        self._busy = False
        self._heat = (None, None, b"")       # (trace, what was drawn, png): drawn once
        self.node_pick.observe(self._on_pick, names="value")
        self.entry_pick.observe(self._on_entry, names="value")
        self.follow.observe(lambda _: self.refresh_safely("follow"), names="value")

    @staticmethod
    def _options(model):
        return [n.name for n in model.trace.nodes]

    def pick(self, name: str):
        """Open node ``name`` (a click on it in the graph): the inspector stops following."""
        if name in self.node_pick.options:
            self.node_pick.value = name
            self.follow.value = False

    @shown_in_widget
    def _on_pick(self, change):
        # a pick made by refresh itself (following the step, new options after a rebuild) is
        # drawn by that refresh; refreshing here too would end its _busy early, and its last
        # pick would then count as the learner's and switch following off
        if self._busy:
            return
        self.follow.value = False        # the learner chose a node: stop following the step
        self.refresh("pick")

    @shown_in_widget
    def _on_entry(self, change):
        if not self._busy:               # an entry of the node shown: following goes on
            self.refresh("entry")

    def refresh(self, what):
        m = self.model
        self._busy = True
        try:
            opts = self._options(m)
            if list(self.node_pick.options) != opts:
                keep = self.node_pick.value if self.node_pick.value in opts else opts[0]
                self.node_pick.options = opts
                self.node_pick.value = keep
            if self.follow.value and m.step > 0:
                self.node_pick.value = m.trace.specs[m.step - 1].node
            name = self.node_pick.value
            entries = entry_options(np.shape(m.trace.value(name))) if name is not None else []
            if list(self.entry_pick.options) != entries:
                keep = self.entry_pick.value
                self.entry_pick.options = entries
                self.entry_pick.value = keep if keep in [e for _, e in entries] else \
                    (entries[0][1] if entries else None)
            self.entry_pick.layout.display = "" if entries else "none"
        finally:
            self._busy = False
        if name is None:
            return
        info = m.inspect(name, self.entry_pick.value if entries else None)

        def block(title, a):
            if a is None:
                return f"<b>{html.escape(title)}</b>: <i>not yet computed</i>"
            lines = "\n".join(array_lines(a))
            return f"<b>{html.escape(title)}</b> ({shape_str(a)}):<pre>{html.escape(lines)}</pre>"
        parts = [block(name, info["value"])]
        if info["has_grad"]:
            parts.append(block(K.text(K.Key.gradient(name)), info["grad"]))
        self.node_info.value = "<div>" + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
        # the rules in the notes' words, each a line of plain text (names escaped)
        details = "\n".join(info["details"])
        self.node_rules.value = (f'<pre class="bpv-rules">{html.escape(details)}</pre>'
                                 if details else "")
        value, grad = info["value"], info["grad"]
        # the heatmap for a node the learner chose (following the step, the graph and this text
        # show it already; a step then sends a few hundred bytes, not tables of colours)
        if not self.follow.value and value is not None and np.ndim(value) == 2 and \
                np.size(value) > 1:
            drawn = (name, grad is not None)
            if self._heat[0] is not m.trace or self._heat[1] != drawn:
                self._heat = (m.trace, drawn, heatmap_html(name, value, grad))
            self.heatmap.value = self._heat[2]
            self.heatmap.layout.display = "block"
        else:
            self.heatmap.layout.display = "none"


def _cell_colour(t: float) -> tuple[str, str]:
    """(background, text colour) for t in [−1, 1] on one diverging scale: blue, white, red."""
    t = max(-1.0, min(1.0, t))
    end = (178, 24, 43) if t > 0 else (33, 102, 172)
    rgb = tuple(round(255 + (c - 255) * abs(t)) for c in end)
    return "#%02x%02x%02x" % rgb, ("#ffffff" if abs(t) > 0.6 else "#222222")


def heatmap_html(name: str, value, grad) -> str:
    """A matrix and its gradient as tables of numbers on one symmetric colour scale: readable
    from the back of a room, by a screen reader (the numbers are text), and cheap to draw (no
    plotting library in the kernel)."""
    arrays = [(f"value {name}", np.asarray(value, float))]
    if grad is not None:
        arrays.append((K.text(K.Key.gradient(name)), np.asarray(grad, float)))
    finite = [np.abs(a[np.isfinite(a)]) for _, a in arrays]
    vmax = max((float(f.max()) for f in finite if f.size), default=0.0) or 1.0
    tables = []
    for title, a in arrays:
        rows = []
        for row in np.atleast_2d(a)[:12]:
            cells = []
            for x in row[:12]:
                bg, fg = _cell_colour(x / vmax) if np.isfinite(x) else ("#ffffff", "#cc0000")
                cells.append(f'<td style="background:{bg};color:{fg};padding:2px 6px;'
                             f'text-align:right">{html.escape(fnum(x))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        more = " (first 12 × 12 shown)" if a.ndim == 2 and max(a.shape) > 12 else ""
        tables.append(f'<table class="bpv-heat" style="border-collapse:collapse;'
                      f'font-family:monospace;margin-right:12px"><caption style="font-weight:bold;'
                      f'text-align:left">{html.escape(title)} ({shape_str(a)}){more}</caption>'
                      + "".join(rows) + "</table>")
    return (f'<div class="bpv-heatmap-box" tabindex="0" role="region" '
            f'aria-label="heatmap of {html.escape(name)}">'
            f'<div style="display:flex;flex-wrap:wrap">{"".join(tables)}</div>'
            f'<div style="font-size:12px;color:#555">one colour scale for both: blue negative, '
            f'red positive, |x| up to {html.escape(fnum(vmax))}</div></div>')
