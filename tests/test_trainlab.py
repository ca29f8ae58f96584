"""The TrainingLab widget from the kernel side: every control as a learner uses it, errors shown in
the widget with the last good state kept, background training that pauses, save and load."""
import asyncio
import datetime
import html
import json
import math
import re
import time

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.widgets.trainlab import TrainingLab, parse_hidden


def state(lab):
    tr = lab.training
    return (tr.t, tr.lr, tr.batch, tr.history.loss[-1] if tr.history.loss else None,
            {p: v.copy() for p, v in tr.params.items()})


def same(a, b):
    return a[:4] == b[:4] and all(np.array_equal(a[4][p], b[4][p]) for p in a[4])


def test_buttons_train_and_open_an_iteration():
    lab = TrainingLab(seed=1)
    lab.one_w.click()
    lab.one_w.click()
    assert lab.training.t == 2 and "iteration <b>2</b>" in lab.status.value
    lab.it_w.value, lab.ex_w.value = "2", "5"
    lab.open_w.click()
    assert lab.stepper is not None and lab.opened == {"iteration": 2, "example": 5, "step": 0}
    tr = lab.training
    want = tr.trace_at(2, example=5)
    got = lab.stepper.model.trace
    assert np.array_equal(got.grad("W[1]"), want.grad("W[1]"))
    assert "example 5 of its batch" in lab.caption.value and lab.message.value == ""


@pytest.mark.parametrize("field, text, message", [
    ("lr_w", "0", "positive"), ("lr_w", "-3", "positive"), ("lr_w", "fast", "a number"),
    ("lr_w", "nan", "positive"), ("batch_w", "0", "from 1 to 200"),
    ("batch_w", "1e9", "whole number"), ("batch_w", "500", "from 1 to 200")])
def test_a_bad_training_setting_is_marked_and_the_last_good_one_stays(field, text, message):
    lab = TrainingLab()
    lab.train(3)
    before = state(lab)
    getattr(lab, field).value = text
    assert message in lab.field_errors.value
    assert "bpv-bad" in getattr(lab, field)._dom_classes
    assert same(state(lab), before)
    lab.run_w.click()                       # ▶ refuses to start while a field is bad
    assert not lab._running and "fix the marked field" in lab.message.value
    lab.one_w.click()
    assert lab.training.t == 3 and "fix the marked field" in lab.message.value
    getattr(lab, field).value = "0.5" if field == "lr_w" else "all"
    assert lab.field_errors.value == "" and "bpv-bad" not in getattr(lab, field)._dom_classes


def test_the_lab_and_the_stepper_show_refused_fields_the_same_way_in_the_forms_order():
    from backpropviz.widgets.fields import FieldErrors
    lab = TrainingLab()
    lab.batch_w.value = "0"
    lab.lr_w.value = "-1"                   # refused after the batch size, shown before it
    shown = lab.field_errors.value
    assert isinstance(lab.field_errors, FieldErrors)
    assert shown.index("⚠ learning rate α:") < shown.index("⚠ batch size B:")
    assert list(lab.field_errors.messages) == ["learning rate α", "batch size B"]
    s = bpv.Stepper(bpv.mlp([2, 3, 1], seed=0), [1.0, 2.0], [1.0])
    s.y_in.value = "what"
    s.click("rebuild")
    assert isinstance(s.field_errors, FieldErrors) and "⚠ y:" in s.field_errors.value
    for widget in (lab, s):                 # one look: a red outline, the message as an alert
        assert 'class="bpv-field-error" role="alert"' in widget.field_errors.value
    from pathlib import Path
    import backpropviz.widgets as W
    for css in ("stepper.css", "lab.css"):   # the red outline, in the CSS file each one loads
        assert ".bpv-bad input" in (Path(W.__file__).parent / css).read_text()
    lab.lr_w.value, lab.batch_w.value = "0.5", "all"
    assert lab.field_errors.value == "" and lab.field_errors.messages == {}
    s.close()
    lab.close()


@pytest.mark.parametrize("field, text", [("hidden_w", "16, x"), ("hidden_w", "0"),
                                         ("hidden_w", "1,2,3,4,5,6,7"), ("hidden_w", "9999"),
                                         ("seed_w", "1.5"), ("seed_w", "-1")])
def test_a_bad_network_setting_keeps_the_run(field, text):
    lab = TrainingLab()
    lab.train(4)
    before = state(lab)
    getattr(lab, field).value = text
    assert "not changed" in lab.message.value and lab.field_errors.value
    assert same(state(lab), before)


def test_changing_the_network_or_data_starts_a_new_run():
    lab = TrainingLab()
    lab.train(5)
    lab.hidden_w.value = "8"
    assert lab.training.t == 0 and lab.shape["sizes"] == [2, 8, 1]
    lab.data_w.value = "spirals3"
    assert lab.shape["sizes"] == [2, 8, 3] and lab.shape["loss"] == "cross_entropy"
    lab.train(3)
    lab.data_w.value = "sine"
    assert lab.shape["sizes"] == [1, 8, 1] and lab.training.accuracy() is None
    lab.act_w.value = "tanh"
    assert lab.shape["activation"] == "tanh"
    lab.train(2)
    assert "iteration <b>2</b>" in lab.status.value


