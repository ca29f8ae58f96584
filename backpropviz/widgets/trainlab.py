"""The training lab: gradient descent on toy data, with any iteration's backprop one click away.

``TrainingLab`` is a VBox (it nests in any layout) around one ``Training`` (train.py): settings,
start / pause / one iteration, a live figure (labfigure.py: decision boundary, loss curve, weight
and gradient norms; matplotlib, shown with ipympl where it is installed), the Stepper on
iteration t's pass for one example of its batch, and save / load of the whole state as one JSON
file (labfile.py).
Training runs in short chunks on the kernel's event loop, so Pause and the other controls answer
while it runs; every error is shown in the widget and the last good state stays.

A lab stops training when it is closed (``close()``, or by the front end), when it is no longer
shown (the front end counts its views: re-running its cell clears the output), and when another
lab is made; a lab made again by the same notebook cell closes the one that cell made before
(cells.py says when that is known).
"""
from __future__ import annotations

import asyncio
import base64
import html
import time

import ipywidgets as ipw
import numpy as np

from ..core import modules as M
from ..core.checks import whole
from ..core.errors import BackpropError
from ..core.networks import Sequential, mlp
from ..lab import datasets, labfile
from ..lab.train import MAX_ITERATIONS, MAX_SEED, Training, check_batch, check_lr, describe
from .base import ClosesParts, close_tree, shown_in_widget
from .cells import MadeByCells
from .fields import FieldErrors
from .labfigure import LabFigure
from .pagestyle import PageStyle
from .stepper import Stepper

CHUNK_S = 0.3             # seconds of training between two redraws (a redraw takes ~0.1 s)
STEP_S = 0.02             # seconds of one call of Training.step: the controls wait at most this
MAX_HIDDEN, MAX_WIDTH = 6, 256
OWN = "your data"

class Unreadable(BackpropError):
    """A setting's field cannot be read (it is marked; nothing changes)."""


def chunk_after(n: int, seconds: float) -> int:
    """Iterations for the next call of Training.step after n of them took ``seconds``: as many as
    fit in STEP_S at that time per iteration, at most twice n (a sudden speed-up is not trusted at
    once), at least 1."""
    fit = STEP_S * n / seconds if seconds > 0 else 2 * n
    return max(1, min(2 * n, int(fit)))


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


# --- the lab -------------------------------------------------------------------------------------

LABS = MadeByCells()          # the open labs of this kernel, with the cell run that made each


