"""The same picture in other formats: DOT and PNG (drawn by Graphviz itself, with the same fixed
node sizes and highlights), an animated GIF (one Graphviz run per frame) and the flipbook (one
offline HTML file of the whole pass).

Every raster export is bounded in pixels, and so in memory, before anything is drawn: its size in
pixels is computed from the kept layout (the graph's width and height in points, the captions'
lines, the dpi; raster_size) and checked against its limits:

  * a PNG: at most MAX_PNG_PIXELS and MAX_SIDE pixels a side (Graphviz holds the whole image at
    4 bytes a pixel: 0.17 GB at 40 megapixels; a 345-megapixel PNG took 29 s and 1.4 GB);
  * a GIF: at most MAX_GIF_FRAMES frames of a graph of at most MAX_GIF_NODES nodes (one Graphviz
    run per frame), each frame at most MAX_GIF_FRAME_PIXELS and all of them together at most
    MAX_GIF_PIXELS (the GIF writer keeps every frame until it writes the file, a byte a pixel on
    the one palette of every frame; the largest GIF allowed peaks at about 0.32 GB).

By default an export is drawn at 96 dpi, or at the largest dpi down to MIN_DPI that fits, with a
warning that says so; a dpi that is asked for is kept, or refused. Whatever is too big even at
MIN_DPI is refused. A refusal is a BackpropError that says what to do instead (a dpi that fits,
fewer steps, SVG, the flipbook, a smaller graph). Figures: benchmarks/bench_render.py exports.
"""
from __future__ import annotations

import functools
import io
import itertools
import json
import math
import numbers
import struct
import unicodedata
import warnings

from ..core import keys as K
from ..core.errors import BackpropError
from . import engines
from .layout import Box, Oval
from .paint import Painter, caption_lines, esc
from .presentation import edge_state, node_state, present
from .style import BAD, BWD, FWD, MARK, SVG_STYLE, state_style

MAX_GIF_FRAMES, MAX_GIF_NODES = 120, 400   # a GIF is one Graphviz run per frame
PROGRESS_FROM = 200       # steps or frames: exports longer than this show a progress bar

DPI = 96                  # Graphviz's bitmap resolution (pixels an inch; a point is 1/72 inch)
DPI_RANGE = (10, 600)     # the dpi that may be asked for
MIN_DPI = 36              # the lowest dpi suggested (10-point text is then 5 pixels high)
MAX_SIDE = 32_767         # Graphviz's widest bitmap (it shrinks a larger drawing by itself)
MAX_PNG_PIXELS = 40_000_000          # a PNG: Graphviz holds it at 4 bytes a pixel (160 MB)
MAX_GIF_FRAME_PIXELS = 8_000_000     # a GIF frame: decoded, padded and quantized one at a time
MAX_GIF_PIXELS = 200_000_000         # all frames of a GIF: held until written, 1 byte a pixel

# how Graphviz sets a drawing, in points, with room to spare (tests/test_export_bounds.py checks
# that these are never below what dot and graphviz-pure draw)
PAD_PT = 4.0              # the margin around a bitmap (Graphviz's pad), each side
CAPTION_LINE_PT = 20.0    # a caption line (12-point DejaVu Sans: dot sets 15, graphviz-pure 17)
CAPTION_CHAR_PT = 8.0     # a caption character (DejaVu Sans averages about 6.5 points)
CAPTION_WIDE_PT = 12.0    # a wide (East Asian) character: one em
MARKED_PT = 8.0           # a marked node's second outline, on each side of the layout


# --- DOT and raster output: the same picture, drawn by Graphviz itself ---------------------------

