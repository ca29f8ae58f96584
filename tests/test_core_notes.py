"""Every number printed by the notes' own code (errata.md) reproduced through the public API."""
import numpy as np
import pytest

import backpropviz as bpv

TOL = dict(rtol=0, atol=1e-8)


def test_chain_rule_example():
    """(7.52)–(7.54): z = [1, 2, 3], u = z², J = Σu = 14, ∂J/∂z = [2, 4, 6]."""
    tr = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(tr.value("u[1]"), [1.0, 4.0, 9.0], **TOL)   # print('u:', u)
    assert tr.loss == pytest.approx(14.0, abs=1e-8)
    np.testing.assert_allclose(tr.value("u[2]"), 14.0, **TOL)
    np.testing.assert_allclose(tr.grad("u[0]"), [2.0, 4.0, 6.0], **TOL)
    np.testing.assert_allclose(tr.grad("u[1]"), [1.0, 1.0, 1.0], **TOL)    # dJ/du = ones_like(u)


def test_mm_backward_example():
    """(7.63): W = [[1, 2], [3, 4]], z = [5, 6], v = [1, 1] → Wᵀv = [4, 6]."""
    W = np.array([[1, 2], [3, 4]])
    z = np.array([5, 6])
    v = np.array([1, 1])
    mm = bpv.MM(W, np.zeros(2))
    np.testing.assert_allclose(mm.backward(z, v), [4.0, 6.0], **TOL)
    np.testing.assert_allclose(bpv.MM(W).backward(z, v), [4.0, 6.0], **TOL)  # b defaults to 0


def test_relu_backward_example():
    """(7.69): z = [-1, 2, 3], v = [.5, .5, .5] → [0, .5, .5]."""
    out = bpv.ReLU().backward(np.array([-1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(out, [0.0, 0.5, 0.5], **TOL)


def test_logistic_loss_backward_example():
    """(7.70): t = [0.2, -1, 0.5], y = [1, 0, 1], v = 1."""
    t = np.array([0.2, -1.0, 0.5])
    y = np.array([1, 0, 1])
    g = bpv.LogisticLoss().backward(t, y)
    # The notes print the first entry with 6 digits only.
    assert g[0] == pytest.approx(-0.450166, abs=1e-6)
    np.testing.assert_allclose(g[1:], [0.26894142, -0.37754067], **TOL)
    # v = 1 given explicitly, as in the notes' code
    np.testing.assert_allclose(bpv.LogisticLoss().backward(t, y, 1.0), g, rtol=0, atol=0)


W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
B1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
B2 = np.array([0.0])
X = np.array([1.0, 2.0])


def _two_layer():
    return bpv.Sequential([bpv.MM(W1, B1), bpv.ReLU(), bpv.MM(W2, B2), bpv.Sigmoid()],
                          loss=bpv.SquaredLoss())


@pytest.fixture(scope="module")
def two_layer_trace():
    return _two_layer().backprop(X, [1.0])


def test_final_example_forward(two_layer_trace):
    tr = two_layer_trace
    np.testing.assert_allclose(tr.value("u[0]"), X, **TOL)
    np.testing.assert_allclose(tr.value("u[1]"), [0.5, 1.1], **TOL)          # z1
    np.testing.assert_allclose(tr.value("u[2]"), [0.5, 1.1], **TOL)          # a1
    np.testing.assert_allclose(tr.value("u[3]"), [-0.3], **TOL)              # z2
    np.testing.assert_allclose(tr.value("u[4]"), [0.42555748], **TOL)        # a2
    assert tr.loss == pytest.approx(0.1649921, abs=1e-8)                     # loss
    np.testing.assert_allclose(np.ravel(tr.value("u[5]")), [0.1649921], **TOL)


def test_final_example_gradients(two_layer_trace):
    tr = two_layer_trace
    # the notes print dloss/dW2 = dloss_dz2 * a1 as a 1-D array; ours is 1×2 like W2
    assert tr.grad("W[2]").shape == W2.shape
    np.testing.assert_allclose(tr.grad("W[2]").ravel(), [-0.07021362, -0.15446997], **TOL)
    np.testing.assert_allclose(tr.grad("b[2]"), [-0.14042725], **TOL)
    assert tr.grad("W[1]").shape == W1.shape
    np.testing.assert_allclose(tr.grad("W[1]"), [[-0.07021362, -0.14042725],
                                                 [0.07021362, 0.14042725]], **TOL)
    np.testing.assert_allclose(tr.grad("b[1]"), [-0.07021362, 0.07021362], **TOL)
    grads = tr.param_grads()
    assert set(grads) == {"W[1]", "b[1]", "W[2]", "b[2]"}
    np.testing.assert_allclose(grads["b[1]"], [-0.07021362, 0.07021362], **TOL)


def test_final_example_intermediate_gradients(two_layer_trace):
    """The notes' dloss_da2, dloss_dz2, dloss_da1, dloss_dz1, from their printed numbers."""
    tr = two_layer_trace
    a2 = 0.42555748
    np.testing.assert_allclose(tr.grad("u[4]"), [a2 - 1.0], atol=1e-8)                   # da2
    np.testing.assert_allclose(tr.grad("u[3]"), [-0.14042725], atol=1e-8)               # dz2
    np.testing.assert_allclose(tr.grad("u[2]"), [-0.07021362, 0.07021362], atol=1e-8)   # da1
    np.testing.assert_allclose(tr.grad("u[1]"), [-0.07021362, 0.07021362], atol=1e-8)   # dz1


def test_final_example_label_forms_and_batch_of_one():
    """y as a list, a float or an array gives the same numbers; a batch of one column too."""
    ref = _two_layer().backprop(X, [1.0])
    for y in (1.0, np.array([1.0]), [1]):
        assert _two_layer().backprop(X, y).same_as(ref)
    tb = _two_layer().backprop(X[:, None], [[1.0]])
    np.testing.assert_allclose(tb.value("u[4]"), [[0.42555748]], **TOL)
    assert tb.loss == pytest.approx(0.1649921, abs=1e-8)
    np.testing.assert_allclose(tb.grad("W[1]"), ref.grad("W[1]"), **TOL)
    np.testing.assert_allclose(tb.grad("b[2]"), [-0.14042725], **TOL)


def test_final_example_by_hand_matches_notes_code():
    """Run the notes' numpy code itself and compare with the trace to full precision."""
    relu = lambda z: np.maximum(0, z)
    relu_prime = lambda z: (z > 0).astype(float)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    z1 = W1 @ X + B1
    a1 = relu(z1)
    z2 = W2 @ a1 + B2
    a2 = sigmoid(z2)
    loss = 0.5 * (a2 - 1.0) ** 2
    dz2 = (a2 - 1.0) * sigmoid(z2) * (1 - sigmoid(z2))
    dz1 = (W2.T @ dz2) * relu_prime(z1)
    tr = _two_layer().backprop(X, [1.0])
    np.testing.assert_allclose(tr.loss, loss[0], rtol=1e-12)
    np.testing.assert_allclose(tr.grad("W[2]").ravel(), dz2 * a1, rtol=1e-12)
    np.testing.assert_allclose(tr.grad("W[1]"), np.outer(dz1, X), rtol=1e-12)
    np.testing.assert_allclose(tr.grad("b[1]"), dz1, rtol=1e-12)
