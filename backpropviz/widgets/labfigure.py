"""The training lab's figure: decision boundary | loss curve | norms, for one Training, redrawn in
place. ``LivePlot`` is the ipympl glue (a canvas widget, or a PNG where ipympl is missing);
``LabFigure`` draws on it; ``LogTicks`` labels its log-scaled axes at any range. pyplot is never
imported."""
from __future__ import annotations

import asyncio
import io
import math

import ipywidgets as ipw
import numpy as np
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator

from ..core import modules as M
from ..core.numerics import sigmoid
from ..lab.train import Training

GRID = 70                 # the decision-boundary picture is GRID × GRID predictions
RING = "#ffb000"          # the batch's points are ringed in amber (with a black edge): no other
RING_EDGE = "#000000"     # colour of the boundary panel is amber, so a ring reads on any background
RING_SIZE = 110           # points² (a ring about 11 px across; a data point is 4 px)
DOTS_UP_TO = 60           # the loss curve shows each iteration as a dot while there are this few
SETTLE_S = 0.25           # this long after the last redraw, the page is asked to redraw again


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis from lo to hi that always label it, at any range: nice linear
    values within a factor of 2, 1-2-5 within 1.5 decades, 1-3 within 3, every decade (or every
    k-th one) beyond. A short run's loss (0.69 to 0.6) gets labels, not a bare axis."""
    lo, hi = min(lo, hi), max(lo, hi)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
        return []
    lo = max(lo, hi * 1e-300, 1e-300)
    decades = math.log10(hi / lo)
    linear = [v for v in MaxNLocator(nbins=4, steps=[1, 2, 5, 10]).tick_values(lo, hi)
              if lo <= v <= hi and v > 0]
    if decades <= math.log10(2):
        return linear
    mantissas = (1, 2, 5) if decades <= 1.5 else (1, 3) if decades <= 3 else (1,)
    stride = max(1, math.ceil(decades / 6)) if mantissas == (1,) else 1
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        if e % stride:
            continue
        ticks += [m * 10.0 ** e for m in mantissas if lo <= m * 10.0 ** e <= hi * (1 + 1e-9)]
    return ticks if len(ticks) >= 3 or decades > 1.5 else linear


class LogTicks(Locator):
    """``log_ticks`` as a matplotlib locator (for the loss and norm axes); the limits of a log
    axis (never 0 or below) as matplotlib's own LogLocator sets them."""

    def __init__(self):
        self._log = LogLocator()

    def set_axis(self, axis):
        super().set_axis(axis)
        self._log.set_axis(axis)

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        return log_ticks(vmin, vmax)

    def nonsingular(self, vmin, vmax):
        return self._log.nonsingular(vmin, vmax)

    def view_limits(self, vmin, vmax):
        return self._log.view_limits(vmin, vmax)


class LogTickLabels(Formatter):
    """0.5, 0.02, 0.001 as decimals; smaller or larger numbers as 10⁻⁴, 3×10⁻⁵."""

    def __call__(self, x, pos=None):
        return tick_label(x)


def tick_label(x: float) -> str:
    if not (x > 0 and math.isfinite(x)):
        return ""
    if 1e-3 <= x < 1e4:
        return f"{x:.4g}"
    e = math.floor(math.log10(x) + 1e-9)
    m = x / 10.0 ** e
    m_text = f"{m:.2g}"
    return (f"$10^{{{e}}}$" if m_text == "1" else f"${m_text}{{\\times}}10^{{{e}}}$")


