"""The bugs found by the redesign (one source of truth), each with a test that failed before it."""
import types

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.display import presentation as P
from backpropviz.teach.stepper import StepperModel


# --- 1. the accumulation step names each user's contribution, in text and TeX -------------------

def test_accumulation_step_shows_each_contribution_in_text_and_tex():
    tr = bpv.trace(lambda z: (z.exp() * z.exp()).sum(), np.array([1.0, 2.0]))
    view = bpv.present(tr, len(tr))
    assert view.spec.kind == "acc"
    assert view.symbolic == "∂J/∂u[0] = ∂J/∂u[0] via M_1 + ∂J/∂u[0] via M_2"
    lhs, rhs = view.tex.split(" = ")
    assert "via" not in lhs and rhs.count(r"\text{via }") == 2
    assert "M_{1}" in rhs and "M_{2}" in rhs
    # each user's (B1) writes its own contribution, not the total
    for k in (len(tr) - 2, len(tr) - 1):
        assert P.present(tr, k).tex.split(" = ")[0].count("via") == 1


# --- 2. and 3. a learner's own module with parameters, through everything ---------------------

class Affine(bpv.Module):
    """a ⊙ z + c, written as the docstrings say: parameters as attributes, param_grads."""

    label = "affine"
    param_names = ("a", "c")

    def __init__(self, a, c):
        super().__init__()
        self.a, self.c = np.asarray(a, float), np.asarray(c, float)

    def forward(self, z):
        return self.a * z + self.c

    def backward(self, z, v):
        return self.a * v

    def param_grads(self, z, v):
        return {"a": z * v, "c": v}


class AffineWithRules(bpv.Module):
    """The same module with its rules in the table: tags, text and TeX shown everywhere."""

    label = "affine"
    param_names = ("a", "c")

    def __init__(self, a, c):
        super().__init__()
        self.a, self.c = np.asarray(a, float), np.asarray(c, float)

    @bpv.rule("F", "(F)", bpv.expr.Sym("a") * bpv.expr.z + bpv.expr.Sym("c"))
    def forward(self, z):
        return self.a * z + self.c

    @bpv.rule("B1", "(7.69)", bpv.expr.Sym("a") * bpv.expr.v)
    def backward(self, z, v):
        return self.a * v

    @bpv.rule("B2", "(7.58)", bpv.expr.z * bpv.expr.v, param="a")
    def grad_a(self, z, v):
        return z * v

    @bpv.rule("B2", "(7.58)", bpv.expr.v, param="c")
    def grad_c(self, z, v):
        return v


@pytest.mark.parametrize("cls", [Affine, AffineWithRules])
def test_own_two_parameter_module_goes_through_everything(cls):
    rng = np.random.default_rng(1)
    net = bpv.Sequential([bpv.MM(rng.normal(size=(2, 2)), rng.normal(size=2)),
                          cls([0.5, -2.0], [0.1, 0.3]), bpv.Tanh()], loss=bpv.SquaredLoss())
    x, y = np.array([0.3, -0.7]), np.array([0.2, 0.1])
    tr = net.backprop(x, y)
    assert [n.name for n in tr.nodes if n.kind == "param"] == ["W[1]", "b[1]", "a[2]", "c[2]"]
    np.testing.assert_allclose(tr.grad("a[2]"), tr.value("u[1]") * tr.grad("u[2]"))
    report = bpv.gradcheck(net, x, y)
    assert report.ok, report
    assert [r.name for r in report.rows] == ["W[1]", "b[1]", "a[2]", "c[2]"]
    k = next(s.number for s in tr.steps if s.module == "M_2" and s.kind == "B2")
    text = bpv.step_text(tr, k)
    assert "∂J/∂a[2]" in text
    if cls is Affine:
        assert "B[affine, a[2]](∂J/∂u[2])" in text
    else:
        assert "∂J/∂a[2] = u[1] ⊙ ∂J/∂u[2]" in text
    pic = bpv.render(tr, k)
    assert "affine[a[2], c[2]]" in pic.svg
    s = bpv.Stepper(net, x, y)
    s.go(k)
    assert "∂J/∂a" in s.equation.value or r"\partial a" in s.equation.value


def test_gradcheck_catches_a_wrong_parameter_gradient_of_an_own_module():
    class Slip(Affine):
        def param_grads(self, z, v):
            return {"a": v, "c": v}          # forgot the z
    net = bpv.Sequential([Slip([0.5, -2.0], [0.1, 0.3])], loss=bpv.SquaredLoss())
    report = bpv.gradcheck(net, np.array([0.3, -0.7]), np.array([0.2, 0.1]))
    assert not report.ok and [r.ok for r in report.rows] == [False, True]


