"""The training lab: gradient descent on toy data, with any iteration's backprop one click away.

``TrainingLab`` is a VBox (it nests in any layout) around one ``Training`` (train.py): settings,
start / pause / one iteration at a speed a room can follow (1 to 1000 iterations per second, or
as fast as it goes), a live figure (labfigure.py: decision boundary with iteration t's batch
ringed, loss curve, weight and gradient norms; matplotlib, shown with ipympl where it is
installed), the Stepper on iteration t's pass for one example of its batch or for the whole batch
(or on any point's pass with the current θ), and save / load of the whole state as one JSON file
(labfile.py).
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
import math
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
FASTEST = math.inf
# the speed menu: iterations per second (a room follows 1 to 10; the boundary of two moons forms
# in about 100 iterations), then "as fast as it goes" (a redraw every CHUNK_S)
SPEEDS = [(f"{r} iteration{'s' if r > 1 else ''}/s", r) for r in (1, 2, 5, 10, 30, 100, 1000)] \
    + [("as fast as it goes", FASTEST)]
DEFAULT_SPEED = 10
BEHIND_S = 1.0            # a pace more than this behind (a slow machine) drops its backlog
WAIT_SLICE_S = 0.05       # between two iterations the loop sleeps in slices: pause answers in this
PAUSE, RUN = "▮▮ pause", "▶ train"      # glyphs DejaVu Sans has (⏸ is an empty box without it)


class Unreadable(BackpropError):
    """A setting's field cannot be read (it is marked; nothing changes)."""


def check_speed(speed) -> float:
    """Iterations per second from the speed menu (None or math.inf: as fast as it goes)."""
    if speed is None:
        return FASTEST
    rates = [r for _, r in SPEEDS]
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed not in rates:
        raise BackpropError("the speed is iterations per second, one of "
                            + ", ".join(f"{r:g}" for r in rates[:-1])
                            + f", or None (as fast as it goes); got {speed!r}")
    return float(speed)


