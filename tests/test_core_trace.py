"""The trace: its steps, their order and tags, accumulation, names, JSON, immutability."""
import json

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.display.presentation import formula

LOSS_TAG = {"squared": "(§7.4.3)", "logistic": "(7.70)", "cross_entropy": "(7.71)"}
LOSS_OPS = {"SquaredLoss", "LogisticLoss", "CrossEntropyLoss"}


def make_net(loss="logistic", activation="tanh", sizes=(3, 4, 3, 2), seed=0):
    return bpv.mlp(list(sizes), activation=activation, loss=loss, seed=seed)


def make_xy(loss, n=3, k=2, batch=0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, batch) if batch else n)
    shape = (k, batch) if batch else (k,)
    if loss == "squared":
        y = rng.normal(size=shape)
    elif loss == "logistic":
        y = (rng.random(shape) < 0.5).astype(float)
    else:
        y = rng.integers(0, k, size=batch) if batch else 1
    return x, y


def expected_backward(net, input_grad=False):
    """(rule, tag, module, writes) of every backward step of a Sequential, from the notes:
    seed (no equation tag: ∂J/∂J = 1 is the v = 1 of (7.73)), then for M_k, …, M_1: (B2) W,
    (B2) b for an MM, then (B1) for its input."""
    mods = net.modules
    k = len(mods)
    out = [("seed", "seed", None, f"∂J/∂u[{k}]")]
    n_mm = sum(isinstance(m, bpv.MM) for m in mods)
    for i in range(k, 0, -1):
        m = mods[i - 1]
        if isinstance(m, bpv.MM):
            out += [("B2", "(7.65)", f"M_{i}", f"∂J/∂W[{n_mm}]"),
                    ("B2", "(7.66)", f"M_{i}", f"∂J/∂b[{n_mm}]")]
            n_mm -= 1
            tag = "(7.63)"
        elif isinstance(m, bpv.Loss):
            tag = LOSS_TAG[{bpv.SquaredLoss: "squared", bpv.LogisticLoss: "logistic",
                            bpv.CrossEntropyLoss: "cross_entropy"}[type(m)]]
        else:
            tag = "(7.69)"
        if i > 1 or input_grad:
            out.append(("B1", tag, f"M_{i}", f"∂J/∂u[{i - 1}]"))
    return out


# --- structure of a Sequential's trace ---------------------------------------------------------

@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("batch", [0, 4])
@pytest.mark.parametrize("loss", list(LOSS_TAG))
def test_sequential_step_structure(loss, batch, input_grad):
    net = make_net(loss)
    x, y = make_xy(loss, batch=batch)
    tr = net.backprop(x, y, input_grad=input_grad)
    k = len(net.modules)
    assert k == 6 and len(tr.modules) == k
    steps = tr.steps
    assert len(steps) == len(tr)
    fwd = steps[:k]
    for i, s in enumerate(fwd, 1):
        assert (s.phase, s.kind, s.tag, s.module, s.writes, s.node) == (
            "forward", "F", "(F)", f"M_{i}", bpv.Key(f"u[{i}]"), f"u[{i}]")
        assert s.number == i and bpv.Key(f"u[{i - 1}]") in s.reads
    assert tr.n_forward == k
    bwd = steps[k:]
    assert all(s.phase == "backward" for s in bwd)
    assert [(s.kind, s.tag, s.module, str(s.writes)) for s in bwd] == \
        expected_backward(net, input_grad)
    seed = bwd[0]
    np.testing.assert_array_equal(seed.value, 1.0)
    assert seed.node == f"u[{k}]"
    assert not any(s.kind == "acc" for s in steps)       # nothing is reused in a chain
    # module numbers never increase along the backward pass
    nums = [int(s.module[2:]) for s in bwd if s.module]
    assert nums == sorted(nums, reverse=True)


