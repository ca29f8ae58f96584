"""bpv.check, the graded exercises' checker: correct modules pass, every slip of the rule table is
caught and named, shapes and batches, the learner's errors as messages, deterministic text, the
marked drawing; and the exercise lesson under nbgrader (generate, autograde, scores)."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import backpropviz as bpv
from helpers import nbgrader_course
from backpropviz.display import draw
from backpropviz.core import rules as R
from backpropviz.teach.exercise import MARK_LABEL, CheckReport
from backpropviz.display.text import inline

ROOT = Path(__file__).resolve().parents[1]


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _cols(t):
    return t.shape[1] if t.ndim == 2 else 1


# --- learners' modules: right ones, and one per slip ---------------------------------------------

class MySigmoid(bpv.Sigmoid):
    def backward(self, z, v):
        s = _sig(z)
        return s * (1 - s) * v


class MyMM(bpv.MM):
    def backward(self, z, v):
        return self.W.T @ v

    def grad_W(self, z, v):
        return np.outer(v, z) if z.ndim == 1 else v @ z.T

    def grad_b(self, z, v):
        return v if v.ndim == 1 else v.sum(axis=1)


class MyLogistic(bpv.LogisticLoss):
    def backward(self, t, y, v=1.0):
        return (_sig(t) - y) * v / _cols(t)


class MyCE(bpv.CrossEntropyLoss):
    def backward(self, t, y, v=1.0):
        e = np.exp(t - t.max(axis=0))
        return (e / e.sum(axis=0) - y) * v / _cols(t)


class ForgotTranspose(MyMM):
    def backward(self, z, v):
        return self.W @ v


class OuterOrder(MyMM):
    def grad_W(self, z, v):
        return np.outer(z, v) if z.ndim == 1 else z @ v.T


class ForgotSigmaPrime(bpv.Sigmoid):
    def backward(self, z, v):
        return v


class ForgotSquash(bpv.LogisticLoss):
    def backward(self, t, y, v=1.0):
        return (t - y) * v / _cols(t)


class ForgotSquashCE(bpv.CrossEntropyLoss):
    def backward(self, t, y, v=1.0):
        return (t - y) * v / _cols(t)


class ForgotMean(bpv.LogisticLoss):
    def backward(self, t, y, v=1.0):
        return (_sig(t) - y) * v


class ForgotMeanCE(bpv.CrossEntropyLoss):
    def backward(self, t, y, v=1.0):
        e = np.exp(t - t.max(axis=0))
        return (e / e.sum(axis=0) - y) * v


class ForgotBatchSum(MyMM):
    def grad_b(self, z, v):
        return v


class BatchOuter(MyMM):
    def grad_W(self, z, v):
        return np.outer(v, z)                # flattens a batch


class ForgotV(bpv.LogisticLoss):
    def backward(self, t, y, v=1.0):
        return (_sig(t) - y) / _cols(t)


class Affine(bpv.Module):
    """The README's own module, a ⊙ z + c, written from scratch."""
    label = "affine"
    param_names = ("a", "c")

    def __init__(self, a, c):
        super().__init__()
        self.a, self.c = np.asarray(a, float), np.asarray(c, float)

    def forward(self, z):
        return self.a * z + self.c

    def backward(self, z, v):
        return self.a * v

    def grad_a(self, z, v):
        return z * v

    def grad_c(self, z, v):
        return v


# --- correct modules pass -------------------------------------------------------------------------

@pytest.mark.parametrize("module", [MySigmoid, MyMM, MyLogistic, MyCE, bpv.Sigmoid, bpv.Tanh,
                                    bpv.ReLU, bpv.Identity, bpv.MM, bpv.SquaredLoss,
                                    bpv.LogisticLoss, bpv.CrossEntropyLoss, bpv.Exp, bpv.Sin,
                                    MyMM(np.ones((4, 3))), Affine([0.5, -2.0], [0.1, 0.3])],
                         ids=lambda m: m.__name__ if isinstance(m, type) else type(m).__name__)