class Pace:
    """When the iterations of a run at ``rate`` per second are due: the first at once, the k-th
    (k − 1)/rate seconds later. A machine that falls more than BEHIND_S behind drops the backlog
    (the pace then is what the machine manages), so a slow redraw never brings a burst after it.
    ``rate`` math.inf: every iteration is due at once."""

    def __init__(self, rate: float, now: float):
        self.rate, self.start, self.done = rate, now, 0

    def due(self, now: float) -> int | float:
        """Iterations due by ``now`` that have not run (math.inf at full speed)."""
        if math.isinf(self.rate):
            return math.inf
        return max(0, math.floor((now - self.start) * self.rate + 1e-9) + 1 - self.done)

    def ran(self, k: int, now: float):
        self.done += k
        if not math.isinf(self.rate) and now - self.next_at() > BEHIND_S:
            self.start = now - self.done / self.rate          # the next one is due now

    def next_at(self) -> float:
        """The time the next iteration is due."""
        return self.start + self.done / self.rate


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
    ``speed``: iterations per second of ▶ (1, 2, 5, 10, 30, 100 or 1000; None: as fast as it
    goes).
    Methods for a notebook: ``train(n)``, ``open_iteration(t, example)`` (example None: the whole
    batch), ``open_point(column)``, ``save(path)``, ``TrainingLab.load``.
    """

    def __init__(self, net: Sequential | None = None, X=None, Y=None, *, data: str = "two_moons",
                 hidden=(16, 16), activation: str = "relu", lr=0.5, batch=None, seed: int = 0,
                 n: int = 200, noise: float | None = None, speed: float | None = DEFAULT_SPEED):
        self._speed = check_speed(speed)
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
        # shown in the Stepper: {"iteration", "example", "step"} (example None: the whole batch),
        # or {"column", "after", "step"}: a point's pass with θ after that many updates
        self.opened = None
        self._shown_t = None          # the iteration the "iteration t" field last followed
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
                             continuous_update=False, layout=ipw.Layout(width="160px"))
        self.batch_w = ipw.Text(value="all" if tr.batch == tr.n else str(tr.batch),
                                description="batch size B", style=style, continuous_update=False,
                                placeholder="all", layout=ipw.Layout(width="135px"))
        self.speed_w = ipw.Dropdown(options=SPEEDS, value=getattr(self, "_speed", DEFAULT_SPEED),
                                    description="speed", style=style,
                                    layout=ipw.Layout(width="200px"),
                                    tooltip="iterations per second while ▶ trains")
        self.speed_w.add_class("bpv-lab-speed")
        self.run_w = ipw.Button(description=RUN,
                                tooltip="start training (pause: press again)",
                                button_style="primary", layout=ipw.Layout(width="100px"))
        self.one_w = ipw.Button(description="one iteration", tooltip="one gradient-descent step",
                                layout=ipw.Layout(width="auto"))
        self.reset_w = ipw.Button(description="new run", tooltip="start again from iteration 0 "
                                  "with these settings", layout=ipw.Layout(width="auto"))
        self.status = ipw.HTML().add_class("bpv-status")
        self.field_errors = FieldErrors([self.data_w, self.seed_w, self.hidden_w, self.act_w,
                                         self.lr_w, self.batch_w])
        self.message = ipw.HTML().add_class("bpv-lab-message")   # its line is kept (lab.css)
        self.figure = LabFigure()
        self.figure_text = ipw.HTML()             # the figure in words, for screen readers
        self.it_w = ipw.Text(value="0", description="iteration t", style=style,
                             layout=ipw.Layout(width="150px"), continuous_update=False)
        self.ex_w = ipw.Text(value="0", description="example", style=style,
                             layout=ipw.Layout(width="120px"), continuous_update=False)
        self.open_w = ipw.Button(description="open in the Stepper", tooltip="record iteration t's "
                                 "forward and backward pass for this example of its batch",
                                 layout=ipw.Layout(width="auto"))
        self.batch_open_w = ipw.Button(description="open its whole batch",
                                       tooltip="record iteration t's pass on its whole batch, as "
                                       "training ran it: the gradients it used, with 1/B",
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
        self.speed_w.observe(self._on_speed, "value")
        self.it_w.observe(self._on_iteration_field, "value")
        self.run_w.on_click(self._on_run)
        self.one_w.on_click(self._on_one)
        self.reset_w.on_click(self._on_reset)
        self.open_w.on_click(self._on_open)
        self.batch_open_w.on_click(self._on_open_batch)
        self.save_w.on_click(self._on_save)
        self.load_w.observe(self._on_load, "value")
        self.figure.fig.canvas.mpl_connect("button_press_event", self._on_figure_click)

        wrap = ipw.Layout(flex_flow="row wrap", align_items="center")
        self.children = [
            PageStyle(), ipw.HTML("<b>data and network</b> (a change starts a new run)"),
            ipw.HBox([self.data_w, self.seed_w, self.hidden_w, self.act_w], layout=wrap),
            ipw.HBox([self.lr_w, self.batch_w, self.speed_w, self.run_w, self.one_w, self.reset_w],
                     layout=wrap),
            self.field_errors, self.status, self.message,
            self.figure.live.widget, self.figure_text,
            ipw.HTML("<b>look inside one iteration</b>"),
            ipw.HBox([self.it_w, self.ex_w, self.open_w, self.batch_open_w], layout=wrap),
            self.caption, self.stepper_box,
            ipw.HBox([self.save_w, self.link, self.load_w], layout=wrap),
        ]

    # --- showing --------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False):
        colour = "#b3261e" if error else "#1b5e20"
        self.message.value = (f'<div role="{"alert" if error else "status"}" style="color:'
                              f'{colour}">{html.escape(text)}</div>' if text else "")

    def _show(self):
        """Show the run as it is: the "iteration t" field follows the run when it has advanced
        (or a new one began), the status, the figure with the chosen iteration's batch ringed."""
        tr = self.training
        if tr.t != self._shown_t:
            self._quietly(self.it_w, str(tr.t))
            self._shown_t = tr.t
        marked, columns = self._batch_shown(tr, self.it_w.value)
        with np.errstate(all="ignore"):      # a diverged run shows nan, it does not warn
            point = self._opened_column(tr, self.opened)
            self.status.value, self.figure_text.value = self._texts(tr, self._running, marked,
                                                                    point)
            self.figure.set_batch(marked, columns)
            self.figure.set_open_point(point)
            self.figure.update(self._opened_iteration(self.opened))

    def _quietly(self, widget, value):
        """Set a field without its handler taking it for the learner's change."""
        self._syncing = True
        try:
            widget.value = value
        finally:
            self._syncing = False

    @staticmethod
    def _opened_iteration(opened) -> int | None:
        """The iteration marked on the curves for what the Stepper shows (a point's pass with the
        current θ has none)."""
        return None if opened is None else opened.get("iteration")

    @staticmethod
    def _opened_column(tr: Training, opened) -> int | None:
        """The column of X whose pass the Stepper shows (None: none, or a whole batch)."""
        if opened is None:
            return None
        if "column" in opened:
            return opened["column"]
        if opened["example"] is None or opened["iteration"] > tr.t:
            return None
        return tr.example_index(opened["iteration"], opened["example"])

    @staticmethod
    def _batch_shown(tr: Training, text) -> tuple[int | None, object]:
        """(t, the columns of its batch) for the iteration in the "iteration t" field, to ring on
        the figure: (t, None) when the batch is every point, (None, None) when the field names
        no iteration that has run."""
        try:
            t = int(str(text).strip())
        except ValueError:
            return None, None
        if not 1 <= t <= tr.t:
            return None, None
        return t, tr.batch_index(t)

    @staticmethod
    def _texts(tr: Training, running: bool, marked: int | None = None,
               opened: int | None = None) -> tuple[str, str]:
        """The status line and the figure in words (for screen readers), for ``tr``. The status
        is as long training as paused (the speed menu says the speed): it never wraps onto a
        second line when ▶ is pressed, which would move the figure."""
        J, acc = tr.evaluate()
        parts = [f"iteration <b>{tr.t}</b>", f"now: J on all {tr.n} examples = <b>{J:.4f}</b>"]
        if acc is not None:
            parts.append(f"accuracy <b>{100 * acc:.1f}%</b>")
        parts.append(f"α = {tr.lr:g}, B = {tr.batch}")
        state = "training…" if running else "paused" if tr.t else "ready"
        status = f'<div role="status" aria-live="polite">{" · ".join(parts)} ({state})</div>'
        last = f"{tr.history.loss[-1]:.4f}" if tr.history.loss else "none yet"
        if marked is None:
            batch = ""
        elif tr.batch_size_at(marked) == tr.n:
            batch = f"Iteration {marked}'s batch is all {tr.n} points. "
        else:
            batch = (f"Ringed in amber: the {tr.batch_size_at(marked)} points of iteration "
                     f"{marked}'s batch. ")
        if opened is not None:
            batch += f"Crossed (×): column {opened} of X, whose pass the Stepper shows. "
        words = (
            f'<div style="font-size:13px;color:#444">The figure: left, the network\'s answer '
            f'over the plane with the {tr.n} training points; middle, the loss J of each batch '
            f'before its update (last: {last}); right, the size of each layer\'s weights and of their gradients. '
            f'{batch}Click a curve to choose an iteration, a point to open its pass in the '
            f'Stepper.</div>')
        return status, words

    def _new_run_view(self):
        self._show_stepper(None)
        self.opened = None
        self.caption.value = ""
        self.link.value = ""
        self._shown_t = None              # the "iteration t" field follows the new run: 0
        self._quietly(self.ex_w, "0")
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
    def _on_iteration_field(self, change):
        """The learner chose an iteration: its batch is ringed (until the run advances)."""
        if not self._syncing:
            self._show()

    def _on_speed(self, change):
        """Another speed: the loop takes it at once (it waits for the next iteration in slices)."""
        self._speed = change["new"]

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
        self.run_w.description, self.run_w.tooltip = PAUSE, "pause training"
        self.say("")
        self._task = asyncio.ensure_future(self._loop(self._run_id))

    @property
    def running(self) -> bool:
        """Whether the lab trains in the background (▶)."""
        return self._running

    def pause(self):
        """Stop the background training after its current chunk."""
        self._running = False
        self.run_w.description, self.run_w.tooltip = RUN, "start training (pause: press again)"

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

    def _goes_on(self, run_id: int, tr: Training) -> bool:
        return (self._running and self._run_id == run_id and self.training is tr
                and self.comm is not None)

    async def _loop(self, run_id: int):
        """▶: train at the chosen speed until paused. At a rate, each round runs the iterations
        due (so the counter advances at that rate, one by one below a redraw's time) and redraws;
        as fast as it goes, each round trains CHUNK_S. Each call of Training.step lasts about
        STEP_S at most, so Pause and the other controls answer at once."""
        tr = self.training
        n = 1                                 # iterations per call of step: about STEP_S of work
        batch = tr.batch
        pace = None
        try:
            while self._goes_on(run_id, tr):
                if tr.batch != batch:          # another B, another time per iteration: from 1
                    n, batch = 1, tr.batch
                rate = self.speed_w.value
                if pace is None or pace.rate != rate:
                    pace = Pace(rate, time.perf_counter())   # a new speed starts from now
                start = time.perf_counter()
                end, todo, ran = start + CHUNK_S, pace.due(start), 0
                while ran < todo and time.perf_counter() < end and tr.t < MAX_ITERATIONS:
                    k = int(min(n, todo - ran, MAX_ITERATIONS - tr.t))
                    t0 = time.perf_counter()
                    tr.step(k)
                    ran += k
                    n = chunk_after(k, time.perf_counter() - t0)
                pace.ran(ran, time.perf_counter())
                if tr.t >= MAX_ITERATIONS:
                    self.say(f"stopped: a run holds at most {MAX_ITERATIONS} iterations")
                    self.pause()
                if ran:
                    self._show()
                if math.isinf(rate):
                    await asyncio.sleep(0.03)       # let Pause and the other controls in
                    continue
                await asyncio.sleep(0.01)           # and the front end's redraw, at any rate
                while self._goes_on(run_id, tr) and self.speed_w.value == rate:
                    left = pace.next_at() - time.perf_counter()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(left, WAIT_SLICE_S))
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
    def open_iteration(self, t: int | None = None, example: int | None = 0, step: int = 0):
        """Show iteration t's pass (default: the last one run) for one example of its batch, or
        (``example=None``) on its whole batch, as training ran it."""
        tr = self.training
        t = tr.t if t is None else whole(t, "the iteration t")
        stepper, opened, caption = self._opening(tr, t, example, step)
        self.opened = opened
        self._show_stepper(stepper)
        self._quietly(self.it_w, str(t))
        if example is not None:
            self._quietly(self.ex_w, str(opened["example"]))
        self.caption.value = caption
        self._show()
        return stepper

    def open_point(self, column: int, step: int = 0):
        """Show the pass of one data point (column of X) with the parameters θ as they are now,
        after the last update: the network the figure shows (whether or not that point was in a
        batch). A lab file does not keep this view."""
        tr = self.training
        j = whole(column, "the column")
        if not 0 <= j < tr.n:
            raise BackpropError(f"X has {tr.n} columns: choose 0 to {tr.n - 1}; got {j}")
        y = tr.Y[:, j] if tr.Y.ndim == 2 else tr.Y[j]
        trace = tr.network.backprop(tr.X[:, j], y)
        stepper = Stepper(trace)
        try:
            if step:
                stepper.model.go(whole(step, "the step"))
        except BaseException:
            stepper.close()
            raise
        when = ("before any update: the untrained network" if tr.t == 0 else
                f"after {tr.t} update{'s' if tr.t > 1 else ''}: the network the figure shows")
        self.opened = {"column": j, "after": tr.t, "step": step}
        self._show_stepper(stepper)
        self.caption.value = (
            f'<div role="status">Column {j} of X (label '
            f'{html.escape(self._label_text(tr, j))}) with the parameters θ as they are now, '
            f'{when}. One example: (7.70) has no 1/B here.</div>')
        self._show()
        return stepper

    @staticmethod
    def _opening(tr: Training, t: int, example, step, in_file: bool = False):
        """(a Stepper on iteration t's pass for one example of its batch, or on the whole batch
        when ``example`` is None, at ``step``, what the lab records as opened, the caption);
        nothing of the lab changes. ``in_file``: the view comes from a lab file (a step past
        the pass makes the file invalid)."""
        if tr.t == 0:
            raise BackpropError("no iteration has run yet: train first (one iteration is enough)")
        example = None if example is None else whole(example, "the example")
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
            B = tr.batch_size_at(t)
            before = (f'<div role="status">Iteration {t}: the parameters θ before its update '
                      f'(after {t - 1} updates), ')
            if example is None:
                caption = before + (
                    f"its whole batch of {B} example{'s' if B > 1 else ''}, the columns side by "
                    f"side, as training ran it: J is their mean, so (7.70) carries 1/B = 1/{B}, "
                    f"and (7.65), (7.66) sum over the columns. These are the gradients training "
                    f"used.</div>")
            else:
                col = tr.example_index(t, example)
                share = (f"Training used the mean of the {B} examples' gradients: this "
                         f"example's ∂J/∂θ, divided by {B}, is its share (one example: (7.70) "
                         f"has no 1/B here; “open its whole batch” shows it)." if B > 1 else
                         "The batch is this one example: these are the gradients training used.")
                caption = before + (
                    f'example {example} of its batch (column {col} of X, label '
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

    def _chosen_iteration(self) -> int:
        """The iteration in the "iteration t" field, within the iterations run (0: none ran)."""
        tr = self.training
        return min(max(1, whole(self.it_w.value, "the iteration t")), tr.t) if tr.t else 0

    @shown_in_widget
    def _on_figure_click(self, event):
        """A click on the curves picks iteration t (its batch is ringed); a click on a data point
        opens its pass: as an example of iteration t's batch if it is one, else with the current
        θ, saying so."""
        tr, f = self.training, self.figure
        if event.inaxes in (f.ax_l, f.ax_n) and event.xdata is not None and tr.t:
            self.it_w.value = str(min(max(1, round(event.xdata)), tr.t))
            self.say(f"iteration {self.it_w.value} chosen: its batch is ringed; click a point, or "
                     f"press “open in the Stepper”")
        elif event.inaxes is f.ax_b and tr.X.shape[0] == 2 and event.xdata is not None:
            t = self._chosen_iteration()
            j = int(np.argmin((tr.X[0] - event.xdata) ** 2 + (tr.X[1] - event.ydata) ** 2))
            idx = tr.batch_index(t) if t else None
            where = [] if not t else [j] if idx is None else np.flatnonzero(idx == j).tolist()
            self.pause()
            if where:
                self.open_iteration(t, where[0])
                self.say(f"example {where[0]} of iteration {t}'s batch (column {j} of X): its "
                         f"pass, as training ran it, is in the Stepper below")
            else:
                self.open_point(j)
                self.say(f"that point (column {j} of X) is not in iteration {t}'s batch: the "
                         f"Stepper shows its pass with the current θ" if t else
                         f"no iteration has run: the Stepper shows column {j}'s pass with θ "
                         f"before any update")

    @shown_in_widget
    def _on_open(self, _):
        self.pause()
        text = str(self.ex_w.value).strip().lower()
        example = None if text in ("all", "batch") else whole(self.ex_w.value, "the example")
        self.open_iteration(whole(self.it_w.value, "the iteration t"), example)
        self.say("")

    @shown_in_widget
    def _on_open_batch(self, _):
        self.pause()
        self.open_iteration(whole(self.it_w.value, "the iteration t"), None)
        self.say("")

    # --- files ----------------------------------------------------------------------------------
    def _view(self):
        """What the Stepper shows, as a lab file keeps it: one example of an iteration's batch
        (None otherwise: a whole batch or a point with the current θ is not kept)."""
        if self.opened is None or self.opened.get("example") is None:
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
        if self.opened is not None and self._view() is None:
            self.say("saved without the Stepper's view: a lab file keeps one example of an "
                     "iteration's batch, not a whole batch or a point with the current θ")

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
            it = str(opened["iteration"]) if opened is not None else str(tr.t)
            marked, columns = self._batch_shown(tr, it)
            point = self._opened_column(tr, opened)
            with np.errstate(all="ignore"):
                figure.set_batch(marked, columns)
                figure.set_open_point(point)
                if opened is not None:             # new_run drew the run: now the mark at t
                    figure.update(opened["iteration"])
                elif marked is not None:           # … or the last iteration's batch
                    figure.update(None)
                status, words = self._texts(tr, False, marked, point)
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
        self._quietly(self.it_w, it)
        self._quietly(self.ex_w, str(opened["example"]) if opened is not None else "0")
        self._shown_t = tr.t
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