def test_gradcheck_of_an_mm_subclass_keeps_its_class():
    class MyMM(bpv.MM):
        label = "MyMM"
    net = bpv.Sequential([MyMM(np.array([[1.0, -0.5], [0.2, 0.3]]), np.zeros(2)), bpv.ReLU(),
                          bpv.MM(np.array([[0.7, -1.2]]))], loss="logistic")
    assert bpv.gradcheck(net, np.array([0.4, 0.9]), 1.0).ok
    assert type(net.with_params({"W[1]": np.eye(2)}).layers[0]) is MyMM


# --- 4. bpv.trace is a plain function; its module is backpropviz.core.tracing ----------------

def test_trace_function_and_its_module():
    import backpropviz.core.tracing as T
    assert bpv.trace is T.trace and bpv.Var is T.Var and not isinstance(bpv.trace, types.ModuleType)
    tr = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
    assert tr.loss == 14.0 and T.trace(lambda z: z.sum(), [1.0]).loss == 1.0


# --- 6. the caption before the first step says what is given -----------------------------------

def test_caption_before_the_first_step_names_only_what_is_given():
    tr = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0]))
    head = bpv.present(tr, 0).header
    assert head == "step 0/4 · before the first step · given x = u[0]; constants = c[1]" or \
        "θ" not in head and "y" not in head.split("given")[1]
    net_tr = bpv.mlp([2, 2, 1], seed=0).backprop([1.0, 2.0], 1)
    assert "θ = W[1], b[1], W[2], b[2]; y" in bpv.present(net_tr, 0).header


# --- 7. the stepper knows the seed the network was built with -----------------------------------

def test_stepper_reports_the_seed_of_the_network():
    m = StepperModel(bpv.mlp([2, 3, 1], seed=7), np.array([0.5, -1.0]), 1.0)
    assert m.settings.seed == 7
    assert m.rebuild(x=(1.0, 2.0))                     # same network: weights kept
    assert np.array_equal(m.net.params["W[1]"], bpv.mlp([2, 3, 1], seed=7).params["W[1]"])


# --- 8. a squared-loss label of the wrong shape is refused ---------------------------------------

def test_batch_label_of_the_wrong_shape_is_refused():
    net = bpv.mlp([2, 2], loss="squared", seed=0)
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(bpv.BackpropError, match=r"y has shape 2 .*2×2.*one example per column"):
        net.backprop(X, [1.0, 0.0])
    assert net.backprop(X, [[1.0, 0.0], [0.0, 1.0]]).loss > 0
    one_out = bpv.mlp([2, 1], loss="squared", seed=0)
    assert one_out.backprop(X, [1.0, 0.0]).value("y").shape == (1, 2)   # one number per example


# --- 9. NumPy scalars as exponents ----------------------------------------------------------------

@pytest.mark.parametrize("p", [np.int64(2), np.float64(0.5), np.float32(3.0), 2, 0.5])
def test_numpy_scalars_are_numbers(p):
    x = np.array([1.0, 4.0])
    tr = bpv.trace(lambda z: (z ** p).sum(), x)
    np.testing.assert_allclose(tr.grad("u[0]"), float(p) * x ** (float(p) - 1))
    with pytest.raises(bpv.BackpropError, match="exponent"):
        bpv.trace(lambda z: (z ** True).sum(), x)


# --- 11. a batch's rules show the 1/B the numbers use --------------------------------------------

