"""Bounds of the widgets (issue 19): a replaced Stepper is closed (the kernel's widgets do not pile
up), a control the model refused shows the model's state again and blocks nothing later, and a lab
made again by the same notebook cell replaces the one that cell made before."""
import asyncio

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core.modules import LOSSES
from backpropviz.widgets.trainlab import TrainingLab


def open_widgets() -> int:
    from ipywidgets.widgets.widget import _instances
    return len(_instances)


# --- a replaced Stepper is closed ----------------------------------------------------------------

def test_opening_iterations_again_and_again_keeps_the_number_of_widgets():
    lab = TrainingLab()
    lab.train(4)
    lab.open_iteration(1, 0)
    one = open_widgets()
    first = lab.stepper
    for t in (2, 3, 4):
        lab.open_iteration(t, 1)
        assert open_widgets() == one                   # was 158 → 443 after three
    assert first.comm is None and first.bar.comm is None     # the old one is closed
    assert lab.stepper.comm is not None and lab.stepper_box.children == (lab.stepper,)
    lab.close()


def test_a_new_run_and_a_load_close_the_stepper_they_replace():
    lab = TrainingLab(batch=20)
    bare = open_widgets()
    lab.train(5)
    lab.open_iteration(3, 2)
    shown = lab.stepper
    lab.reset_w.click()                                   # new run: no Stepper any more
    assert lab.stepper is None and shown.comm is None and open_widgets() == bare
    lab.train(5)
    lab.open_iteration(4, 1)
    with_one = open_widgets()
    text = lab.dumps()
    old = lab.stepper
    lab.load_text(text)                                   # the file's view: a new Stepper
    assert lab.stepper is not old and old.comm is None and open_widgets() == with_one
    lab.close()
    assert lab.stepper.comm is None


# --- a refused control shows the model's state ----------------------------------------------------

def test_a_refused_loss_goes_back_and_does_not_block_the_next_rebuild():
    s = bpv.Stepper(bpv.mlp([2, 3, 1], seed=0, loss="squared"), [1.0, 2.0], [0.3])
    good = s.model.trace
    s.loss_in.value = "logistic"                          # a label of 0.3: refused
    assert s.model.trace is good and s.model.settings.loss == "squared"
    assert s.loss_in.value == "squared"                  # the toggle shows the model's loss
    note = s.controls.loss_errors.value                   # the refusal, next to the toggle
    assert "logistic" in note and "labels must be 0 or 1" in note and 'role="alert"' in note
    assert "labels must be 0 or 1" in s.controls.note.value
    s.x_in.value = "0.5, -1"                              # a later change is not refused
    s.click("rebuild")
    assert s.model.trace is not good and "bpv-error" not in s.controls.note.value
    np.testing.assert_array_equal(s.model.settings.x, [0.5, -1.0])
    assert s.loss_in.value == "squared" and s.controls.loss_errors.value == ""
    s.close()


def test_a_refused_rebuild_keeps_what_was_typed_marked_and_the_choices_of_the_model():
    s = bpv.Stepper(bpv.mlp([2, 3, 1], seed=0, loss="squared"), [1.0, 2.0], [0.3])
    good = s.model.trace
    s.sizes_in.value = "2, 4, 2"                         # two outputs for a one-number label
    s.click("rebuild")
    assert s.model.trace is good and "bpv-error" in s.controls.note.value
    assert s.sizes_in.value == "2, 4, 2"                 # typed text stays, to be corrected …
    assert "bpv-bad" in s.sizes_in._dom_classes         # … marked as not in force
    assert "sizes" in s.field_errors.value and "not used" in s.field_errors.value
    assert s.loss_in.value == s.model.settings.loss == "squared"
    s.loss_in.value = "logistic"                          # refused (label 0.3): nothing changes
    assert s.loss_in.value == "squared" and s.model.trace is good
    s.sizes_in.value = "2, 4, 1"
    s.click("rebuild")
    assert s.model.settings.sizes == (2, 4, 1) and not s.field_errors.value
    s.close()


def test_random_refused_and_accepted_changes_keep_every_control_on_the_model():
    import random
    rng = random.Random(19)
    s = bpv.Stepper(bpv.mlp([2, 3, 1], seed=0, loss="squared"), [1.0, 2.0], [0.3])
    for _ in range(60):
        a = rng.choice(["loss", "y", "rebuild"])
        if a == "loss":
            s.loss_in.value = rng.choice(list(s.loss_in.options))
        elif a == "y":
            s.y_in.value = rng.choice(["0.3", "1", "0"])
            s.click("rebuild")
        else:
            s.x_in.value = f"{rng.uniform(-2, 2):.3f}, {rng.uniform(-2, 2):.3f}"
            s.click("rebuild")
        assert s.loss_in.value == s.model.settings.loss
        assert isinstance(s.model.net.loss, LOSSES[s.model.settings.loss])
    s.close()


# --- a lab made again by the same cell replaces the one it made before -----------------------------

class Kernel:
    """What the kernel tells code about the request it is handling (ipykernel's get_parent)."""

    def __init__(self):
        self.parent = {}

    def run(self, cell, run):
        self.parent = {"header": {"msg_id": run, "msg_type": "execute_request"},
                       "metadata": {"cellId": cell}}

    def click(self):
        self.parent = {"header": {"msg_id": "c", "msg_type": "comm_msg"}, "metadata": {}}

    def get_parent(self):
        return self.parent


@pytest.fixture
def kernel(monkeypatch):
    import IPython
    k = Kernel()
    shell = type("Shell", (), {"kernel": k})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    return k


def test_the_current_cell_is_read_from_the_kernels_request(kernel):
    from backpropviz.widgets import cells
    assert cells.current_cell() is None
    kernel.run("cell-a", "run-1")
    assert cells.current_cell() == ("cell-a", "run-1")
    kernel.click()                                        # a button's callback: no cell
    assert cells.current_cell() is None


def test_running_a_cell_again_closes_the_lab_it_made_before(kernel):
    async def session():
        kernel.run("cell-a", "run-1")
        first = TrainingLab()
        twin = TrainingLab(data="xor")                    # the same run: both stay
        kernel.run("cell-b", "run-2")
        other = TrainingLab(data="circles")               # another cell's lab
        kernel.click()
        first.run_w.click()                               # ▶ (a callback: no cell)
        while first.training.t < 5:
            await asyncio.sleep(0.01)
        kernel.run("cell-a", "run-3")                     # the cell runs again …
        second = TrainingLab()                            # … and makes a lab: it replaces
        await asyncio.sleep(0.05)
        t = first.training.t
        await asyncio.sleep(0.1)
        return first, twin, other, second, t
    first, twin, other, second, t = asyncio.run(session())
    assert first.training.t == t and not first._running    # stopped, for good
    assert first.comm is None and twin.comm is None         # closed with every part
    assert other.comm is not None and second.comm is not None
    for lab in (other, second):
        lab.close()


def test_a_new_lab_pauses_a_lab_that_trains_in_the_background():
    async def session():
        first = TrainingLab()
        first.run_w.click()
        while first.training.t < 5:
            await asyncio.sleep(0.01)
        second = TrainingLab(data="xor")                  # no cell known: the first pauses
        await asyncio.sleep(0.05)
        t = first.training.t
        await asyncio.sleep(0.1)
        return first, second, t
    first, second, t = asyncio.run(session())
    assert first.training.t == t and not first._running and "▶" in first.run_w.description
    assert "another training lab" in first.message.value and first.comm is not None
    first.close()
    second.close()