def test_step_values_follow_the_rules():
    """Each step's number is its rule applied to the numbers it read (F), (B1), (B2)."""
    net = make_net("cross_entropy", activation="sigmoid", sizes=(3, 4, 2))
    x, y = make_xy("cross_entropy", batch=3, seed=4)
    tr = net.backprop(x, y, input_grad=True)
    mods = dict(zip((f"M_{i}" for i in range(1, 10)), net.modules))
    for s in tr.steps:
        mod = mods.get(s.module)
        r = {sym: tr[key] for sym, key in s.subs}          # the rule's symbols: z, v, W, …
        if s.kind == "F" and isinstance(mod, bpv.Loss):
            np.testing.assert_allclose(s.value, mod.forward(r["t"], r["y"]))
        elif s.kind == "F":
            np.testing.assert_allclose(s.value, mod.forward(r["z"]))
        elif s.kind == "B2" and s.which == "W":
            np.testing.assert_allclose(s.value, r["v"] @ r["z"].T)                   # (7.65)
        elif s.kind == "B2":
            np.testing.assert_allclose(s.value, r["v"].sum(axis=1))                  # (7.66)
        elif s.kind == "B1" and isinstance(mod, bpv.MM):
            np.testing.assert_allclose(s.value, mod.W.T @ r["v"])                    # (7.63)
        elif s.kind == "B1" and isinstance(mod, bpv.Activation):
            np.testing.assert_allclose(s.value, mod.derivative(r["z"]) * r["v"])     # (7.69)
        # what a step reads is exactly what its rule shows (highlighted on the graph)
        assert set(s.reads) <= set(dict(s.subs).values())
    # the gradient of the input against finite differences of J
    num = bpv.numerical_grad(lambda xx: net.backprop(xx, y).loss, x)
    np.testing.assert_allclose(tr.grad("u[0]"), num, rtol=1e-5, atol=1e-8)


def test_formulas_in_the_notes_notation():
    W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
    net = bpv.Sequential([bpv.MM(W1), bpv.ReLU(), bpv.MM(np.array([[0.5, -0.5]])),
                          bpv.Sigmoid()], loss=bpv.SquaredLoss())
    tr = net.backprop([1.0, 2.0], [1.0])
    formulas = {str(s.writes): formula(tr, s.spec) for s in tr.steps}
    assert formulas["u[1]"] == "u[1] = W[1] u[0] + b[1]"
    assert formulas["∂J/∂u[5]"] == "∂J/∂u[5] = 1"
    # (7.77) as corrected by the errata: ∂J/∂W[k+1] = ∂J/∂z[k+1] a[k]ᵀ, i.e. v zᵀ
    assert formulas["∂J/∂W[2]"] == "∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ"
    assert formulas["∂J/∂u[2]"] == "∂J/∂u[2] = W[2]ᵀ ∂J/∂u[3]"          # (7.63)
    assert formulas["∂J/∂b[1]"] == "∂J/∂b[1] = ∂J/∂u[1]"                # (7.66)
    assert str(tr.steps[0].writes) == "u[1]" and str(tr.steps[-1].writes) == "∂J/∂b[1]"


# --- accumulation (7.53) -------------------------------------------------------------------------

def _rng_mm(n, seed):
    rng = np.random.default_rng(seed)
    return bpv.MM(rng.normal(size=(n, n)), rng.normal(size=n))


MM3 = _rng_mm(3, 11)
REUSE_CASES = {
    "x*x + sin x": (lambda x: ((x * x) + x.sin()).sum(), {"u[0]": 3}),
    "skip through MM": (lambda x: ((MM3(x) + x) ** 2).sum(), {"u[0]": 2}),
    "shared MM": (lambda x: MM3(MM3(x).tanh()).sum(), {"W[1]": 2, "b[1]": 2}),
    "diamond": (lambda x: (lambda h: (h * h.exp() + h).sum())(x.tanh()), {"u[1]": 3}),
    "no reuse": (lambda x: (x.sin() * 2.0).cos().sum(), {}),
}


def _uses(tr):
    """How many times each node is used by a module that J is differentiated through."""
    grad_kinds = {n.name for n in tr.nodes if n.kind not in ("const", "label")}
    uses = {}
    for m in tr.modules:
        ins = m.inputs[:1] if m.op in LOSS_OPS else m.inputs
        for z in m.params + ins:
            if z in grad_kinds:
                uses[z] = uses.get(z, 0) + 1
    return uses


