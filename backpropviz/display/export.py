"""The same picture in other formats: DOT and PNG (drawn by Graphviz itself, with the same fixed
node sizes and highlights), an animated GIF (one Graphviz run per frame) and the flipbook (one
offline HTML file of the whole pass)."""
from __future__ import annotations

import json

from ..core import keys as K
from ..core.errors import BackpropError
from . import engines
from .layout import Box, Oval
from .paint import Painter, caption_lines, esc
from .presentation import edge_state, node_state, present
from .style import MARK, SVG_STYLE, state_style

MAX_GIF_FRAMES, MAX_GIF_NODES = 120, 400   # a GIF is one Graphviz run per frame
PROGRESS_FROM = 200       # steps or frames: exports longer than this show a progress bar


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


def png(painter: Painter, k: int, marked=frozenset()) -> bytes:
    """Step k drawn by Graphviz from its DOT."""
    return engines.run_engine(dot(painter, k, marked), "png", painter.layout.engine)


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
        head, rows = painter.box_parts[b.id]
        parts.append(head[0] + f'<rect data-box="{esc(b.name)}" class="box {b.kind}' + head[1]
                     + "".join(f'<g class="fk" data-at="{min(t, never)}">{shown}</g>'
                               f'<g class="fb" data-at="{min(t, never)}">{blank}</g>'
                               for t, shown, blank, _ in rows) + "</g>")
    parts += [painter.legend(), "</svg>"]
    steps = [[s.phase[0].upper(), s.module, s.node, sorted({k.node for k in s.reads})]
             for s in tr.specs]
    views = [present(tr, k) for k in progress(range(n + 1), "flipbook")]
    caption = [(caption_lines(v) + ["", "", ""])[:3] for v in views]
    equations = ["\n".join(v.lines) for v in views]
    data = _script_json({"n": n, "steps": steps, "caption": caption, "eq": equations})
    return _FLIPBOOK.format(title=esc(title), n=n, svg="".join(parts), data=data)


def gif(painter: Painter, ms_per_step: int = 900, steps=None) -> bytes:
    """An animated GIF, one frame per step (drawn by Graphviz, one run per frame): the whole
    pass, or ``steps`` (step numbers). Bounded: at most MAX_GIF_FRAMES frames of a graph of
    at most MAX_GIF_NODES nodes; the flipbook has no such limit."""
    import io
    from PIL import Image
    steps = list(range(len(painter.trace) + 1) if steps is None else steps)
    for k in steps:
        painter.trace.check_step(k)
    nodes = len(painter.layout.boxes) + len(painter.layout.ovals)
    if len(steps) > MAX_GIF_FRAMES or nodes > MAX_GIF_NODES:
        raise BackpropError(
            f"a GIF of {len(steps)} frames of a {nodes}-node graph is too big (at most "
            f"{MAX_GIF_FRAMES} frames of at most {MAX_GIF_NODES} nodes: Graphviz draws each "
            f"frame anew). Pass steps=range(a, b) with fewer steps, draw the module-level "
            f"view, or save the flipbook (save_flipbook), which has every step")
    frames = [Image.open(io.BytesIO(png(painter, k))).convert("RGB")
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