def digraph(painter: Painter, k: int, marked=frozenset()):
    """Step k as a ``graphviz.Digraph`` with the same fixed node sizes and highlights
    (``marked`` nodes: a double purple outline)."""
    import graphviz
    view = present(painter.trace, k)
    hl = view.highlight
    marked = painter.marked_nodes(marked)

    def style(item):
        if isinstance(item, Box):
            rows = [f'<TR><TD ALIGN="LEFT"><B>{esc(item.title)}</B></TD></TR>']
            for key in item.keys:
                known = painter.trace.is_known(key, k)
                lines = painter.row_lines[key] if known else ["·" * 6]
                for j, line in enumerate(lines):
                    head = esc(K.label(key)) + ": " if j == 0 else "&#160;" * 4
                    rows.append(f'<TR><TD ALIGN="LEFT">{head}{esc(line)}</TD></TR>')
            attrs = dict(state_style(node_state(hl, item.name), hl)[1])
            if item.name in marked:
                attrs.update(color=MARK, peripheries="2", penwidth="2.5")
            attrs["label"] = '<<TABLE BORDER="0" CELLSPACING="0">' + "".join(rows) + "</TABLE>>"
            return attrs
        if isinstance(item, Oval):
            attrs = dict(state_style("module", hl)[1]) if item.module == hl.module else {}
            attrs["label"] = graphviz.escape(item.label)
            return attrs
        return dict(state_style(edge_state(painter.trace, hl, item.module, item.node), hl)[1])
    # each caption line escaped on its own, then left-aligned (\l): no \l from a name
    caption = "".join(graphviz.escape(line).replace('"', '\\"') + "\\l"
                      for line in view.lines)
    return painter.layout.digraph(style, caption)


def dot(painter: Painter, k: int, marked=frozenset()) -> str:
    """DOT for step k with the same fixed node sizes (so Graphviz lays it out the same)."""
    return digraph(painter, k, marked).source


def png(painter: Painter, k: int, marked=frozenset(), dpi=None) -> bytes:
    """Step k drawn by Graphviz from its DOT, at ``dpi`` pixels an inch. Bounded before Graphviz
    runs (raster_size): at most MAX_PNG_PIXELS; by default 96 dpi, or the largest dpi down to
    MIN_DPI that fits (with a warning); a ``dpi`` given, or a graph too big even at MIN_DPI, is
    refused above the limit."""
    k = painter.trace.check_step(k)
    marked = painter.marked_nodes(marked)

    def problem(w, h, d):
        if _fits(w, h, MAX_PNG_PIXELS):
            return None
        what = (f"step {k} as a PNG at {d:g} dpi would be {w:,}×{h:,} pixels "
                f"({w * h / 1e6:.0f} megapixels), more than a PNG may have "
                f"({_limit_text(MAX_PNG_PIXELS)}: Graphviz holds the whole image in memory, "
                f"4 bytes a pixel)")
        return what, ("save it as SVG (save_svg: any size, no pixels), or draw a smaller graph "
                      "(the module-level view, or one module opened: "
                      "bpv.circuit(trace, expand=\"M_1\"))")
    d = choose_dpi(dpi, _extent_pt(painter, [k], marked), problem)
    return engines.run_engine(_raster_dot(painter, k, marked, d, dpi), "png",
                              painter.layout.engine)


def _raster_dot(painter: Painter, k: int, marked, d: float, dpi) -> str:
    """The DOT Graphviz rasterizes: step k's DOT, with the dpi unless it is the default."""
    g = digraph(painter, k, marked)
    if dpi is not None or d != DPI:
        g.attr(dpi=f"{d:g}")
    return g.source


# --- how many pixels a raster export has: from the layout, before drawing ----------------------

def check_dpi(dpi) -> float:
    """``dpi`` as a number (None: Graphviz's 96), or a BackpropError."""
    if dpi is None:
        return float(DPI)
    lo, hi = DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not math.isfinite(dpi) \
            or not lo <= dpi <= hi:
        raise BackpropError(f"dpi={dpi!r}: give the pixels an inch as a number from {lo} to {hi} "
                            f"({DPI} is Graphviz's default)")
    return float(dpi)


def choose_dpi(dpi, extent, problem) -> float:
    """The dpi to draw at, decided before drawing. ``problem(w, h, dpi)`` is None if w×h pixels
    are allowed, else (what is wrong, what to do instead). The ``dpi`` asked for, if allowed; by
    default 96, or else the largest whole dpi down to MIN_DPI that is allowed, with a warning
    that says so. Anything else is a BackpropError that says what to do instead."""
    d = check_dpi(dpi)
    w, h = _pixels(extent, d)
    wrong = problem(w, h, d)
    if wrong is None:
        return d
    what, advice = wrong
    fit = next((f for f in range(math.ceil(d) - 1, MIN_DPI - 1, -1)
                if problem(*_pixels(extent, f), f) is None), None)
    size = ("" if fit is None or fit >= DPI
            else f" (its text at {fit / DPI:.0%} of the default size)")
    if dpi is None and fit is not None:
        fw, fh = _pixels(extent, fit)
        warnings.warn(f"{what}: drawn at {fit} dpi instead, {fw:,}×{fh:,} pixels{size}. Pass "
                      f"dpi= to choose (at most {fit}), or {advice}", stacklevel=4)
        return float(fit)
    if fit is None:
        raise BackpropError(f"{what}. No dpi of at least {MIN_DPI} is small enough (the text "
                            f"would be unreadable): {advice}")
    raise BackpropError(f"{what}. Pass dpi={fit} or less{size}, or {advice}")


