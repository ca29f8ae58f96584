"""Draw a trace as known after step k: every u[i], θ[i] and, once computed, ∂J/∂u[i], ∂J/∂θ[i].

The public face of the drawings (``bpv.render``, ``bpv.show``, ``bpv.Renderer``): the parts live
beside it, each with one job:

  * engines.py  finding a Graphviz engine and running it
  * layout.py   one Graphviz layout per graph (every node at its final size), kept for reuse
  * style.py    colours, the one table of highlight styles, the SVG's stylesheet, the legend
  * paint.py    SVG per step, written from the kept layout without running Graphviz again
  * export.py   the same picture as DOT, PNG, an animated GIF and the offline flipbook
"""
from __future__ import annotations

from pathlib import Path

from ..core.trace import Trace
from . import export
from .engines import EngineMissing, find_engine
from .layout import Layout, layout_for
from .paint import Painter, esc
from .presentation import present

__all__ = ["EngineMissing", "Layout", "Picture", "Renderer", "TextPicture", "find_engine",
           "render", "renderer", "show", "svg_img"]


class Renderer(Painter):
    """Draws one trace at any step from one layout: SVG (paint.py), and the same picture as DOT,
    PNG, GIF and a flipbook (export.py)."""

    def digraph(self, k: int, marked=frozenset()):
        """Step k as a ``graphviz.Digraph`` with the same fixed node sizes and highlights
        (``marked`` nodes: a double purple outline)."""
        return export.digraph(self, k, marked)

    def dot(self, k: int, marked=frozenset()) -> str:
        """DOT for step k with the same fixed node sizes (so Graphviz lays it out the same)."""
        return export.dot(self, k, marked)

    def png(self, k: int, marked=frozenset(), dpi=None) -> bytes:
        """Step k as PNG, drawn by Graphviz at ``dpi``: at most 40 megapixels, decided before
        Graphviz runs (export.raster_size gives the size). By default 96 dpi, lowered to fit
        with a warning; a ``dpi`` asked for that does not fit is refused."""
        return export.png(self, k, marked, dpi)

    def flipbook(self, title: str = "backpropviz") -> str:
        """One offline HTML file of the whole pass (all steps, slider, buttons, equations)."""
        return export.flipbook(self, title)

    def gif(self, ms_per_step: int = 900, steps=None, dpi=None) -> bytes:
        """An animated GIF, one frame per step: the whole pass, or ``steps`` (step numbers), at
        ``dpi``; refused above its limits of frames, nodes and pixels (export.py), before
        anything is drawn."""
        return export.gif(self, ms_per_step, steps, dpi)

    def text(self, k: int) -> str:
        return present(self.trace, k).text


# --- the object a notebook shows -----------------------------------------------------------------

class Picture:
    """A step's drawing: shows itself as SVG in Jupyter, with the text rendering beside it."""

    def __init__(self, renderer: Renderer, step: int, marked=frozenset(),
                 mark_label: str = "marked"):
        self.renderer, self.step = renderer, step
        self.marked, self.mark_label = renderer.marked_nodes(marked), mark_label

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

    def save_png(self, path, dpi=None) -> Path:
        """This step as PNG at ``dpi`` (by default 96, lowered to fit 40 megapixels with a
        warning; save_svg has no limit)."""
        Path(path).write_bytes(self.renderer.png(self.step, self.marked, dpi))
        return Path(path)

    def save_flipbook(self, path, title: str = "backpropviz") -> Path:
        """The whole trace as one offline HTML file (all steps, slider, buttons, equations)."""
        Path(path).write_text(self.renderer.flipbook(title), encoding="utf-8")
        return Path(path)

    def save_gif(self, path, ms_per_step: int = 900, steps=None, dpi=None) -> Path:
        """The whole trace, or ``steps``, as an animated GIF at ``dpi`` (bounded in frames and
        pixels: the flipbook has every step at any size)."""
        Path(path).write_bytes(self.renderer.gif(ms_per_step, steps, dpi))
        return Path(path)

    def __repr__(self):
        return self.text


def renderer(trace: Trace, engine: str | None = None) -> Renderer:
    """A Renderer for this trace, reusing the layout of any earlier trace with the same graph."""
    return Renderer(trace, layout_for(trace, engine))


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
