"""The training lab: gradient descent on toy data, with any iteration's backprop one click away.

``TrainingLab`` is a VBox (it nests in any layout) around one ``Training`` (train.py): settings,
start / pause / one iteration, a live figure (decision boundary, loss curve, weight and gradient
norms; matplotlib, shown with ipympl where it is installed), the Stepper on iteration t's pass for
one example of its batch, and save / load of the whole state as one JSON file (labfile.py).
Training runs in short chunks on the kernel's event loop, so Pause and the other controls answer
while it runs; every error is shown in the widget and the last good state stays.
"""
from __future__ import annotations

import asyncio
import base64
import html
import io
import time

import ipywidgets as W
import numpy as np

from ..lab import datasets

from ..lab import labfile
from ..core import modules as M
from ..core.errors import BackpropError
from ..core.networks import Sequential, mlp
from ..lab.train import MAX_ITERATIONS, MAX_SEED, Training, check_batch, check_lr, describe
from ..core.checks import whole
from .stepper import ClosesParts, Stepper, shown_in_widget

CHUNK_S = 0.3             # seconds of training between two redraws (a redraw takes ~0.1 s)
GRID = 70                 # the decision-boundary picture is GRID × GRID predictions
MAX_HIDDEN, MAX_WIDTH = 6, 256
OWN = "your data"

_CSS = """<style>
.bpv-lab .bpv-bad input { outline: 2px solid #b3261e; outline-offset: -2px; }
.bpv-lab .bpv-field-error { color: #b3261e; font-size: 13px; }
.bpv-lab .bpv-status { font-size: 15px; }
.bpv-lab button:focus-visible, .bpv-lab input:focus-visible, .bpv-lab select:focus-visible {
  outline: 3px solid #1a73e8; outline-offset: 1px; }
</style>"""


