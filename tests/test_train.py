"""The training lab's core: toy data, gradient descent with the trace's backward functions, replay of
any iteration, and the lab file (save, load, refuse)."""
import json

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz import datasets, labfile
from backpropviz.check import numerical_grad
from backpropviz.train import CHECKPOINT_EVERY, Training

SENSIBLE = {"two_moons": 0.5, "circles": 0.5, "xor": 0.5, "spirals": 0.5, "linear": 0.5,
            "spirals3": 0.5, "sine": 0.1}


def lab_for(name, hidden=(16, 16), batch=None, seed=0, lr=None):
    d = datasets.make(name, seed=0)
    net = bpv.mlp([d.X.shape[0], *hidden, d.outputs], loss=d.loss, seed=seed)
    return d, Training(net, d.X, d.Y, lr=lr or SENSIBLE[name], batch=batch, seed=seed)


@pytest.mark.parametrize("name", list(datasets.MAKERS))
def test_every_data_set_is_seeded_and_shaped_as_the_notes_write(name):
    a, b, c = datasets.make(name, seed=1), datasets.make(name, seed=1), datasets.make(name, seed=2)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y)
    assert not np.array_equal(a.X, c.X)
    assert a.X.shape[1] == 200 and a.X.ndim == 2          # one example per column
    if a.loss == "logistic":
        assert a.Y.shape == (1, 200) and set(np.unique(a.Y)) == {0.0, 1.0}
    elif a.loss == "cross_entropy":
        assert a.Y.shape == (200,) and set(np.unique(a.Y)) == {0.0, 1.0, 2.0}
    else:
        assert a.Y.shape == (1, 200) and len(np.unique(a.Y)) > 100


@pytest.mark.parametrize("name", list(datasets.MAKERS))
def test_the_loss_decreases_on_every_data_set(name):
    d, tr = lab_for(name, batch=50 if name == "two_moons" else None)
    before = tr.loss_all()
    tr.step(600)
    after = tr.loss_all()
    assert after < 0.5 * before, (before, after)
    if tr.accuracy() is not None:
        assert tr.accuracy() >= 0.9


@pytest.mark.parametrize("t", [1, 7, CHECKPOINT_EVERY, CHECKPOINT_EVERY + 3, 250])
def test_the_gradients_training_used_at_iteration_t_are_the_traces(t):
    d, tr = lab_for("two_moons", batch=32, seed=4)
    tr.step(120)
    tr.set(lr=0.2, batch=64)       # a second segment: replays must follow the settings in force
    tr.step(130)
    # the same run, stopped at t, gives the gradients it used there
    d2, probe = lab_for("two_moons", batch=32, seed=4)
    probe.step(min(t, 120))
    if t > 120:
        probe.set(lr=0.2, batch=64)
        probe.step(t - 120)
    used = probe.grads_at_last()
    trace = tr.trace_at(t)                                   # replayed from a checkpoint
    assert trace.steps[0].value.shape[1] == tr.batch_size_at(t)
    assert tr.batch_size_at(t) == {7: 200 - 6 * 32, 250: 64}.get(t, 32)
    for p, g in used.items():
        assert np.array_equal(trace.grad(p), g), p           # the very same numbers
    assert trace.loss == probe.history.loss[t - 1]


def test_an_epoch_sees_every_example_once_in_batches_of_B():
    d, tr = lab_for("two_moons", batch=30, seed=5)
    epoch = [tr.batch_index(t) for t in range(1, 8)]          # ⌈200/30⌉ = 7 batches
    assert [len(b) for b in epoch] == [30] * 6 + [20]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(200))
    assert not np.array_equal(tr.batch_index(8), epoch[0])    # the next epoch: a new shuffle


def test_one_examples_trace_is_its_share_of_the_batch():
    d, tr = lab_for("circles", batch=20)
    tr.step(40)
    whole = tr.trace_at(40)
    B = 20
    per = [tr.trace_at(40, example=i) for i in range(B)]
    for p in tr.names:
        mean = sum(x.grad(p) for x in per) / B
        np.testing.assert_allclose(mean, whole.grad(p), rtol=1e-10, atol=1e-14)
    # its forward values are the batch's column (to the last bits matmul may round differently)
    i = 5
    col = tr.example_index(40, i)
    np.testing.assert_array_equal(per[i].value("u[0]"), d.X[:, col])
    np.testing.assert_allclose(per[i].value("u[5]"), whole.value("u[5]")[:, i], rtol=1e-12)


def test_training_gradient_has_a_numerical_twin():
    d, tr = lab_for("xor", hidden=(4,), lr=0.3)
    tr.step(5)
    net = bpv.mlp([2, 4, 1]).with_params(tr._copy())      # θ_5, what iteration 6 uses
    tr.step(1)
    used = tr.grads_at_last()

    def J(W):
        return float(net.with_params({"W[1]": W}).backprop(d.X, d.Y).loss)
    np.testing.assert_allclose(used["W[1]"], numerical_grad(J, net.params["W[1]"]),
                               rtol=1e-6, atol=1e-8)


def test_a_run_is_reproducible_from_its_seed():
    a = lab_for("spirals", batch=25, seed=9)[1]
    b = lab_for("spirals", batch=25, seed=9)[1]
    a.step(300)
    b.step(300)
    assert a.history.loss == b.history.loss
    assert all(np.array_equal(a.params[p], b.params[p]) for p in a.params)
    c = lab_for("spirals", batch=25, seed=10)[1]
    c.step(300)
    assert c.history.loss != a.history.loss


