"""gradcheck: backprop against central differences on MLPs and on traced functions."""
import itertools

import numpy as np
import pytest

import backpropviz as bpv

ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
LOSSES = ("squared", "logistic", "cross_entropy")


def labels(loss, rng, k, batch):
    """Labels that fit the loss: logistic 0/1 with the output's shape; cross-entropy one-hot or
    class indices; squared any reals."""
    shape = (k, batch) if batch else (k,)
    if loss == "squared":
        return rng.normal(size=shape)
    if loss == "logistic":
        return (rng.random(shape) < 0.5).astype(float)
    idx = rng.integers(0, k, size=batch or 1)
    if rng.random() < 0.5:                         # class indices
        return idx if batch else int(idx[0])
    onehot = np.eye(k)[:, idx]                     # one-hot, one column per example
    return onehot if batch else onehot[:, 0]


def near_kink(tr, h=1e-4):
    """True if a ReLU input is within finite-difference reach of 0, where ReLU has no derivative.

    A fresh mlp has zero biases, so a column whose ReLU outputs are all 0 gives the next ReLU an
    input of exactly 0: backprop uses σ'(0) = 0 (the notes' relu_prime) and central differences
    see 1/2 there. Such inputs are redrawn.
    """
    return any(np.min(np.abs(tr.value(m.inputs[0]))) < h for m in tr.modules if m.op == "ReLU")


CASES = list(itertools.product(range(1, 5), ACTIVATIONS, LOSSES, (0, 3)))


@pytest.mark.parametrize("depth,activation,loss,batch", CASES,
                         ids=[f"d{d}-{a}-{l}-{'B' + str(b) if b else 'one'}"
                              for d, a, l, b in CASES])
def test_mlp_gradcheck(depth, activation, loss, batch):
    seed = 1000 * depth + 10 * ACTIVATIONS.index(activation) + LOSSES.index(loss) + batch
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    k = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 4))
    sizes = [n_in] + [int(rng.integers(2, 5)) for _ in range(depth - 1)] + [k]
    net = bpv.mlp(sizes, activation=activation, loss=loss, seed=seed)
    assert sum(isinstance(m, bpv.MM) for m in net.layers) == depth
    y = labels(loss, rng, k, batch)
    for _ in range(50):
        x = rng.normal(0.0, 1.5, size=(n_in, batch) if batch else n_in)
        if not near_kink(net.backprop(x, y)):
            break
    else:
        pytest.fail("no input away from the ReLU kink found")
    report = bpv.gradcheck(net, x, y)
    assert report.ok, str(report)
    # and with non-zero biases, which a fresh mlp does not have
    biased = net.with_params({p: rng.normal(size=np.shape(v))
                              for p, v in net.params.items() if p.startswith("b")})
    if not near_kink(biased.backprop(x, y)):
        report_b = bpv.gradcheck(biased, x, y)
        assert report_b.ok, str(report_b)
    assert [r.name for r in report.rows] == [f"{p}[{i}]" for i in range(1, depth + 1)
                                             for p in ("W", "b")]
    tr = net.backprop(x, y)
    for r in report.rows:
        assert r.shape == np.shape(net.params[r.name]) == tr.grad(r.name).shape


def test_gradcheck_reused_value():
    x = np.array([0.3, -1.2, 2.0, 0.7])
    f = lambda x: ((x * x) + x.sin()).sum()
    report = bpv.gradcheck(f, x)
    assert report.ok, str(report)
    assert [r.name for r in report.rows] == ["u[0]"]
    np.testing.assert_allclose(bpv.trace(f, x).grad("u[0]"), 2 * x + np.cos(x), rtol=1e-12)


def test_gradcheck_skip_connection_through_mm():
    rng = np.random.default_rng(7)
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    mm = bpv.MM(W, b)
    f = lambda x: ((mm(x) + x) ** 2).sum()
    x = rng.normal(size=3)
    report = bpv.gradcheck(f, x)
    assert report.ok, str(report)
    r = W @ x + b + x
    np.testing.assert_allclose(bpv.trace(f, x).grad("u[0]"), 2 * (W.T @ r + r), rtol=1e-12)
    # the parameters' gradients too, by finite differences on W and b
    tr = bpv.trace(f, x)
    gW = bpv.numerical_grad(lambda WW: bpv.trace(lambda z: ((bpv.MM(WW, b)(z) + z) ** 2).sum(),
                                                 x).loss, W)
    gb = bpv.numerical_grad(lambda bb: bpv.trace(lambda z: ((bpv.MM(W, bb)(z) + z) ** 2).sum(),
                                                 x).loss, b)
    np.testing.assert_allclose(tr.grad("W[1]"), gW, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tr.grad("b[1]"), gb, rtol=1e-5, atol=1e-7)