def test_correct_modules_pass(module):
    report = bpv.check(module)
    assert report.ok and bool(report), report
    assert not report.slips and not report.errors and not report.marked
    assert report.text.endswith("(rtol 1e-05, atol 1e-06).") and report.text.count("✘") == 0
    # 3 single examples and 3 batches; a ⊙ z + c with a ∈ R^2 takes no matrix z: no batches
    n = 3 if isinstance(module, Affine) else 6
    assert all(len(f.cases) == n for f in report.functions)


def test_every_function_is_checked_b1_and_each_b2():
    report = bpv.check(MyMM)
    assert [(f.method, f.kind, f.wrt) for f in report.functions] == [
        ("backward", "B1", "z"), ("grad_W", "B2", "W"), ("grad_b", "B2", "b")]
    assert [f.rule for f in report.functions] == ["Wᵀ v (7.63)", "v zᵀ (7.65)", "v (7.66)"]
    assert all(f.mine for f in report.functions)
    only_backward = bpv.check(ForgotTranspose)
    assert [f.mine for f in only_backward.functions] == [True, True, True]   # MyMM's, not bpv's


def test_inherited_functions_are_said_to_be_the_modules_own():
    class OnlyBackward(bpv.MM):
        def backward(self, z, v):
            return self.W.T @ v
    text = str(bpv.check(OnlyBackward))
    assert text.count("(MM's own, not yours)") == 2


# --- each slip is detected and named --------------------------------------------------------------

@pytest.mark.parametrize("module, method, slip", [
    (ForgotTranspose, "backward", R.TRANSPOSE.name),
    (OuterOrder, "grad_W", R.OUTER_ORDER.name),
    (ForgotSigmaPrime, "backward", R.FORGOT_SIGMA_PRIME.name),
    (ForgotSquash, "backward", R.FORGOT_SQUASH.name),
    (ForgotSquashCE, "backward", R.FORGOT_SQUASH.name),
    (ForgotMean, "backward", R.FORGOT_MEAN.name),
    (ForgotMeanCE, "backward", R.FORGOT_MEAN.name),
    (ForgotBatchSum, "grad_b", R.FORGOT_BATCH_SUM.name),
    (BatchOuter, "grad_W", "v zᵀ for a batch"),
    (ForgotV, "backward", "forgot v"),
], ids=lambda x: x.__name__ if isinstance(x, type) else None)
def test_each_slip_is_detected_and_named(module, method, slip):
    report = bpv.check(module)
    assert not report.ok and not report
    assert report.slips == {method: slip}, report
    f = report.function(method)
    assert not f.ok and f.counterexample is not None and f.counterexample.slip.name == slip
    text = str(report)
    assert f"✘ {method}, " in text and f"Likely slip ({slip})" in text
    assert "Counterexample (" in text and "numerical:" in text and "yours:" in text
    assert text.rstrip().endswith("(rtol 1e-05, atol 1e-06).") and "NOT YET" in text


def test_the_counterexample_gives_the_inputs_the_numbers_and_the_entry():
    report = bpv.check(ForgotSigmaPrime)
    c = report.function("backward").counterexample
    z, v = dict(c.inputs)["z"], dict(c.inputs)["v"]
    assert np.allclose(c.got, v) and np.allclose(c.expected, _sig(z) * (1 - _sig(z)) * v)
    text = str(report)
    assert f"    z = {inline(z)}\n    v = {inline(v)}\n" in text
    assert re.search(r"entry \(\d+(, \d+)?\)", text) and "is off most: numerical" in text
    # the numbers shown are the numbers used: one decimal, so a learner can retype them
    assert np.array_equal(z, np.round(z, 1)) and np.array_equal(v, np.round(v, 1))