@pytest.mark.parametrize("setting, message", [
    ({"lr": 0}, "positive"), ({"lr": -0.1}, "positive"), ({"lr": "abc"}, "a number"),
    ({"lr": float("nan")}, "positive"), ({"lr": float("inf")}, "positive"),
    ({"batch": 0}, "from 1 to 200"), ({"batch": 201}, "from 1 to 200"),
    ({"batch": 2.5}, "whole number"), ({"batch": "x"}, "whole number")])
def test_bad_settings_are_refused_and_change_nothing(setting, message):
    tr = lab_for("two_moons")[1]
    tr.step(3)
    before = (list(tr.segments), tr.t)
    with pytest.raises(bpv.BackpropError, match=message):
        tr.set(**setting)
    assert (list(tr.segments), tr.t) == before


def test_bad_data_is_refused_with_what_is_wrong():
    d = datasets.make("two_moons")
    net = bpv.mlp([2, 4, 1])
    cases = [((np.zeros((2, 0)), np.zeros((1, 0))), "empty"),
             ((d.X, d.Y[:, :10]), "one label per example"),
             ((d.X.T, d.Y), "pass X.T"),
             ((d.X, d.Y * 2), "0 or 1")]
    for (X, Y), msg in cases:
        with pytest.raises(bpv.BackpropError, match=msg):
            Training(net, X, Y)
    d3 = datasets.make("spirals3")
    Y = d3.Y.copy()
    Y[7] = 3
    with pytest.raises(bpv.BackpropError, match=r"class indices in 0\.\.2.*got \[3\.\]"):
        Training(bpv.mlp([2, 4, 3], loss="cross_entropy"), d3.X, Y)


def test_a_diverging_run_stops_with_a_clear_message_and_keeps_its_weights():
    d = datasets.make("sine")
    tr = Training(bpv.mlp([1, 16, 1], loss="squared"), d.X, d.Y * 1e6, lr=90)
    with pytest.raises(bpv.BackpropError, match=r"iteration \d+"):
        tr.step(500)
    t = tr.t
    assert all(np.isfinite(v).all() for v in tr.params.values())
    assert len(tr.history.loss) == t


def test_save_and_load_give_the_same_state_exactly(tmp_path):
    d, tr = lab_for("two_moons", batch=40, seed=2)
    tr.step(130)
    tr.set(lr=0.1)
    tr.step(33)
    view = {"iteration": 150, "example": 3, "step": 9}
    path = tmp_path / "lab.json"
    labfile.save(path, tr, d.recipe, view)
    back, recipe, v = labfile.load(path)
    assert recipe == d.recipe and v == view and back.t == tr.t
    assert back.segments == tr.segments and back.history.loss == tr.history.loss
    assert all(np.array_equal(back.params[p], tr.params[p]) for p in tr.params)
    assert np.array_equal(back.trace_at(150).grad("W[2]"), tr.trace_at(150).grad("W[2]"))
    # and with the learner's own arrays
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 30)), rng.normal(size=(2, 30))
    own = Training(bpv.mlp([3, 5, 2], loss="squared", activation="tanh"), X, Y, lr=0.05)
    own.step(12)
    back, recipe, v = labfile.loads(labfile.dumps(own))
    assert recipe is None and v is None and np.array_equal(back.X, own.X)
    assert all(np.array_equal(back.params[p], own.params[p]) for p in own.params)


def _mutations(d):
    yield "format", lambda f: f.update(format="backpropviz.lab/0"), "reads"
    yield "theta edited", lambda f: f["theta"]["b[2]"]["data"].__setitem__(0, 0.123), "replaying"
    yield "iteration edited", lambda f: f["training"].update(iteration=f["training"]["iteration"] + 1), "replaying"
    yield "lr negative", lambda f: f["training"]["segments"][0].__setitem__(1, -0.5), "positive"
    yield "lr text", lambda f: f["training"]["segments"][0].__setitem__(1, "0.5"), "a number"
    yield "batch too big", lambda f: f["training"]["segments"][0].__setitem__(2, 10**6), "batch"
    yield "unknown data", lambda f: f["data"]["recipe"].update(name="mnist"), "one of"
    yield "missing field", lambda f: f.pop("view"), "fields"
    yield "extra field", lambda f: f.update(code="import os"), "fields"
    yield "wrong shape", lambda f: f["network"]["theta0"]["W[1]"].update(shape=[2, 16]), "must be"
    yield "huge net", lambda f: f["network"].update(sizes=[2, 10**6, 1]), "from 1 to 256"
    yield "view out of range", lambda f: f.update(view={"iteration": 10**6, "example": 0, "step": 0}), "view"
    yield "bool seed", lambda f: f["training"].update(seed=True), "whole number"
    yield "nan text", None, "standard JSON"
    yield "not json", None, "standard JSON"


@pytest.mark.parametrize("case", [m[0] for m in _mutations(None)])
def test_a_damaged_or_edited_file_gives_one_clear_error(case):
    d, tr = lab_for("two_moons", batch=40)
    tr.step(25)
    text = labfile.dumps(tr, d.recipe, {"iteration": 20, "example": 1, "step": 2})
    name, mutate, msg = next(m for m in _mutations(d) if m[0] == case)
    if case == "nan text":
        bad = text.replace('"lr"', '"lr"').replace("0.5,", "NaN,", 1)
    elif case == "not json":
        bad = text[: len(text) // 2]
    else:
        f = json.loads(text)
        mutate(f)
        bad = json.dumps(f)
    with pytest.raises(bpv.BackpropError, match="not a valid backpropviz lab file") as e:
        labfile.loads(bad)
    assert msg in str(e.value)