def test_gradcheck_shared_module_in_a_trace():
    """The same MM object applied twice shares W[1], b[1]: their gradients are summed."""
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(2, 2)), rng.normal(size=2)
    mm = bpv.MM(W, b)
    f = lambda x: mm(mm(x).tanh()).sigmoid().sum()
    x = rng.normal(size=2)
    assert bpv.gradcheck(f, x).ok
    tr = bpv.trace(f, x)
    assert [n.name for n in tr.nodes if n.kind == "param"] == ["W[1]", "b[1]"]
    gW = bpv.numerical_grad(
        lambda WW: bpv.trace(lambda z: (lambda m: m(m(z).tanh()).sigmoid().sum())(
            bpv.MM(WW, b)), x).loss, W)
    np.testing.assert_allclose(tr.grad("W[1]"), gW, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,f,args", [
    ("broadcast add/mul", lambda a, b: ((a + b) * b).sum(),
     (np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]), np.array([0.7, -0.4, 1.1]))),
    ("scalar times vector", lambda a, b: (a * b).exp().sum(), (np.array(0.3), np.array([1.0, -2.0]))),
    ("column broadcast", lambda a, b: (a - b).cos().sum(),
     (np.array([[0.5], [1.0]]), np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]))),
    ("division and log", lambda a, b: (a / b).log().sum() + (b / a).sum(),
     (np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0, 1.5]))),
    ("matmul", lambda A, x: ((A @ x).tanh() @ (A @ x)), (np.array([[1.0, -0.5], [0.3, 0.8]]),
                                                         np.array([0.4, -1.1]))),
    ("constants on both sides", lambda x: (2.0 - x / 3.0 + 1.0 / (x * x + 1.0)).sum() * 0.5,
     (np.array([0.3, -0.7, 1.9]),)),
    ("powers", lambda x: (x ** 3 - (x * x) ** 0.5 + x ** -1.0).sum(), (np.array([0.6, 1.3]),)),
    ("losses in a trace", lambda t: bpv.LogisticLoss()(t, [1.0, 0.0]) +
     bpv.CrossEntropyLoss()(t, 1) + bpv.SquaredLoss()(t, [0.5, 0.5]),
     (np.array([0.3, -0.8]),)),
    ("neg and relu", lambda x: (-x).relu().sum() + x.sigmoid().sum(), (np.array([0.4, -0.9]),)),
    ("J of shape (1,)", lambda x: bpv.MM(np.array([[1.0, -2.0]]), [0.5])(x).sigmoid(),
     (np.array([0.3, 0.6]),)),
])
def test_gradcheck_traced_functions(name, f, args):
    report = bpv.gradcheck(f, *args)
    assert report.ok, f"{name}\n{report}"
    tr = bpv.trace(f, *args)
    inputs = [n.name for n in tr.nodes if n.kind == "input"]
    params = [n.name for n in tr.nodes if n.kind == "param"]
    assert [r.name for r in report.rows] == inputs + params
    for r, a in zip(report.rows, args):
        assert tr.grad(r.name).shape == np.shape(a)


class _SlipSin(bpv.Sin):
    def backward(self, z, v):
        return np.sin(z) * v          # should be cos(z) ⊙ v


class _SlipMM(bpv.MM):
    def grad_W(self, z, v):
        return np.outer(z, v).T * 2.0  # twice v zᵀ


def test_gradcheck_can_fail_on_a_traced_function():
    x = np.array([0.3, -1.2, 2.0])
    report = bpv.gradcheck(lambda x: (_SlipSin()(x) * x).sum(), x)
    assert report.ok is False
    assert not report
    assert report.rows[0].max_abs_err > 1e-2
    assert "FAILED" in str(report) and "!!" in str(report)
    # the same function with the right module passes
    assert bpv.gradcheck(lambda x: (bpv.Sin()(x) * x).sum(), x).ok


def test_gradcheck_can_fail_on_a_network():
    rng = np.random.default_rng(1)
    net = bpv.Sequential([_SlipMM(rng.normal(size=(2, 3))), bpv.Tanh()], loss=bpv.SquaredLoss())
    report = bpv.gradcheck(net, rng.normal(size=3), rng.normal(size=2))
    assert not report.ok
    ok_by_name = {r.name: r.ok for r in report.rows}
    assert ok_by_name == {"W[1]": False, "b[1]": True}


def test_gradcheck_tolerances_are_used():
    """A tolerance far below the finite-difference error makes an honest check fail."""
    net = bpv.mlp([3, 4, 2], activation="tanh", loss="squared", seed=5)
    x, y = np.array([0.2, -0.4, 1.0]), np.array([0.3, -0.1])
    assert bpv.gradcheck(net, x, y).ok
    assert not bpv.gradcheck(net, x, y, rtol=0.0, atol=1e-18).ok


def test_relu_kink_convention():
    """At z = 0 exactly, B[ReLU, z](v) = 0 (the notes' relu_prime); a check there is not valid."""
    np.testing.assert_array_equal(bpv.ReLU().backward(np.array([0.0, -0.0]), np.ones(2)), [0, 0])
    report = bpv.gradcheck(lambda x: x.relu().sum(), np.array([0.0, 1.0]))
    assert [r.ok for r in report.rows] == [False]        # numerical 1/2 vs 0 at the kink
    assert report.rows[0].max_abs_err == pytest.approx(0.5)