class LivePlot:
    """A matplotlib Figure shown as a widget and redrawn in place (no flicker): ipympl's canvas
    where ipympl is installed, otherwise a PNG in an Image widget. pyplot is never imported."""

    def __init__(self, fig):
        self.fig = fig
        try:
            from ipympl.backend_nbagg import Canvas, FigureManager
        except ImportError:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            FigureCanvasAgg(fig)
            self.widget, self.ipympl = ipw.Image(format="png"), False
        else:
            canvas = Canvas(fig)
            FigureManager(canvas, 0)
            canvas.header_visible = canvas.footer_visible = False
            canvas.toolbar_visible, canvas.resizable = False, False
            self.widget, self.ipympl = canvas, True
        self.widget.add_class("bpv-lab-figure")
        self._settle = None

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def redraw(self):
        if self.ipympl:
            self.fig.canvas.draw_idle()
            self._settle_later()
        else:
            self.widget.value = self.png()

    def _settle_later(self):
        """ipympl's page asks for a new image on draw_idle only when it is not waiting for one,
        so the last of quick redraws (one iteration, a pause) can be dropped and the page keeps
        an older picture. So the request is made again SETTLE_S and 4 × SETTLE_S after the last
        redraw (each redraw postpones them): the page then shows the figure's final state. (An
        image sent unasked could reach a page that has no first full image yet: it would stay
        blank.)"""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:          # no event loop runs this (a script): nobody is watching
            return
        if self._settle is not None:
            self._settle.cancel()
        self._settle = loop.call_later(SETTLE_S, self._ask_again, loop, 3 * SETTLE_S)

    def _ask_again(self, loop, then: float | None):
        self._settle = None
        if getattr(self.widget, "comm", None) is None:     # closed
            return
        try:
            self.fig.canvas.draw_idle()
        except Exception:                 # noqa: BLE001 — a late picture must never raise
            return
        if then is not None:
            self._settle = loop.call_later(then, self._ask_again, loop, None)


