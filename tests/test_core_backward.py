"""Every module's hand-written backward function against central finite differences.

For a module M with input z and output u, and a random v (= ∂J/∂u), the backward function
B[M, z](v) must equal the gradient of f(z) = Σ M(z) ⊙ v. Shapes and values are drawn from seeded
numpy generators; one example is a vector z ∈ R^n, a batch a matrix with one example per column.
"""
import warnings

import numpy as np
import pytest

import backpropviz as bpv

SEEDS = range(12)
RTOL, ATOL = 1e-5, 1e-6


def close(analytic, numeric):
    analytic = np.asarray(analytic)
    assert analytic.shape == np.shape(numeric), (analytic.shape, np.shape(numeric))
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL)


def away_from(rng, shape, lo=0.1, scale=1.5):
    """Random values with |z| ≥ lo (no kinks of ReLU, no division by ~0)."""
    mag = lo + np.abs(rng.normal(0.0, scale, size=shape))
    return np.where(rng.random(shape) < 0.5, -mag, mag)


def shape_for(rng, batch):
    n = int(rng.integers(1, 6))
    return (n, int(rng.integers(1, 5))) if batch else (n,)


def num_unary(mod, z, v):
    return bpv.numerical_grad(lambda zz: np.sum(mod.forward(zz) * v), z)


def test_numerical_grad_itself():
    """The finite-difference twin is right on a function with a known gradient."""
    z = np.array([[0.3, -1.2], [2.0, 0.7]])
    g = bpv.numerical_grad(lambda a: np.sum(a ** 3) + a[0, 1] * a[1, 0], z)
    expected = 3 * z ** 2
    expected[0, 1] += z[1, 0]
    expected[1, 0] += z[0, 1]
    np.testing.assert_allclose(g, expected, rtol=1e-7, atol=1e-8)
    assert z[0, 0] == 0.3   # the input is not changed


# --- MM ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
@pytest.mark.parametrize("seed", SEEDS)
def test_mm_backward_and_param_grads(seed, batch):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    B = int(rng.integers(1, 5))
    W, b = rng.normal(size=(m, n)), rng.normal(size=m)
    z = rng.normal(size=(n, B) if batch else n)
    v = rng.normal(size=(m, B) if batch else m)
    mm = bpv.MM(W, b)
    u = mm.forward(z)
    assert u.shape == v.shape
    close(mm.backward(z, v), num_unary(mm, z, v))                          # (7.63)
    gW = bpv.numerical_grad(lambda WW: np.sum(bpv.MM(WW, b).forward(z) * v), W)
    gb = bpv.numerical_grad(lambda bb: np.sum(bpv.MM(W, bb).forward(z) * v), b)
    pg = mm.param_grads(z, v)
    assert set(pg) == {"W", "b"}
    close(pg["W"], gW)                                                       # (7.65)
    close(pg["b"], gb)                                                       # (7.66)
    close(mm.grad_W(z, v), gW)
    close(mm.grad_b(z, v), gb)
    if batch:   # a batch's parameter gradient is the sum over its columns
        close(pg["W"], sum(np.outer(v[:, j], z[:, j]) for j in range(B)))
        close(pg["b"], v.sum(axis=1))
        for j in range(B):
            close(mm.forward(z)[:, j], mm.forward(z[:, j]))


def test_mm_forward_is_Wz_plus_b():
    W = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    b = np.array([0.5, -0.5])
    mm = bpv.MM(W, b)
    np.testing.assert_array_equal(mm.forward(np.array([1.0, 1.0, 1.0])), [3.5, 1.5])
    np.testing.assert_array_equal(mm(np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])),
                                  [[3.5, 0.5], [1.5, 2.5]])
    assert (mm.n_in, mm.n_out) == (3, 2)


# --- activations --------------------------------------------------------------------------------

ACTIVATIONS = [bpv.ReLU, bpv.Sigmoid, bpv.Tanh, bpv.Identity]


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", SEEDS)
def test_activation_backward(cls, seed, batch):
    rng = np.random.default_rng(seed)
    shape = shape_for(rng, batch)
    z, v = away_from(rng, shape, lo=1e-3), rng.normal(size=shape)
    mod = cls()
    close(mod.backward(z, v), num_unary(mod, z, v))
    close(mod.derivative(z) * v, mod.backward(z, v))        # (7.69): σ'(z) ⊙ v