@pytest.mark.parametrize("case", list(REUSE_CASES))
def test_accumulation_exactly_where_a_value_is_reused(case):
    f, reused = REUSE_CASES[case]
    x = np.array([0.3, -1.2, 0.8])
    tr = bpv.trace(f, x)
    assert {z: c for z, c in _uses(tr).items() if c > 1} == reused
    acc = [s for s in tr.steps if s.kind == "acc"]
    assert sorted(s.node for s in acc) == sorted(reused)
    for s in acc:
        assert (s.phase, s.tag, s.module, s.writes) == ("backward", "(7.53)", None,
                                                         bpv.Key.gradient(s.node))
        assert len(s.reads) == reused[s.node]
        # its contributions are written by (B1)/(B2) steps before it, one per use
        writers = {t.writes: t for t in tr.steps[:s.index]}
        for key in s.reads:
            assert key.node == s.node and key.grad and key.user.startswith("M_")
            assert str(key).startswith(f"∂J/∂{s.node} via M_")
            assert writers[key].kind in ("B1", "B2") and writers[key].node == s.node
        np.testing.assert_allclose(s.value, np.sum(s.read_values, axis=0), rtol=1e-14)
        np.testing.assert_array_equal(tr.grad(s.node), s.value)
        # nothing reads the gradient before it is complete
        assert not any(s.writes in t.reads for t in tr.steps[:s.index])
    # every value that is used once has its gradient written directly, with no "via"
    for z, c in _uses(tr).items():
        if c == 1:
            assert bpv.Key.gradient(z) in {s.writes for s in tr.steps if s.kind in ("B1", "B2")}
    num = bpv.numerical_grad(lambda xx: bpv.trace(f, xx).loss, x)
    np.testing.assert_allclose(tr.grad("u[0]"), num, rtol=1e-5, atol=1e-8)


def test_accumulation_of_x_times_x_plus_sin():
    x = np.array([0.3, -1.2, 0.8])
    tr = bpv.trace(lambda x: ((x * x) + x.sin()).sum(), x)
    [acc] = [s for s in tr.steps if s.kind == "acc"]
    assert [str(k) for k in acc.reads] == ["∂J/∂u[0] via M_1 (1)", "∂J/∂u[0] via M_1 (2)",
                                           "∂J/∂u[0] via M_2"]
    np.testing.assert_allclose(tr.grad("u[0]", via="M_2"), np.cos(x))
    np.testing.assert_allclose(tr.grad("u[0]", via="M_1", n=1), x)
    np.testing.assert_allclose(tr.grad("u[0]", via="M_1", n=2), x)
    np.testing.assert_allclose(acc.value, 2 * x + np.cos(x), rtol=1e-14)
    assert acc is tr.steps[-1]


def test_dead_branch_gets_no_backward_steps():
    tr = bpv.trace(lambda x: (x.sin(), x.cos().sum())[1], np.array([0.5, 1.0]))
    assert [s.module for s in tr.steps if s.phase == "forward"] == ["M_1", "M_2", "M_3"]
    assert not any(s.module == "M_1" for s in tr.steps if s.phase == "backward")
    assert not any(s.kind == "acc" for s in tr.steps)
    np.testing.assert_allclose(tr.grad("u[0]"), -np.sin([0.5, 1.0]))


# --- what is known -------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["net", "trace"])
def test_known_grows_by_one_key_per_step(which):
    if which == "net":
        x, y = make_xy("logistic")
        tr = make_net().backprop(x, y)
    else:
        tr = bpv.trace(REUSE_CASES["x*x + sin x"][0], np.array([0.3, -1.2, 0.8]))
    before = tr.known(0)
    assert before == tuple(bpv.Key(n) for n in tr.given)
    for s in tr.steps:
        now = tr.known(s.number)
        assert now == before + (s.writes,)
        assert s.known == now
        assert set(s.reads) <= set(before), (s, set(s.reads) - set(before))
        for key in now:
            tr[key]       # every known key can be looked up
            assert tr.is_known(key, s.number) and tr.known_at(key) <= s.number
        assert not tr.is_known(s.writes, s.number - 1)
        before = now
    assert len(before) == len(tr.given) + len(tr)


# --- names ---------------------------------------------------------------------------------------