def _caption_pt(lines) -> tuple[float, float]:
    """The width and height of a caption, in points, as Graphviz sets it (at most)."""
    width = max((sum(CAPTION_WIDE_PT if unicodedata.east_asian_width(c) in "WF"
                     else CAPTION_CHAR_PT for c in line) for line in lines), default=0.0)
    return width, len(lines) * CAPTION_LINE_PT


def _extent_pt(painter: Painter, steps, marked=frozenset()) -> tuple[float, float]:
    """The largest drawing of these steps, in points: the kept layout (Graphviz lays the same
    DOT out the same way) with the widest and the tallest caption, and Graphviz's margin."""
    cap_w = cap_h = 0.0
    for k in steps:
        w, h = _caption_pt(present(painter.trace, k).lines)
        cap_w, cap_h = max(cap_w, w), max(cap_h, h)
    L, extra = painter.layout, MARKED_PT * len(marked)
    return (max(L.width + extra, cap_w) + 2 * PAD_PT,
            L.height + extra + cap_h + 2 * PAD_PT)


def _pixels(extent, dpi: float) -> tuple[int, int]:
    return tuple(math.ceil(pt * dpi / 72) for pt in extent)


def _fits(w: int, h: int, limit: int) -> bool:
    return w * h <= limit and w <= MAX_SIDE and h <= MAX_SIDE


def _limit_text(pixels: int) -> str:
    return f"at most {pixels / 1e6:.0f} megapixels and {MAX_SIDE:,} pixels a side"


def raster_size(painter: Painter, steps, dpi=None, marked=frozenset()) -> tuple[int, int]:
    """The size in pixels (width, height) of the largest of these steps drawn as PNG (or as GIF
    frames) at ``dpi`` (default 96), computed from the kept layout and the captions without
    drawing: what the limits are checked against. Never less than what Graphviz draws."""
    steps = [painter.trace.check_step(k) for k in steps]
    return _pixels(_extent_pt(painter, steps, painter.marked_nodes(marked)), check_dpi(dpi))


# --- the flipbook and the GIF: the whole pass --------------------------------------------------

def flipbook(painter: Painter, title: str = "backpropviz") -> str:
    """One offline HTML file of the whole pass: the drawing once, with every row both
    known and blank, and per step only what changes (what is highlighted, the caption, the
    equations); a script shows step k. Its size grows with the graph plus the steps, not
    their product."""
    tr, L, n = painter.trace, painter.layout, len(painter.trace)
    never = n + 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bpv" width="{L.width:.0f}" '
             f'height="{L.total_h:.0f}" viewBox="0 0 {L.width:.0f} {L.total_h:.0f}" '
             f'role="img" aria-labelledby="fb-title fb-desc" style="max-width:100%;height:auto">'
             f'<title id="fb-title"></title><desc id="fb-desc"></desc>', SVG_STYLE,
             "".join(f'<text class="cap{" head" if i == 0 else ""}" x="8" y="{18 + 20 * i}" '
                     f'data-line="{i}"></text>' for i in range(3))]
    for e, (before, after, travel) in zip(L.edges, painter.edge_parts):
        before = before.replace("<path ", f'<path data-m="{esc(e.module)}" '
                                f'data-n="{esc(e.node)}" data-t="{min(travel, never)}" ', 1)
        parts += (before, "edge param" if e.param else "edge", after)
    for o in L.ovals.values():
        parts.append(f'<g class="module" data-module="{esc(o.module)}"><ellipse class="oval" '
                     f'data-m="{esc(o.module)}" cx="{o.x:.1f}" cy="{o.y:.1f}" '
                     f'rx="{o.width / 2:.1f}" ry="{o.height / 2:.1f}"/><text x="{o.x:.1f}" '
                     f'y="{o.y + 4:.1f}" text-anchor="middle">{esc(o.label)}</text></g>')
    for b in L.boxes.values():
        head, rows, _ = painter.box_parts[b.id]
        parts.append(head[0] + f'<rect data-box="{esc(b.name)}" class="box {b.kind}' + head[1]
                     + "".join(f'{lab}<g class="fk" data-at="{min(t, never)}">{known}</g>'
                               f'<g class="fb" data-at="{min(t, never)}">{blank}</g>'
                               for t, lab, known, blank, _ in rows) + "</g>")
    parts += [painter.legend(), "</svg>"]
    steps = [[s.phase[0].upper(), s.module, s.node, sorted({k.node for k in s.reads})]
             for s in tr.specs]
    views = [present(tr, k) for k in progress(range(n + 1), "flipbook")]
    caption = [(caption_lines(v) + ["", "", ""])[:3] for v in views]
    equations = ["\n".join(v.lines) for v in views]
    data = _script_json({"n": n, "steps": steps, "caption": caption, "eq": equations})
    return _FLIPBOOK.format(title=esc(title), n=n, svg="".join(parts), data=data)


