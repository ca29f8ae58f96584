"""The scalar circuit (Theorem 7.4.1, Remark 7.4.3) and indexing of traced values.

The circuit's numbers are checked three ways: against the module-level pass (its gradients are
the module-level gradients, entry by entry), against ``Program.run`` on the same scalar program
(one operation at a time: the same steps and the same numbers), and against finite differences
(indexing). Operation counts are checked on cases counted by hand.
"""
import json

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.theory import circuit as C
from backpropviz.theory import engine
from backpropviz.theory import expand as X
from backpropviz.display import draw
from backpropviz.core.modules import Index

RNG = np.random.default_rng(20261128)
ACTIVATIONS = ["relu", "sigmoid", "tanh", "identity"]
LOSSES = ["logistic", "squared", "cross_entropy"]


def labels(loss, k, batch):
    if loss == "cross_entropy":
        return RNG.integers(0, k, size=batch) if batch else int(RNG.integers(0, k))
    shape = (k, batch) if batch else (k,)
    if loss == "logistic":
        return (RNG.random(shape) < 0.5).astype(float)
    return RNG.normal(size=shape)


def random_mlp_trace(activation, loss, batch, sizes=(3, 4, 3), input_grad=False):
    k = 3 if loss == "cross_entropy" else sizes[-1]
    net = bpv.mlp([*sizes[:-1], k], activation=activation, loss=loss,
                  seed=int(RNG.integers(1000)))
    x = RNG.normal(size=(sizes[0], batch) if batch else sizes[0])
    return net.backprop(x, labels(loss, k, batch), input_grad=input_grad)


def module_level_grads(tr):
    """Every gradient the module-level pass computes (totals only), by node name."""
    return {s.writes.node: tr[s.writes] for s in tr.specs
            if s.writes.grad and not s.writes.is_contribution}


# --- its gradients are the module-level gradients ------------------------------------------------