class LabFigure:
    """Decision boundary | loss curve | norms, for one Training (updated in place)."""

    def __init__(self):
        from matplotlib.figure import Figure
        self.fig = Figure(figsize=(10.4, 3.5), dpi=80)     # 832 × 280 px: fits a notebook at 1280
        self.ax_b, self.ax_l, self.ax_n = self.fig.subplots(1, 3)
        # a fixed layout: constrained layout would cost most of each redraw
        self.fig.subplots_adjust(left=0.055, right=0.99, bottom=0.15, top=0.9, wspace=0.25)
        self.live = LivePlot(self.fig)
        self.training = None
        self.batch_mark = (None, None)    # (iteration t, its batch's columns) ringed on the left
        self.open_point = None            # the column whose pass the Stepper shows: crossed

    def set_batch(self, t: int | None, columns=None):
        """Ring the points of iteration t's batch (``columns``: their columns of X; None with a t:
        every point is in the batch; t None: no ring). Drawn at the next ``update``."""
        self.batch_mark = (t, None if columns is None else np.asarray(columns, dtype=int))

    def set_open_point(self, column: int | None):
        """Cross the point whose pass the Stepper shows (None: none, or a whole batch)."""
        self.open_point = column

    def new_run(self, tr: Training):
        """Draw what does not change during a run (the points, the axes) once."""
        self.training = tr
        self.batch_mark = (None, None)
        self.open_point = None
        for ax in (self.ax_b, self.ax_l, self.ax_n):
            ax.clear()
        self._boundary_setup(tr)
        self.ax_l.set(title="loss J of each batch", xlabel="iteration t", yscale="log")
        self.ax_n.set(title="‖W[l]‖ solid, ‖∂J/∂W[l]‖ dashed", xlabel="iteration t",
                      yscale="log")
        self.loss_line, = self.ax_l.plot([], [], color="#1f4e99", lw=1.2, markersize=3.5)
        self.marks = [ax.axvline(0, color="#b3261e", lw=1, ls=":", visible=False)
                      for ax in (self.ax_l, self.ax_n)]
        colors = ["#1f4e99", "#c0392b", "#2e7d32", "#8e44ad", "#d35400", "#616161", "#00838f"]
        self.norm_lines = []
        for i, p in enumerate(tr.layers):
            c = colors[i % len(colors)]
            w, = self.ax_n.plot([], [], color=c, lw=1.4, label=p, markersize=3.5)
            g, = self.ax_n.plot([], [], color=c, lw=1.0, ls="--", markersize=2.5)
            self.norm_lines.append((w, g))
        self.ax_n.legend(loc="center right", fontsize=10, framealpha=0.8)
        from matplotlib.ticker import NullLocator
        for ax in (self.ax_b, self.ax_l, self.ax_n):
            ax.title.set_fontsize(12)
            ax.tick_params(labelsize=11)
        for ax in (self.ax_l, self.ax_n):
            ax.yaxis.set_minor_locator(NullLocator())     # minor log ticks: most of a redraw
            ax.yaxis.set_major_locator(LogTicks())        # labelled at any range (not only 10^k)
            ax.yaxis.set_major_formatter(LogTickLabels())
        self.update()

    def _boundary_setup(self, tr):
        ax, X = self.ax_b, tr.X
        self.contour = None
        self.image = None
        self.rings = self.points = None      # the batch's rings: for 1 or 2 features only
        d = X.shape[0]
        loss = tr.net.loss
        ax.set_title({M.LogisticLoss: "P(y = 1): sigmoid of the output",
                      M.CrossEntropyLoss: "the class with the largest output"}.get(
                          type(loss), "the network's output") if d == 2 else "the network's output")
        if d == 1:
            lo, hi = X.min(), X.max()
            pad = 0.1 * (hi - lo or 1)
            self.grid_x = np.linspace(lo - pad, hi + pad, 200)[None, :]
            ax.scatter(X[0], tr.Y[0] if tr.Y.ndim == 2 else tr.Y, s=10, color="#555")
            self.curve, = ax.plot(self.grid_x[0], self.grid_x[0] * 0, color="#b3261e", lw=2)
            self.points = np.stack([X[0], tr.Y[0] if tr.Y.ndim == 2 else tr.Y], axis=1)
            self._rings(ax)
            return
        if d != 2:
            ax.text(0.5, 0.5, f"the input has {d} features:\nno picture of the boundary",
                    ha="center", va="center", transform=ax.transAxes, fontsize=12)
            ax.set_axis_off()
            return
        (x0, x1), (y0, y1) = [(r.min(), r.max()) for r in X]
        px, py = 0.15 * (x1 - x0 or 1), 0.15 * (y1 - y0 or 1)
        self.extent = (x0 - px, x1 + px, y0 - py, y1 + py)
        gx, gy = np.meshgrid(np.linspace(x0 - px, x1 + px, GRID), np.linspace(y0 - py, y1 + py, GRID))
        self.grid = np.stack([gx.ravel(), gy.ravel()])
        self.gx, self.gy = gx, gy
        if isinstance(loss, M.CrossEntropyLoss):
            labels = tr.Y.argmax(axis=0)
            k = tr.Y.shape[0]
        else:
            labels = tr.Y[0]
            k = 2
        from matplotlib.colors import ListedColormap
        light = ["#9ec5f0", "#f5b7b1", "#b9e4b0", "#e1c4f0", "#fad7a0", "#c8c8c8", "#f7c6e0",
                 "#d9d98c", "#a8e0e6", "#d7b99b"]
        dark = ["#1f4e99", "#b3261e", "#2e7d32", "#7b1fa2", "#d35400", "#555555", "#c2185b",
                "#827717", "#00838f", "#6d4c41"]
        light = [light[c % len(light)] for c in range(max(k, 2))]
        self.cmap = ListedColormap(light) if k > 2 else "RdBu_r"
        self.image = ax.imshow(np.zeros((GRID, GRID)), origin="lower", extent=self.extent,
                               cmap=self.cmap, vmin=0, vmax=(k - 1 if k > 2 else 1),
                               aspect="auto", interpolation="nearest" if k > 2 else "bilinear",
                               alpha=0.55)
        if isinstance(loss, M.SquaredLoss):
            ax.scatter(X[0], X[1], c=labels, s=12, cmap="viridis", edgecolors="white", lw=0.4)
        else:
            for c in range(k):
                sel = labels == c
                ax.scatter(X[0, sel], X[1, sel], s=14, color=dark[c % len(dark)],
                           edgecolors="black", lw=0.4, label=f"y = {c}")
            ax.legend(loc="upper right", fontsize=9, handletextpad=0.1, borderpad=0.3,
                      framealpha=0.8)
        ax.set_xlim(self.extent[:2])
        ax.set_ylim(self.extent[2:])
        self.points = X.T
        self._rings(ax)

    def _rings(self, ax):
        """The rings of the batch's points (a black ring under an amber one), over everything."""
        self.rings = [ax.scatter([], [], s=RING_SIZE, facecolors="none", edgecolors=c, linewidths=w,
                                 zorder=z) for c, w, z in ((RING_EDGE, 3.4, 5), (RING, 1.8, 6))]
        self.cross = ax.scatter([], [], s=150, marker="x", color="black", linewidths=2.2, zorder=7)

    def update(self, opened: int | None = None):
        with np.errstate(all="ignore"):     # a diverging run's huge numbers: drawn, not warned
            self._update(opened)

    def _update(self, opened):
        tr = self.training
        h = tr.history
        t = np.arange(1, len(h.loss) + 1)
        step = max(1, len(t) // 1500)            # at most ~1500 points per line
        self.loss_line.set_data(t[::step], np.maximum(h.loss[::step], 1e-12) if h.loss else [])
        self.loss_line.set_marker("o" if len(t) <= DOTS_UP_TO else "None")  # few: each one seen
        at = np.asarray(h.norm_at)
        dots = "o" if len(at) <= DOTS_UP_TO // 10 else "None"     # norms: every 10th iteration
        for i, (w, g) in enumerate(self.norm_lines):
            s = max(1, len(at) // 1500)
            w.set_data(at[::s], [x[i] for x in h.weight_norms[::s]])
            g.set_data(at[::s], [max(x[i], 1e-12) for x in h.grad_norms[::s]])
            w.set_marker(dots)
            g.set_marker(dots)
        for ax in (self.ax_l, self.ax_n):
            ax.relim()
            ax.autoscale_view(scalex=False)
            ax.set_xlim(0, max(10, len(t)) * 1.02)
        for m in self.marks:
            m.set_visible(opened is not None)
            if opened is not None:
                m.set_xdata([opened, opened])
        self._update_boundary(tr)
        self._update_rings(tr)
        self.live.redraw()

    def _update_rings(self, tr):
        if getattr(self, "rings", None) is None:
            return
        t, cols = self.batch_mark
        where = (self.points[cols] if t is not None and cols is not None
                 else np.empty((0, 2)))
        for r in self.rings:
            r.set_offsets(where)
        j = self.open_point
        self.cross.set_offsets(self.points[[j]] if j is not None and 0 <= j < len(self.points)
                               else np.empty((0, 2)))
        d = tr.X.shape[0]
        if t is None:
            what = ""
        elif cols is None:
            what = f"iteration {t}'s batch: all {tr.n} points"
        else:
            what = f"ringed: the {len(cols)} points of iteration {t}'s batch"
        self.ax_b.set_xlabel(f"x · {what}" if d == 1 and what else "x" if d == 1 else what,
                             fontsize=11)

    def _update_boundary(self, tr):
        d = tr.X.shape[0]
        loss = tr.net.loss
        if d == 1:
            out = tr.predict(self.grid_x)
            self.curve.set_ydata(out[0])
            self.ax_b.relim()
            self.ax_b.autoscale_view()
            return
        if d != 2:
            return
        out = tr.predict(self.grid)
        if isinstance(loss, M.CrossEntropyLoss):
            z = out.argmax(axis=0)
        elif isinstance(loss, M.LogisticLoss):
            z = sigmoid(out[0])                             # σ(t): the predicted P(y = 1)
        else:
            z = out[0]
            self.image.set_clim(z.min(), z.max())
        z = z.reshape(GRID, GRID)
        self.image.set_data(z)
        if isinstance(loss, M.LogisticLoss):
            if self.contour is not None:
                self.contour.remove()
            self.contour = (self.ax_b.contour(self.gx, self.gy, z, levels=[0.5], colors="k",
                                              linewidths=1.2) if z.min() < 0.5 < z.max() else None)