def gif(painter: Painter, ms_per_step: int = 900, steps=None, dpi=None) -> bytes:
    """An animated GIF, one frame per step (drawn by Graphviz, one run per frame): the whole
    pass, or ``steps`` (step numbers), at ``dpi``. Bounded before anything is drawn: at most
    MAX_GIF_FRAMES frames of a graph of at most MAX_GIF_NODES nodes, each frame at most
    MAX_GIF_FRAME_PIXELS and all of them at most MAX_GIF_PIXELS (from the layout: raster_size;
    by default 96 dpi, or the largest dpi down to MIN_DPI that fits, with a warning). The
    flipbook has no such limits."""
    if isinstance(ms_per_step, bool) or not isinstance(ms_per_step, numbers.Real) or \
            not math.isfinite(ms_per_step) or not 10 <= ms_per_step <= 600_000:
        raise BackpropError(f"ms_per_step={ms_per_step!r}: give the milliseconds a frame is "
                            f"shown, from 10 to 600000")
    steps = _gif_steps(painter, steps)
    n = len(steps)

    def problem(w, h, d):
        if not _fits(w, h, MAX_GIF_FRAME_PIXELS):
            what = (f"a GIF's frames of this graph at {d:g} dpi would be {w:,}×{h:,} pixels "
                    f"({w * h / 1e6:.0f} megapixels), more than a GIF frame may have "
                    f"({_limit_text(MAX_GIF_FRAME_PIXELS)})")
            return what, ("save the flipbook (save_flipbook), which has every step at any size, "
                          "one step as SVG (save_svg), or draw a smaller graph (the module-level "
                          "view)")
        if n * w * h > MAX_GIF_PIXELS:
            what = (f"a GIF of {n} frames of {w:,}×{h:,} pixels (at {d:g} dpi) would hold "
                    f"{n * w * h / 1e6:.0f} megapixels (every frame is kept until the GIF is "
                    f"written, a byte a pixel), more than a GIF may hold (at most "
                    f"{MAX_GIF_PIXELS / 1e6:.0f} megapixels)")
            return what, (f"pass steps=range(a, b) with at most {MAX_GIF_PIXELS // (w * h)} "
                          f"steps, or save the flipbook (save_flipbook), which has every step")
        return None
    d = choose_dpi(dpi, _extent_pt(painter, steps), problem)
    pngs = [engines.run_engine(_raster_dot(painter, k, frozenset(), d, dpi), "png",
                               painter.layout.engine)
            for k in progress(steps, "GIF frames", at_least=2)]     # a Graphviz run each
    # what Graphviz drew, read from each PNG's header before any frame is decoded: checked
    # again, so that no more than the limits allow is ever held in memory
    sizes = [png_size(data) for data in pngs]
    w, h = max(s[0] for s in sizes), max(s[1] for s in sizes)
    wrong = problem(w, h, d)
    if wrong is not None:
        raise BackpropError(f"{wrong[0]}, as Graphviz drew them. Pass a lower dpi, or {wrong[1]}")

    def frames():
        for i in range(len(pngs)):
            data, pngs[i] = pngs[i], None                   # each PNG is dropped once decoded
            yield _gif_frame(data, w, h)                    # no other frame is left in memory
    rest = frames()
    first = next(rest)
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=rest, duration=ms_per_step,
               loop=0, optimize=False)
    return out.getvalue()


