"""The training lab's core: toy data, gradient descent with the trace's backward functions, replay of
any iteration, and the lab file (save, load, refuse)."""
import json

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.lab import datasets
from backpropviz.lab import labfile
from backpropviz.core.gradcheck import numerical_grad
from backpropviz.lab.train import CHECKPOINT_EVERY, Training

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


# --- found in review: settings, limits and hostile numbers ---------------------------------------

def test_setting_alpha_back_before_training_is_one_run_and_saves():
    d, tr = lab_for("two_moons", batch=40)
    tr.step(10)
    tr.set(lr=0.1)
    tr.set(lr=0.5)                      # back, before any iteration ran with 0.1
    assert [(s.start, s.lr, s.batch) for s in tr.segments] == [(1, 0.5, 40)]
    tr.step(15)
    back = labfile.loads(labfile.dumps(tr, d.recipe))[0]
    assert all(np.array_equal(back.params[p], tr.params[p]) for p in tr.params)


def test_a_change_of_alpha_alone_keeps_the_epochs_shuffle():
    d, a = lab_for("two_moons", batch=30)
    b = lab_for("two_moons", batch=30)[1]
    a.step(3)
    b.step(3)
    b.set(lr=0.2)
    assert all(np.array_equal(a.batch_index(t), b.batch_index(t)) for t in range(4, 16))
    b.set(batch=20)
    assert not np.array_equal(a.batch_index(4), b.batch_index(4))


def test_checkpoints_are_thinned_and_replays_stay_exact(monkeypatch):
    from backpropviz.lab import train
    d, tr = lab_for("xor", hidden=(4,))
    monkeypatch.setattr(train, "CHECKPOINT_BYTES", 6 * tr._bytes)
    tr.step(1500)
    assert len(tr.checkpoints) <= 6 and tr._every > 100
    probe = lab_for("xor", hidden=(4,))[1]
    probe.step(1234)
    assert np.array_equal(tr.trace_at(1234).grad("W[1]"), probe.grads_at_last()["W[1]"])


class NaNAfter(bpv.ReLU):
    """A ReLU whose backward function gives NaN at its k-th call only (a finite J, bad θ)."""

    def __init__(self, k):
        super().__init__()
        self.k, self.calls = k, 0

    def backward(self, z, v):
        self.calls += 1
        return super().backward(z, v) * (np.nan if self.calls == self.k else 1.0)


def test_nan_gradients_are_taken_back_and_the_last_good_weights_stay():
    d = datasets.make("xor")
    W1, W2 = np.full((3, 2), 0.3), np.full((1, 3), 0.2)
    act = NaNAfter(3)
    bad = Training(bpv.Sequential([bpv.MM(W1), act, bpv.MM(W2)], loss="logistic"),
                   d.X, d.Y, lr=0.5)
    act.calls = 0                       # count the backward calls of training only
    with pytest.raises(bpv.BackpropError, match="iteration 4"):
        bad.step(10)
    good = Training(bpv.Sequential([bpv.MM(W1), bpv.ReLU(), bpv.MM(W2)], loss="logistic"),
                    d.X, d.Y, lr=0.5)
    good.step(2)
    assert bad.t == 2 and len(bad.history.loss) == 2
    assert all(np.array_equal(bad.params[p], good.params[p]) for p in good.params)


def test_seeds_beyond_32_bits_are_refused_where_they_enter():
    d = datasets.make("xor")
    with pytest.raises(bpv.BackpropError, match="from 0 to 4294967295"):
        Training(bpv.mlp([2, 3, 1]), d.X, d.Y, seed=2**33)


def test_a_lab_too_large_for_a_file_is_refused_when_saving():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 20))
    tr = Training(bpv.mlp([12, 3, 1]), X, (X[0] > 0)[None, :].astype(float))
    with pytest.raises(bpv.BackpropError, match="cannot save this lab: .*10 inputs"):
        labfile.dumps(tr)


def _file(**change):
    d, tr = lab_for("two_moons", batch=40)
    tr.step(5)
    f = json.loads(labfile.dumps(tr, d.recipe))
    for path, value in change.items():
        node = f
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        node[int(last) if isinstance(node, list) else last] = value
    return json.dumps(f)


@pytest.mark.parametrize("path, value, msg", [
    ("training.segments.0.1", 10**400, "too large"),
    ("theta.b[1].data.0", 10**400, "finite numbers"),
])
def test_numbers_too_large_for_a_float_give_one_clear_error(path, value, msg):
    text = _file(**{path: value})
    with pytest.raises(bpv.BackpropError, match="not a valid backpropviz lab file") as e:
        labfile.loads(text)
    assert msg in str(e.value)