def test_batch_rules_show_one_over_b_and_the_sum_over_the_batch():
    net = bpv.Sequential([bpv.MM(np.array([[0.5, -1.0], [0.3, 0.2]]), np.zeros(2))],
                         loss="logistic")
    X, Y = np.array([[0.2, -1.0], [0.4, 0.6]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    tr = net.backprop(X, Y)
    loss_b1 = next(s for s in tr.steps if s.kind == "B1" and s.module == "M_2")
    view = bpv.present(tr, loss_b1.number)
    assert view.symbolic == "∂J/∂u[1] = (1/B) (σ(u[1]) − y) ∂J/∂u[2]"
    assert view.numbers.startswith("(1/2) (σ(")
    assert r"\frac{1}{B}" in view.tex
    # the substituted numbers give the result
    t, y = tr.value("u[1]"), tr.value("y")
    np.testing.assert_allclose(tr[loss_b1.writes], (1 / 2) * (1 / (1 + np.exp(-t)) - y))
    fwd = bpv.present(tr, 2)
    assert fwd.symbolic.startswith("u[2] = (1/B) Σ(")
    db = next(s for s in tr.steps if s.kind == "B2" and s.which == "b")
    assert bpv.present(tr, db.number).symbolic == "∂J/∂b[1] = Σ_j (∂J/∂u[1])[:, j]"
    caption = bpv.render(tr, loss_b1.number).svg
    assert "(1/B)" in caption and "(1/2)" in caption
    one = net.backprop(X[:, 0], Y[:, 0])              # one example: no 1/B
    assert "1/B" not in bpv.present(one, loss_b1.number).symbolic


# --- one step number everywhere -------------------------------------------------------------------

def test_one_step_number_everywhere():
    tr = bpv.mlp([2, 2, 1], seed=0).backprop([1.0, 2.0], 1)
    n = len(tr)
    for k in (0, 1, 9, n):
        head = bpv.present(tr, k).header
        assert head.startswith(f"step {k}/{n}")
        assert bpv.step_text(tr, k).startswith(f"step {k}/{n}")
        assert f'data-step="{k}"' in bpv.render(tr, k).svg
        assert f"step {k}/{n}" in bpv.render(tr, k).dot
    assert tr.steps[8].number == 9 and bpv.present(tr, 9).spec is tr.steps[8].spec
    m = StepperModel(tr)
    m.go(9)
    assert m.counter().startswith(f"step 9/{n}")
    for bad in (-1, n + 1, 1.5, True):
        with pytest.raises(bpv.BackpropError, match="out of range"):
            bpv.render(tr, bad)


# --- per-step cost independent of the trace's length ----------------------------------------------

def test_what_is_known_is_looked_up_not_rescanned():
    tr = bpv.trace(lambda z: sum(((z * float(i)).sin() for i in range(1, 40)), z).sum(),
                   np.array([0.1, 0.2]))
    k = len(tr) // 2
    known = set(tr.known(k))
    for s in tr.specs:
        assert tr.is_known(s.writes, k) == (s.writes in known)
    assert tr.travelled_at("M_1", "u[0]") <= len(tr)


def test_the_readme_example_of_an_own_module_runs():
    """The README's affine module goes through backprop, render, gradcheck and the Stepper."""
    import pathlib
    import re
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "class Affine" in b]
    rng = np.random.default_rng(5)
    ns = {"np": np, "bpv": bpv, "W": rng.normal(size=(2, 2)), "b": rng.normal(size=2),
          "x": np.array([0.3, -0.7]), "y": np.array([0.2, 0.1])}
    exec(compile(block, "README.md", "exec"), ns)
    tr = ns["trace"]
    k = next(s.number for s in tr.steps if str(s.writes) == "∂J/∂a[2]")
    assert bpv.present(tr, k).symbolic == "∂J/∂a[2] = u[1] ⊙ ∂J/∂u[2]"
    assert bpv.gradcheck(ns["net"], ns["x"], ns["y"]).ok
    assert "affine[a[2], c[2]]" in bpv.render(tr, 10).svg


def test_an_own_override_without_a_rule_is_shown_as_b_not_as_the_parents_formula():
    """A learner's backward function (maybe wrong) must not be shown as Wᵀ v with its numbers."""
    class Mine(bpv.MM):
        def backward(self, z, v):
            return self.W @ v                       # the slip: no transpose
    net = bpv.Sequential([Mine(np.array([[0.7, -1.6], [0.4, 1.0]])), bpv.Sigmoid()],
                         loss="squared")
    tr = net.backprop(np.array([0.3, 0.2]), np.array([0.1, 0.9]), input_grad=True)
    k = next(s.number for s in tr.steps if s.kind == "B1" and s.module == "M_1")
    view = bpv.present(tr, k)
    assert view.tag == "(7.63)" and "ᵀ" not in view.symbolic
    assert view.symbolic == "∂J/∂u[0] = B[MM, u[0]](∂J/∂u[1])"
    kw = next(s.number for s in tr.steps if s.kind == "B2" and s.which == "W")
    assert bpv.present(tr, kw).symbolic == "∂J/∂W[1] = ∂J/∂u[1] u[0]ᵀ"   # not overridden


def test_an_unwritten_function_is_a_clear_error():
    class Todo(bpv.Sigmoid):
        def backward(self, z, v):
            raise NotImplementedError()
    net = bpv.Sequential([bpv.MM(np.eye(2)), Todo()], loss="squared")
    with pytest.raises(bpv.BackpropError, match="not written yet"):
        net.backprop([1.0, 2.0], [0.0, 1.0])