def parse_hidden(text: str) -> list[int]:
    """"16, 16" → [16, 16]; "" → [] (no hidden layer: logistic regression)."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if len(parts) > MAX_HIDDEN:
        raise BackpropError(f"at most {MAX_HIDDEN} hidden layers; got {len(parts)}")
    sizes = []
    for p in parts:
        try:
            n = int(p)
        except ValueError:
            raise BackpropError(f"hidden layer sizes are whole numbers separated by commas, such "
                                f"as 16, 16; got {p!r}") from None
        if not 1 <= n <= MAX_WIDTH:
            raise BackpropError(f"a hidden layer has 1 to {MAX_WIDTH} units; got {n}")
        sizes.append(n)
    return sizes


# --- the figure ----------------------------------------------------------------------------------

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
            self.widget, self.ipympl = W.Image(format="png"), False
        else:
            canvas = Canvas(fig)
            FigureManager(canvas, 0)
            canvas.header_visible = canvas.footer_visible = False
            canvas.toolbar_visible, canvas.resizable = False, False
            self.widget, self.ipympl = canvas, True
        self.widget.add_class("bpv-lab-figure")

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def redraw(self):
        if self.ipympl:
            self.fig.canvas.draw_idle()
        else:
            self.widget.value = self.png()


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

    def new_run(self, tr: Training):
        """Draw what does not change during a run (the points, the axes) once."""
        self.training = tr
        for ax in (self.ax_b, self.ax_l, self.ax_n):
            ax.clear()
        self._boundary_setup(tr)
        self.ax_l.set(title="loss J of each batch", xlabel="iteration t", yscale="log")
        self.ax_n.set(title="‖W[l]‖ solid, ‖∂J/∂W[l]‖ dashed", xlabel="iteration t",
                      yscale="log")
        self.loss_line, = self.ax_l.plot([], [], color="#1f4e99", lw=1.2)
        self.marks = [ax.axvline(0, color="#b3261e", lw=1, ls=":", visible=False)
                      for ax in (self.ax_l, self.ax_n)]
        colors = ["#1f4e99", "#c0392b", "#2e7d32", "#8e44ad", "#d35400", "#616161", "#00838f"]
        self.norm_lines = []
        for i, p in enumerate(tr.layers):
            c = colors[i % len(colors)]
            w, = self.ax_n.plot([], [], color=c, lw=1.4, label=p)
            g, = self.ax_n.plot([], [], color=c, lw=1.0, ls="--")
            self.norm_lines.append((w, g))
        self.ax_n.legend(loc="center right", fontsize=10, framealpha=0.8)
        from matplotlib.ticker import NullLocator
        for ax in (self.ax_b, self.ax_l, self.ax_n):
            ax.title.set_fontsize(12)
            ax.tick_params(labelsize=11)
        for ax in (self.ax_l, self.ax_n):
            ax.yaxis.set_minor_locator(NullLocator())     # minor log ticks: most of a redraw
        self.update()

    def _boundary_setup(self, tr):
        ax, X = self.ax_b, tr.X
        self.contour = None
        self.image = None
        d = X.shape[0]
        loss = tr._live.loss
        ax.set_title({M.LogisticLoss: "P(y = 1): sigmoid of the output",
                      M.CrossEntropyLoss: "the class with the largest output"}.get(
                          type(loss), "the network's output") if d == 2 else "the network's output")
        if d == 1:
            lo, hi = X.min(), X.max()
            pad = 0.1 * (hi - lo or 1)
            self.grid_x = np.linspace(lo - pad, hi + pad, 200)[None, :]
            ax.scatter(X[0], tr.Y[0] if tr.Y.ndim == 2 else tr.Y, s=10, color="#555")
            self.curve, = ax.plot(self.grid_x[0], self.grid_x[0] * 0, color="#b3261e", lw=2)
            ax.set_xlabel("x")
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

    def update(self, opened: int | None = None):
        with np.errstate(all="ignore"):     # a diverging run's huge numbers: drawn, not warned
            self._update(opened)

    def _update(self, opened):
        tr = self.training
        h = tr.history
        t = np.arange(1, len(h.loss) + 1)
        step = max(1, len(t) // 1500)            # at most ~1500 points per line
        self.loss_line.set_data(t[::step], np.maximum(h.loss[::step], 1e-12) if h.loss else [])
        at = np.asarray(h.norm_at)
        for i, (w, g) in enumerate(self.norm_lines):
            s = max(1, len(at) // 1500)
            w.set_data(at[::s], [x[i] for x in h.weight_norms[::s]])
            g.set_data(at[::s], [max(x[i], 1e-12) for x in h.grad_norms[::s]])
        for ax in (self.ax_l, self.ax_n):
            ax.relim()
            ax.autoscale_view(scalex=False)
            ax.set_xlim(0, max(10, len(t)) * 1.02)
        for m in self.marks:
            m.set_visible(opened is not None)
            if opened is not None:
                m.set_xdata([opened, opened])
        self._update_boundary(tr)
        self.live.redraw()

    def _update_boundary(self, tr):
        d = tr.X.shape[0]
        loss = tr._live.loss
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
            z = np.exp(-np.logaddexp(0.0, -out[0]))          # σ(t): the predicted P(y = 1)
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


# --- the lab -------------------------------------------------------------------------------------

class TrainingLab(ClosesParts, W.VBox):
    """Train ``net`` on (X, Y) by gradient descent, watch it, open any iteration in the Stepper.

    ``TrainingLab()`` trains a 2-16-16-1 ReLU MLP on two moons; ``TrainingLab(data="spirals",
    hidden=(32, 32))`` another toy set; ``TrainingLab(net, X, Y)`` your own network (an MLP from
    ``bpv.mlp`` can change its architecture and be saved) and data (d × n, one example per column).
    Methods for a notebook: ``train(n)``, ``open_iteration(t, example)``, ``save(path)``, ``TrainingLab.load``.
    """

    def __init__(self, net: Sequential | None = None, X=None, Y=None, *, data: str = "two_moons",
                 hidden=(16, 16), activation: str = "relu", lr=0.5, batch=None, seed: int = 0,
                 n: int = 200, noise: float | None = None):
        if net is not None or X is not None or Y is not None:
            if net is None or X is None or Y is None:
                raise BackpropError("TrainingLab(net, X, Y): give all three, or none of them "
                                    "and a toy data set's name in data=")
            tr, recipe = Training(net, X, Y, lr=lr, batch=batch, seed=seed), None
        else:
            ds = datasets.make(data, n=n, noise=noise, seed=seed)
            hidden = parse_hidden(",".join(map(str, hidden)))
            net = mlp([ds.X.shape[0], *hidden, ds.outputs], activation=activation, loss=ds.loss,
                      seed=seed)
            tr, recipe = Training(net, ds.X, ds.Y, lr=lr, batch=batch, seed=seed), ds.recipe
        self._start(tr, recipe)

    def _start(self, tr: Training, recipe: dict | None, view: dict | None = None):
        """The lab on a Training (from the arguments or from a file), showing ``view``; if that
        fails, nothing it built stays open."""
        try:
            self._build_lab(tr, recipe, view)
        except BaseException:
            self.close()
            raise

    def _build_lab(self, tr: Training, recipe: dict | None, view: dict | None):
        W.VBox.__init__(self)
        self.add_class("bpv-lab")
        self.training, self.recipe = tr, recipe
        self.own = None if recipe is not None else (tr.X, tr.Y)   # "your data" in the menu
        self.shape = describe(tr.net)  # {sizes, activation, loss} or None (not an MLP)
        self.opened = None            # {"iteration", "example", "step"} shown in the Stepper
        self.stepper = None
        self._running = False
        self._task = None
        self._run_id = 0
        self._syncing = False
        self._build()
        self._new_run_view()
        if view is not None:
            self.open_iteration(view["iteration"], view["example"], view["step"])

    # --- parts -----------------------------------------------------------------------------------
    def _build(self):
        tr, shape = self.training, self.shape
        names = list(datasets.MAKERS) + ([OWN] if self.own is not None else [])
        style = {"description_width": "initial"}
        self.data_w = W.Dropdown(options=names, value=OWN if self.own else self.recipe["name"],
                                 description="data", style=style,
                                 tooltip="the toy data set to train on")
        self.seed_w = W.Text(value=str(tr.seed), description="seed", style=style,
                             layout=W.Layout(width="110px"), continuous_update=False)
        hidden = ", ".join(map(str, shape["sizes"][1:-1])) if shape else ""
        self.hidden_w = W.Text(value=hidden, description="hidden layers", style=style,
                               placeholder="e.g. 16, 16", continuous_update=False,
                               disabled=shape is None, layout=W.Layout(width="210px"))
        self.act_w = W.Dropdown(options=list(M.ACTIVATIONS), description="activation σ",
                                style=style, value=shape["activation"] if shape else "relu",
                                disabled=shape is None, layout=W.Layout(width="210px"))
        self.lr_w = W.Text(value=f"{tr.lr:g}", description="learning rate α", style=style,
                           continuous_update=False, layout=W.Layout(width="190px"))
        self.batch_w = W.Text(value="all" if tr.batch == tr.n else str(tr.batch),
                              description="batch size B", style=style, continuous_update=False,
                              placeholder="all", layout=W.Layout(width="170px"))
        self.run_w = W.Button(description="▶ train", tooltip="start training (pause: press again)",
                              button_style="primary", layout=W.Layout(width="110px"))
        self.one_w = W.Button(description="one iteration", tooltip="one gradient-descent step",
                              layout=W.Layout(width="auto"))
        self.reset_w = W.Button(description="new run", tooltip="start again from iteration 0 "
                                "with these settings", layout=W.Layout(width="auto"))
        self.status = W.HTML().add_class("bpv-status")
        self.field_errors = W.HTML()
        self.message = W.HTML()
        self.figure = LabFigure()
        self.figure_text = W.HTML()             # the figure in words, for screen readers
        self.it_w = W.Text(value="1", description="iteration t", style=style,
                           layout=W.Layout(width="150px"), continuous_update=False)
        self.ex_w = W.Text(value="0", description="example", style=style,
                           layout=W.Layout(width="120px"), continuous_update=False)
        self.open_w = W.Button(description="open in the Stepper", tooltip="record iteration t's "
                               "forward and backward pass for this example of its batch",
                               layout=W.Layout(width="auto"))
        self.caption = W.HTML()
        self.stepper_box = W.VBox()
        self.save_w = W.Button(description="save lab file", tooltip="download this lab's state "
                               "as one JSON file", layout=W.Layout(width="auto"))
        self.link = W.HTML()
        self.load_w = W.FileUpload(accept=".json", multiple=False, description="load lab file",
                                   tooltip="load a lab file saved here or sent to you")

        self.data_w.observe(self._on_setting, "value")
        for w in (self.seed_w, self.hidden_w, self.act_w):
            w.observe(self._on_setting, "value")
        self.lr_w.observe(self._on_training_field, "value")
        self.batch_w.observe(self._on_training_field, "value")
        self.run_w.on_click(self._on_run)
        self.one_w.on_click(self._on_one)
        self.reset_w.on_click(self._on_reset)
        self.open_w.on_click(self._on_open)
        self.save_w.on_click(self._on_save)
        self.load_w.observe(self._on_load, "value")
        self.figure.fig.canvas.mpl_connect("button_press_event", self._on_figure_click)

        wrap = W.Layout(flex_flow="row wrap", align_items="center")
        self.children = [
            W.HTML(_CSS + "<b>data and network</b> (a change starts a new run)"),
            W.HBox([self.data_w, self.seed_w, self.hidden_w, self.act_w], layout=wrap),
            W.HBox([self.lr_w, self.batch_w, self.run_w, self.one_w, self.reset_w], layout=wrap),
            self.field_errors, self.status, self.message,
            self.figure.live.widget, self.figure_text,
            W.HTML("<b>look inside one iteration</b>"),
            W.HBox([self.it_w, self.ex_w, self.open_w], layout=wrap),
            self.caption, self.stepper_box,
            W.HBox([self.save_w, self.link, self.load_w], layout=wrap),
        ]
        for w in (self.status, self.message, self.field_errors):
            w.add_class("bpv-live")           # aria-live, set by the script below

    # --- showing --------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False):
        colour = "#b3261e" if error else "#1b5e20"
        self.message.value = (f'<div role="{"alert" if error else "status"}" style="color:'
                              f'{colour}">{html.escape(text)}</div>' if text else "")

    def _show(self):
        with np.errstate(all="ignore"):      # a diverged run shows nan, it does not warn
            self._show_state()

    def _show_state(self):
        tr = self.training
        J, acc = tr.evaluate()
        parts = [f"iteration <b>{tr.t}</b>", f"now: J on all {tr.n} examples = <b>{J:.4f}</b>"]
        if acc is not None:
            parts.append(f"accuracy <b>{100 * acc:.1f}%</b>")
        parts.append(f"α = {tr.lr:g}, B = {tr.batch}")
        state = "training…" if self._running else "paused" if tr.t else "ready"
        self.status.value = (f'<div role="status" aria-live="polite">{" · ".join(parts)} '
                             f'({state})</div>')
        self.figure.update(self.opened["iteration"] if self.opened else None)
        last = f"{tr.history.loss[-1]:.4f}" if tr.history.loss else "none yet"
        self.figure_text.value = (
            f'<div style="font-size:13px;color:#444">The figure: left, the network\'s answer '
            f'over the plane with the {tr.n} training points; middle, the loss J of each batch '
            f'before its update (last: {last}); right, the size of each layer\'s weights and of their gradients. '
            f'Click a curve to choose an iteration, a point to choose that example.</div>')

    def _new_run_view(self):
        self.opened = None
        self.stepper = None
        self.stepper_box.children = ()
        self.caption.value = ""
        self.link.value = ""
        self.figure.new_run(self.training)
        self._show()

    def _mark(self, field, message: str | None):
        (field.add_class if message else field.remove_class)("bpv-bad")
        errs = dict(getattr(self, "_errs", {}))
        name = field.description
        if message:
            errs[name] = message
        else:
            errs.pop(name, None)
        self._errs = errs
        self.field_errors.value = "".join(
            f'<div class="bpv-field-error" role="alert">{html.escape(k)}: {html.escape(v)}</div>'
            for k, v in errs.items())

    # --- settings -------------------------------------------------------------------------------
    def _apply_training_fields(self) -> bool:
        """α and B from their fields (next iteration on); a bad one is marked and not used."""
        ok = True
        try:
            lr = check_lr(self.lr_w.value)
            self._mark(self.lr_w, None)
        except BackpropError as e:
            self._mark(self.lr_w, str(e))
            lr, ok = None, False
        try:
            batch = check_batch(self.batch_w.value, self.training.n)
            self._mark(self.batch_w, None)
        except BackpropError as e:
            self._mark(self.batch_w, str(e))
            batch, ok = None, False
        self.training.set(lr=lr, batch=batch)
        return ok

    @shown_in_widget
    def _on_training_field(self, change):
        if not self._syncing:
            self._apply_training_fields()
            self._show()

    @shown_in_widget
    def _on_setting(self, change):
        if not self._syncing:
            self.rebuild()

    def _settings_training(self) -> tuple[Training, dict | None]:
        """A new Training from the fields (nothing is changed if one is bad)."""
        errors = []
        try:
            seed = whole(self.seed_w.value, "the seed")
            if seed > MAX_SEED:
                raise BackpropError(f"the seed must be from 0 to {MAX_SEED}; got {seed}")
            self._mark(self.seed_w, None)
        except BackpropError as e:
            self._mark(self.seed_w, str(e))
            errors.append(e)
        try:
            hidden = parse_hidden(self.hidden_w.value) if self.shape else None
            self._mark(self.hidden_w, None)
        except BackpropError as e:
            self._mark(self.hidden_w, str(e))
            errors.append(e)
        if errors:
            raise BackpropError("not changed: " + "; ".join(map(str, errors)))
        lr, batch = self.training.lr, self.training.batch
        if self.data_w.value == OWN:
            (X, Y), recipe = self.own, None
            out, loss = self.training.net._output_shape(self.training.X)[0], (
                self.shape["loss"] if self.shape else None)
        else:
            same = self.recipe is not None and self.recipe["name"] == self.data_w.value
            n = self.recipe["n"] if self.recipe else 200
            ds = datasets.make(self.data_w.value, n=n, seed=seed,
                               noise=self.recipe["noise"] if same else None)
            (X, Y), recipe, out, loss = (ds.X, ds.Y), ds.recipe, ds.outputs, ds.loss
        if self.shape is None:          # not an MLP: the network stays, only the seed changes
            net = self.training.net
        else:
            d = np.shape(X)[0] if np.ndim(X) == 2 else 1
            net = mlp([d, *hidden, out], activation=self.act_w.value, loss=loss, seed=seed)
        n = np.shape(X)[-1]
        return Training(net, X, Y, lr=lr, batch=min(batch, n), seed=seed), recipe

    def rebuild(self):
        """Start a new run from the settings fields (data, seed, hidden layers, σ)."""
        self.pause()
        tr, recipe = self._settings_training()
        self.training, self.recipe = tr, recipe
        self.shape = describe(tr.net)
        self.batch_w.value = "all" if tr.batch == tr.n else str(tr.batch)
        self._apply_training_fields()
        self._new_run_view()
        self.say(f"new run: {self._describe_net()} on {tr.n} examples", error=False)

    def _describe_net(self) -> str:
        if self.shape is None:
            return "your network"
        s = self.shape
        return f"{'-'.join(map(str, s['sizes']))} MLP ({s['activation']}, {s['loss']} loss)"

    # --- training -------------------------------------------------------------------------------
    def train(self, n: int = 1):
        """n iterations now (in a notebook cell; the ▶ button trains in the background)."""
        if not self._apply_training_fields():
            raise BackpropError("fix the marked field first: " + "; ".join(self._errs.values()))
        self.training.step(n)
        self._show()

    @shown_in_widget
    def _on_one(self, _):
        self.pause()
        self.train(1)
        self.say("")

    @shown_in_widget
    def _on_reset(self, _):
        self.rebuild()

    @shown_in_widget
    def _on_run(self, _):
        if self._running:
            self.pause()
            return
        if not self._apply_training_fields():
            self.say("fix the marked field first; the last good settings stay", error=True)
            return
        self._running = True
        self._run_id += 1                    # a loop from an earlier ▶ sees this and ends
        self.run_w.description, self.run_w.tooltip = "⏸ pause", "pause training"
        self.say("")
        self._task = asyncio.ensure_future(self._loop(self._run_id))

    def pause(self):
        """Stop the background training after its current chunk."""
        self._running = False
        self.run_w.description, self.run_w.tooltip = "▶ train", "start training (pause: press again)"

    def close(self):
        """Closing the widget (or running its cell again) stops its training and closes its parts
        (a lab whose constructor failed has none yet)."""
        self._running = False
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            task.cancel()
        super().close()

    async def _loop(self, run_id: int):
        tr = self.training
        n = 1                                 # iterations per call: grown to ~20 ms of work
        try:
            while self._running and self._run_id == run_id and self.training is tr:
                end = time.perf_counter() + CHUNK_S
                while time.perf_counter() < end and tr.t < MAX_ITERATIONS:
                    t0 = time.perf_counter()
                    tr.step(min(n, MAX_ITERATIONS - tr.t))
                    if time.perf_counter() - t0 < 0.02:
                        n *= 2
                if tr.t >= MAX_ITERATIONS:
                    self.say(f"stopped: a run holds at most {MAX_ITERATIONS} iterations")
                    self.pause()
                self._show()
                await asyncio.sleep(0.03)       # let Pause and the other controls in
        except BackpropError as e:
            self.pause()
            self.say(str(e), error=True)
            self._show()
        except Exception as e:                  # noqa: BLE001 — never a traceback in a widget
            self.pause()
            self.say(f"{type(e).__name__}: {e}", error=True)
        finally:
            if self.training is tr and self._run_id == run_id:
                self._show()

    # --- looking inside -------------------------------------------------------------------------
    def open_iteration(self, t: int | None = None, example: int = 0, step: int = 0):
        """Show iteration t's pass (default: the last one run) for one example of its batch."""
        tr = self.training
        t = tr.t if t is None else whole(t, "the iteration t")
        if tr.t == 0:
            raise BackpropError("no iteration has run yet: train first (one iteration is enough)")
        trace = tr.trace_at(t, example=whole(example, "the example"))
        step = whole(step, "the step")
        if step > len(trace.steps):
            raise BackpropError(f"the pass has {len(trace.steps)} steps; got step {step}")
        stepper = Stepper(trace)
        if step:
            stepper.model.go(step)
        col = tr.example_index(t, example)
        B = tr.batch_size_at(t)
        self.stepper, self.opened = stepper, {"iteration": t, "example": int(example),
                                              "step": step}
        self.it_w.value, self.ex_w.value = str(t), str(example)
        self.stepper_box.children = (stepper,)
        share = (f"Training used the mean of the {B} examples' gradients: this example's ∂J/∂θ, "
                 f"divided by {B}, is its share." if B > 1 else
                 "The batch is this one example: these are the gradients training used.")
        self.caption.value = (
            f'<div role="status">Iteration {t}: the parameters θ before its update (after '
            f'{t - 1} updates), example {example} of its batch (column {col} of X, label '
            f'{html.escape(self._label_text(col))}). {share}</div>')
        self._show()
        return stepper

    def _label_text(self, col: int) -> str:
        Y = self.training.Y
        y = Y[:, col]
        if isinstance(self.training._live.loss, M.CrossEntropyLoss):
            return f"class {int(y.argmax())}"
        return ", ".join(f"{v:.4g}" for v in y)

    @shown_in_widget
    def _on_figure_click(self, event):
        """A click on the curves picks iteration t; on a data point, that example of t's batch."""
        tr, f = self.training, self.figure
        if event.inaxes in (f.ax_l, f.ax_n) and event.xdata is not None and tr.t:
            self.it_w.value = str(min(max(1, round(event.xdata)), tr.t))
            self.say(f"iteration {self.it_w.value} chosen: press “open in the Stepper”")
        elif event.inaxes is f.ax_b and tr.X.shape[0] == 2 and event.xdata is not None:
            t = min(max(1, whole(self.it_w.value, "the iteration t")), max(tr.t, 1))
            j = int(np.argmin((tr.X[0] - event.xdata) ** 2 + (tr.X[1] - event.ydata) ** 2))
            idx = tr.batch_index(t)
            where = [j] if idx is None else np.flatnonzero(idx == j).tolist()
            if not where:
                self.say(f"that point (column {j} of X) is not in iteration {t}'s batch of "
                         f"{len(idx)}: choose another point or another iteration", error=True)
                return
            self.ex_w.value = str(where[0])
            self.say(f"example {where[0]} of iteration {t}'s batch chosen (column {j} of X): "
                     f"press “open in the Stepper”")

    @shown_in_widget
    def _on_open(self, _):
        self.pause()
        self.open_iteration(whole(self.it_w.value, "the iteration t"), whole(self.ex_w.value, "the example"))
        self.say("")

    # --- files ----------------------------------------------------------------------------------
    def _view(self):
        if self.opened is None:
            return None
        step = self.stepper.model.step if self.stepper is not None else self.opened["step"]
        return {**self.opened, "step": int(step)}

    def dumps(self) -> str:
        return labfile.dumps(self.training, self.recipe, self._view())

    def save(self, path) -> None:
        """Write the lab's whole state to one JSON file (``TrainingLab.load(path)`` reads it)."""
        labfile.save(path, self.training, self.recipe, self._view())

    @classmethod
    def load(cls, path) -> "TrainingLab":
        """A lab in the state a saved file describes (validated completely; see labfile)."""
        lab = cls.__new__(cls)
        lab._start(*labfile.load(path))
        return lab

    @shown_in_widget
    def _on_save(self, _):
        data = base64.b64encode(self.dumps().encode()).decode()
        name = f"backpropviz-lab-iteration-{self.training.t}.json"
        self.link.value = (f'<a download="{name}" href="data:application/json;base64,{data}">'
                           f'download {name}</a>')

    @shown_in_widget
    def _on_load(self, change):
        files = change["new"]
        if not files:
            return
        f = files[0]
        content = f["content"] if isinstance(f, dict) else f.content
        try:
            self.load_text(bytes(content))
        finally:
            self.load_w.value = ()         # the same file can be loaded again

    def load_text(self, text) -> None:
        """Replace this lab's state by a saved file's (on any error nothing changes)."""
        tr, recipe, view = labfile.loads(text)
        if view is not None:           # check the view before anything changes
            trace = tr.trace_at(view["iteration"], view["example"])
            if view["step"] > len(trace.steps):
                raise BackpropError(f"not a valid backpropviz lab file: view.step: the pass has "
                                    f"{len(trace.steps)} steps")
        self.pause()
        self.training, self.recipe, self.shape = tr, recipe, describe(tr.net)
        if recipe is None:
            self.own = (tr.X, tr.Y)
        self._sync_fields()
        self._new_run_view()
        if view is not None:
            self.open_iteration(view["iteration"], view["example"], view["step"])
        self.say(f"loaded: iteration {tr.t}")

    def _sync_fields(self):
        """The settings fields show the loaded state, without starting a new run."""
        tr, s = self.training, self.shape
        self._syncing = True          # the field handlers stand by: nothing is to be applied
        try:
            names = list(datasets.MAKERS) + ([OWN] if self.own is not None else [])
            self.data_w.options = names
            self.data_w.value = self.recipe["name"] if self.recipe else OWN
            self.seed_w.value = str(tr.seed)
            self.hidden_w.disabled = self.act_w.disabled = s is None
            if s:
                self.hidden_w.value = ", ".join(map(str, s["sizes"][1:-1]))
                self.act_w.value = s["activation"]
            self.lr_w.value = f"{tr.lr:g}"
            self.batch_w.value = "all" if tr.batch == tr.n else str(tr.batch)
        finally:
            self._syncing = False

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        data = dict((bundle[0] if isinstance(bundle, tuple) else bundle) or {})
        # a viewer without a kernel still shows the figure and the status
        data["image/png"] = base64.b64encode(self.figure.live.png()).decode()
        tr = self.training
        with np.errstate(all="ignore"):
            J = tr.loss_all()
        data["text/plain"] = (f"TrainingLab: {self._describe_net()}, {tr.n} examples, "
                              f"iteration {tr.t}, J = {J:.4f}")
        return data


__all__ = ["TrainingLab", "LabFigure", "LivePlot", "parse_hidden"]