def test_parse_hidden():
    assert parse_hidden("16, 16") == [16, 16] and parse_hidden("") == [] and parse_hidden("4 8") == [4, 8]


def test_background_training_runs_and_pauses():
    async def session():
        lab = TrainingLab(speed=None)       # as fast as it goes
        lab.run_w.click()
        assert lab._running and "pause" in lab.run_w.description
        while lab.training.t < 60:
            await asyncio.sleep(0.01)
        lab.run_w.click()                   # ⏸
        await lab._task
        t = lab.training.t
        await asyncio.sleep(0.05)
        return lab, t
    lab, t = asyncio.run(session())
    assert lab.training.t == t and not lab._running and "(paused)" in lab.status.value
    assert "train" in lab.run_w.description


def test_a_diverging_run_stops_in_the_widget():
    d = bpv.datasets.make("sine")
    lab = TrainingLab(bpv.mlp([1, 16, 1], loss="squared"), d.X, d.Y * 1e6, lr=90, speed=None)

    async def session():
        lab.run_w.click()
        await lab._task
    asyncio.run(session())
    assert not lab._running and "iteration" in lab.message.value and "alert" in lab.message.value
    assert all(np.isfinite(v).all() for v in lab.training.params.values())


def test_own_network_and_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 40))
    Y = (X[0] * X[1] > 0).astype(float)[None, :]
    lab = TrainingLab(bpv.mlp([3, 5, 1], activation="tanh"), X, Y, lr=0.3, batch=10)
    lab.train(20)
    assert lab.data_w.value == "your data" and lab.hidden_w.value == "5"
    assert "the input has 3 features" in "".join(t.get_text() for t in lab.figure.ax_b.texts)
    lab.hidden_w.value = "7"
    assert lab.shape["sizes"] == [3, 7, 1] and lab.training.batch == 10
    # not an MLP: trains, the architecture fields are off, saving says why
    other = bpv.Sequential([bpv.MM(np.ones((1, 3))), bpv.Sigmoid()], loss="squared")
    lab2 = TrainingLab(other, X, Y, lr=0.1)
    lab2.train(3)
    assert lab2.hidden_w.disabled and lab2.act_w.disabled
    lab2.save_w.click()
    assert "only an MLP" in lab2.message.value and lab2.link.value == ""
    with pytest.raises(bpv.BackpropError, match="give all three"):
        TrainingLab(other, X)


def upload(lab, content: bytes):
    lab.load_w.value = ({"name": "lab.json", "type": "application/json", "size": len(content),
                         "content": memoryview(content),
                         "last_modified": datetime.datetime(2026, 1, 1)},)


def test_save_link_and_upload_give_the_same_state(tmp_path):
    lab = TrainingLab(batch=50, seed=3)
    lab.train(40)
    lab.lr_w.value = "0.2"
    lab.train(10)
    lab.open_iteration(45, example=7)
    lab.stepper.model.go(6)
    lab.save_w.click()
    assert 'download="backpropviz-lab-iteration-50.json"' in lab.link.value
    text = lab.dumps()
    other = TrainingLab(data="circles")
    upload(other, text.encode())
    assert other.message.value.count("loaded: iteration 50") == 1
    assert same(state(other), state(lab)) and other.opened == {"iteration": 45, "example": 7, "step": 6}
    assert other.stepper.model.step == 6 and other.data_w.value == "two_moons"
    assert other.lr_w.value == "0.2" and other.batch_w.value == "50"
    assert other.load_w.value == ()
    # the file: TrainingLab.save / TrainingLab.load
    lab.save(tmp_path / "a.json")
    back = TrainingLab.load(tmp_path / "a.json")
    assert same(state(back), state(lab)) and back.opened["step"] == 6


@pytest.mark.parametrize("damage", ["truncated", "edited weights", "other version", "not json",
                                    "step beyond the pass", "binary"])
def test_a_bad_upload_changes_nothing_and_says_why(damage):
    lab = TrainingLab(batch=20)
    lab.train(12)
    good = json.loads(lab.dumps())
    target = TrainingLab(data="xor")
    target.train(7)
    before = state(target)
    if damage == "truncated":
        content = lab.dumps()[:500].encode()
    elif damage == "edited weights":
        good["theta"]["W[1]"]["data"][3] = 9.0
        content = json.dumps(good).encode()
    elif damage == "other version":
        good["format"] = "backpropviz.lab/9"
        content = json.dumps(good).encode()
    elif damage == "step beyond the pass":
        good["view"] = {"iteration": 5, "example": 1, "step": 99}
        content = json.dumps(good).encode()
    elif damage == "binary":
        content = bytes(range(256))
    else:
        content = b"print('hello')"
    upload(target, content)
    assert "not a valid backpropviz lab file" in target.message.value
    assert same(state(target), before) and target.data_w.value == "xor"