@pytest.mark.parametrize("batch", [0, 4], ids=["one", "batch"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_scalar_gradients_equal_module_level_gradients(activation, loss, batch):
    tr = random_mlp_trace(activation, loss, batch, input_grad=True)
    c = C.circuit(tr)
    grads = module_level_grads(tr)
    assert {"W[1]", "b[1]", "W[2]", "b[2]", "u[0]", "u[1]"} <= set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(c.module_grad(name), g, rtol=1e-10, atol=1e-13, err_msg=name)
    for n in tr.nodes:
        np.testing.assert_allclose(c.module_value(n.name), tr.value(n.name), rtol=1e-12,
                                   atol=1e-14, err_msg=n.name)
    assert c.loss == pytest.approx(tr.loss, rel=1e-12)
    # every entry's gradient is also a step of the circuit, under the entry's own name
    for name in ("W[1]", "b[2]"):
        for entry, g in zip(c.entries(name).ravel(), grads[name].ravel()):
            assert float(c.grad(entry)) == pytest.approx(g, rel=1e-10, abs=1e-13)


def test_scalar_gradients_on_deeper_and_wider_networks():
    for sizes in [(2, 5, 5, 5, 1), (4, 8, 2)]:
        net = bpv.mlp(list(sizes), activation="tanh", loss="squared", seed=3)
        tr = net.backprop(RNG.normal(size=(sizes[0], 3)), RNG.normal(size=(sizes[-1], 3)))
        c = C.circuit(tr)
        for name, g in module_level_grads(tr).items():
            np.testing.assert_allclose(c.module_grad(name), g, rtol=1e-10, atol=1e-13)


def test_traced_functions_expand_too():
    """Add with broadcasting, Sub, Div, Power, MatMul of every shape, Sum, Exp, Log, Sin, Cos,
    a module applied to a traced value, a value with several users and indexing."""
    W = RNG.normal(size=(2, 3))

    def f(x, A):
        h = bpv.Sigmoid()(bpv.MM(W, np.array([0.1, -0.2]))(x))
        s = (h @ h) + (A @ x).sum() + (h @ A @ x) + ((A @ np.ones((3, 2))) ** 2).sum() / 3.0
        return (s + (x * 2.0 - 1.0).exp().sum() + (x ** 2 + 1.0).log().sum()
                + (x[:2] - x[1:]).sin().sum() + A[0, 1] * x.cos()[2])
    tr = bpv.trace(f, RNG.normal(size=3), RNG.normal(size=(2, 3)), names=["x", "A"])
    c = C.circuit(tr)
    ops = {m.op for m in tr.modules}
    assert {"MM", "Sigmoid", "MatMul", "Sum", "Power", "Div", "Exp", "Log", "Sin", "Cos",
            "Index", "Add", "Sub", "Mul"} <= ops
    for name, g in module_level_grads(tr).items():
        np.testing.assert_allclose(c.module_grad(name), g, rtol=1e-9, atol=1e-12, err_msg=name)


EDGE_CASES = {
    "Σ of one entry (an identity)": (lambda z: z[0:1].sum() * 2.0, [(3,)]),
    "powers 0, 1, −1": (lambda z: ((z ** 0) * z + (z ** 1.0) * 3.0 + (z + 3.0) ** -1.0).sum(),
                        [(3,)]),
    "division": (lambda a, b: (a / (b * b + 1.0)).sum(), [(3,), (3,)]),
    "@ of every shape": (lambda A, x: (A @ x) @ (A @ x) + (x @ x) + (A @ np.ones((3, 2))).sum()
                         + (np.ones(2) @ A).sum(), [(2, 3), (3,)]),
    "an index giving a matrix": (lambda W: (W[:, :2] * W[::-1, 1:]).sum(), [(2, 3)]),
    "a batch, indexed": (lambda X: bpv.SquaredLoss()(X[1:], np.zeros((1, 4))), [(2, 4)]),
    "a single number": (lambda a: (a * a).exp() + a, [()]),
    "broadcasting": (lambda A, b: ((A + b) * (A - 1.0)).sum(), [(2, 3), (3,)]),
    "a loss called on a batch": (lambda T: bpv.CrossEntropyLoss()(T, np.array([0, 2])),
                                 [(3, 2)]),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_cases_against_the_module_level_and_program_run(name):
    f, shapes = EDGE_CASES[name]
    xs = [RNG.normal(size=s) for s in shapes]
    tr = bpv.trace(f, *xs, names=None if len(xs) == 1 else [f"x[{i + 1}]" for i in range(len(xs))])
    c = C.circuit(tr)
    for n, g in module_level_grads(tr).items():
        np.testing.assert_allclose(c.module_grad(n), g, rtol=1e-10, atol=1e-14, err_msg=n)
    prog = c.program
    assert prog.specs == c.specs
    ref = prog.run({n: c.given[n] for n in prog.given_names})
    for s in c.specs:
        assert float(c[s.writes]) == pytest.approx(float(ref[s.writes]), rel=1e-12, abs=1e-15)


def test_shared_parameters_and_a_skip_connection():
    """One MM applied twice shares W[1], b[1]: each entry's gradient sums both uses (7.53)."""
    mm = bpv.MM(RNG.normal(size=(2, 2)), RNG.normal(size=2))
    tr = bpv.trace(lambda z: (mm(bpv.Tanh()(mm(z))) + z).sum(), RNG.normal(size=2))
    c = C.circuit(tr)
    for name, g in module_level_grads(tr).items():
        np.testing.assert_allclose(c.module_grad(name), g, rtol=1e-10, atol=1e-14, err_msg=name)
    acc = [s for s in c.specs if s.kind == "acc" and s.node.startswith("W[1]")]
    assert len(acc) == 4 and all(len(s.subs) == 2 for s in acc)


def test_an_entry_that_J_ignores_has_gradient_zero():
    """Remark 7.4.2: J = z_1 z_3 does not depend on z_2, whose gradient is 0 (no step at all
    at scalar level: nothing uses it)."""
    tr = bpv.trace(lambda z: z[0] * z[2], np.array([2.0, 5.0, 3.0]))
    c = C.circuit(tr)
    np.testing.assert_array_equal(c.module_grad("u[0]"), [3.0, 0.0, 2.0])
    assert bpv.Key.gradient("u[0]₂") not in c
    with pytest.raises(bpv.BackpropError, match="not computed"):      # as the module level says
        C.circuit(random_mlp_trace("relu", "squared", 0)).module_grad("u[0]")


# --- the same steps and numbers as Program.run on the scalar program -----------------------------

@pytest.mark.parametrize("make", [
    lambda: random_mlp_trace("relu", "logistic", 0),
    lambda: random_mlp_trace("sigmoid", "cross_entropy", 3, input_grad=True),
    lambda: random_mlp_trace("tanh", "squared", 2),
    lambda: bpv.trace(lambda z: (z * z)[0] * z[1] + z[[0, 0, 2]].sum() + (z[:2] @ z[1:]),
                      np.array([0.3, -0.2, 0.5])),
], ids=["relu-logistic", "sigmoid-ce-batch", "tanh-squared-batch", "traced-with-reuse"])
def test_vectorized_values_equal_program_run(make):
    tr = make()
    c = C.circuit(tr)
    prog = c.program
    # the same graph and steps as Program's compile makes of the scalar equations
    assert prog.nodes == c.nodes and prog.modules == c.modules and prog.specs == c.specs
    assert [s.reads for s in prog.specs] == [s.reads for s in c.specs]
    assert [s.rule for s in prog.specs] == [s.rule for s in c.specs]
    ref = prog.run({n: c.given[n] for n in prog.given_names})
    for k, s in enumerate(c.specs):
        assert float(c[s.writes]) == pytest.approx(float(ref[s.writes]), rel=1e-12, abs=1e-15), \
            f"step {k + 1}: {s.writes}"


def test_the_structure_is_compiled_once_per_graph_and_shapes():
    net = bpv.mlp([2, 3, 1], loss="logistic", seed=0)
    a = C.circuit(net.backprop(np.array([1.0, 2.0]), 1.0))
    b = C.circuit(net.backprop(np.array([-1.0, 0.5]), 0.0))
    assert a.structure is b.structure and a.specs is b.specs
    assert a.loss != b.loss
    batch = C.circuit(net.backprop(RNG.normal(size=(2, 2)), [[1.0, 0.0]]))
    assert batch.structure is not a.structure
    loaded = bpv.Trace.from_json(net.backprop(np.array([1.0, 2.0]), 1.0).to_json())
    assert C.circuit(loaded).structure is a.structure       # found by the graph, not identity
    assert C.circuit(net, np.array([1.0, 2.0]), 1.0).same_as(a)
    assert C.circuit(a) is a
    engine.clear_caches(a.source)                             # a cold start: built again
    cold = C.circuit(a.source)
    assert cold.structure is not a.structure and cold.same_as(a)
    assert C.circuit(a.source).structure is cold.structure


# --- exact operation counts ------------------------------------------------------------------

def test_mm_2x2_with_bias_is_4_multiplications_and_4_additions():
    W, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    tr = bpv.trace(lambda z: bpv.MM(W, b)(z).sum(), np.array([1.0, -1.0]))
    cnt = C.circuit(tr).counts
    assert cnt.forward_by_module["M_1"] == 8
    assert cnt.forward_by_kind == {"mul": 4, "add": 4 + 1}           # + the Σ of two entries
    assert cnt.forward == 9
    # backward: each × and + has two inputs that need a gradient (W_ij and z_j; the two addends):
    # 8 + 8 (B1) steps, and z_1, z_2 are used by two products each: 2 sums of 2 (1 addition each)
    assert cnt.backward_by_module == {"M_1": 16 + 2, "M_2": 2}
    assert cnt.backward_by_kind == {"add": 8 + 2, "mul": 8, "sum (7.53)": 2}
    assert cnt.backward == 20 and cnt.steps == (9, 1 + 18 + 2)     # the seed is no operation


def test_relu_of_width_3_is_3_operations():
    tr = bpv.trace(lambda z: z.relu().sum(), np.array([1.0, -2.0, 3.0]))
    cnt = C.circuit(tr).counts
    assert cnt.forward_by_module == {"M_1": 3, "M_2": 2}
    assert cnt.forward_by_kind == {"relu": 3, "add": 2}
    assert cnt.backward_by_module == {"M_1": 3, "M_2": 4}


def test_logistic_loss_on_one_logit():
    """exp, 1 + ·, log, y ×, −: 5 operations; backward: − to both sides, log, + to e^t (1 is a
    constant), exp, × to t (y is a label): 6 steps, and t has two users: 1 addition."""
    net = bpv.Sequential([bpv.Identity()], loss=bpv.LogisticLoss())
    c = C.circuit(net.backprop(np.array([0.7]), 1.0, input_grad=True))
    cnt = c.counts
    assert cnt.forward_by_module == {"M_1": 1, "M_2": 5}
    assert cnt.forward_by_kind == {"id": 1, "exp": 1, "add": 1, "log": 1, "mul": 1, "sub": 1}
    assert cnt.backward_by_module == {"M_1": 1, "M_2": 6 + 1}
    assert [m.op for m in c.modules] == ["Identity", "Exp", "Add", "Log", "Mul", "Sub"]
    assert c.loss == pytest.approx(np.log1p(np.exp(0.7)) - 0.7)
    assert float(c.grad("u[1]₁")) == pytest.approx(1 / (1 + np.exp(-0.7)) - 1.0)


def test_loss_decompositions_and_the_batch_mean():
    t, y = np.array([[0.2, -1.0], [0.4, 0.3]]), np.array([[1.0, 0.0], [0.0, 1.0]])

    def count(loss, batch):
        net = bpv.Sequential([bpv.Identity()], loss=loss)
        tt, yy = (t, y) if batch else (t[:, 0], y[:, 0])
        c = C.circuit(net.backprop(tt, yy))
        return c.counts.forward_by_kind, c
    # squared, one example of 2 entries: 2 −, 2 ×, 1 + (Σ), ½ ×
    kinds, _ = count(bpv.SquaredLoss(), False)
    assert kinds == {"id": 2, "sub": 2, "mul": 3, "add": 1}
    # cross-entropy, batch of 2 examples of 2 logits: per example 2 exp, 1 + (Σ), log, 2 ×,
    # 1 + (Σ), −; then 1 + over the batch and × 1/B
    kinds, c = count(bpv.CrossEntropyLoss(), True)
    assert kinds == {"id": 4, "exp": 4, "add": 2 + 2 + 1, "log": 2, "mul": 4 + 1, "sub": 2}
    assert 0.5 in [float(c.given[n.name]) for n in c.nodes if n.kind == "const"]   # 1/B
    kinds, _ = count(bpv.LogisticLoss(), True)
    assert kinds == {"id": 4, "exp": 4, "add": 4 + 3, "log": 4, "mul": 4 + 1, "sub": 4}


def test_counts_text_and_module_keys():
    c = C.circuit(random_mlp_trace("relu", "logistic", 0))
    text = str(c.counts)
    assert "forward operations N =" in text and "mul" in text and "M_1" in text
    assert list(c.counts.forward_by_module) == ["M_1", "M_2", "M_3", "M_4"]
    assert sum(c.counts.forward_by_module.values()) == c.counts.forward == c.n_forward


# --- Theorem 7.4.1 in numbers -----------------------------------------------------------------

def test_backward_operations_stay_within_a_constant_factor_of_N():
    """Over a sweep of growing MLPs (N from about a hundred to about ten thousand), backward
    operations / forward operations stays below 5/2: the gradient circuit is O(N). Per weight
    the forward pass has a × and a +, the backward pass two (B1) steps for each and about one
    addition of the sum (7.53) over the users of a hidden value: 5 per 2."""
    ratios, sizes = [], []
    for width in (2, 4, 8, 16, 32, 64):
        net = bpv.mlp([4, width, width, 1], activation="relu", loss="logistic", seed=0)
        cnt = C.circuit(net.backprop(np.ones(4), 1.0)).counts
        sizes.append(cnt.forward)
        ratios.append(cnt.ratio)
        # forward: 2 operations per weight (× and +), one per ReLU, 5 for the loss
        n_w = 4 * width + width * width + width
        assert cnt.forward == 2 * n_w + 2 * width + 5
    assert sizes[-1] > 8000 and sizes == sorted(sizes)
    assert max(ratios) < 2.5 and ratios[-1] > 2.3
    assert ratios == sorted(ratios)               # rising towards its constant, 5/2


# --- names, membership, stepping, drawing, JSON ----------------------------------------------

def test_names_and_what_each_number_belongs_to():
    c = C.circuit(random_mlp_trace("relu", "logistic", 0))
    node = c.node("u[1]₂")
    assert node.part_of == ("M_1", "u[1]", (1,)) and node.module is not None
    assert c.node("W[1]₁,₂").part_of == ("M_1", "W[1]", (0, 1))
    assert c.node("u[0]₃").part_of == (None, "u[0]", (2,))
    products = [n for n in c.nodes if n.name.startswith("s[") and n.part_of[1] == "u[1]"
                and n.part_of[2] == (1,)]
    assert len(products) == 3 + 3 - 1 + 1 - 1       # 3 products, 2 partial sums (+ b is u[1]₂)
    assert c.entries("W[2]").shape == (3, 4) and c.entries("u[4]").shape == ()
    batch = C.circuit(random_mlp_trace("relu", "squared", 3))
    assert batch.node("u[1]₂,₃").part_of == ("M_1", "u[1]", (1, 2))
    assert C.entry_name("W[1]", (0, 11)) == "W[1]₁,₁₂"


def test_stepping_text_and_presentation_work_unchanged():
    c = C.circuit(random_mlp_trace("relu", "logistic", 0, sizes=(2, 2, 1)))
    text = bpv.trace_text(c)
    assert len(text.splitlines()) == len(c)
    first = bpv.step_text(c, 1)
    assert "s[1] = W[1]₁,₁ × u[0]₁" in first
    k = next(i for i, s in enumerate(c.specs, 1) if s.kind == "acc")
    view = bpv.present(c, k)
    assert view.tag == "(7.53)" and view.numbers and view.tex
    for k in range(len(c) + 1):
        bpv.present(c, k).lines
    assert c.steps[-1].number == len(c)
    assert c.known_at(c.specs[0].writes) == 1
    assert c.module("M_1.1").name == "M_1.1"


def test_json_round_trip_is_exact():
    c = C.circuit(random_mlp_trace("tanh", "cross_entropy", 2))
    text = c.to_json()
    back = bpv.Trace.from_json(text)
    assert back.same_as(c) and c.same_as(back)
    assert back.node("u[1]₂,₁").part_of == ("M_1", "u[1]", (1, 0))
    assert json.loads(text)["nodes"][0][4] == [None, "u[0]", [0, 0]]
    # a module-level trace keeps its four-field nodes
    assert len(json.loads(random_mlp_trace("relu", "logistic", 0).to_json())["nodes"][0]) == 4


def test_a_bad_part_of_in_a_file_is_refused():
    d = json.loads(C.circuit(random_mlp_trace("relu", "logistic", 0)).to_json())
    d["nodes"][0][4] = [None, "u[0]", [-1]]
    with pytest.raises(bpv.BackpropError, match="nodes\\[0\\]"):
        bpv.Trace.from_dict(d)


def test_a_small_circuit_renders():
    net = bpv.Sequential([bpv.MM(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])),
                          bpv.ReLU()], loss=bpv.LogisticLoss())
    c = C.circuit(net.backprop(np.array([1.0, -1.0]), np.array([0.0, 1.0])))
    dot = draw.Renderer(c, layout=draw.Layout(c, place=False)).dot(5)
    assert "M_1.5: ×" in dot and "u[1]₂" in dot
    try:
        draw.find_engine()
    except draw.EngineMissing:
        pytest.skip("no Graphviz engine here: the DOT source was checked")
    svg = bpv.render(c, step=5).svg
    assert "<svg" in svg and "u[1]₂" in svg


def test_overflow_in_the_literal_formula_is_refused():
    """The circuit computes log(1 + exp(t)) as written: for t = 800, exp overflows."""
    net = bpv.Sequential([bpv.Identity()], loss=bpv.LogisticLoss())
    tr = net.backprop(np.array([800.0]), 1.0)
    assert np.isfinite(tr.loss)
    with pytest.raises(bpv.BackpropError, match="M_2.1 = exp .* overflows"):
        C.circuit(tr)


def test_a_module_without_a_decomposition_is_named():
    class Affine(bpv.Module):
        label = "affine"

        def forward(self, z):
            return 2 * z

        def backward(self, z, v):
            return 2 * v
    tr = bpv.trace(lambda z: Affine()(z).sum(), np.array([1.0, 2.0]))
    with pytest.raises(bpv.BackpropError, match="M_1 = affine has no decomposition"):
        C.circuit(tr)
    with pytest.raises(bpv.BackpropError, match="give a trace"):
        C.circuit(42)


# --- indexing and slicing of traced values ----------------------------------------------------

def fd_grad(f, *xs, eps=1e-6):
    """Central differences of f with respect to each input, entry by entry."""
    out = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            up, down = [a.copy() for a in xs], [a.copy() for a in xs]
            up[i][idx] += eps
            down[i][idx] -= eps
            g[idx] = (_plain(f, *up) - _plain(f, *down)) / (2 * eps)
        out.append(g)
    return out


def _plain(f, *xs):
    return float(bpv.trace(f, *xs, names=[f"x[{i + 1}]" for i in range(len(xs))]
                           if len(xs) > 1 else None).loss)


INDEXED = {
    "z[0]": (lambda z: z[0] * z[1], (3,)),
    "slice": (lambda z: (z[:2] * z[1:]).sum(), (3,)),
    "negative and step": (lambda z: (z[::-2] ** 2).sum() + z[-1], (5,)),
    "repeated": (lambda z: (z[[0, 0, 2, 0]] * np.array([1.0, 2.0, 3.0, 4.0])).sum(), (3,)),
    "overlapping": (lambda z: (z[:3].exp() + z[1:4]).sum() + (z[1:3] * z[0:2]).sum(), (4,)),
    "W[i, j]": (lambda W: W[0, 1] * W[1, 0] + W[1, 1] ** 3, (2, 2)),
    "row and column": (lambda W: (W[1] * W[:, 2]).sum() + W[0, 1:].sum(), (3, 3)),
    "array index 2-d": (lambda W: (W[[0, 1, 1], [2, 0, 0]] ** 2).sum(), (2, 3)),
    "boolean mask": (lambda z: (z[np.array([True, False, True])] ** 2).sum(), (3,)),
    "numpy integers": (lambda z: z[np.int64(1)] * z[np.array([2, 2])].sum(), (3,)),
}


@pytest.mark.parametrize("name", INDEXED)
def test_indexing_gradients_against_finite_differences(name):
    f, shape = INDEXED[name]
    x = RNG.normal(size=shape)
    tr = bpv.trace(f, x)
    np.testing.assert_allclose(tr.grad("u[0]"), fd_grad(f, x)[0], rtol=1e-6, atol=1e-8)
    assert bpv.gradcheck(f, x).ok
    # and the same gradient from the scalar circuit
    np.testing.assert_allclose(C.circuit(tr).module_grad("u[0]"), tr.grad("u[0]"), rtol=1e-12,
                               atol=1e-14)


def test_micrograd_style_code_traces_and_passes_gradcheck():
    """A neuron written entry by entry (index a vector, combine the entries), as in micrograd or
    CS231n: sum(w_i x_i for ...) + b, tanh, squared error."""
    def neuron(w, x):
        act = sum((wi * xi for wi, xi in zip(w, x)), 0.5)
        out = act.tanh()
        return (out - 0.3) * (out - 0.3)
    w, x = RNG.normal(size=3), RNG.normal(size=3)
    tr = bpv.trace(neuron, w, x, names=["w", "x"])
    assert sum(m.op == "Index" for m in tr.modules) == 6
    assert bpv.gradcheck(neuron, w, x).ok
    g = fd_grad(neuron, w, x)
    np.testing.assert_allclose(tr.grad("w"), g[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tr.grad("x"), g[1], rtol=1e-6, atol=1e-8)
    assert len(list(iter(bpv.trace(lambda z: sum(z), x).nodes))) > 0


def test_index_rule_text_tag_and_backward():
    tr = bpv.trace(lambda z: z[[0, 0, 2]].sum(), np.array([1.0, 2.0, 3.0]))
    k = next(i for i, s in enumerate(tr.specs, 1) if s.kind == "B1" and s.module == "M_1")
    view = bpv.present(tr, k)
    assert view.tag == "(7.58)"
    assert view.symbolic == "∂J/∂u[0] = ∂J/∂u[1] scattered into zeros at [[0, 0, 2]]"
    assert view.numbers == "[1, 1, 1] scattered into zeros at [[0, 0, 2]]"
    assert view.result == "[2, 0, 1]"
    assert "u[1] = u[0][[0, 0, 2]]" in bpv.step_text(tr, 1)
    assert tr.module("M_1").label == "(·)[[0, 0, 2]]"
    assert bpv.Trace.from_json(tr.to_json()).same_as(tr)


@pytest.mark.parametrize("shape,index,text", [
    ((5,), 0, "[0]"), ((5,), slice(None, 2), "[:2]"), ((5,), slice(1, None), "[1:]"),
    ((5,), slice(None, None, 2), "[::2]"), ((5,), slice(None, None, -1), "[::-1]"),
    ((4,), -1, "[3]"), ((2, 3), (1, 0), "[1, 0]"), ((2, 3), 0, "[0]"),
    ((2, 3), (slice(None), 1), "[:, 1]"), ((2, 3), (0, slice(1, None)), "[0, 1:]"),
    ((2, 3), ([0, 1], [1, 0]), "[[0, 1], [1, 0]]"), ((3, 3), slice(None, None, -1), "[::-1]"),
])
def test_index_text_reads_as_numpy_and_selects_the_same(shape, index, text):
    m = Index(index, shape)
    assert m.text == text
    z = np.arange(np.prod(shape), dtype=float).reshape(shape)
    np.testing.assert_array_equal(eval("z" + text), z[index])
    np.testing.assert_array_equal(m.forward(z), z[index])


@pytest.mark.parametrize("shape,index", [((3,), slice(None, 2)), ((3,), [0, 0, 2]),
                                         ((2, 3), (slice(None), 1)), ((2, 3), 1)])
def test_index_rule_expressions_compute_what_the_code_computes(shape, index):
    """As tests/test_rules.py does for every rule, on outputs with several entries."""
    from backpropviz.core import expr as E
    from backpropviz.core.rules import Context
    m = Index(index, shape)
    z = RNG.normal(size=shape)
    out = m.forward(z)
    v = RNG.normal(size=out.shape)
    env = {"z": E.columns(z), "v": E.columns(v)}
    ctx = Context({"z": z.ndim, "v": v.ndim}, m.consts)
    f = m.rule("F").expression(ctx).eval(env)
    np.testing.assert_array_equal(np.asarray(f).ravel(), out.ravel())
    b = m.rule("B1", 0).expression(ctx).eval(env)
    np.testing.assert_array_equal(np.asarray(b).ravel(), m.backward(z, v).ravel())


def test_bad_indices_are_refused():
    z = np.array([1.0, 2.0, 3.0])
    with pytest.raises(bpv.BackpropError, match="does not fit"):
        bpv.trace(lambda v: v[3].sum(), z)
    with pytest.raises(bpv.BackpropError, match="selects no entries"):
        bpv.trace(lambda v: v[2:2].sum(), z)
    with pytest.raises(bpv.BackpropError, match="whole numbers"):
        bpv.trace(lambda v: v[1.0] * 2.0, z)
    with pytest.raises(bpv.BackpropError, match="not a traced value"):
        bpv.trace(lambda v: v[v] * 2.0, z)
    with pytest.raises(bpv.BackpropError, match="single number"):
        bpv.trace(lambda v: v.sum()[0], z)
    with pytest.raises(bpv.BackpropError, match="was made for an input of shape 3"):
        Index(0, (3,)).check_input(np.zeros(4), "M_1")
    assert [float(e.value) for e in _iterate(z)] == [1.0, 2.0, 3.0]


def _iterate(z):
    out = []

    def f(v):
        out.extend(v)            # iterating a traced vector indexes its entries, then stops
        return v.sum()
    bpv.trace(f, z)
    return out


def test_a_big_circuit_is_not_drawn_but_can_be_stepped_as_text():
    net = bpv.mlp([2, 32, 32, 1], seed=0)              # about 2,300 value nodes
    c = bpv.circuit(net.backprop(np.array([0.5, -1.0]), 1.0))
    with pytest.raises(bpv.BackpropError, match=r"value nodes.*expand one module.*bpv.step_text"):
        bpv.render(c, 1)
    assert bpv.step_text(c, len(c)).startswith(f"step {len(c)}/{len(c)}")


# --- one module expanded in place (issue 8) ------------------------------------------------------

@pytest.mark.parametrize("batch", [0, 3], ids=["one", "batch"])
@pytest.mark.parametrize("loss", LOSSES)
def test_expanding_one_module_keeps_the_rest_and_the_gradients(loss, batch):
    tr = random_mlp_trace("sigmoid", loss, batch, input_grad=True)
    grads = module_level_grads(tr)
    for mi in tr.modules:
        x = C.circuit(tr, expand=mi.name)
        assert isinstance(x, X.Expanded) and x.source is tr and x.expanded == mi.name
        for name, g in grads.items():                      # every module-level gradient
            np.testing.assert_allclose(x.grad(name), g, rtol=1e-10, atol=1e-13, err_msg=name)
        for n in tr.nodes:                                 # every module-level node and value
            np.testing.assert_allclose(x.value(n.name), tr.value(n.name), rtol=1e-12,
                                       atol=1e-14, err_msg=n.name)
        # only that module is at scalar level, with part_of; the others keep their class
        ops = [m.op for m in x.modules if x.names[m.name] != mi.name]
        assert sorted(ops) == sorted(m.op for m in tr.modules if m.name != mi.name)
        inner = [n for n in x.nodes if n.part_of is not None and n.kind == "value"]
        assert inner and all(n.part_of[0] in (mi.name, None) or n.part_of[1] in mi.inputs
                             + mi.params for n in inner)
        # the routing modules: (·)ᵢ into entries, [·] back into u[i] (unless u[i] is a number)
        if np.ndim(tr.value(mi.output)):
            last = [m for m in x.modules if x.names[m.name] == mi.name][-1]
            assert last.op == "Stack" and last.output == mi.output
        # the step maps keep the place and the phase
        nf = tr.n_forward
        for k in range(len(tr) + 1):
            j = X.expanded_step(x, k)
            assert 0 <= j <= len(x) and (j <= x.n_forward) == (k <= nf)
            assert X.unexpanded_step(x, j) <= k or k == 0
        for j in range(len(x) + 1):
            k = X.unexpanded_step(x, j)
            assert 0 <= k <= len(tr) and (k <= nf) == (j <= x.n_forward)


def test_expanded_mm_reads_as_the_notes_write_it_and_survives_json():
    net = bpv.mlp([2, 2, 1], seed=0)
    tr = net.backprop(np.array([1.0, -2.0]), 1.0)
    x = X.expand(tr, "M_1")
    from backpropviz.display import presentation as P
    text = "\n".join(P.step_text(x, k) for k in range(1, len(x) + 1))
    assert "u[0]₂ = (u[0])₂" in text and "u[1] = [u[1]₁, u[1]₂]" in text
    assert "(7.58)" in text and "s[1] = W[1]₁,₁ × u[0]₁" in text
    counts = {}
    for m in x.modules:
        counts[m.op] = counts.get(m.op, 0) + 1
    assert counts["Mul"] == 4 and counts["Add"] == 4 and counts["Stack"] == 1   # 2×2 MM with b
    assert counts["Entry"] == 2 + 4 + 2                                         # u[0], W[1], b[1]
    back = type(x).__mro__[1].from_json(x.to_json())
    assert back.same_as(x)
    picture = draw.render(x, 20)
    assert "u[1]₁" in str(getattr(picture, "data", picture))


def test_expand_refuses_clearly():
    tr = bpv.mlp([2, 2, 1], seed=0).backprop(np.array([1.0, -2.0]), 1.0)
    with pytest.raises(bpv.BackpropError, match="no module named 'M_9'"):
        X.expand(tr, "M_9")
    assert X.expand(C.circuit(tr), "M_2").source is tr          # from a circuit: its source