def test_a_missing_transpose_that_cannot_even_run_is_shown_with_the_learners_line():
    text = str(bpv.check(ForgotTranspose))
    assert "ForgotTranspose.backward raised ValueError: @ could not multiply" in text
    assert "return self.W @ v" in text and "Traceback" not in text


# --- shapes ---------------------------------------------------------------------------------------

def test_a_wrong_shape_is_said_with_the_shape_of_what_it_differentiates():
    class Column(bpv.Sigmoid):
        def backward(self, z, v):
            s = _sig(z)
            return (s * (1 - s) * v).reshape(-1, 1)
    report = bpv.check(Column, batch=None)
    text = str(report)
    assert "Wrong shape: yours is 3×1, but ∂J/∂z has the shape of z itself, 3 (§7.4.1)" in text
    assert [str(e) for e in report.errors] == [
        "Column.backward returned shape 3×1, but ∂J/∂z has the shape of z, 3 (§7.4.1; "
        "single example 1)", "Column.backward returned shape 3×1, but ∂J/∂z has the shape of z, 3 "
        "(§7.4.1; single example 2)", "Column.backward returned shape 3×1, but ∂J/∂z has the "
        "shape of z, 3 (§7.4.1; single example 3)"]
    with pytest.raises(bpv.BackpropError, match=r"Column\.backward returned shape 3×1"):
        report.raise_errors()


def test_an_instance_keeps_its_parameter_shapes_and_a_class_tries_several():
    wide = bpv.check(MyMM(np.ones((4, 3)), np.zeros(4)))
    assert {np.shape(dict(c.inputs)["W"]) for c in wide.function("grad_W").cases} == {(4, 3)}
    made = bpv.check(MyMM)
    assert {np.shape(dict(c.inputs)["W"]) for c in made.function("grad_W").cases} == {
        (3, 2), (2, 2), (2, 3)}
    square = [dict(c.inputs)["W"] for c in made.function("backward").cases
              if np.shape(dict(c.inputs)["W"]) == (2, 2)]
    assert square and all(np.abs(W - W.T).max() >= 0.5 for W in square)   # Wv ≠ Wᵀv


def test_shape_can_be_given_for_a_module_check_cannot_guess():
    class NeedsFour(bpv.Module):
        def forward(self, z):
            return z.reshape(2, 2).sum(axis=0)

        def backward(self, z, v):
            return np.repeat(v[None, :], 2, axis=0).ravel()
    with pytest.raises(bpv.BackpropError, match=r"NeedsFour.*shape=\(n,\)"):
        bpv.check(NeedsFour)
    assert bpv.check(NeedsFour, shape=4, batch=None).ok


# --- batches --------------------------------------------------------------------------------------

def test_batches_are_checked_where_the_module_takes_them():
    report = bpv.check(ForgotBatchSum)
    f = report.function("grad_b")
    assert [c.ok for c in f.cases] == [True] * 3 + [False] * 3
    assert all(c.batch for c in f.cases if not c.ok)
    assert "For a batch the rule is Σ_j (v)[:, j] (7.66)." in str(report)
    assert bpv.check(ForgotBatchSum, batch=None).ok         # single examples only: no slip seen
    no_batch = str(bpv.check(MySigmoid, batch=None))
    assert "(no batches)" in no_batch and "batch 1" not in no_batch


def test_a_loss_is_checked_with_v_other_than_one():
    cases = bpv.check(MyLogistic).function("backward").cases
    vs = [dict(c.inputs)["v"] for c in cases]
    assert vs[0] == 1.0 and any(v != 1.0 for v in vs)


def test_the_network_of_a_loss_runs_a_batch_when_one_example_shows_nothing():
    report = bpv.check(ForgotMeanCE)
    assert "a batch of 4 examples, one per column" in report.network
    assert report.marked == {"u[1]", "W[1]", "b[1]", "u[0]"}


# --- the learner's errors become messages ---------------------------------------------------------