def test_a_file_asking_for_hours_of_replay_is_refused_at_once():
    import time
    f = json.loads(_file())
    f["network"]["sizes"] = [2] + [256] * 7 + [1]
    f["network"]["theta0"] = {f"{p}[{i}]": {"shape": s, "data": [0.0] * int(np.prod(s))}
                              for i, (a, b) in enumerate(zip(f["network"]["sizes"][:-1],
                                                             f["network"]["sizes"][1:]), 1)
                              for p, s in (("W", [b, a]), ("b", [b]))}
    f["theta"] = f["network"]["theta0"]
    f["training"].update(iteration=200_000, segments=[[1, 0.5, 200]])
    t0 = time.perf_counter()
    with pytest.raises(bpv.BackpropError, match="multiply-adds"):
        labfile.loads(json.dumps(f))
    assert time.perf_counter() - t0 < 30


def test_a_view_on_a_run_that_has_not_started_is_refused():
    d, tr = lab_for("two_moons")
    f = json.loads(labfile.dumps(tr, d.recipe))
    f["view"] = {"iteration": 1, "example": 0, "step": 0}
    with pytest.raises(bpv.BackpropError, match="view.iteration"):
        labfile.loads(json.dumps(f))


def test_a_trace_file_with_a_huge_integer_gives_one_clear_error():
    d, tr = lab_for("xor", hidden=(2,))
    trace = tr.trace_at(1)
    from backpropviz.core.tracefile import trace_from_json
    f = json.loads(trace.to_json())
    key = next(iter(f["given"]))
    f["given"][key]["data"][0] = 10**400
    with pytest.raises(bpv.BackpropError, match="not a valid backpropviz trace"):
        trace_from_json(json.dumps(f))


# --- what a file or a run can ask for is bounded (issue 19) ---------------------------------------

def test_a_file_with_more_examples_than_a_lab_holds_is_refused_before_anything_runs():
    """1 × 600,000 examples passed the number budget and then replayed for ~27 minutes."""
    f = json.loads(_file())
    f["network"]["sizes"] = [1, 3, 1]
    f["network"]["theta0"] = {"W[1]": {"shape": [3, 1], "data": [0.1, 0.2, 0.3]},
                              "b[1]": {"shape": [3], "data": [0.0] * 3},
                              "W[2]": {"shape": [1, 3], "data": [0.1, 0.2, 0.3]},
                              "b[2]": {"shape": [1], "data": [0.0]}}
    f["theta"] = f["network"]["theta0"]
    n = datasets.MAX_POINTS + 1
    f["data"] = {"X": {"shape": [1, n], "data": [0.5] * n},
                 "Y": {"shape": [1, n], "data": [1.0] * n}}
    f["training"].update(iteration=200_000, segments=[[1, 0.5, 1]])
    with pytest.raises(bpv.BackpropError, match=r"data.X: .*at most 10 features × 5000 examples"):
        labfile.loads(json.dumps(f))


def test_replay_work_counts_the_shuffle_of_every_epoch():
    from backpropviz.lab.train import Segment, work
    segs = [Segment(1, 0.5, 1)]
    # batch 1 on n examples: one shuffle of n per n iterations, the pass on one example each
    assert work(segs, 10_000, 300, 5_000) == 10_000 * 1 * 301 + 2 * 5_000
    assert work(segs, 10_000, 300, 600_000) == 10_000 * 301 + 600_000


def test_an_epoch_is_shuffled_once_not_once_per_iteration(monkeypatch):
    """batch_index drew a permutation of all n examples at every iteration (O(n) each)."""
    from backpropviz.lab import train
    d = datasets.make("two_moons", n=200)
    tr = Training(bpv.mlp([2, 4, 1]), d.X, d.Y, batch=10, seed=3)
    before = [tr.batch_index(t).copy() for t in range(1, 41)]        # two epochs of 20
    calls = []
    real = np.random.default_rng
    monkeypatch.setattr(train.np.random, "default_rng", lambda *a: calls.append(a) or real(*a))
    tr2 = Training(bpv.mlp([2, 4, 1]), d.X, d.Y, batch=10, seed=3)
    after = [tr2.batch_index(t) for t in range(1, 41)]
    shuffles = [a for a in calls if a and isinstance(a[0], list)]     # [seed, start, epoch]
    assert shuffles == [([3, 1, 0],), ([3, 1, 1],)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