def test_activation_values():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(bpv.ReLU().forward(z), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(bpv.Sigmoid().forward(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(bpv.Tanh().forward(z), np.tanh(z))
    np.testing.assert_allclose(bpv.Identity().forward(z), z)
    # σ and tanh saturate without overflow or NaN
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = np.array([-1000.0, 1000.0])
        np.testing.assert_array_equal(bpv.Sigmoid().forward(big), [0.0, 1.0])
        np.testing.assert_array_equal(bpv.Sigmoid().backward(big, np.ones(2)), [0.0, 0.0])
        np.testing.assert_array_equal(bpv.Tanh().backward(big, np.ones(2)), [0.0, 0.0])


# --- losses --------------------------------------------------------------------------------------

def loss_case(name, rng, batch):
    k = int(rng.integers(1, 5)) if name != "ce" else int(rng.integers(2, 6))
    B = int(rng.integers(1, 5))
    shape = (k, B) if batch else (k,)
    t = rng.normal(0.0, 2.0, size=shape)
    if name == "sq":
        y = rng.normal(size=shape)
    elif name == "logistic":
        y = (rng.random(shape) < 0.5).astype(float)
    else:
        idx = rng.integers(0, k, size=B if batch else 1)
        y = np.eye(k)[:, idx] if batch else np.eye(k)[idx[0]]
    return t, y


LOSSES = {"sq": bpv.SquaredLoss, "logistic": bpv.LogisticLoss, "ce": bpv.CrossEntropyLoss}


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("seed", SEEDS)
def test_loss_backward(name, seed, batch):
    rng = np.random.default_rng(seed)
    t, y = loss_case(name, rng, batch)
    loss = LOSSES[name]()
    y = loss.check_label(t, y, "test")
    J = loss.forward(t, y)
    assert np.ndim(J) == 0
    v = float(rng.normal())
    num = bpv.numerical_grad(lambda tt: loss.forward(tt, y) * v, t)
    close(loss.backward(t, y, v), num)
    close(loss.backward(t, y), bpv.numerical_grad(lambda tt: loss.forward(tt, y), t))
    if batch:   # J = (1/B) Σ_j ℓ(t^(j), y^(j))
        B = t.shape[1]
        per = [loss.forward(t[:, j], y[:, j]) for j in range(B)]
        assert float(J) == pytest.approx(np.mean(per), rel=1e-12, abs=1e-12)
        for j in range(B):
            close(loss.backward(t, y)[:, j] * B, loss.backward(t[:, j], y[:, j]))


def test_loss_values_by_formula():
    t = np.array([0.2, -1.0, 0.5])
    y = np.array([1.0, 0.0, 1.0])
    assert float(bpv.SquaredLoss().forward(t, y)) == pytest.approx(0.5 * np.sum((t - y) ** 2))
    assert float(bpv.LogisticLoss().forward(t, y)) == pytest.approx(
        np.sum(np.log1p(np.exp(t)) - y * t))
    p = np.exp(t) / np.exp(t).sum()
    assert float(bpv.CrossEntropyLoss().forward(t, np.array([0.0, 0.0, 1.0]))) == pytest.approx(
        -np.log(p[2]))
    np.testing.assert_allclose(bpv.CrossEntropyLoss().backward(t, np.array([0.0, 0.0, 1.0])),
                               p - [0, 0, 1], rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_cross_entropy_class_indices(seed):
    rng = np.random.default_rng(seed)
    ce = bpv.CrossEntropyLoss()
    k, B = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    t = rng.normal(size=(k, B))
    idx = rng.integers(0, k, size=B)
    onehot = np.zeros((k, B))
    onehot[idx, np.arange(B)] = 1.0
    y = ce.check_label(t, idx.astype(float), "test")
    np.testing.assert_array_equal(y, onehot)
    assert float(ce.forward(t, y)) == pytest.approx(float(ce.forward(t, onehot)))
    close(ce.backward(t, y), bpv.numerical_grad(lambda tt: ce.forward(tt, onehot), t))
    # one example: an int class index (scalar) or a one-hot vector
    t1 = t[:, 0]
    y1 = ce.check_label(t1, np.asarray(float(idx[0])), "test")
    np.testing.assert_array_equal(y1, onehot[:, 0])
    close(ce.backward(t1, y1), bpv.numerical_grad(lambda tt: ce.forward(tt, onehot[:, 0]), t1))
    # the loss called on arrays accepts indices too
    assert float(ce(t, idx)) == pytest.approx(float(ce.forward(t, onehot)))


def _strict():
    """Overflow, invalid and divide-by-zero raise; numpy warnings become errors.

    Underflow (e^-1000 → 0) is the right limit, and numpy ignores it by default.
    """
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


def test_logistic_loss_stable_at_1000():
    ll = bpv.LogisticLoss()
    t = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _strict():
            J = float(ll.forward(t, y))
            g = ll.backward(t, y)
            Jb = float(ll.forward(t[None, :], y[None, :]))
            gb = ll.backward(t[None, :], y[None, :])
    # right answers cost ~0, wrong ones cost |t|; the gradient is σ(t) − y ∈ {0, ±1}
    assert J == pytest.approx(2000.0, rel=1e-12)
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0, -1.0], atol=1e-300)
    assert Jb == pytest.approx(500.0, rel=1e-12)    # a batch of 4 columns: the mean
    np.testing.assert_allclose(gb, [[0.0, 0.0, 0.25, -0.25]], atol=1e-300)


def test_cross_entropy_stable_at_1000():
    ce = bpv.CrossEntropyLoss()
    t = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.0, 0.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])       # first right, second wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _strict():
            J = float(ce.forward(t, y))
            g = ce.backward(t, y)
            J1 = float(ce.forward(t[:, 0], y[:, 0]))
            J2 = float(ce.forward(t[:, 1], y[:, 1]))
    assert np.isfinite(J) and np.all(np.isfinite(g))
    assert J1 == pytest.approx(0.0, abs=1e-12)
    assert J2 == pytest.approx(2000.0, rel=1e-12)
    assert J == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(g, [[0.0, -0.5], [0.0, 0.5], [0.0, 0.0]], atol=1e-300)