def test_names_come_from_counters():
    net = make_net("squared", sizes=(3, 4, 3, 2))
    x, y = make_xy("squared")
    tr = net.backprop(x, y)
    assert sorted(tr.node_names) == sorted(
        [f"u[{i}]" for i in range(7)] + [f"{p}[{j}]" for j in (1, 2, 3) for p in "Wb"] + ["y"])
    assert [m.name for m in tr.modules] == [f"M_{i}" for i in range(1, 7)]
    assert [m.output for m in tr.modules] == [f"u[{i}]" for i in range(1, 7)]
    assert [m.params for m in tr.modules if m.params] == [("W[1]", "b[1]"), ("W[2]", "b[2]"),
                                                          ("W[3]", "b[3]")]
    assert tr.modules[0].label == "MM[W[1], b[1]]"
    assert tr.node("u[6]").kind == "loss" and tr.node("W[2]").kind == "param"
    assert tr.node("W[2]").module == "M_3"
    t2 = bpv.trace(lambda x: (x * 2.0 + 1.0).sum() / 3.0, np.array([1.0, 2.0]))
    assert [n.name for n in t2.nodes if n.kind == "const"] == ["c[1]", "c[2]", "c[3]"]
    mm = bpv.MM(np.eye(2))
    t3 = bpv.trace(lambda x, z: (mm(x) * bpv.MM(np.eye(2))(z)).sum(), [1.0, 2.0], [3.0, 4.0])
    assert [n.name for n in t3.nodes if n.kind in ("input", "param")] == [
        "x[1]", "x[2]", "W[1]", "b[1]", "W[2]", "b[2]"]


@pytest.mark.parametrize("which", ["net", "trace"])
def test_two_identical_runs_have_identical_traces(which):
    def run():
        if which == "net":
            x, y = make_xy("cross_entropy", batch=2)
            return make_net("cross_entropy").backprop(x, y)
        return bpv.trace(REUSE_CASES["skip through MM"][0], np.array([0.3, -1.2, 0.8]))

    a, b = run(), run()
    assert a.node_names == b.node_names
    assert a.modules == b.modules and a.specs == b.specs
    assert a.same_as(b) and b.same_as(a)


# --- JSON ----------------------------------------------------------------------------------------

def _trace_makers():
    out = {}
    for loss in LOSS_TAG:
        for batch in (0, 3):
            def make(loss=loss, batch=batch):
                x, y = make_xy(loss, batch=batch, seed=batch)
                return make_net(loss).backprop(x, y, input_grad=bool(batch))
            out[f"{loss}-{batch}"] = make
    for case, (f, _) in REUSE_CASES.items():
        out[case] = lambda f=f: bpv.trace(f, np.array([1 / 3, -0.1, 1e-300]))
    out["J (1,)"] = lambda: bpv.trace(lambda x: bpv.MM([[1.0, 2.0]], [0.1])(x), [0.25, 1 / 7])
    out["NaN grad"] = lambda: bpv.trace(lambda x: ((x ** 0.5) * 0.0).sum(), [0.0, 4.0])
    return out


TRACE_MAKERS = _trace_makers()
_CACHE = {}


def get_trace(name):
    if name not in _CACHE:
        _CACHE[name] = TRACE_MAKERS[name]()
    return _CACHE[name]


@pytest.mark.parametrize("name", list(TRACE_MAKERS))
def test_json_round_trip(name):
    tr = get_trace(name)
    text = tr.to_json()
    assert json.loads(text)["format"] == "backpropviz.trace/2"
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace(
        '"Infinity"', "").replace('"-Infinity"', "")            # standard JSON
    back = bpv.Trace.from_json(text)
    assert back.same_as(tr) and tr.same_as(back)
    assert back.to_json() == text
    assert back.node_names == tr.node_names and back.modules == tr.modules
    assert len(back.steps) == len(tr.steps)
    for s, t in zip(tr.steps, back.steps):
        assert (s.index, s.spec, s.known) == (t.index, t.spec, t.known)
        assert np.shape(s.value) == np.shape(t.value)
        np.testing.assert_array_equal(s.value, t.value)
        for a, b in zip(s.read_values, t.read_values, strict=True):
            np.testing.assert_array_equal(a, b)
    for n in tr.node_names:
        np.testing.assert_array_equal(back.value(n), tr.value(n))
        if bpv.Key.gradient(n) in tr.known(len(tr)):
            np.testing.assert_array_equal(back.grad(n), tr.grad(n))
    assert back.loss == tr.loss
    assert repr(back) == repr(tr)