def test_the_saved_output_shows_a_picture_without_a_kernel():
    lab = TrainingLab()
    lab.train(10)
    bundle = lab._repr_mimebundle_()
    assert bundle["image/png"] and "iteration 10" in bundle["text/plain"]


class Click:
    def __init__(self, ax, x, y):
        self.inaxes, self.xdata, self.ydata = ax, x, y


def test_clicking_the_figure_chooses_an_iteration_and_an_example():
    lab = TrainingLab(batch=50, seed=2)
    lab.train(30)
    lab._on_figure_click(Click(lab.figure.ax_l, 12.4, 0.3))
    assert lab.it_w.value == "12" and "iteration 12 chosen" in lab.message.value
    lab._on_figure_click(Click(lab.figure.ax_n, 99.0, 1.0))
    assert lab.it_w.value == "30"                       # clamped to the iterations run
    lab._on_figure_click(Click(lab.figure.ax_l, 12.0, 0.3))
    tr = lab.training
    idx = tr.batch_index(12)
    j = int(idx[7])
    lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, j], tr.X[1, j]))
    assert lab.ex_w.value == "7" and f"column {j} of X" in lab.message.value
    outside = next(c for c in range(tr.n) if c not in set(idx.tolist()))
    lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, outside], tr.X[1, outside]))
    assert "not in iteration 12&#x27;s batch" in lab.message.value and lab.ex_w.value == "7"
    lab.open_w.click()
    assert lab.opened == {"iteration": 12, "example": 7, "step": 0}
    np.testing.assert_array_equal(lab.stepper.model.trace.value("u[0]"), tr.X[:, j])


def test_pause_and_train_again_at_once_runs_one_loop():
    async def session():
        lab = TrainingLab()
        lab.run_w.click()
        first = lab._task
        await asyncio.sleep(0)
        lab.run_w.click()                   # ⏸ and ▶ again before the first loop woke up
        lab.run_w.click()
        second = lab._task
        # while the second loop trains, the first must end (without the run id it would not)
        done, _ = await asyncio.wait({first}, timeout=5)
        first_done = first in done and not second.done()
        lab.run_w.click()
        await second
        t = lab.training.t
        await asyncio.sleep(0.1)
        return lab, t, first_done
    lab, t, first_done = asyncio.run(session())
    assert first_done and lab.training.t == t and lab._run_id == 2


def test_closing_the_lab_stops_its_training():
    async def session():
        lab = TrainingLab()
        lab.run_w.click()
        while lab.training.t < 10:
            await asyncio.sleep(0.01)
        lab.close()
        await asyncio.sleep(0.05)
        t = lab.training.t
        await asyncio.sleep(0.1)
        return lab, t
    lab, t = asyncio.run(session())
    assert lab.training.t == t and not lab._running


def test_a_new_run_keeps_the_data_sets_noise_and_refuses_a_huge_seed():
    lab = TrainingLab(noise=0.3)
    lab.seed_w.value = "4"
    assert lab.recipe == {"name": "two_moons", "n": 200, "noise": 0.3, "seed": 4}
    before = state(lab)
    lab.seed_w.value = str(2**33)
    assert "from 0 to 4294967295" in lab.field_errors.value and same(state(lab), before)


# --- half-built objects close cleanly ----------------------------------------------------------------

def _open_widgets() -> int:
    from ipywidgets.widgets.widget import _instances
    return len(_instances)


def test_a_lab_whose_constructor_fails_closes_cleanly(monkeypatch):
    """Bad data, or a failure while its parts are built: a clear error, nothing left open, and no
    exception later when Python collects the half-built lab (close() used to raise there)."""
    import gc
    import sys
    from backpropviz.widgets import trainlab
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    before = _open_widgets()
    with pytest.raises(bpv.BackpropError):
        TrainingLab(bpv.mlp([2, 3, 1]), np.zeros((3, 5)), np.zeros((1, 5)))   # d = 3, not 2
    gc.collect()

    def broken(self):
        raise RuntimeError("the figure could not be drawn")
    monkeypatch.setattr(trainlab.TrainingLab, "_new_run_view", broken)     # after _build
    with pytest.raises(RuntimeError, match="could not be drawn"):
        TrainingLab()
    gc.collect()
    assert _open_widgets() == before and unraisable == []


def test_closing_a_lab_closes_every_widget_it_made():
    before = _open_widgets()
    lab = TrainingLab()
    lab.train(1)
    lab.open_iteration(1, 0)
    assert lab.stepper is not None and _open_widgets() > before + 50          # the lab and its Stepper
    lab.close()
    assert _open_widgets() == before


# --- issue 19: a lab stops when it is closed or no longer shown ------------------------------------

