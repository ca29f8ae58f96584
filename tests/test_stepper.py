"""The Stepper, driven on the kernel side through its buttons, slider and controls."""
import random
import re

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.stepper import StepperModel, parse_array


def notes_net():
    W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
    W2 = np.array([[0.5, -0.5]])
    return bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(W2, np.zeros(1)),
                           bpv.Sigmoid()], loss=bpv.SquaredLoss())


X, Y = np.array([1.0, 2.0]), np.array([1.0])


@pytest.fixture
def stepper():
    return bpv.Stepper(notes_net(), X, Y)


def in_step(s):
    """Graph, counter and equation all describe the model's current step."""
    m = s.model
    k = m.step
    assert s.slider.value == k
    assert f'data-step="{k}"' in s.graph.value
    assert s.counter.value == f"<b>{m.counter()}</b>"
    if k >= 0:
        spec = m.trace.specs[k]
        assert spec.tag in s.equation.value
        if spec.module is not None:                   # the module applied is highlighted
            assert f'data-module="{spec.module}"><ellipse class="oval cur-' in s.graph.value
        header = bpv.text.step_header(m.trace, k)
        assert header.split(" · ")[0] in s.equation.value
    else:
        assert "before step 1" in s.equation.value
    f = min(k + 1, m.n_forward)
    assert m.counter().startswith(f"forward {f}/{m.n_forward}")


def test_buttons_walk_forward_then_backward(stepper):
    s = stepper
    in_step(s)
    seen = []
    for _ in range(s.model.n):
        s.click("next")
        in_step(s)
        seen.append(s.model.trace.specs[s.step].phase)
    assert seen == ["forward"] * 5 + ["backward"] * 9
    assert s.model.counter() == "forward 5/5 · backward 9/9"
    assert s.next_btn.disabled
    s.click("next")                                   # past the end: stays
    assert s.step == s.model.n - 1
    s.click("reset")
    assert s.step == -1 and s.prev_btn.disabled
    s.click("backward")
    assert s.model.trace.specs[s.step].rule == "seed"
    assert s.model.counter() == "forward 5/5 · backward 1/9"
    in_step(s)


def test_equation_panel_substitutes_numbers(stepper):
    s = stepper
    s.model.go(7)          # (B2) (7.65) ∂J/∂W[2]
    s.slider.value = 8
    in_step(s)
    eq = s.equation.value
    assert r"\frac{\partial J}{\partial W^{[2]}}" in eq and "(7.65)" in eq
    assert "[-0.1404] [0.5, 1.1]ᵀ" in eq and "[[-0.07021, -0.1545]]" in eq


def test_slider_moves_are_observed(stepper):
    s = stepper
    s.slider.value = 10
    assert s.step == 10
    in_step(s)
    s.play.value = 3            # jslinked in the browser; on the kernel the slider drives
    s.slider.value = 3
    in_step(s)


def test_inspector_shows_value_then_gradient(stepper):
    s = stepper
    s.node_pick.value = "W[2]"
    s.slider.value = 0
    assert "not yet computed" in s.node_info.value and "[[0.5, -0.5]]" in s.node_info.value
    assert s.heatmap.layout.display == "block" and s.heatmap.value[:4] == b"\x89PNG"
    s.slider.value = 8
    assert "[[-0.07021, -0.1545]]" in s.node_info.value
    s.node_pick.value = "u[1]"
    assert s.heatmap.layout.display == "none"


def test_bad_rebuild_shows_message_and_keeps_last_good_trace(stepper):
    s = stepper
    s.slider.value = 6
    good = s.model.trace
    s.x_in.value = "1, 2, 3"                         # W[1] is 2×2
    s.click("rebuild")
    assert "bpv-error" in s.message.value and "2×2" in s.message.value
    assert s.model.trace is good and s.step == 6
    assert s.x_in.value == "1, 2"                    # controls back to the last good input
    in_step(s)
    s.y_in.value = "banana"
    s.click("rebuild")
    assert "could not read" in s.message.value and s.model.trace is good
    s.x_in.value = "0.5, -1"
    s.click("rebuild")
    assert "bpv-error" not in s.message.value and s.model.trace is not good
    assert s.step == 6                                # the position is kept
    in_step(s)


def test_weights_edit_and_architecture_change(stepper):
    s = stepper
    s.weights_in.value = s.weights_in.value.replace("[[0.5, -0.5]]", "[[1, 2]]")
    s.click("rebuild")
    assert np.allclose(s.model.net.params["W[2]"], [[1, 2]])
    assert s.model.trace.modules[3].op == "Sigmoid"   # the network itself is kept
    s.sizes_in.value = "2, 4, 3, 1"
    s.act_in.value = "tanh"
    s.slider.value = 20 if s.model.n > 20 else s.model.n - 1
    s.click("rebuild")
    assert [m.op for m in s.model.trace.modules] == ["MM", "Tanh", "MM", "Tanh", "MM",
                                                    "Sigmoid", "SquaredLoss"]  # σ output kept
    assert s.slider.max == s.model.n - 1
    in_step(s)
    s.weights_in.value = "W[1] = [[1, 2]]"            # wrong shape
    s.click("rebuild")
    assert "4×2" in s.message.value