def test_same_as_sees_differences():
    x, y = make_xy("logistic")
    net = make_net()
    a = net.backprop(x, y)
    assert not a.same_as(net.backprop(x + 1e-12, y))                  # one number differs
    assert not a.same_as(net.backprop(x, y, input_grad=True))          # one more step
    assert not a.same_as(make_net(seed=1).backprop(x, y))              # other parameters
    d = a.to_dict()
    d["out"][3]["data"][0] += 1.0
    assert not bpv.Trace.from_dict(d).same_as(a)
    with pytest.raises(bpv.BackpropError):
        bpv.Trace.from_dict({**a.to_dict(), "format": "something else"})


# --- immutability ---------------------------------------------------------------------------------

def _all_arrays(tr):
    yield from (tr.value(n) for n in tr.node_names)
    yield from tr.param_grads().values()
    for s in tr.steps:
        yield s.value
        yield from s.read_values


@pytest.mark.parametrize("name", ["logistic-0", "cross_entropy-3", "shared MM", "J (1,)"])
def test_arrays_from_a_trace_are_read_only(name):
    for tr in (get_trace(name), bpv.Trace.from_json(get_trace(name).to_json())):
        before = tr.to_json()
        arrays = list(_all_arrays(tr))
        assert arrays
        for a in arrays:
            assert isinstance(a, np.ndarray)
            if a.size:
                with pytest.raises(ValueError):
                    a.flat[0] = 123.0
        with pytest.raises(ValueError):
            tr.grad("u[1]")[...] = 0.0
        assert tr.to_json() == before


def test_mutating_inputs_after_backprop_changes_nothing():
    W = np.array([[0.1, 0.2], [0.3, 0.4]])
    x = np.array([1.0, 2.0])
    y = np.array([1.0])
    net = bpv.Sequential([bpv.MM(W), bpv.ReLU(), bpv.MM(np.array([[0.5, -0.5]])), bpv.Sigmoid()],
                         loss=bpv.SquaredLoss())
    tr = net.backprop(x, y)
    before = tr.to_json()
    x[:] = [50.0, -50.0]
    y[:] = 0.0
    W[:] = 7.0
    assert tr.to_json() == before
    np.testing.assert_array_equal(tr.value("u[0]"), [1.0, 2.0])
    np.testing.assert_allclose(tr.value("u[1]"), [0.5, 1.1])
    # the network did not change either
    assert net.backprop([1.0, 2.0], [1.0]).same_as(tr)
    # same for a traced function
    z = np.array([1.0, 2.0, 3.0])
    t2 = bpv.trace(lambda z: (z ** 2).sum(), z)
    z[:] = 0.0
    assert t2.loss == 14.0
    np.testing.assert_array_equal(t2.grad("u[0]"), [2.0, 4.0, 6.0])


# --- input gradient --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [0, 3])
def test_input_grad(batch):
    net = make_net("squared", activation="relu")
    x, y = make_xy("squared", batch=batch, seed=2)
    tr = net.backprop(x, y, input_grad=True)
    W1 = net.params["W[1]"]
    np.testing.assert_allclose(tr.grad("u[0]"), W1.T @ tr.grad("u[1]"), rtol=1e-14)
    np.testing.assert_allclose(tr.grad("u[0]"),
                               bpv.numerical_grad(lambda xx: net.backprop(xx, y).loss, x),
                               rtol=1e-5, atol=1e-8)
    [s] = [s for s in tr.steps if s.writes == bpv.Key.gradient("u[0]")]
    assert (s.kind, s.tag, s.module) == ("B1", "(7.63)", "M_1")
    plain = net.backprop(x, y)
    with pytest.raises(bpv.BackpropError, match="input_grad"):
        plain.grad("u[0]")
    assert len(tr) == len(plain) + 1
    for n in plain.node_names:          # the other numbers are the same
        np.testing.assert_array_equal(plain.value(n), tr.value(n))
    for p, g in plain.param_grads().items():
        np.testing.assert_array_equal(g, tr.grad(p))


def test_grad_of_a_label_or_unknown_node_raises():
    x, y = make_xy("logistic")
    tr = make_net().backprop(x, y)
    with pytest.raises(bpv.BackpropError, match="label"):
        tr.grad("y")
    with pytest.raises(bpv.BackpropError, match="no node named"):
        tr.grad("u[99]")
    with pytest.raises(bpv.BackpropError, match="no node named"):
        tr.value("W[9]")
    t2 = bpv.trace(lambda x: (x * 2.0).sum(), [1.0])
    with pytest.raises(bpv.BackpropError, match="constant"):
        t2.grad("c[1]")