def test_a_lab_the_front_end_closed_stops_training_and_closes_its_parts():
    async def session():
        lab = TrainingLab()
        lab.train(1)
        lab.open_iteration(1, 0)
        lab.run_w.click()
        while lab.training.t < 10:
            await asyncio.sleep(0.01)
        stepper = lab.stepper
        # the front end closes the model (its comm): comm_close arrives in the kernel
        lab.comm.handle_close({"content": {"comm_id": lab.comm.comm_id, "data": {}}})
        await asyncio.sleep(0.05)
        t = lab.training.t
        await asyncio.sleep(0.1)
        return lab, t, stepper
    lab, t, stepper = asyncio.run(session())
    assert lab.training.t == t and not lab._running and lab._task.done()
    assert lab.comm is None and stepper.comm is None and lab.run_w.comm is None


def test_a_lab_whose_last_view_is_removed_pauses():
    """Re-running the cell clears its output: the front end removes the lab's view and counts
    the views left (ipywidgets' ``_view_count``); with none left the lab pauses."""
    async def session():
        lab = TrainingLab()
        assert lab._view_count == 0                # the lab asks the front end to count views
        lab._view_count = 1                         # shown
        lab.run_w.click()
        while lab.training.t < 10:
            await asyncio.sleep(0.01)
        lab._view_count = 2                         # shown twice, then one view removed: trains
        lab._view_count = 1
        await asyncio.sleep(0.05)
        running = lab._running
        lab._view_count = 0                         # the output was cleared
        await asyncio.sleep(0.05)
        t = lab.training.t
        await asyncio.sleep(0.1)
        return lab, running, t
    lab, running, t = asyncio.run(session())
    assert running and not lab._running and lab.training.t == t
    assert "no longer shown" in lab.message.value and lab.comm is not None   # open: shown again,
    lab.close()                                                              # ▶ goes on


# --- issue 19: the background loop's chunk of iterations follows the time per iteration -------------