def test_loss_switch_keeps_network_and_compares(stepper):
    s = stepper
    before = s.model.net.params["W[1]"]
    s.loss_in.value = "logistic"
    assert s.model.trace.modules[-1].op == "LogisticLoss"
    assert s.model.net.params["W[1]"] is before
    g_log = s.model.trace.grad("u[4]")
    s.loss_in.value = "squared"
    g_sq = s.model.trace.grad("u[4]")
    assert not np.allclose(g_log, g_sq)
    a = 1 / (1 + np.exp(0.3))                         # σ(z2) with z2 = -0.3
    assert np.allclose(g_sq, a - 1)                   # (t − y) on t = σ(z2)
    assert np.allclose(g_log, 1 / (1 + np.exp(-a)) - 1)   # (σ(t) − y), (7.70)
    assert "logistic" in s.compare.value and "squared" in s.compare.value
    assert "not defined for this label" in s.compare.value     # 1 output: no valid CE label 1


def test_predict_then_reveal(stepper):
    s = stepper
    s.predict_toggle.value = True
    assert s.slider.disabled and s.play.disabled
    for _ in range(6):                                # forward steps and the seed need no guess
        s.click("next")
    k = s.step + 1
    assert s.model.needs_prediction(k) and s.ask.layout.display == "flex"
    s.click("next")                                   # blocked until a prediction
    assert s.step == k - 1
    want = s.model.trace[s.model.trace.specs[k].writes]
    s.answer.value = "[1, 2, 3]"
    s.click("check")
    assert "Wrong shape" in s.feedback.value and s.step == k - 1
    s.answer.value = str(list(np.ravel(want) * 3))
    s.click("check")
    assert "✘" in s.feedback.value and s.step == k - 1
    s.answer.value = str(np.ravel(want).tolist())
    s.click("check")
    assert "✔" in s.feedback.value and s.step == k
    s.click("reveal")                                 # give up on the next one
    assert s.step == k + 1


@pytest.mark.parametrize("case", ["relu-forgot-sigma", "mm-transpose", "outer-order", "sum"])
def test_prediction_hints_name_the_slip(case):
    if case == "sum":
        m = StepperModel(bpv.trace(lambda z: (z * z + z.sin()).sum(), np.array([1.0, 2.0])))
        k = next(i for i, s in enumerate(m.trace.specs) if s.rule == "acc")
        part = m.trace[m.trace.specs[k].reads[0]]
        ok, hint = m.check_prediction(str(part.tolist()), k)
        assert not ok and "sum the contributions" in hint
        return
    W1 = np.array([[0.3, -0.2], [0.1, 0.4]])
    net = bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(np.array([[1.0, -1.0],
                          [0.5, 2.0]]), np.zeros(2))], loss=bpv.SquaredLoss())
    m = StepperModel(net, np.array([1.0, -2.0]), np.array([0.5, 0.5]))
    specs = m.trace.specs
    if case == "relu-forgot-sigma":
        k = next(i for i, s in enumerate(specs) if s.rule == "B1" and s.module == "M_2")
        v = m.trace[specs[k].reads[-1]]
        ok, hint = m.check_prediction(str(v.tolist()), k)
        assert not ok and "σ'(z)" in hint
    elif case == "mm-transpose":
        k = next(i for i, s in enumerate(specs) if s.rule == "B1" and s.module == "M_3")
        W, v = m.trace["W[2]"], m.trace[specs[k].reads[-1]]
        ok, hint = m.check_prediction(str((W @ v).tolist()), k)
        assert not ok and "transpose" in hint
    else:
        k = next(i for i, s in enumerate(specs) if s.tag == "(7.65)" and s.module == "M_3")
        z, v = m.trace["u[2]"], m.trace["dJ/du[3]"]
        ok, hint = m.check_prediction(str(np.outer(z, v).tolist()), k)
        assert not ok and "v zᵀ" in hint


def test_stepper_of_a_trace_has_no_rebuild_controls():
    tr = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
    s = bpv.Stepper(tr)
    assert s.controls is None
    s.click("backward")
    in_step(s)
    assert not s.model.rebuild(x=(1.0,))
    assert "fixed trace" in s.model.error


def test_static_viewer_sees_svg_and_text(stepper):
    bundle = stepper._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith("<svg") and "<pre>" in bundle["text/html"]
    assert bundle["text/plain"].startswith("before step 1/14")


def test_errors_in_callbacks_show_in_the_widget_not_as_tracebacks(stepper, monkeypatch):
    s = stepper
    monkeypatch.setattr(s.model, "go", lambda k: 1 / 0)
    s.click("next")
    assert "ZeroDivisionError" in s.message.value


def test_parse_array_errors_are_clear():
    assert parse_array("1, 2", "x").tolist() == [1.0, 2.0]
    assert parse_array("[[1, 2], [3, 4]]", "W").shape == (2, 2)
    with pytest.raises(bpv.BackpropError, match="could not read"):
        parse_array("1, two", "x")
    with pytest.raises(bpv.BackpropError, match="empty"):
        parse_array("  ", "x")