def _gif_steps(painter: Painter, steps) -> list[int]:
    """The frames' step numbers, refused above MAX_GIF_FRAMES (without listing more of them)
    or MAX_GIF_NODES."""
    n = len(painter.trace) + 1
    if steps is None:
        steps = range(n)
    elif isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise BackpropError(f"steps={steps!r}: give step numbers, e.g. range(0, {min(n, 10)})")
    given = list(itertools.islice(steps, MAX_GIF_FRAMES + 1))
    nodes = len(painter.layout.boxes) + len(painter.layout.ovals)
    if len(given) > MAX_GIF_FRAMES or nodes > MAX_GIF_NODES:
        count = f"{len(steps)}" if hasattr(steps, "__len__") else f"more than {MAX_GIF_FRAMES}"
        advice = []
        if len(given) > MAX_GIF_FRAMES:
            advice.append(f"pass steps=range(a, b) with at most {MAX_GIF_FRAMES} steps")
        if nodes > MAX_GIF_NODES:
            advice.append("draw a smaller graph (the module-level view, or one module opened: "
                          "bpv.circuit(trace, expand=\"M_1\"))")
        advice = "; ".join(advice)
        raise BackpropError(
            f"a GIF of {count} frames of a {nodes}-node graph is too big (at most "
            f"{MAX_GIF_FRAMES} frames of at most {MAX_GIF_NODES} nodes: Graphviz draws each "
            f"frame anew). {advice[0].upper()}{advice[1:]}; or save the flipbook "
            f"(save_flipbook), which has every step")
    if not given:
        raise BackpropError("steps is empty: a GIF needs at least one step, e.g. steps=[0]")
    return [painter.trace.check_step(k) for k in given]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its header, without decoding it."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise BackpropError("Graphviz returned something other than a PNG")
    return struct.unpack(">II", data[16:24])


def _gif_frame(data: bytes, w: int, h: int):
    """A PNG from Graphviz as a GIF frame of w×h pixels on the one palette of every frame (an
    unchanged part of the drawing keeps its colours, so the GIF stores only what changes,
    comparing frames a byte a pixel). PIL's own guard against huge images (which the limits
    keep far away) becomes a BackpropError, never a raw PIL error."""
    from PIL import Image
    try:
        frame = Image.open(io.BytesIO(data))
        frame.load()
    except Image.DecompressionBombError as e:
        raise BackpropError(f"a GIF frame is too large to decode ({e}); pass a lower dpi, "
                            f"steps=range(a, b) with fewer steps, or save the flipbook "
                            f"(save_flipbook)") from None
    except (OSError, SyntaxError) as e:
        raise BackpropError(f"Graphviz returned a PNG that cannot be read ({e})") from None
    if frame.mode != "RGB":
        frame = frame.convert("RGB")
    palette = _palette()
    frame = frame.quantize(palette=palette, dither=Image.Dither.NONE)
    if frame.size != (w, h):                    # the frames share the largest one's size
        canvas = Image.new("P", (w, h), 255)    # palette index 255 is white
        canvas.putpalette(palette.getpalette())
        canvas.paste(frame, (0, 0))
        frame = canvas
    return frame


@functools.lru_cache(maxsize=1)
def _palette():
    """The one palette of every GIF frame: white to black, and white to each colour the DOT
    uses (the forward and backward colours, the mark, red), in steps of 1/24 from 2/24; white is
    255. (PIL finds the nearest colour on a coarse grid: a colour closer to white would take
    white's place, and the background would turn light grey.)"""
    from PIL import Image
    colours = [(v, v, v) for v in range(0, 255, 8)]
    for hexa in (FWD, BWD, MARK, BAD):
        c = tuple(int(hexa[i:i + 2], 16) for i in (1, 3, 5))
        colours += [tuple(round(255 + (x - 255) * t / 24) for x in c) for t in range(2, 25)]
    colours = list(dict.fromkeys(colours))[:255]
    colours += [(0, 0, 0)] * (255 - len(colours)) + [(255, 255, 255)]
    image = Image.new("P", (1, 1))
    image.putpalette([x for c in colours for x in c])
    return image


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


def progress(items, what: str, at_least: int = PROGRESS_FROM):
    """A progress bar (tqdm: a widget in a notebook, text in a terminal) over an export that
    takes more than about a second; plain iteration for fewer than ``at_least`` items."""
    items = list(items)
    if len(items) < at_least:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=what, leave=False, delay=1.0)     # shown only after a second