def test_an_exception_in_learner_code_is_a_message_not_a_traceback():
    class Typo(bpv.Sigmoid):
        def backward(self, z, v):
            return sigma(z) * v            # noqa: F821 — the learner's typo

    report = bpv.check(Typo)
    text = str(report)
    assert not report.ok
    assert re.search(r"Typo\.backward raised NameError: name 'sigma' is not defined \(line \d+: "
                     r"return sigma\(z\) \* v # noqa: F821 — the learner's typo\)", text)
    assert "Traceback" not in text and "File \"" not in text
    assert "Also in the other 5 cases" in text
    assert "Backprop through it failed, so there is no drawing:" in text \
        and "NameError: name 'sigma' is not defined" in text and report.picture() is None
    assert all(isinstance(e, bpv.BackpropError) and "Typo.backward" in str(e)
               for e in report.errors)


def test_nbgraders_placeholder_says_not_written_yet():
    class Todo(bpv.MM):
        def grad_W(self, z, v):
            raise NotImplementedError()
    report = bpv.check(Todo)
    assert [f.ok for f in report.functions] == [True, False, True]
    assert "Todo.grad_W raised NotImplementedError: not written yet (replace " \
           "`raise NotImplementedError()` with your code)" in str(report)


@pytest.mark.parametrize("body, said", [
    ("s = _sig(z)", "Bad.backward returned None: is a `return` missing?"),
    ("return 'σ′(z) v'", "Bad.backward returned str 'σ′(z) v', not numbers"),
    ("return [v, 1]", "Bad.backward returned list"),
    ("v *= _sig(z) * (1 - _sig(z)); return v", "Bad.backward changed its input v in place"),
    ("return v / 0", "Bad.backward returned NaN or inf"),
])
def test_unusable_returns_are_said(body, said):
    ns = {"bpv": bpv, "np": np, "_sig": _sig}
    exec(textwrap.dedent(f"""
        class Bad(bpv.Sigmoid):
            def backward(self, z, v):
                {body}
    """), ns)
    report = bpv.check(ns["Bad"])
    assert not report.ok and said in str(report)
    assert any(said in str(e) for e in report.errors)


@pytest.mark.parametrize("arg, said", [
    (42, "check: give a module"),
    (int, "int is not a module"),
    (bpv.Add, r"check\(Add\): it takes 2 inputs"),
])
def test_check_refuses_what_it_cannot_test(arg, said):
    with pytest.raises(bpv.BackpropError, match=said):
        bpv.check(arg)


def test_a_class_that_cannot_be_made_says_to_give_an_instance():
    class NeedsArgs(bpv.Sigmoid):
        def __init__(self, k):
            super().__init__()
    with pytest.raises(bpv.BackpropError, match=r"check\(NeedsArgs\): making one with "
                                                 r"NeedsArgs\(\) failed .*give an instance"):
        bpv.check(NeedsArgs)


@pytest.mark.parametrize("options", [{"seed": -1}, {"cases": 0}, {"batch": 1}, {"rtol": -1.0},
                                     {"atol": float("nan")}])
def test_bad_options_are_refused(options):
    with pytest.raises(bpv.BackpropError, match="check: "):
        bpv.check(MySigmoid, **options)


# --- determinism ----------------------------------------------------------------------------------

