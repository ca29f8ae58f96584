"""Bad input raises BackpropError naming the module, the step and the shapes; nothing is kept."""
import warnings

import numpy as np
import pytest

import backpropviz as bpv


def raises(fn, *fragments, absent=()):
    """Call fn, expect BackpropError (and no numpy warning); its message contains every fragment."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(bpv.BackpropError) as info:
            fn()
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    for frag in absent:
        assert frag not in msg, f"{frag!r} in {msg!r}"
    assert isinstance(info.value, ValueError)
    return msg


W32 = np.arange(6.0).reshape(3, 2) / 10


def net32(loss="squared"):
    return bpv.Sequential([bpv.MM(W32, np.zeros(3)), bpv.Tanh()], loss=loss)


# --- shapes ----------------------------------------------------------------------------------------

def test_input_of_the_wrong_length():
    msg = raises(lambda: net32().backprop([1.0, 2.0, 3.0], np.zeros(3)),
                 "M_1", "MM", "forward step 1", "3×2", "it is 3")
    assert msg.count("forward step") == 1


def test_batch_of_the_wrong_height():
    raises(lambda: net32().backprop(np.ones((3, 4)), np.zeros((3, 4))),
           "M_1", "MM", "forward step 1", "3×2", "3×4")


def test_input_with_three_axes():
    """matmul would broadcast a 3-d input silently; MM wants a vector or one column per example."""
    raises(lambda: net32().backprop(np.ones((2, 2, 5)), 0.0),
           "M_1", "MM", "forward step 1", "3×2", "2×2×5")
    rng = np.random.default_rng(0)
    raises(lambda: bpv.trace(lambda x: bpv.MM(W32)(x).sum(), rng.normal(size=(2, 2, 5))),
           "M_1", "MM", "forward step 1", "3×2", "2×2×5")


def test_wrong_size_in_a_later_module():
    mm2 = bpv.MM(np.ones((1, 3)))
    net = bpv.Sequential([bpv.ReLU(), bpv.MM(W32), bpv.Tanh(), mm2], loss="squared")
    raises(lambda: net.backprop([1.0, 2.0, 3.0], 0.0), "M_2", "MM", "forward step 2", "3×2")


def test_bias_of_the_wrong_length():
    raises(lambda: bpv.MM(W32, np.zeros(2)), "MM", "3×2", "b has shape 2")
    raises(lambda: bpv.MM(W32, np.zeros((3, 1))), "MM", "3×2", "3×1")
    raises(lambda: bpv.MM(np.ones(3)), "MM", "matrix", "shape 3")
    raises(lambda: bpv.MM([["a", 1.0]]), "MM", "W", "not a number")


def test_consecutive_mm_sizes_that_do_not_match():
    raises(lambda: bpv.Sequential([bpv.MM(W32), bpv.ReLU(), bpv.MM(np.ones((1, 2)))]),
           "M_3", "MM[W[2], b[2]]", "1×2", "takes 2 inputs", "M_1", "gives 3 outputs")
    raises(lambda: bpv.Sequential([bpv.MM(W32), bpv.MM(np.ones((2, 4))), bpv.ReLU()],
                                  loss="squared"),
           "M_2", "2×4", "takes 4 inputs", "gives 3 outputs")


def test_label_of_the_wrong_shape():
    raises(lambda: net32().backprop([1.0, 2.0], np.zeros(2)), "the label y", "shape 2", "shape 3")
    raises(lambda: net32("logistic").backprop([1.0, 2.0], [0.0, 1.0]),
           "M_3", "forward step 3", "shape 2", "shape 3")


def test_sequential_without_loss_needs_a_single_number():
    net = bpv.Sequential([bpv.MM(W32)])
    raises(lambda: net.backprop([1.0, 2.0]), "M_1", "single number", "shape 3")
    one = bpv.Sequential([bpv.MM(np.array([[1.0, -1.0]]), [0.5]), bpv.Sigmoid()])
    tr = one.backprop([1.0, 2.0])                        # J of shape (1,) is a single number
    assert tr.loss == pytest.approx(1 / (1 + np.exp(0.5)))
    assert tr.grad("W[1]").shape == (1, 2) and tr.grad("b[1]").shape == (1,)
    raises(lambda: one.backprop(np.ones((2, 3))), "M_2", "single number", "1×3")


# --- labels ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("y", [[2.0], [0.5], [-1.0], [np.inf]])
def test_logistic_labels_outside_0_1(y):
    net = bpv.mlp([2, 3, 1], loss="logistic")
    if np.isinf(y[0]):
        raises(lambda: net.backprop([1.0, 2.0], y), "label y", "NaN or inf")
    else:
        raises(lambda: net.backprop([1.0, 2.0], y), "M_4", "ℓ_logistic", "forward step 4",
               "0 or 1", f"{y[0]:g}")


def test_logistic_labels_outside_0_1_in_a_batch_and_a_trace():
    net = bpv.mlp([2, 3, 2], loss="logistic")
    raises(lambda: net.backprop(np.ones((2, 3)), [[0, 1, 1], [1, 0.25, 0]]),
           "M_4", "forward step 4", "0 or 1", "0.25")
    raises(lambda: bpv.trace(lambda t: bpv.LogisticLoss()(t, [1.0, 3.0]), [0.1, 0.2]),
           "M_1", "ℓ_logistic", "forward step 1", "0 or 1", "3.")
    with pytest.raises(bpv.BackpropError):
        bpv.LogisticLoss()(np.zeros(2), [1.0, 7.0])


@pytest.mark.parametrize("y,frag", [
    ([1.0, 1.0, 0.0], "one-hot"),          # two ones
    ([0.0, 0.0, 0.0], "one-hot"),          # no one
    ([0.5, 0.5, 0.0], "one-hot"),          # a distribution, not a label
    (3, "0..2"),                           # index out of range
    (-1, "0..2"),
    (1.5, "0..2"),                         # not an integer
    ([0, 1], "0..2"),                      # two indices for one example
])
def test_cross_entropy_bad_labels(y, frag):
    net = bpv.mlp([2, 3, 3], loss="cross_entropy")
    raises(lambda: net.backprop([1.0, 2.0], y), "M_4", "ℓ_ce", "forward step 4", frag, "3")


def test_cross_entropy_bad_labels_in_a_batch():
    net = bpv.mlp([2, 3, 3], loss="cross_entropy")
    x = np.ones((2, 4))
    raises(lambda: net.backprop(x, [0, 1, 2]), "M_4", "forward step 4", "3×4", "shape 3")
    raises(lambda: net.backprop(x, [0, 1, 2, 3]), "M_4", "forward step 4", "0..2")
    onehot = np.eye(3)[:, [0, 1, 2, 0]]
    onehot[1, 3] = 1.0
    raises(lambda: net.backprop(x, onehot), "M_4", "forward step 4", "one-hot", "3×4")
    raises(lambda: bpv.CrossEntropyLoss().check_label(np.zeros((3, 2)), np.array([0.0, 5.0]),
                                                       "M_9"), "M_9", "0..2")


def test_missing_label():
    raises(lambda: bpv.mlp([2, 3, 1], loss="squared").backprop([1.0, 2.0]), "M_4", "label y")


# --- NaN and inf ------------------------------------------------------------------------------------

def test_overflow_in_a_traced_exp_names_the_step():
    msg = raises(lambda: bpv.trace(lambda z: (z * 2.0).exp().sum(), np.array([1.0, 1000.0])),
                 "M_2", "exp", "forward step 2", "u[2]", "NaN or inf")
    assert "u[1]" in msg                                   # its (finite) input


def test_log_of_a_negative_number_names_the_step():
    msg = raises(lambda: bpv.trace(lambda z: (z - 5.0).log().sum(), np.array([1.0, 10.0])),
                 "M_2", "log", "forward step 2", "positive", "-4.")
    assert msg.count("forward step") == 1                  # the place is said once
    raises(lambda: bpv.trace(lambda z: z.log().sum(), np.array([0.0, 1.0])), "M_1", "log",
           "forward step 1")


def test_division_by_zero_names_the_step():
    raises(lambda: bpv.trace(lambda z: (z.sin() / (z * 0.0)).sum(), np.array([1.0, 2.0])),
           "M_3", "÷", "forward step 3", "u[3]", "NaN or inf")


def test_overflow_in_a_network_names_the_step():
    big = bpv.Sequential([bpv.MM(np.array([[10.0, 10.0], [1.0, 0.0]])), bpv.ReLU()],
                         loss="squared")
    raises(lambda: big.backprop([1e308, 1e308], [0.0, 0.0]), "M_1", "forward step 1", "u[1]",
           "NaN or inf")
    sq = bpv.mlp([2, 2, 1], loss="squared", activation="identity", seed=3)
    raises(lambda: sq.backprop([1e200, -3e200], [0.0]), "M_4", "forward step 4", "u[4]",
           "NaN or inf")


@pytest.mark.parametrize("bad", [[1.0, np.nan], [np.inf, 0.0], [[1.0, 2.0], [np.nan, 0.0]]])
def test_nan_or_inf_in_the_input(bad):
    raises(lambda: bpv.mlp([2, 3, 1], loss="squared").backprop(bad, 0.0),
           "u[0]", "input", "NaN or inf")
    raises(lambda: bpv.trace(lambda x: x.sum(), bad), "u[0]", "NaN or inf")
    raises(lambda: bpv.mlp([2, 3, 1], loss="squared").backprop([1.0, 2.0], [np.nan]),
           "label y", "NaN or inf")


# --- the networks themselves ------------------------------------------------------------------------

def test_empty_network():
    raises(lambda: bpv.Sequential([]), "Sequential", "at least one module")
    raises(lambda: bpv.Sequential([], loss="squared"), "Sequential", "at least one module")


def test_not_a_module_in_sequential():
    raises(lambda: bpv.Sequential([bpv.MM(W32), "relu"]), "M_2", "relu")
    raises(lambda: bpv.Sequential([bpv.MM(W32), bpv.SquaredLoss()]), "M_2", "loss=")
    raises(lambda: bpv.Sequential([bpv.MM(W32), bpv.Add()]), "M_2")
    raises(lambda: bpv.Sequential([bpv.MM(W32)], loss=bpv.ReLU()), "loss")


def test_unknown_activation_or_loss_name():
    raises(lambda: bpv.mlp([2, 3, 1], activation="gelu"), "mlp", "'gelu'",
           "relu, sigmoid, tanh, identity")
    raises(lambda: bpv.mlp([2, 3, 1], loss="hinge"), "'hinge'",
           "squared, logistic, cross_entropy")
    raises(lambda: bpv.mlp([2, 3, 1], output_activation="softmax"), "'softmax'", "relu")
    raises(lambda: bpv.Sequential([bpv.MM(W32)], loss="mse"), "'mse'", "squared")
    raises(lambda: bpv.mlp([2]), "mlp", "sizes")
    raises(lambda: bpv.mlp([2, 0, 1]), "mlp", "sizes")


@pytest.mark.parametrize("bad", ["abc", [1, "a"], np.array([1.0, None], dtype=object),
                                 [1.0, None], None, {"a": 1}, [[1.0, 2.0], [3.0]]],
                         ids=["str", "mixed-list", "object-array", "None-in-list", "None",
                              "dict", "ragged"])
def test_non_numeric_input(bad):
    raises(lambda: bpv.mlp([2, 3, 1], loss="squared").backprop(bad, 0.0), "u[0]", "input")
    raises(lambda: bpv.trace(lambda x: x.sum(), bad), "u[0]")
    raises(lambda: bpv.mlp([2, 3, 1], loss="squared").backprop([1.0, 2.0], bad), "label y")


def test_traced_function_misuse():
    raises(lambda: bpv.trace(lambda x: x * 2.0, np.array([1.0, 2.0])), "single number",
           "shape 2", ".sum()")
    raises(lambda: bpv.trace(lambda x: 3.0, np.array([1.0])), "trace", "float")
    raises(lambda: bpv.trace(lambda x: x ** np.array([1.0, 2.0]), np.array([1.0, 2.0])),
           "exponent")
    raises(lambda: bpv.trace(lambda: None), "at least one input")
    kept = []
    bpv.trace(lambda x: kept.append(x) or x.sum(), np.array([1.0]))
    raises(lambda: kept[0] + 1.0, "inside bpv.trace")
    raises(lambda: bpv.trace(lambda x: (bpv.MM(W32)(x) + x).sum(), [1.0, 2.0]), "M_2",
           "forward step 2", "u[1] is 3", "u[0] is 2")


def test_gradcheck_misuse():
    raises(lambda: bpv.gradcheck(42, [1.0]), "gradcheck")
    raises(lambda: bpv.gradcheck(bpv.mlp([2, 1]), [1.0, 2.0], [1.0], [2.0]), "gradcheck")


# --- a failure leaves the network usable -------------------------------------------------------------

def test_a_failed_backprop_leaves_the_network_usable():
    rng = np.random.default_rng(4)
    net = bpv.Sequential([bpv.MM([[10.0, 10.0], [1.0, -1.0], [0.5, 2.0]], rng.normal(size=3)),
                          bpv.Tanh(), bpv.MM(rng.normal(size=(3, 3)))], loss="cross_entropy")
    x, y = np.array([0.3, -0.7]), 2
    good = net.backprop(x, y)
    good_ig = net.backprop(x, y, input_grad=True)
    json_before = good.to_json()
    params_before = {k: v.copy() for k, v in net.params.items()}
    bad_calls = [
        lambda: net.backprop([1.0, 2.0, 3.0], y),
        lambda: net.backprop([1.0, np.nan], y),
        lambda: net.backprop(x, 7),
        lambda: net.backprop(x, [1.0, 1.0, 0.0]),
        lambda: net.backprop("abc", y),
        lambda: net.backprop(np.ones((2, 2, 2)), y),
        lambda: net.backprop([1e308, 1e308], y, input_grad=True),   # overflow at M_1
        lambda: net.backprop(x),
    ]
    for call in bad_calls:
        with pytest.raises(bpv.BackpropError):
            call()
        again = net.backprop(x, y)
        assert again.same_as(good)
        assert net.backprop(x, y, input_grad=True).same_as(good_ig)
    assert good.to_json() == json_before
    for k, v in net.params.items():
        np.testing.assert_array_equal(v, params_before[k])
    # and a traced function after a failed trace
    f = lambda z: (z * z).log().sum()
    ok = bpv.trace(f, [1.0, 2.0])
    with pytest.raises(bpv.BackpropError):
        bpv.trace(f, [0.0, 2.0])
    assert bpv.trace(f, [1.0, 2.0]).same_as(ok)


def test_same_module_object_twice_in_a_chain_is_refused():
    mm = bpv.MM(np.eye(2), np.zeros(2))
    with pytest.raises(bpv.BackpropError, match=r"M_3 is the same MM object as M_1.*bpv.trace"):
        bpv.Sequential([mm, bpv.ReLU(), mm], loss=bpv.SquaredLoss())


def test_given_arrays_are_read_only():
    net = bpv.mlp([2, 2, 1], seed=0)
    tr = net.backprop([0.5, -1.0], 1)
    for name, a in tr.given.items():
        assert not a.flags.writeable, name


@pytest.mark.parametrize("names", [["a", "a"], ["u[1]", "b"], ["a"], ["c[1]", "b"], ["", "b"]])
def test_bad_input_names_are_refused(names):
    with pytest.raises(bpv.BackpropError, match="trace: .*name"):
        bpv.trace(lambda a, b: (a * b).sum(), np.array([1.0]), np.array([2.0]), names=names)


@pytest.mark.parametrize("name", ["dJ/da", "a via M_1", "∂J/∂u[0]", "{v}", "x (2)"])
def test_names_that_look_like_keys_are_just_names(name):
    """Keys are data, not strings: a name may look like a gradient key and nothing breaks."""
    tr = bpv.trace(lambda a, b: (a * b + a).sum(), np.array([1.0]), np.array([2.0]),
                   names=[name, "b"])
    assert tr.grad(name).tolist() == [3.0] and tr.grad(name, via="M_1").tolist() == [2.0]
    assert tr.grad("b").tolist() == [1.0]
    acc = tr.specs[-1]
    assert acc.kind == "acc" and acc.writes == bpv.Key.gradient(name)
    assert str(acc.writes) == "∂J/∂" + name
    assert [str(k) for k in acc.reads] == [f"∂J/∂{name} via M_1", f"∂J/∂{name} via M_2"]


def test_good_input_names_are_used():
    tr = bpv.trace(lambda a, b: (a * b).sum(), np.array([3.0]), np.array([2.0]), names=["a", "b"])
    assert tr.grad("a").tolist() == [2.0] and tr.grad("b").tolist() == [3.0]