class TrainingLab(ClosesParts, ipw.VBox):
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
        fails, nothing it built stays open. A lab made by an earlier run of the same notebook
        cell is closed (this one replaces it), and a lab still training elsewhere pauses."""
        try:
            self._build_lab(tr, recipe, view)
        except BaseException:
            self.close()
            raise
        for old in LABS.add(self):
            old.close()
        for other in LABS.others(self):
            if other.running:
                other.pause()
                other.say("paused: another training lab was made in this kernel (one trains "
                          "at a time); press ▶ train to go on")

    def _build_lab(self, tr: Training, recipe: dict | None, view: dict | None):
        # _view_count = 0: the front end counts this lab's views (ipywidgets' experimental
        # view count, issue #2747); with none left (its output cleared) the lab pauses
        ipw.VBox.__init__(self, _view_count=0)
        self.add_class("bpv-lab")
        self.observe(self._on_views, "_view_count")
        self.comm.on_close(self._on_comm_close)   # the front end closed the model
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
        self.data_w = ipw.Dropdown(options=names, value=OWN if self.own else self.recipe["name"],
                                   description="data", style=style,
                                   tooltip="the toy data set to train on")
        self.seed_w = ipw.Text(value=str(tr.seed), description="seed", style=style,
                               layout=ipw.Layout(width="110px"), continuous_update=False)
        hidden = ", ".join(map(str, shape["sizes"][1:-1])) if shape else ""
        self.hidden_w = ipw.Text(value=hidden, description="hidden layers", style=style,
                                 placeholder="e.g. 16, 16", continuous_update=False,
                                 disabled=shape is None, layout=ipw.Layout(width="210px"))
        self.act_w = ipw.Dropdown(options=list(M.ACTIVATIONS), description="activation σ",
                                  style=style, value=shape["activation"] if shape else "relu",
                                  disabled=shape is None, layout=ipw.Layout(width="210px"))
        self.lr_w = ipw.Text(value=f"{tr.lr:g}", description="learning rate α", style=style,
                             continuous_update=False, layout=ipw.Layout(width="190px"))
        self.batch_w = ipw.Text(value="all" if tr.batch == tr.n else str(tr.batch),
                                description="batch size B", style=style, continuous_update=False,
                                placeholder="all", layout=ipw.Layout(width="170px"))
        self.run_w = ipw.Button(description="▶ train",
                                tooltip="start training (pause: press again)",
                                button_style="primary", layout=ipw.Layout(width="110px"))
        self.one_w = ipw.Button(description="one iteration", tooltip="one gradient-descent step",
                                layout=ipw.Layout(width="auto"))
        self.reset_w = ipw.Button(description="new run", tooltip="start again from iteration 0 "
                                  "with these settings", layout=ipw.Layout(width="auto"))
        self.status = ipw.HTML().add_class("bpv-status")
        self.field_errors = FieldErrors([self.data_w, self.seed_w, self.hidden_w, self.act_w,
                                         self.lr_w, self.batch_w])
        self.message = ipw.HTML()
        self.figure = LabFigure()
        self.figure_text = ipw.HTML()             # the figure in words, for screen readers
        self.it_w = ipw.Text(value="1", description="iteration t", style=style,
                             layout=ipw.Layout(width="150px"), continuous_update=False)
        self.ex_w = ipw.Text(value="0", description="example", style=style,
                             layout=ipw.Layout(width="120px"), continuous_update=False)
        self.open_w = ipw.Button(description="open in the Stepper", tooltip="record iteration t's "
                                 "forward and backward pass for this example of its batch",
                                 layout=ipw.Layout(width="auto"))
        self.caption = ipw.HTML()
        self.stepper_box = ipw.VBox()
        self.save_w = ipw.Button(description="save lab file", tooltip="download this lab's state "
                                 "as one JSON file", layout=ipw.Layout(width="auto"))
        self.link = ipw.HTML()
        self.load_w = ipw.FileUpload(accept=".json", multiple=False, description="load lab file",
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

        wrap = ipw.Layout(flex_flow="row wrap", align_items="center")
        self.children = [
            PageStyle(), ipw.HTML("<b>data and network</b> (a change starts a new run)"),
            ipw.HBox([self.data_w, self.seed_w, self.hidden_w, self.act_w], layout=wrap),
            ipw.HBox([self.lr_w, self.batch_w, self.run_w, self.one_w, self.reset_w], layout=wrap),
            self.field_errors, self.status, self.message,
            self.figure.live.widget, self.figure_text,
            ipw.HTML("<b>look inside one iteration</b>"),
            ipw.HBox([self.it_w, self.ex_w, self.open_w], layout=wrap),
            self.caption, self.stepper_box,
            ipw.HBox([self.save_w, self.link, self.load_w], layout=wrap),
        ]

    # --- showing --------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False):
        colour = "#b3261e" if error else "#1b5e20"
        self.message.value = (f'<div role="{"alert" if error else "status"}" style="color:'
                              f'{colour}">{html.escape(text)}</div>' if text else "")

    def _show(self):
        with np.errstate(all="ignore"):      # a diverged run shows nan, it does not warn
            self.status.value, self.figure_text.value = self._texts(self.training, self._running)
            self.figure.update(self.opened["iteration"] if self.opened else None)

    @staticmethod
    def _texts(tr: Training, running: bool) -> tuple[str, str]:
        """The status line and the figure in words (for screen readers), for ``tr``."""
        J, acc = tr.evaluate()
        parts = [f"iteration <b>{tr.t}</b>", f"now: J on all {tr.n} examples = <b>{J:.4f}</b>"]
        if acc is not None:
            parts.append(f"accuracy <b>{100 * acc:.1f}%</b>")
        parts.append(f"α = {tr.lr:g}, B = {tr.batch}")
        state = "training…" if running else "paused" if tr.t else "ready"
        status = f'<div role="status" aria-live="polite">{" · ".join(parts)} ({state})</div>'
        last = f"{tr.history.loss[-1]:.4f}" if tr.history.loss else "none yet"
        words = (
            f'<div style="font-size:13px;color:#444">The figure: left, the network\'s answer '
            f'over the plane with the {tr.n} training points; middle, the loss J of each batch '
            f'before its update (last: {last}); right, the size of each layer\'s weights and of their gradients. '
            f'Click a curve to choose an iteration, a point to choose that example.</div>')
        return status, words

    def _new_run_view(self):
        self._show_stepper(None)
        self.opened = None
        self.caption.value = ""
        self.link.value = ""
        self.figure.new_run(self.training)
        self._show()

    def _show_stepper(self, stepper: Stepper | None):
        """Show ``stepper`` (or none) below the figure; the one it replaces is closed (each holds
        about a hundred widgets)."""
        old, self.stepper = self.stepper, stepper
        self.stepper_box.children = (stepper,) if stepper is not None else ()
        if old is not None and old is not stepper:
            old.close()

    def _show_figure(self, figure: LabFigure):
        """Show ``figure`` in place of the current one, which is closed."""
        old = self.figure
        self.children = tuple(figure.live.widget if c is old.live.widget else c
                              for c in self.children)
        self.figure = figure
        close_tree(old.live.widget, set())

    # --- settings -------------------------------------------------------------------------------
    def _apply_training_fields(self) -> bool:
        """α and B from their fields (next iteration on); a bad one is marked and not used."""
        ok = True
        try:
            lr = check_lr(self.lr_w.value)
            self.field_errors.mark(self.lr_w, None)
        except BackpropError as e:
            self.field_errors.mark(self.lr_w, str(e))
            lr, ok = None, False
        try:
            batch = check_batch(self.batch_w.value, self.training.n)
            self.field_errors.mark(self.batch_w, None)
        except BackpropError as e:
            self.field_errors.mark(self.batch_w, str(e))
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
            self.rebuild(change["owner"])

    def _settings_training(self) -> tuple[Training, dict | None]:
        """A new Training from the fields (nothing is changed if one is bad)."""
        errors = []
        try:
            seed = whole(self.seed_w.value, "the seed")
            if seed > MAX_SEED:
                raise BackpropError(f"the seed must be from 0 to {MAX_SEED}; got {seed}")
            self.field_errors.mark(self.seed_w, None)
        except BackpropError as e:
            self.field_errors.mark(self.seed_w, str(e))
            errors.append(e)
        try:
            hidden = parse_hidden(self.hidden_w.value) if self.shape else None
            self.field_errors.mark(self.hidden_w, None)
        except BackpropError as e:
            self.field_errors.mark(self.hidden_w, str(e))
            errors.append(e)
        if errors:
            raise Unreadable("not changed: " + "; ".join(map(str, errors)))
        lr, batch = self.training.lr, self.training.batch
        if self.data_w.value == OWN:
            (X, Y), recipe = self.own, None
            out, loss = self.training.net.output_shape(self.training.X)[0], (
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

    def rebuild(self, changed: ipw.Widget | None = None):
        """Start a new run from the settings fields (data, seed, hidden layers, σ).

        If they are refused, nothing changes and every field shows the run in force again, but a
        field that cannot be read keeps what was typed, marked; ``changed`` (the field the
        learner changed) gets the refusal beside the form."""
        try:
            tr, recipe = self._settings_training()
        except Exception as e:
            bad = set(self.field_errors.outlined)
            refused = changed.value if changed is not None else None
            self._sync_fields(keep=bad)
            if changed is not None and changed.description not in bad:
                why = ("correct the marked field first" if isinstance(e, Unreadable) else
                       str(e) if isinstance(e, BackpropError) else f"{type(e).__name__}: {e}")
                self.field_errors.mark(changed, f"{refused} not used: {why}", outline=False)
            raise
        self.pause()
        self.training, self.recipe = tr, recipe
        self.shape = describe(tr.net)
        self.field_errors.mark(self.data_w, None)
        self.field_errors.mark(self.act_w, None)
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
            raise BackpropError("fix the marked field first: "
                                + "; ".join(self.field_errors.messages.values()))
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

    @property
    def running(self) -> bool:
        """Whether the lab trains in the background (▶)."""
        return self._running

    def pause(self):
        """Stop the background training after its current chunk."""
        self._running = False
        self.run_w.description, self.run_w.tooltip = "▶ train", "start training (pause: press again)"

    def close(self):
        """Closing the widget (by code, by the front end, or by making a lab again in the same
        cell) stops its training and closes its parts (a lab whose constructor failed has none
        yet)."""
        self._running = False
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            task.cancel()
        LABS.forget(self)
        super().close()

    def _on_comm_close(self, msg):
        self.close()

    def _on_views(self, change):
        """The front end counts the lab's views; when the last one goes (its output was cleared,
        e.g. by running its cell again) the lab pauses: nobody sees it train."""
        if change["new"] == 0 and (change["old"] or 0) > 0 and self._running:
            self.pause()
            self.say("paused: the lab is no longer shown (its output was cleared); show it again "
                     "and press ▶ train to go on")

    async def _loop(self, run_id: int):
        tr = self.training
        n = 1                                 # iterations per call of step: about STEP_S of work
        batch = tr.batch
        try:
            while self._running and self._run_id == run_id and self.training is tr \
                    and self.comm is not None:
                if tr.batch != batch:          # another B, another time per iteration: from 1
                    n, batch = 1, tr.batch
                end = time.perf_counter() + CHUNK_S
                while time.perf_counter() < end and tr.t < MAX_ITERATIONS:
                    k = min(n, MAX_ITERATIONS - tr.t)
                    t0 = time.perf_counter()
                    tr.step(k)
                    n = chunk_after(k, time.perf_counter() - t0)
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
            if self.training is tr and self._run_id == run_id and self.comm is not None:
                self._show()

    # --- looking inside -------------------------------------------------------------------------
    def open_iteration(self, t: int | None = None, example: int = 0, step: int = 0):
        """Show iteration t's pass (default: the last one run) for one example of its batch."""
        tr = self.training
        t = tr.t if t is None else whole(t, "the iteration t")
        stepper, opened, caption = self._opening(tr, t, example, step)
        self.opened = opened
        self._show_stepper(stepper)
        self.it_w.value, self.ex_w.value = str(t), str(opened["example"])
        self.caption.value = caption
        self._show()
        return stepper

    @staticmethod
    def _opening(tr: Training, t: int, example, step, in_file: bool = False):
        """(a Stepper on iteration t's pass for one example of its batch, at ``step``, what the
        lab records as opened, the caption); nothing of the lab changes. ``in_file``: the view
        comes from a lab file (a step past the pass makes the file invalid)."""
        if tr.t == 0:
            raise BackpropError("no iteration has run yet: train first (one iteration is enough)")
        example = whole(example, "the example")
        trace = tr.trace_at(t, example=example)
        step = whole(step, "the step")
        if step > len(trace.steps):
            raise BackpropError(
                f"not a valid backpropviz lab file: view.step: the pass has {len(trace.steps)} "
                f"steps" if in_file else f"the pass has {len(trace.steps)} steps; got step {step}")
        stepper = Stepper(trace)
        try:
            if step:
                stepper.model.go(step)
            col = tr.example_index(t, example)
            B = tr.batch_size_at(t)
            share = (f"Training used the mean of the {B} examples' gradients: this example's "
                     f"∂J/∂θ, divided by {B}, is its share." if B > 1 else
                     "The batch is this one example: these are the gradients training used.")
            caption = (
                f'<div role="status">Iteration {t}: the parameters θ before its update (after '
                f'{t - 1} updates), example {example} of its batch (column {col} of X, label '
                f'{html.escape(TrainingLab._label_text(tr, col))}). {share}</div>')
        except BaseException:
            stepper.close()
            raise
        return stepper, {"iteration": t, "example": example, "step": step}, caption

    @staticmethod
    def _label_text(tr: Training, col: int) -> str:
        y = tr.Y[:, col]
        if isinstance(tr.net.loss, M.CrossEntropyLoss):
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
        """Replace this lab's state by a saved file's. The new state (the run, its figure, the
        Stepper on its view) is made first, beside the old one, and replaces it only when
        complete: on any error (a bad file, even a MemoryError while drawing) nothing changes."""
        tr, recipe, view = labfile.loads(text)
        shape = describe(tr.net)
        figure = LabFigure()
        stepper = opened = None
        caption = ""
        try:
            figure.fig.canvas.mpl_connect("button_press_event", self._on_figure_click)
            figure.new_run(tr)
            if view is not None:
                stepper, opened, caption = self._opening(tr, view["iteration"], view["example"],
                                                         view["step"], in_file=True)
            with np.errstate(all="ignore"):
                if opened is not None:             # new_run drew the run: now the mark at t
                    figure.update(opened["iteration"])
                status, words = self._texts(tr, running=False)
        except BaseException:
            close_tree(figure.live.widget, set())
            if stepper is not None:
                stepper.close()
            raise
        # complete: it replaces what the lab shows (assignments only from here on)
        self.pause()
        self.training, self.recipe, self.shape = tr, recipe, shape
        if recipe is None:
            self.own = (tr.X, tr.Y)
        self._sync_fields()
        self.field_errors.mark_all({})
        self._show_figure(figure)
        self.opened = opened
        self._show_stepper(stepper)
        if opened is not None:
            self.it_w.value, self.ex_w.value = str(opened["iteration"]), str(opened["example"])
        self.caption.value, self.link.value = caption, ""
        self.status.value, self.figure_text.value = status, words
        self.say(f"loaded: iteration {tr.t}")

    def _sync_fields(self, keep=frozenset()):
        """The settings fields show the state in force, without starting a new run (``keep``:
        the names of fields that keep what was typed)."""
        tr, s = self.training, self.shape
        self._syncing = True          # the field handlers stand by: nothing is to be applied
        try:
            names = list(datasets.MAKERS) + ([OWN] if self.own is not None else [])
            if list(self.data_w.options) != names:
                self.data_w.options = names
            self.data_w.value = self.recipe["name"] if self.recipe else OWN
            fields = [(self.seed_w, str(tr.seed)), (self.lr_w, f"{tr.lr:g}"),
                      (self.batch_w, "all" if tr.batch == tr.n else str(tr.batch))]
            self.hidden_w.disabled = self.act_w.disabled = s is None
            if s:
                fields.append((self.hidden_w, ", ".join(map(str, s["sizes"][1:-1]))))
                self.act_w.value = s["activation"]
            for w, value in fields:
                if w.description not in keep:
                    w.value = value
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


__all__ = ["TrainingLab", "parse_hidden"]