def test_the_text_is_deterministic_within_and_across_processes():
    assert str(bpv.check(ForgotTranspose)) == str(bpv.check(ForgotTranspose))
    assert str(bpv.check(ForgotTranspose, seed=1)) != str(bpv.check(ForgotTranspose))
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, {tests!r})
        import test_exercises as T, backpropviz as bpv
        print(bpv.check(T.ForgotTranspose)); print(bpv.check(T.ForgotMeanCE))
    """).format(tests=str(ROOT / "tests"))
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1
    assert str(bpv.check(ForgotTranspose)) + "\n" + str(bpv.check(ForgotMeanCE)) + "\n" in outs


# --- the drawing: marked nodes --------------------------------------------------------------------

def _engine():
    try:
        draw.find_engine()
    except draw.EngineMissing:
        pytest.skip("no Graphviz engine here (./dev test installs one)")


def test_the_nodes_whose_gradient_disagrees_are_marked_in_the_svg():
    _engine()
    report = bpv.check(ForgotSigmaPrime)
    assert report.marked == {"u[1]", "W[1]", "b[1]", "u[0]"}
    assert ("Backprop disagrees with finite differences at ∂J/∂u[1], ∂J/∂W[1], ∂J/∂b[1], "
            "∂J/∂u[0] (✘ in the drawing)") in str(report)
    svg = report.picture().svg
    assert sorted(n for n in ("u[0]", "W[1]", "b[1]", "u[1]", "u[2]", "W[2]", "b[2]", "u[3]")
                  if f'data-marked="{n}"' in svg) == sorted(report.marked)
    assert svg.count('class="mark"') == len(report.marked) + 1      # + the legend's swatch
    assert MARK_LABEL in svg and 'class="cap head"' not in svg          # no caption
    html = report._repr_mimebundle_()["text/html"]
    assert "<svg" in html and "NOT YET" in html
    assert report._repr_mimebundle_()["text/plain"] == str(report)


def test_a_correct_module_has_no_marks_and_no_mark_legend():
    _engine()
    svg = bpv.check(MySigmoid).picture().svg
    assert "data-marked" not in svg and MARK_LABEL not in svg


def test_render_marks_any_node_and_refuses_unknown_ones():
    _engine()
    tr = bpv.mlp([2, 2, 1], seed=0).backprop([1.0, 2.0], 1)
    pic = bpv.render(tr, marked={"W[2]"}, mark_label="look here")
    assert 'data-marked="W[2]"' in pic.svg and "look here" in pic.svg
    assert "peripheries=2" in pic.source
    plain = bpv.render(tr)
    assert "data-marked" not in plain.svg and "peripheries" not in plain.source
    assert 'class="mark"' not in plain.svg
    with pytest.raises(bpv.BackpropError, match="marked: no node named u\\[9\\]"):
        bpv.render(tr, marked={"u[9]"})


# --- the API --------------------------------------------------------------------------------------

def test_bpv_check_is_a_function_that_loads_the_exercise_checks_on_first_use():
    import backpropviz.core.gradcheck as C
    assert callable(bpv.check) and not isinstance(bpv.check, types.ModuleType)
    assert C.gradcheck is bpv.gradcheck and C.numerical_grad is bpv.numerical_grad
    assert isinstance(bpv.check(MySigmoid), CheckReport) and bpv.CheckReport is CheckReport
    code = "import sys, backpropviz; print('backpropviz.teach.exercise' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"          # loaded on the first call only


# --- the Stepper on a network of the learner's modules --------------------------------------------

def _learner_net():
    W1, b1 = np.array([[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]]), np.array([0.01, 0.02, -0.03])
    W2, b2 = np.array([[0.7, -0.8, 0.9]]), np.array([0.05])
    mine = bpv.Sequential([MyMM(W1, b1), MySigmoid(), MyMM(W2, b2)], loss=MyLogistic())
    ref = bpv.Sequential([bpv.MM(W1, b1), bpv.Sigmoid(), bpv.MM(W2, b2)], loss="logistic")
    return mine, ref, np.array([1.0, 2.0]), np.array([1.0])


def test_the_stepper_runs_on_a_network_of_the_learners_modules():
    mine, ref, x, y = _learner_net()
    model = bpv.StepperModel(mine, x, y)
    ref_model = bpv.StepperModel(ref, x, y)
    assert model.n == ref_model.n
    for _ in range(model.n):
        model.next()
        ref_model.next()
        a, b = model.view(), ref_model.view()
        # the learner's own functions are shown as B[M, z](v) with the tag of the rule they
        # implement (never the built-in formula with numbers it might not follow)
        assert a.result == b.result and a.tag == b.tag
        assert a.symbolic == b.symbolic or a.symbolic.split(" = ", 1)[1].startswith("B[")
    stepper = bpv.Stepper(mine, x, y)
    stepper.model.to_backward()
    assert "backward" in stepper.model.counter()


def test_a_network_of_the_learners_modules_equals_the_builtin_one():
    mine, ref, x, y = _learner_net()
    a, b = mine.backprop(x, y), ref.backprop(x, y)
    for p in ("W[1]", "b[1]", "W[2]", "b[2]"):
        assert np.allclose(a.grad(p), b.grad(p), rtol=1e-12, atol=1e-14)
    assert bpv.gradcheck(mine, x, y).ok


# --- the exercise lesson under nbgrader -----------------------------------------------------------

@pytest.mark.slow
def test_nbgrader_releases_without_solutions_and_grades_solved_full_unanswered_not(tmp_path):
    pytest.importorskip("nbgrader")
    import nbformat
    from nbgrader.api import Gradebook

    course, nbgrader = nbgrader_course(tmp_path)
    teacher = ROOT / "notebooks" / "05_exercises.ipynb"
    nbgrader("generate_assignment", "ps1")
    released = course / "release" / "ps1" / "05_exercises.ipynb"
    text = released.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "np.exp(-z)" not in text and "self.W.T @ v" not in text and "v.sum(axis=1)" not in text
    rel = nbformat.read(released, as_version=4)
    solutions = [c for c in rel.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) == 4
    assert all("raise NotImplementedError()" in c.source for c in solutions)
    assert all(not c.get("outputs") for c in rel.cells if c.cell_type == "code")

    # a student who solved everything (the teacher's notebook), one who answered nothing, and
    # one who wrote only the sigmoid
    partial = nbformat.read(released, as_version=4)
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in
              nbformat.read(teacher, as_version=4).cells if "nbgrader" in c.metadata}
    for c in partial.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid_backward":
            c.source = "\n".join(line for line in solved["sigmoid_backward"].splitlines()
                                 if "### BEGIN SOLUTION" not in line
                                 and "### END SOLUTION" not in line)
    for student, nb in (("solved", teacher), ("blank", released), ("partial", partial)):
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        target = course / "submitted" / student / "ps1" / "05_exercises.ipynb"
        if isinstance(nb, Path):
            shutil.copy(nb, target)
        else:
            nbformat.write(nb, target)
    nbgrader("autograde", "ps1")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: (gb.find_submission("ps1", s).score, gb.find_submission("ps1", s).max_score)
                  for s in ("solved", "blank", "partial")}
        by_cell = {g.name: g.score for g in
                   gb.find_submission_notebook("05_exercises", "ps1", "partial").grades}
    assert scores["solved"] == (15.0, 15.0)
    assert scores["blank"] == (0.0, 15.0)
    assert scores["partial"] == (3.0, 15.0) and by_cell["sigmoid_backward_test"] == 3.0


def test_v_at_z_T_on_flat_arrays_is_named_as_that_slip_and_numpys_words_are_translated():
    """Lesson 05 asks for v zᵀ with @ and .T; on 1-D arrays v @ z.T is a dot product or fails."""
    class FlatOuter(bpv.MM):
        def grad_W(self, z, v):
            return v @ z.T
    text = str(bpv.check(FlatOuter))
    assert "Likely slip (v zᵀ with 1-D arrays)" in text and "np.outer(v, z)" in text
    assert "gufunc" not in text and "@ could not multiply: the inner sizes differ" in text

    class Right(bpv.MM):
        def grad_W(self, z, v):
            return v[:, None] @ z[None, :] if z.ndim == 1 else v @ z.T
    assert "1-D arrays" not in str(bpv.check(Right))