def test_thousand_random_actions_never_desynchronise():
    rng = random.Random(20261128)
    s = bpv.Stepper(bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0),
                    np.array([0.5, -1.0]), 1.0)
    actions = ["next", "prev", "reset", "backward", "slider", "rebuild-good", "rebuild-bad",
               "loss", "predict", "check", "reveal", "inspect"]
    for i in range(1000):
        a = rng.choice(actions)
        good_trace = s.model.trace
        if a in ("next", "prev", "reset", "backward", "check", "reveal"):
            if a in ("check",):
                s.answer.value = rng.choice(["[0.1]", "1, 2", "x", ""])
            s.click(a)
        elif a == "slider" and not s.slider.disabled:
            s.slider.value = rng.randint(-1, s.slider.max)
        elif a == "rebuild-good":
            s.x_in.value = f"{rng.uniform(-2, 2):.3f}, {rng.uniform(-2, 2):.3f}"
            s.sizes_in.value = rng.choice(["2, 3, 1", "2, 2, 1", "2, 4, 4, 1"])
            s.y_in.value = rng.choice(["0", "1"])
            s.seed_in.value = rng.randint(0, 3)
            s.click("rebuild")
            assert "bpv-error" not in s.message.value, s.message.value
        elif a == "rebuild-bad":
            s.x_in.value = rng.choice(["1, 2, 3", "nan, 1", "a", ""])
            s.click("rebuild")
            assert "bpv-error" in s.message.value
            assert s.model.trace is good_trace
        elif a == "loss":
            s.loss_in.value = rng.choice(["logistic", "squared"])
        elif a == "predict":
            s.predict_toggle.value = not s.predict_toggle.value
        elif a == "inspect":
            s.node_pick.value = rng.choice(list(s.node_pick.options))
        in_step(s)


def test_rebuild_with_nothing_changed_keeps_every_digit():
    net = bpv.mlp([2, 3, 1], seed=0)
    s = bpv.Stepper(net, np.array([0.123456789, -2.0]), 1.0)
    before = s.model.trace
    s.click("rebuild")
    after = s.model.trace
    assert after is not before and after.loss == before.loss
    for name in net.params:
        assert np.array_equal(after.value(name), before.value(name))
    assert np.array_equal(after.value("u[0]"), before.value("u[0]"))


@pytest.mark.parametrize("why", ["no loss", "batch"])
def test_steppers_the_controls_cannot_describe_have_none(why):
    net = bpv.mlp([2, 3, 1], seed=0, loss=None if why == "no loss" else "squared")
    if why == "no loss":
        s = bpv.Stepper(net, np.array([0.5, -1.0]))
    else:
        s = bpv.Stepper(net, np.array([[0.5, 1.0], [-1.0, 0.2]]), np.array([[0.0, 1.0]]))
    assert s.controls is None
    s.click("backward")
    in_step(s)
    assert not s.model.rebuild(x=(1.0, 2.0))
    assert ("batch" if why == "batch" else "no standard loss") in s.model.error


def test_play_is_stopped_and_slider_put_back_at_an_unrevealed_prediction(stepper):
    s = stepper
    s.predict_toggle.value = True
    s.play.playing = True
    assert not s.play.playing                          # predict mode stops a running Play
    s.play.playing = True
    s.slider.value = 9                                 # as the running Play would
    assert s.step == 5 and s.slider.value == 5 and not s.play.playing
    in_step(s)


def test_heatmap_leaves_the_matplotlib_backend_alone(stepper):
    import matplotlib
    matplotlib.use("svg")
    stepper.node_pick.value = "W[1]"
    stepper.slider.value = 13
    assert stepper.heatmap.value[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == "svg"


def test_user_names_are_kept_out_of_mathjax():
    mm = bpv.MM(np.eye(2), np.zeros(2), name="cost $x^2$ & {layer}")
    s = bpv.Stepper(bpv.trace(lambda z: (mm(z) ** 2).sum(), np.array([1.0, 2.0])))
    for k in range(len(s.model.trace)):
        s.slider.value = k
        eq = s.equation.value
        math = "".join(re.findall(r"\$\$(.*?)\$\$", eq))
        assert "cost" not in math                      # the name is only in ignored text
        assert eq.count("$$") == 2
        name_at = eq.find("cost")
        if name_at >= 0:
            assert 'class="tex2jax_ignore mathjax_ignore"' in eq[:name_at]


def test_cross_entropy_hint_names_softmax():
    net = bpv.Sequential([bpv.MM(np.array([[1.0, 0.5], [-0.5, 2.0]]), np.zeros(2))],
                         loss=bpv.CrossEntropyLoss())
    m = StepperModel(net, np.array([0.3, -0.2]), np.array([0.0, 1.0]))
    k = next(i for i, sp in enumerate(m.trace.specs) if sp.rule == "B1" and sp.tag == "(7.71)")
    ok, hint = m.check_prediction(str(m.trace["u[1]"].tolist()), k)
    assert not ok and "softmax(t) − y (7.71)" in hint