# --- ops of a circuit ---------------------------------------------------------------------------

def binary_case(cls, rng, shape):
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    if cls is bpv.Div:
        b = away_from(rng, shape, lo=0.5)
    return a, b


@pytest.mark.parametrize("cls", [bpv.Add, bpv.Sub, bpv.Mul, bpv.Div], ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", SEEDS)
def test_elementwise_binary_backward(cls, seed):
    rng = np.random.default_rng(seed)
    shape = shape_for(rng, batch=bool(seed % 2))
    a, b = binary_case(cls, rng, shape)
    v = rng.normal(size=shape)
    op = cls()
    ga, gb = op.backward(a, b, v)
    close(ga, bpv.numerical_grad(lambda aa: np.sum(op.forward(aa, b) * v), a))
    close(gb, bpv.numerical_grad(lambda bb: np.sum(op.forward(a, bb) * v), b))


MATMUL_SHAPES = [((3, 4), (4,)), ((4,), (4, 3)), ((5,), (5,)), ((2, 3), (3, 4)), ((1, 1), (1, 1)),
                 ((3, 1), (1, 2)), ((1,), (1, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
@pytest.mark.parametrize("seed", range(4))
def test_matmul_backward(sa, sb, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    op = bpv.MatMul()
    u = op.forward(a, b)
    np.testing.assert_allclose(u, a @ b)
    v = rng.normal(size=np.shape(u))
    ga, gb = op.backward(a, b, v)
    close(ga, bpv.numerical_grad(lambda aa: np.sum(op.forward(aa, b) * v), a))
    close(gb, bpv.numerical_grad(lambda bb: np.sum(op.forward(a, bb) * v), b))


@pytest.mark.parametrize("p", [2, 3, 1, 0.5, -1, 1.5, -2.5])
@pytest.mark.parametrize("seed", range(5))
def test_power_backward(p, seed):
    rng = np.random.default_rng(seed)
    shape = shape_for(rng, batch=bool(seed % 2))
    z = rng.normal(size=shape)
    if p != int(p) or p < 0:    # fractional powers need z > 0; negative powers z away from 0
        z = 0.3 + np.abs(z)
    v = rng.normal(size=shape)
    op = bpv.Power(p)
    np.testing.assert_allclose(op.forward(z), z ** p, rtol=1e-14)
    close(op.backward(z, v), num_unary(op, z, v))


@pytest.mark.parametrize("cls", [bpv.Exp, bpv.Log, bpv.Sin, bpv.Cos], ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", SEEDS)
def test_elementary_functions_backward(cls, seed):
    rng = np.random.default_rng(seed)
    shape = shape_for(rng, batch=bool(seed % 2))
    z = rng.normal(size=shape)
    if cls is bpv.Log:
        z = 0.2 + np.abs(z)
    v = rng.normal(size=shape)
    op = cls()
    close(op.backward(z, v), num_unary(op, z, v))


@pytest.mark.parametrize("seed", SEEDS)
def test_sum_backward(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape_for(rng, batch=bool(seed % 2)))
    v = np.asarray(rng.normal())          # Sum's output is a scalar, so v is too
    op = bpv.Sum()
    assert np.ndim(op.forward(z)) == 0
    close(op.backward(z, v), bpv.numerical_grad(lambda zz: float(op.forward(zz)) * float(v), z))


def test_a_wrong_backward_is_caught_by_this_harness():
    """The comparison above has teeth: a backward with a slip fails it."""

    class SlipSigmoid(bpv.Sigmoid):
        def derivative(self, z):          # forgot the (1 − σ) factor
            return self.forward(z)

    rng = np.random.default_rng(0)
    z, v = rng.normal(size=4), rng.normal(size=4)
    with pytest.raises(AssertionError):
        close(SlipSigmoid().backward(z, v), num_unary(SlipSigmoid(), z, v))