class FakeClock:
    """``time`` for trainlab: the clock moves only when a fake iteration costs time."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_the_chunk_of_iterations_shrinks_when_iterations_get_slower(monkeypatch):
    from backpropviz.widgets import trainlab
    clock = FakeClock()
    monkeypatch.setattr(trainlab, "time", clock)
    lab = TrainingLab(batch=1, speed=None)     # as fast as it goes: chunks of STEP_S
    tr = lab.training
    calls, rounds = [], []          # (iterations, seconds) per call of step; clock at each redraw
    slow = {"factor": 1.0}

    def step(n=1):                  # an iteration costs 10 µs per example of its batch
        seconds = 1e-5 * tr.batch * n * slow["factor"]
        clock.now += seconds
        calls.append((n, seconds))
        tr.t += n
        return 0.0
    monkeypatch.setattr(tr, "step", step)
    show = lab._show
    monkeypatch.setattr(lab, "_show", lambda: (rounds.append(clock.now), show()))

    async def session():
        lab.run_w.click()
        while len(rounds) < 3:
            await asyncio.sleep(0.005)
        grown = max(n for n, _ in calls)
        lab.batch_w.value = "all"                # 200 times slower per iteration: B = 200
        k, r = len(calls), len(rounds)
        while len(rounds) < r + 3:
            await asyncio.sleep(0.005)
        after_switch = calls[k:]
        slow["factor"] = 10.0                    # the machine got busy: 10 times slower again
        k = len(calls)
        while len(calls) < k + 20:
            await asyncio.sleep(0.005)
        after_slowdown = calls[k:]
        lab.run_w.click()
        await lab._task
        return grown, after_switch, after_slowdown
    grown, after_switch, after_slowdown = asyncio.run(session())
    step_s = getattr(trainlab, "STEP_S", 0.02)     # (before issue 19: no such bound)
    assert grown >= 500                               # fast iterations: large chunks
    # after the switch, no call of step lasts more than ~STEP_S (it took 12.8 s), so ⏸ answers
    assert max(s for _, s in after_switch) <= 2 * step_s
    assert max(n for n, _ in after_switch) <= 2 * step_s / 2e-3
    # after an unforeseen slowdown the first call is long; the next ones fit STEP_S again
    assert all(s <= 2 * step_s for _, s in after_slowdown[1:])
    gaps = np.diff(rounds)
    assert gaps.max() <= trainlab.CHUNK_S + 2 * step_s + after_slowdown[0][1]


def test_chunk_after_grows_at_most_twofold_and_shrinks_to_fit_at_once():
    from backpropviz.widgets.trainlab import STEP_S, chunk_after
    assert chunk_after(64, STEP_S / 100) == 128           # fast: at most twice as many
    assert chunk_after(4096, 4096 * 2e-3) == int(STEP_S / 2e-3)   # slow: what fits in STEP_S
    assert chunk_after(8, 3.0) == 1 and chunk_after(1, 0.0) == 2     # never 0; a 0 s clock tick


# --- issue 19: a load replaces the lab's state only when the new one is complete --------------------

def _look(lab):
    """Everything a learner sees of the lab, and what it holds."""
    return (state(lab), lab.figure, lab.stepper, lab.opened, lab.children, lab.status.value,
            lab.caption.value, lab.figure_text.value, lab.data_w.value, lab.data_w.options,
            lab.seed_w.value, lab.hidden_w.value, lab.lr_w.value, lab.batch_w.value,
            lab.it_w.value, lab.ex_w.value, lab.recipe, lab.shape, _open_widgets())


@pytest.mark.parametrize("where", ["drawing the figure", "building the Stepper",
                                   "drawing the opened iteration"])
def test_a_load_that_fails_at_any_point_leaves_the_lab_as_it_was(where, monkeypatch):
    from backpropviz.widgets import trainlab
    from backpropviz.widgets.labfigure import LabFigure
    src = TrainingLab(batch=20, seed=5)
    src.train(12)
    src.open_iteration(5, 1)
    text = src.dumps()
    src.close()
    lab = TrainingLab(data="xor", lr=0.3)
    lab.train(7)
    lab.open_iteration(3, 0)
    before = _look(lab)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("no memory left")
    if where == "drawing the figure":
        monkeypatch.setattr(LabFigure, "new_run", out_of_memory)
    elif where == "building the Stepper":
        monkeypatch.setattr(trainlab, "Stepper", out_of_memory)
    else:
        monkeypatch.setattr(LabFigure, "update", lambda self, opened=None: out_of_memory()
                            if opened is not None else None)
    upload(lab, text.encode())
    after = _look(lab)
    assert "MemoryError: no memory left" in lab.message.value and 'role="alert"' in lab.message.value
    assert same(after[0], before[0]) and after[1:] == before[1:]
    assert lab.load_w.value == ()
    monkeypatch.undo()
    upload(lab, text.encode())                      # and the same file loads once it can
    assert "loaded: iteration 12" in lab.message.value and lab.opened["iteration"] == 5
    assert lab.figure is not before[1] and before[1].live.widget.comm is None
    lab.close()


# --- issue 19: a refused setting shows the lab's state again ----------------------------------------

def test_a_data_set_that_does_not_fit_your_network_is_refused_and_the_menu_goes_back():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 40))
    Y = (X[0] * X[1] > 0).astype(float)[None, :]
    other = bpv.Sequential([bpv.MM(np.ones((1, 3))), bpv.Sigmoid()], loss="squared")
    lab = TrainingLab(other, X, Y, lr=0.1)
    lab.train(3)
    before = state(lab)
    lab.data_w.value = "spirals3"                  # 2 features: M_1 takes 3
    assert same(state(lab), before) and lab.data_w.value == "your data"
    assert "spirals3" in lab.field_errors.value and "M_1 takes 3 inputs" in lab.field_errors.value
    assert "M_1 takes 3 inputs" in lab.message.value
    lab.seed_w.value = "3"                          # a later change is not refused
    assert lab.training.seed == 3 and lab.training.t == 0 and "new run" in lab.message.value
    assert lab.field_errors.value == ""
    lab.close()


def test_a_change_refused_for_a_bad_field_goes_back_and_the_field_stays_marked():
    lab = TrainingLab()
    lab.train(2)
    before = state(lab)
    lab.seed_w.value = "1.5"
    lab.data_w.value = "circles"                    # refused: the seed field cannot be read
    assert same(state(lab), before) and lab.data_w.value == "two_moons"
    assert lab.seed_w.value == "1.5" and "bpv-bad" in lab.seed_w._dom_classes
    lab.seed_w.value = "2"
    assert lab.training.seed == 2 and lab.recipe["name"] == "two_moons"
    assert lab.field_errors.value == ""
    lab.close()


# --- issue 22: a pace a room can follow -------------------------------------------------------------

def test_the_speed_menu_goes_from_one_iteration_a_second_to_as_fast_as_it_goes():
    from backpropviz.widgets.trainlab import DEFAULT_SPEED, FASTEST, SPEEDS
    lab = TrainingLab()
    assert [r for _, r in SPEEDS] == [1, 2, 5, 10, 30, 100, 1000, FASTEST]
    assert lab.speed_w.value == DEFAULT_SPEED == 10 and "bpv-lab-speed" in lab.speed_w._dom_classes
    assert [label for label, _ in SPEEDS][:2] == ["1 iteration/s", "2 iterations/s"]
    assert SPEEDS[-1][0] == "as fast as it goes"
    assert TrainingLab(speed=None).speed_w.value == FASTEST
    assert TrainingLab(speed=2).speed_w.value == 2
    for bad in (3, 0, -1, "fast", True):
        with pytest.raises(bpv.BackpropError, match="iterations per second"):
            TrainingLab(speed=bad)


def test_pace_makes_iterations_due_at_the_rate_and_drops_a_backlog():
    from backpropviz.widgets.trainlab import BEHIND_S, Pace
    pace = Pace(2.0, now=100.0)
    ran_at = []
    for k in range(1001):                       # 10 s, a look every 10 ms; iterations take no time
        now = 100.0 + k * 0.01
        due = pace.due(now)
        assert due <= 1                          # never a burst: one at a time at 2/s
        if due:
            ran_at.append(round(now - 100.0, 2))
            pace.ran(due, now)
    assert ran_at[:4] == [0.0, 0.5, 1.0, 1.5] and len(ran_at) == 21      # the first one at once
    assert pace.next_at() == 110.5
    # a machine that cannot keep up (a redraw of 3 s at 10/s) drops the backlog, no burst after it
    pace = Pace(10.0, now=0.0)
    pace.ran(pace.due(0.0), 0.0)
    assert pace.due(3.0) == 30
    pace.ran(1, 3.0)                             # it managed one: 2.8 s behind, dropped
    assert pace.due(3.0) == 1 and pace.next_at() == pytest.approx(3.0)   # the next one: now
    pace.ran(1, 3.0)
    assert pace.due(3.05) == 0 and pace.due(3.1) == 1 and pace.due(3.5) == 5
    assert pace.due(3.0 + BEHIND_S) <= 10 * BEHIND_S + 1
    fast = Pace(math.inf, now=0.0)
    assert fast.due(0.0) == math.inf


def test_the_lab_trains_at_the_chosen_speed_one_iteration_per_redraw():
    """At 5/s, ▶ runs about 5 iterations a second and shows each one (the counter goes up by
    one); another speed takes effect while it runs; ⏸ answers between two iterations."""
    lab = TrainingLab(speed=5)
    shown = []
    show = lab._show
    lab._show = lambda: (shown.append((time.perf_counter(), lab.training.t)), show())

    async def session():
        lab.run_w.click()
        t0 = time.perf_counter()
        await asyncio.sleep(1.5)
        at_5 = (lab.training.t, time.perf_counter() - t0)
        lab.speed_w.value = math.inf                        # as fast as it goes
        while lab.training.t < at_5[0] + 200:
            await asyncio.sleep(0.01)
        lab.speed_w.value = 1
        await asyncio.sleep(0.3)
        t1 = lab.training.t
        await asyncio.sleep(0.5)
        paused_at = time.perf_counter()
        lab.run_w.click()                                   # ⏸ while it waits for the next one
        await lab._task
        return at_5, t1, time.perf_counter() - paused_at
    at_5, t1, pause_s = asyncio.run(session())
    t, seconds = at_5
    assert 1 + 5 * seconds - 3 <= t <= 1 + 5 * seconds + 0.5     # 5/s: never ahead, ≤ 3 behind
    steps = [b - a for (_, a), (_, b) in zip(shown, shown[1:]) if b != a][:t - 1]
    assert len(steps) >= 3 and steps.count(1) >= len(steps) - 1   # each iteration shown at 5/s
    assert lab.training.t <= t1 + 1                              # at 1/s: at most one more in 0.5 s
    assert pause_s < 0.5 and "(paused)" in lab.status.value and lab.run_w.description == "▶ train"


def test_the_status_is_as_long_training_as_paused():
    """The status line does not grow when ▶ is pressed (a second line would move the figure)."""
    def words(value):
        return re.sub(r"<[^>]+>", "", value)

    async def session():
        lab = TrainingLab(speed=2)
        lab.train(1)
        paused = words(lab.status.value)
        lab.run_w.click()
        await asyncio.sleep(0.1)
        during = words(lab.status.value)
        lab.speed_w.value = 1000
        await asyncio.sleep(0.3)
        fast = words(lab.status.value)
        lab.run_w.click()
        await lab._task
        return paused, during, fast
    paused, during, fast = asyncio.run(session())
    assert "(training…)" in during and "(training…)" in fast and "(paused)" in paused
    assert len(during) - len(paused) <= 3


def test_the_buttons_glyphs_are_in_dejavu_sans():
    """⏸ (U+23F8) is an empty box with a stock Linux machine's fonts: every character the lab's
    buttons, menus and status show is in DejaVu Sans (the fallback font there)."""
    import os
    import matplotlib
    from matplotlib import ft2font
    from backpropviz.widgets.trainlab import PAUSE, RUN, SPEEDS
    font = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    have = ft2font.FT2Font(font).get_charmap()
    lab = TrainingLab(batch=20)
    shown = [PAUSE, RUN, lab.status.value, lab.figure_text.value]
    shown += [label for label, _ in SPEEDS]
    shown += [w.description for w in lab._parts() if hasattr(w, "description")]
    missing = {ch for text in shown for ch in text if ord(ch) > 127 and ord(ch) not in have}
    assert missing == set() and "⏸" not in PAUSE and PAUSE == "▮▮ pause"


# --- issue 22: the loss axis stays readable at any range --------------------------------------------

def test_the_log_axes_have_labels_at_any_range():
    from backpropviz.widgets.labfigure import log_ticks, tick_label
    for lo, hi in [(0.6, 0.69), (0.3, 0.7), (0.06, 0.65), (0.02, 0.7), (1e-4, 0.7), (1e-9, 1.0),
                   (1e-30, 10.0), (0.5, 0.5000001)]:
        ticks = log_ticks(lo, hi)
        assert len(ticks) >= 2 or lo == pytest.approx(hi), (lo, hi, ticks)
        assert all(lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9) for v in ticks) and len(ticks) <= 7
    assert [tick_label(v) for v in log_ticks(0.06, 0.65)] == ["0.1", "0.2", "0.5"]
    assert tick_label(1e-4) == "$10^{-4}$" and tick_label(3e-5) == r"$3{\times}10^{-5}$"
    lab = TrainingLab()                      # the first iterations: J from 0.65 to 0.58
    lab.train(3)
    ax = lab.figure.ax_l
    lab.figure.fig.canvas.draw()
    lo, hi = ax.get_ylim()
    labels = [t.get_text() for t in ax.get_yticklabels() if lo <= t.get_position()[1] <= hi]
    assert ax.get_yscale() == "log" and len([x for x in labels if x]) >= 2, labels
    assert lab.figure.loss_line.get_marker() == "o"          # few iterations: each one a dot
    lab.train(100)
    assert lab.figure.loss_line.get_marker() == "None"


# --- issue 22: the batch's points are marked; any point opens ---------------------------------------

def rings(lab):
    """The points the figure rings (as columns of X), and that each of its two rings agree."""
    black, amber = (r.get_offsets() for r in lab.figure.rings)
    assert np.array_equal(np.asarray(black), np.asarray(amber))
    X = lab.training.X
    return sorted(int(np.flatnonzero((X[0] == x) & (X[1] == y))[0]) for x, y in np.asarray(amber))


def test_the_figure_rings_exactly_the_batch_of_the_iteration_shown():
    lab = TrainingLab(batch=20, seed=0)
    tr = lab.training
    assert rings(lab) == [] and lab.it_w.value == "0"       # nothing ran: nothing ringed
    lab.train(7)
    assert lab.it_w.value == "7" and rings(lab) == sorted(tr.batch_index(7).tolist())
    assert len(rings(lab)) == 20 and "iteration 7's batch" in lab.figure.ax_b.get_xlabel()
    assert "Ringed in amber: the 20 points of iteration 7's batch" in lab.figure_text.value
    lab._on_figure_click(Click(lab.figure.ax_l, 3.2, 0.5))  # a click on the curve: iteration 3
    assert lab.it_w.value == "3" and rings(lab) == sorted(tr.batch_index(3).tolist())
    lab.it_w.value = "5"                                    # typed
    assert rings(lab) == sorted(tr.batch_index(5).tolist())
    lab.it_w.value = "99"                                   # not run: no ring, no error
    assert rings(lab) == []
    lab.one_w.click()                                       # the run advances: the field follows
    assert lab.it_w.value == "8" and rings(lab) == sorted(tr.batch_index(8).tolist())
    lab.batch_w.value = "all"                               # B = n: every point, none ringed
    lab.train(1)
    assert rings(lab) == [] and "all 200 points" in lab.figure.ax_b.get_xlabel()
    lab.close()


def test_the_iteration_field_keeps_in_step_with_the_run():
    lab = TrainingLab()
    lab.train(300)
    assert lab.it_w.value == "300"
    lab.reset_w.click()                                     # new run: no iteration yet
    assert lab.training.t == 0 and lab.it_w.value == "0" and lab.ex_w.value == "0"
    assert rings(lab) == []
    lab.open_w.click()
    assert "no iteration has run yet" in lab.message.value
    lab.train(2)
    assert lab.it_w.value == "2"
    lab.seed_w.value = "5"                                  # another run (a setting): 0 again
    assert lab.it_w.value == "0"
    lab.train(4)
    lab.open_iteration(2, 1)
    assert lab.it_w.value == "2"                            # what the Stepper shows …
    lab._on_training_field({"owner": lab.lr_w})             # … stays while nothing trains
    assert lab.it_w.value == "2"
    text = lab.dumps()
    lab.train(1)
    assert lab.it_w.value == "5"
    lab.load_text(text)                                     # a file: its view's iteration
    assert lab.it_w.value == "2" and lab.ex_w.value == "1"
    lab.close()


def test_a_click_on_a_point_of_the_batch_opens_it_and_on_any_other_point_its_pass_now():
    lab = TrainingLab(batch=20, seed=0)
    tr = lab.training
    lab.train(12)
    idx = tr.batch_index(12)
    j = int(idx[4])
    lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, j], tr.X[1, j]))
    assert lab.opened == {"iteration": 12, "example": 4, "step": 0} and lab.ex_w.value == "4"
    np.testing.assert_array_equal(lab.figure.cross.get_offsets(), [tr.X[:, j]])
    assert f"example 4 of iteration 12's batch (column {j} of X)" in html.unescape(lab.message.value)
    np.testing.assert_array_equal(lab.stepper.model.trace.grad("W[1]"), tr.trace_at(12, 4).grad("W[1]"))
    k = next(c for c in range(tr.n) if c not in set(idx.tolist()))
    lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, k], tr.X[1, k]))
    said = html.unescape(lab.message.value)
    assert f"column {k} of X) is not in iteration 12's batch" in said and "current θ" in said
    assert 'role="status"' in lab.message.value                # news, not an error
    assert lab.opened == {"column": k, "after": 12, "step": 0} and lab.ex_w.value == "4"
    got = lab.stepper.model.trace
    want = tr.network.backprop(tr.X[:, k], tr.Y[:, k])          # θ after the 12 updates
    np.testing.assert_array_equal(got.value("u[0]"), tr.X[:, k])
    for p in ("W[1]", "b[3]"):
        np.testing.assert_array_equal(got.grad(p), want.grad(p))
    assert "after 12 updates" in lab.caption.value and "no 1/B" in lab.caption.value
    assert not lab.figure.marks[0].get_visible()                # no iteration's θ: no mark
    np.testing.assert_array_equal(lab.figure.cross.get_offsets(), [tr.X[:, k]])   # crossed
    assert f"Crossed (×): column {k} of X" in lab.figure_text.value
    lab.save_w.click()                                          # a file keeps no such view
    assert "saved without the Stepper's view" in html.unescape(lab.message.value)
    assert json.loads(lab.dumps())["view"] is None
    # before any iteration: a point's pass with θ_0
    lab.reset_w.click()
    lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, 3], tr.X[1, 3]))
    assert lab.opened["after"] == 0 and "before any update" in lab.caption.value
    lab.close()


def test_a_click_while_training_pauses_and_opens():
    async def session():
        lab = TrainingLab(batch=20, speed=30)
        lab.run_w.click()
        while lab.training.t < 3:
            await asyncio.sleep(0.01)
        tr = lab.training
        j = int(tr.batch_index(tr.t)[0])
        lab._on_figure_click(Click(lab.figure.ax_b, tr.X[0, j], tr.X[1, j]))
        t = tr.t
        await lab._task
        return lab, t
    lab, t = asyncio.run(session())
    assert not lab.running and lab.training.t == t and lab.opened["iteration"] == t
    lab.close()


# --- issue 22: the Stepper on one example or on the whole batch, as the guide says ------------------

def test_the_whole_batch_opens_with_the_gradients_training_used_and_1_over_B():
    lab = TrainingLab(batch=20, seed=0)
    lab.train(5)
    lab.it_w.value = "5"
    lab.batch_open_w.click()
    tr = lab.training
    trace = lab.stepper.model.trace
    assert lab.opened == {"iteration": 5, "example": None, "step": 0}
    np.testing.assert_array_equal(trace.value("u[0]"), tr.X[:, tr.batch_index(5)])
    for p in tr.names:
        np.testing.assert_array_equal(trace.grad(p), tr.trace_at(5).grad(p))
    k = next(s.number for s in trace.steps if s.tag == "(7.70)")
    assert "(1/B)" in bpv.step_text(trace, k) and "1/20" in bpv.step_text(trace, k)
    assert "whole batch of 20 examples" in lab.caption.value and "1/B = 1/20" in lab.caption.value
    lab.ex_w.value = "2"
    lab.open_w.click()                                        # one example: no 1/B, said so
    one = lab.stepper.model.trace
    assert "(1/B)" not in bpv.step_text(one, k) and "has no 1/B" in lab.caption.value
    lab.ex_w.value = "all"                                    # typed: the whole batch too
    lab.open_w.click()
    assert lab.opened["example"] is None
    assert json.loads(lab.dumps())["view"] is None            # a lab file keeps one example
    lab.close()


def test_the_teachers_guide_names_what_the_lab_shows():
    """The guide's lab paragraph (notebooks/README.md) and the tool agree: every control it names
    in bold is one of the lab's, it says the single example's (7.70) has no 1/B and where the 1/B
    is, and that the lesson's lab starts untrained."""
    import re
    from pathlib import Path
    guide = (Path(__file__).resolve().parents[1] / "notebooks" / "README.md").read_text()
    para = next(p for p in guide.split("\n\n") if p.startswith("A second session can start "
                                                               "from `08_training`"))
    para = " ".join(para.split())
    lab = TrainingLab()
    names = {w.description for w in lab._parts() if hasattr(w, "description")}
    names |= {"▮▮ pause"}
    for bold in re.findall(r"\*\*(.+?)\*\*", para):
        assert bold in names, f"the guide names {bold!r}, which the lab does not show"
    assert "1/B in (7.70)" not in para.replace("with 1/B in (7.70) and the sums", "")
    assert "no 1/B" in para and "open its whole batch" in para and "iteration 0" in para
    lab.close()


def test_lesson_08_starts_the_lab_untrained():
    """After Run All, the lesson's lab waits at iteration 0: no cell trains it."""
    from pathlib import Path
    import nbformat
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "08_training.ipynb", 4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "lab.train(" not in code and "lab.one_w" not in code and "lab.run_w" not in code
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "the lab's run: iteration 0," in printed


def test_the_message_line_keeps_its_place():
    """The message line's height is reserved (lab.css), so a message never moves the figure."""
    from pathlib import Path
    import backpropviz.widgets as W
    lab = TrainingLab()
    assert "bpv-lab-message" in lab.message._dom_classes
    css = (Path(W.__file__).parent / "lab.css").read_text()
    assert re.search(r"\.bpv-lab-message \{[^}]*min-height: 28px", css)
    lab.close()
