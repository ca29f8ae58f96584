"""The Stepper, driven on the kernel side through its buttons, slider and controls."""
import html
import random
import re

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core.keys import tex_name
from backpropviz.display.presentation import rhs as rule_rhs
from backpropviz.teach.stepper import StepperModel, parse_array


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
    """Graph, counter and equation all describe the model's current step (0 … n)."""
    m = s.model
    k = m.step
    assert 0 <= k <= m.n
    assert s.bar.step == k and s.bar.n == m.n
    assert f'data-step="{k}"' in s.graph.svg()
    assert s.bar.counter == m.counter()
    view = m.view()
    assert view.k == k
    assert html.escape(view.header) in s.equation.value
    assert view.header.startswith(f"step {k}/{m.n} · ")
    if k >= 1:
        spec = m.trace.specs[k - 1]
        assert html.escape(spec.tag) in s.equation.value
        if spec.module is not None:                   # the module applied is highlighted
            assert re.search(f'data-module="{re.escape(spec.module)}"><ellipse data-id="m\\d+" '
                             f'class="oval cur-', s.graph.svg())
    else:
        assert "before the first step" in s.equation.value
        assert not re.search(r'class="[^"]*\b(cur|read|now)-[FB]', s.graph.svg())   # no highlight
    nf = m.n_forward
    assert m.counter() == (f"step {k}/{m.n} · forward {min(k, nf)}/{nf} · "
                           f"backward {max(0, k - nf)}/{m.n - nf}")


def test_buttons_walk_forward_then_backward(stepper):
    s = stepper
    in_step(s)
    seen = []
    assert s.step == 0 and s.bar.step == 0
    for _ in range(s.model.n):
        s.click("next")
        in_step(s)
        seen.append(s.model.trace.steps[s.step - 1].phase)
        assert s.model.trace.steps[s.step - 1].number == s.step
    assert seen == ["forward"] * 5 + ["backward"] * 9
    assert s.step == s.model.n == 14
    assert s.model.counter() == "step 14/14 · forward 5/5 · backward 9/9"
    assert s.bar.step == s.bar.n
    s.click("next")                                   # past the end: stays
    assert s.step == s.model.n
    s.click("prev")
    assert s.step == s.model.n - 1
    s.click("reset")
    assert s.step == 0 and s.bar.step == 0
    s.click("prev")                                   # before the first step: stays
    assert s.step == 0
    s.click("backward")
    assert s.model.trace.specs[s.step - 1].kind == "seed" and s.step == 6
    assert s.model.counter() == "step 6/14 · forward 5/5 · backward 1/9"
    in_step(s)


def test_equation_panel_substitutes_numbers(stepper):
    s = stepper
    s.model.go(8)          # the model moves: the widget follows
    in_step(s)
    s.go(9)     # (B2) (7.65) ∂J/∂W[2]
    in_step(s)
    eq = s.equation.value
    assert "step 9/14 · backward 4/9 · (B2) (7.65) · M_3 = MM[W[2], b[2]]" in eq
    assert r"\frac{\partial J}{\partial W^{[2]}}" in eq and "(7.65)" in eq
    assert "[[-0.1404]] [[0.5, 1.1]]" in eq and "[[-0.07021, -0.1545]]" in eq


def test_slider_moves_are_observed(stepper):
    s = stepper
    s.go(11)
    assert s.step == 11
    in_step(s)
    s.go(4)
    in_step(s)
    s.go(0)
    assert s.step == 0
    in_step(s)


def test_inspector_shows_value_then_gradient(stepper):
    s = stepper
    s.node_pick.value = "W[2]"
    s.go(1)
    assert "not yet computed" in s.node_info.value and "[[0.5, -0.5]]" in s.node_info.value
    assert s.heatmap.layout.display == "block" and "<table" in s.heatmap.value
    assert "0.5" in s.heatmap.value and "not yet" not in s.heatmap.value
    s.go(8)                                 # one step before ∂J/∂W[2] is written
    assert "not yet computed" in s.node_info.value
    s.go(9)
    assert "[[-0.07021, -0.1545]]" in s.node_info.value
    assert "not yet computed" not in s.node_info.value
    s.node_pick.value = "u[1]"
    assert s.heatmap.layout.display == "none"


def test_bad_rebuild_shows_message_and_keeps_last_good_trace(stepper):
    s = stepper
    s.go(7)
    good = s.model.trace
    s.x_in.value = "1, 2, 3"                         # W[1] is 2×2
    s.click("rebuild")
    assert "bpv-error" in s.controls.note.value and "2×2" in s.controls.note.value
    assert s.model.trace is good and s.step == 7
    assert s.x_in.value == "1, 2, 3"                 # what was typed stays, to be corrected
    in_step(s)
    s.x_in.value = "1, 2"
    s.y_in.value = "banana"
    s.click("rebuild")
    assert "could not read" in s.field_errors.value and s.model.trace is good
    assert "bpv-bad" in s.y_in._dom_classes and "bpv-bad" not in s.x_in._dom_classes
    assert s.y_in.value == "banana"
    s.x_in.value = "0.5, -1"
    s.y_in.value = "1"                               # the learner corrects the marked field
    s.click("rebuild")
    assert "bpv-error" not in s.controls.note.value and s.model.trace is not good
    assert not s.field_errors.value and "bpv-bad" not in s.y_in._dom_classes
    assert s.step == 7                                # the position is kept
    in_step(s)


def test_weights_edit_and_architecture_change(stepper):
    s = stepper
    s.weights_in.value = s.weights_in.value.replace("[[0.5, -0.5]]", "[[1, 2]]")
    s.click("rebuild")
    assert np.allclose(s.model.net.params["W[2]"], [[1, 2]])
    assert s.model.trace.modules[3].op == "Sigmoid"   # the network itself is kept
    s.sizes_in.value = "2, 4, 3, 1"
    s.act_in.value = "tanh"
    s.go(s.model.n)                        # all done, then a longer trace
    s.click("rebuild")
    assert [m.op for m in s.model.trace.modules] == ["MM", "Tanh", "MM", "Tanh", "MM",
                                                    "Sigmoid", "SquaredLoss"]  # σ output kept
    assert s.bar.n == s.model.n and s.step == 14
    in_step(s)
    s.weights_in.value = "W[1] = [[1, 2]]"            # wrong shape
    s.click("rebuild")
    assert "4×2" in s.field_errors.value and "bpv-bad" in s.weights_in._dom_classes
    assert s.weights_in.value == "W[1] = [[1, 2]]"


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
    assert s.bar.locked
    for _ in range(6):                                # forward steps and the seed need no guess
        assert s.ask.layout.display == "none"
        s.click("next")
    assert s.step == 6
    k = s.step + 1
    assert s.model.needs_prediction(k) and s.ask.layout.display == "flex"
    s.click("next")                                   # blocked until a prediction
    assert s.step == k - 1 and "prediction first" in s.message.value
    want = s.model.trace[s.model.trace.specs[k - 1].writes]
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
        k = next(i for i, s in enumerate(m.trace.specs, 1) if s.kind == "acc")
        part = m.trace[m.trace.specs[k - 1].reads[0]]
        assert m.trace.specs[k - 1].reads[0].is_contribution
        ok, hint = m.check_prediction(str(part.tolist()), k)
        assert not ok and "sum the contributions" in hint
        return
    W1 = np.array([[0.3, -0.2], [0.1, 0.4]])
    net = bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(np.array([[1.0, -1.0],
                          [0.5, 2.0]]), np.zeros(2))], loss=bpv.SquaredLoss())
    m = StepperModel(net, np.array([1.0, -2.0]), np.array([0.5, 0.5]))
    specs = m.trace.specs
    if case == "relu-forgot-sigma":
        k = next(i for i, s in enumerate(specs, 1) if s.kind == "B1" and s.module == "M_2")
        v = m.trace[specs[k - 1].key_of("v")]
        ok, hint = m.check_prediction(str(v.tolist()), k)
        assert not ok and "σ'(z)" in hint
    elif case == "mm-transpose":
        k = next(i for i, s in enumerate(specs, 1) if s.kind == "B1" and s.module == "M_3")
        W, v = m.trace.value("W[2]"), m.trace[specs[k - 1].key_of("v")]
        ok, hint = m.check_prediction(str((W @ v).tolist()), k)
        assert not ok and "transpose" in hint
    else:
        k = next(i for i, s in enumerate(specs, 1) if s.tag == "(7.65)" and s.module == "M_3")
        z, v = m.trace.value("u[2]"), m.trace.grad("u[3]")
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


def _svg_in_html(page: str) -> str:
    """The SVG of the first <img src="data:image/svg+xml;base64,…"> in an HTML output."""
    import base64
    import re
    m = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    assert m, page[:200]
    return base64.b64decode(m.group(1)).decode("utf-8")


def test_static_viewer_sees_svg_and_text(stepper):
    """Without a kernel (a saved, untrusted notebook) JupyterLab shows the text/html output,
    sanitized: the step's picture is an <img> of the SVG (inline SVG would be stripped to its
    text run together), with the step's text as its alt text."""
    bundle = stepper._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<div class="bpv-static"><img ')
    assert "<svg" not in bundle["text/html"]
    assert _svg_in_html(bundle["text/html"]).startswith("<svg")
    assert bundle["text/plain"].startswith("step 0/14 · before the first step")
    stepper.go(9)
    bundle = stepper._repr_mimebundle_()
    assert 'data-step="9"' in _svg_in_html(bundle["text/html"])
    assert 'alt="step 9/14 · backward 4/9 · (B2) (7.65)' in bundle["text/html"]
    assert bundle["text/plain"].startswith("step 9/14 · backward 4/9 · (B2) (7.65)")


def test_errors_in_callbacks_show_in_the_widget_not_as_tracebacks(stepper, monkeypatch):
    s = stepper
    monkeypatch.setattr(s.model, "go", lambda k: 1 / 0)
    s.click("next")
    assert "ZeroDivisionError" in s.message.value and "bpv-error" in s.message.value
    monkeypatch.undo()
    s.click("next")                                   # the next good action clears it
    assert s.bar.message == "" and s.message.value == "" and s.step == 1


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
        elif a == "slider" and not s.bar.locked:
            s.go(rng.randint(0, s.bar.n))
        elif a == "rebuild-good":
            s.x_in.value = f"{rng.uniform(-2, 2):.3f}, {rng.uniform(-2, 2):.3f}"
            s.sizes_in.value = rng.choice(["2, 3, 1", "2, 2, 1", "2, 4, 4, 1"])
            s.y_in.value = rng.choice(["0", "1"])
            s.seed_in.value = str(rng.randint(0, 3))
            s.click("rebuild")
            assert "bpv-error" not in s.controls.note.value, s.controls.note.value
        elif a == "rebuild-bad":
            s.x_in.value = rng.choice(["1, 2, 3", "nan, 1", "a", ""])
            s.click("rebuild")
            assert "bpv-error" in s.controls.note.value
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
    assert ("batch" if why == "batch" else "standard losses") in s.model.error


def test_play_is_stopped_and_slider_put_back_at_an_unrevealed_prediction(stepper):
    s = stepper
    s.predict_toggle.value = True
    s.bar.playing = True
    assert not s.bar.playing                          # predict mode stops a running Play
    s.bar.playing = True
    s.go(10)                                # as the running Play would
    assert s.step == 6 and s.bar.step == 6 and not s.bar.playing   # 7 needs a prediction
    in_step(s)


def test_heatmap_is_a_table_of_numbers_without_matplotlib(stepper):
    import sys
    stepper.node_pick.value = "W[1]"
    stepper.go(13)
    heat = stepper.heatmap.value
    assert heat.count("<table") == 2 and "∂J/∂W[1]" in heat        # value and gradient
    assert "-0.07021" in heat and "background:#" in heat
    assert "matplotlib.pyplot" not in sys.modules


def test_user_names_are_kept_out_of_mathjax():
    mm = bpv.MM(np.eye(2), np.zeros(2), name="cost $x^2$ & {layer}")
    s = bpv.Stepper(bpv.trace(lambda z: (mm(z) ** 2).sum(), np.array([1.0, 2.0])))
    for k in range(len(s.model.trace) + 1):
        s.go(k)
        eq = s.equation.value
        math = "".join(re.findall(r"\$\$(.*?)\$\$", eq))
        assert "cost" not in math                      # the name is only in ignored text
        assert eq.count("$$") == (2 if k else 0)       # step 0 shows no rule applied yet
        name_at = eq.find("cost")
        if name_at >= 0:
            assert 'class="tex2jax_ignore mathjax_ignore"' in eq[:name_at]


def test_cross_entropy_hint_names_softmax():
    net = bpv.Sequential([bpv.MM(np.array([[1.0, 0.5], [-0.5, 2.0]]), np.zeros(2))],
                         loss=bpv.CrossEntropyLoss())
    m = StepperModel(net, np.array([0.3, -0.2]), np.array([0.0, 1.0]))
    k = next(i for i, sp in enumerate(m.trace.specs, 1) if sp.kind == "B1" and sp.tag == "(7.71)")
    ok, hint = m.check_prediction(str(m.trace.value("u[1]").tolist()), k)
    assert not ok and "squashes t first" in hint and "(softmax(t) − y) v (7.71)" in hint
    ok, hint = m.check_prediction(str((m.trace.value("u[1]") - [0.0, 1.0]).tolist()), k)
    assert not ok and "(softmax(t) − y) v (7.71)" in hint     # t − y: forgot the squashing too


# --- the Stepper as a part of a layout, predictions at the edges, hints, the panel's TeX ---------

def test_stepper_nests_in_an_hbox():
    import ipywidgets as W
    s = bpv.Stepper(notes_net(), X, Y)
    assert isinstance(s, W.VBox)
    box = W.HBox([s])
    assert box.children == (s,)
    assert "application/vnd.jupyter.widget-view+json" in box._repr_mimebundle_()
    s.click("next")                                   # still works inside the layout
    assert s.step == 1
    in_step(s)


def test_check_prediction_after_the_last_step_says_so():
    m = StepperModel(notes_net(), X, Y)
    n = m.n
    ok, msg = m.check_prediction("0.5", n + 1)
    assert not ok and f"no step {n + 1}" in msg and f"all {n} steps are done" in msg
    m.go(n)
    ok, msg = m.check_prediction("0.5")               # the default: the next step, n + 1
    assert not ok and f"no step {n + 1}" in msg
    assert m.revealed == set() and m.step == n
    s = bpv.Stepper(notes_net(), X, Y)                # the widget shows it, no traceback
    s.go(n)
    s.answer.value = "0.5"
    s.click("check")
    assert "✘" in s.feedback.value and f"no step {n + 1}" in s.feedback.value
    assert "bpv-error" not in s.message.value and s.step == n


@pytest.mark.parametrize("sizes", [(2, 3, 1), (2, 3, 2)])
def test_transpose_hint_fires_for_a_non_square_w(sizes):
    m = StepperModel(bpv.mlp(list(sizes), seed=0, loss="squared"), np.array([0.5, -1.0]),
                     np.zeros(sizes[-1]))
    k, spec = next((k, sp) for k, sp in enumerate(m.trace.specs, 1)
                   if sp.kind == "B1" and sp.tag == "(7.63)")
    W, v = m.trace[spec.key_of("W")], m.trace[spec.key_of("v")]
    want = m.trace[spec.writes]
    assert W.shape == (sizes[-1], 3) and W.shape[0] != W.shape[1]
    assert v.shape == (sizes[-1],) and want.shape == (3,)
    for answer in (v, 2 * v + 1):                     # any answer with v's shape, not z's
        ok, hint = m.check_prediction(str(answer.tolist()), k)
        assert not ok and "Wrong shape" in hint and "transpose" in hint, hint
        assert "Wᵀ v (7.63)" in hint
    ok, hint = m.check_prediction(str(want.tolist()), k)
    assert ok


def test_prompt_hides_the_rule_until_the_first_wrong_try(stepper):
    s = stepper
    s.predict_toggle.value = True
    for _ in range(6):
        s.click("next")
    k = s.step + 1
    spec = s.model.trace.specs[k - 1]
    rule = html.escape(rule_rhs(s.model.trace, spec))      # (u[4] − y) ∂J/∂u[5]
    assert s.ask.layout.display == "flex"
    prompt = s.prompt.value
    assert html.escape(str(spec.writes)) in prompt and "(B1)" in prompt and "shape 1" in prompt
    assert rule not in prompt and spec.tag not in prompt
    s.answer.value = "[5]"
    s.click("check")
    assert "✘" in s.feedback.value and s.step == k - 1
    assert f"= {rule} {html.escape(spec.tag)}" in s.prompt.value
    s.answer.value = str(s.model.trace[spec.writes].tolist())
    s.click("check")
    assert s.step == k
    nxt = s.model.trace.specs[k]                      # a new step: hidden again
    assert html.escape(str(nxt.writes)) in s.prompt.value
    assert html.escape(rule_rhs(s.model.trace, nxt)) not in s.prompt.value


def test_sum_over_users_shows_every_contribution_in_tex():
    tr = bpv.trace(lambda z: (z.exp() * z.exp()).sum(), np.array([1.0, 2.0]))
    spec = tr.specs[-1]
    assert spec.kind == "acc" and len(spec.reads) == 2
    s = bpv.Stepper(tr)
    s.go(len(tr))
    in_step(s)
    eq = s.equation.value
    (math,) = re.findall(r"\$\$(.*?)\$\$", eq)
    lhs, rhs = math.split(" = ", 1)
    assert lhs.strip() == r"\frac{\partial J}{\partial u^{[0]}}"     # the total, no "via"
    assert rhs.count(r"\text{via }") == len(spec.reads) == 2
    for key in spec.reads:
        assert key.is_contribution and key.total == spec.writes
        assert r"\text{via }" + tex_name(key.user) in rhs
    total = tr.grad("u[0]")
    assert np.allclose(total, 2 * np.exp(2 * np.array([1.0, 2.0])))
    assert np.allclose(sum(tr[key] for key in spec.reads), total)


def test_inspector_keeps_following_the_step_after_a_rebuild(stepper):
    s = stepper
    s.go(9)
    assert s.follow.value and s.node_pick.value == "W[2]"
    s.sizes_in.value = "2, 4, 3, 1"                   # new nodes: the dropdown's options change
    s.click("rebuild")
    assert s.follow.value                             # not switched off by the rebuild itself
    assert s.node_pick.value == s.model.trace.specs[s.step - 1].node
    s.node_pick.value = "u[0]"                         # the learner's own pick does switch it off
    assert not s.follow.value
    s.click("next")
    assert s.node_pick.value == "u[0]"


def test_logistic_loss_on_a_sigmoid_output_is_warned_about():
    s = bpv.Stepper(notes_net(), X, Y)                 # ends in σ, squared loss: fine
    assert "bpv-warning" not in s.compare.value
    s.loss_in.value = "logistic"
    assert "bpv-warning" in s.compare.value and "applied twice" in s.compare.value
    assert "applied twice" in s.controls.note.value and "bpv-error" not in s.controls.note.value
    s.loss_in.value = "squared"
    assert "bpv-warning" not in s.compare.value and "rebuilt" in s.controls.note.value


def test_predict_mode_does_not_give_away_a_gradient_in_the_loss_comparison(stepper):
    s = stepper
    assert "∂J/∂u[4] = [" in s.compare.value                  # not predicting: shown
    s.predict_toggle.value = True
    assert "∂J/∂u[4] = [" not in s.compare.value and "once you have reached step 7" in s.compare.value
    for _ in range(6):
        s.click("next")
    s.click("reveal")                                          # step 7: ∂J/∂u[4]
    assert s.step == 7 and "∂J/∂u[4] = [" in s.compare.value


def test_a_run_of_predictions_ends_with_a_score(stepper):
    s = stepper
    s.predict_toggle.value = True
    right_first, hinted = False, False
    while s.step < s.model.n:
        k = s.step + 1
        if not s.model.needs_prediction(k):
            s.click("next")
            continue
        want = s.model.trace[s.model.trace.specs[k - 1].writes]
        if not right_first:
            s.answer.value = str(np.ravel(want).tolist())
            right_first = True
        elif not hinted:
            s.answer.value = str((np.ravel(want) + 5).tolist())
            s.click("check")
            s.answer.value = str(np.ravel(want).tolist())
            hinted = True
        else:
            s.click("reveal")
            continue
        s.click("check")
    assert s.step == s.model.n
    assert "Done: 8 predictions: 1 right first time, 1 after a hint, 6 revealed." in s.feedback.value


# --- the granularity switch: modules ↔ scalar circuit (issue 8) ------------------------------

from backpropviz.theory import circuit as C   # noqa: E402
from backpropviz.theory import expand as XP   # noqa: E402
from backpropviz.core.keys import Key               # noqa: E402


def _mapped_traces():
    mm = bpv.MM(np.array([[0.3, -0.2], [0.1, 0.4]]), np.array([0.1, -0.1]))
    return {
        "MLP, one example": bpv.mlp([2, 3, 2, 1], activation="tanh", seed=1).backprop(
            np.array([0.5, -1.0]), 1.0),
        "notes' network": notes_net().backprop(X, Y),
        "traced, shared MM and a skip": bpv.trace(lambda z: (mm(bpv.Tanh()(mm(z))) + z).sum(),
                                                  np.array([0.3, -0.7])),
        "traced, indexing and x * x": bpv.trace(lambda z: z[0] * z[1] + (z * z).sin().sum(),
                                                np.array([0.3, 0.2, 0.5])),
    }


@pytest.mark.parametrize("name", list(_mapped_traces()))
def test_steps_map_both_ways_between_modules_and_the_circuit(name):
    tr = _mapped_traces()[name]
    c = bpv.circuit(tr)
    assert C.to_circuit(c, 0) == 0 and C.to_modules(c, 0) == 0
    seed = next(k for k, s in enumerate(tr.specs, 1) if s.kind == "seed")
    assert C.to_circuit(c, seed) == c.n_forward + 1 and C.to_modules(c, c.n_forward + 1) == seed
    for k in range(len(tr) + 1):                                   # round trip
        assert C.to_modules(c, C.to_circuit(c, k)) == k, (k, tr.specs[k - 1])
    for j in range(len(c) + 1):          # a circuit step belongs to a step completing at or after it
        assert C.to_circuit(c, C.to_modules(c, j)) >= j
    for k, s in enumerate(tr.specs, 1):  # complete: every entry of what step k writes is known
        if s.writes.user is not None or s.kind == "seed":
            continue
        key = (lambda e: Key(e, s.writes.grad))
        done = max(c.known_at(key(e)) for e in c.entries(s.node).ravel())
        if s.kind == "F":
            assert C.to_circuit(c, k) == done
            assert c.specs[done - 1].node == c.entries(s.node).ravel()[-1]
        elif done < float("inf"):
            assert C.to_circuit(c, k) == done, s


def test_forward_steps_of_the_circuit_belong_to_their_module():
    tr = notes_net().backprop(X, Y)
    c = bpv.circuit(tr)
    for j in range(1, c.n_forward + 1):
        owner = c.node(c.specs[j - 1].node).part_of[0]
        assert tr.specs[C.to_modules(c, j) - 1].module == owner


def test_switching_to_the_circuit_and_back_keeps_the_step(stepper):
    s = stepper
    assert s.bar.circuit_ok and s.bar.granularities == ["modules", "scalar circuit"]
    n = s.model.n
    for k in range(n + 1):
        s.move(k)
        s.bar.set_granularity("scalar circuit")
        m = s.model
        assert m.trace is m.circuit_trace and isinstance(m.trace, C.Circuit)
        assert s.step == (len(m.trace) if k == n else C.to_circuit(m.trace, k))
        in_step(s) if s.step == 0 else None
        assert f'data-step="{s.step}"' in s.graph.svg()
        assert s.bar.n == len(m.trace)
        s.bar.set_granularity("modules")
        assert m.trace is m.module_trace and s.step == k and s.bar.n == n
        in_step(s)
    # moving in the circuit view: back at the module step whose work the circuit step is
    s.bar.set_granularity("scalar circuit")
    s.move(10)
    s.bar.set_granularity("modules")
    assert s.step == C.to_modules(s.model.circuit_trace, 10)
    assert "bpv-error" not in s.message.value


def test_rebuilding_in_the_circuit_view_rebuilds_the_circuit(stepper):
    s = stepper
    s.bar.set_granularity("scalar circuit")
    s.move(5)
    before = s.model.module_step()
    s.x_in.value = "0.5, -1"
    s.click("rebuild")
    m = s.model
    assert m.in_circuit and isinstance(m.trace, C.Circuit) and m.trace.source is m.module_trace
    np.testing.assert_array_equal(m.module_trace.value("u[0]"), [0.5, -1.0])
    assert m.module_step() == before
    for name in ("W[1]", "b[2]"):
        np.testing.assert_allclose(m.trace.module_grad(name), m.module_trace.grad(name))
    s.bar.set_granularity("modules")
    assert s.step == before


def test_a_circuit_too_large_to_draw_is_shown_as_text_with_the_reason():
    s = bpv.Stepper(bpv.mlp([2, 32, 32, 1], seed=0), np.array([0.5, -1.0]), np.array([1.0]))
    s.bar.set_granularity("scalar circuit")
    assert s.model.in_circuit
    s.click("next")
    shown = s.graph.fallback
    assert s.graph.drawing == "" and "<pre>" in shown and "value nodes" in shown
    assert "1200" in shown or "1,200" in shown
    assert "Traceback" not in shown + s.message.value + s.bar.message


def test_no_switch_without_a_decomposition_and_no_error():
    class Twice(bpv.Module):
        label = "twice"

        def forward(self, z):
            return 2.0 * z

        def backward(self, z, v):
            return 2.0 * v
    tr = bpv.trace(lambda z: Twice()(z).sum(), np.array([1.0, 2.0]))
    s = bpv.Stepper(tr)
    assert not s.bar.circuit_ok
    assert s.message.value == "" and s.bar.message == ""
    assert not s.model.set_granularity("scalar circuit") and "decomposition" in s.model.error
    s.bar.set_granularity("scalar circuit")          # forced: a message, no traceback
    assert "decomposition" in s.bar.message and s.bar.message_error
    assert s.bar.granularity == "modules" and s.model.trace is tr


def test_a_failing_switch_is_a_message_not_a_traceback(stepper, monkeypatch):
    def boom(trace):
        raise bpv.BackpropError("circuit: overflows here")
    monkeypatch.setattr(stepper.model, "_circuit", boom)
    stepper.move(3)
    stepper.bar.set_granularity("scalar circuit")
    assert "overflows here" in stepper.bar.message
    assert stepper.bar.granularity == "modules" and stepper.step == 3
    in_step(stepper)


def test_a_stepper_of_a_circuit_switches_to_its_modules():
    c = bpv.circuit(notes_net().backprop(X, Y))
    s = bpv.Stepper(c)
    assert s.bar.granularity == "scalar circuit" and s.model.trace is c
    s.move(C.to_circuit(c, 7))
    s.bar.set_granularity("modules")
    assert s.model.trace is c.source and s.step == 7


def test_random_actions_with_the_granularity_switch_never_desynchronise():
    rng = random.Random(8)
    s = bpv.Stepper(bpv.mlp([2, 3, 1], activation="tanh", loss="logistic", seed=0),
                    np.array([0.5, -1.0]), 1.0)
    back_to = None
    for i in range(300):
        a = rng.choice(["next", "prev", "backward", "slider", "view", "view", "rebuild", "loss",
                        "predict", "reveal"])
        if a in ("next", "prev", "backward", "reveal"):
            s.click(a)
        elif a == "slider" and not s.bar.locked:
            s.go(rng.randint(0, s.bar.n))
        elif a == "view":
            before, done, left = s.model.module_step(), s.step == s.model.n, s.step
            s.bar.set_granularity("modules") if s.model.in_circuit else "scalar circuit"
            if done:          # all done stays all done, unless it was reached by switching
                assert s.step in (s.model.n, back_to)
            else:
                assert s.model.module_step() == before
            back_to = left
        elif a == "rebuild":
            s.x_in.value = f"{rng.uniform(-2, 2):.3f}, {rng.uniform(-2, 2):.3f}"
            s.sizes_in.value = rng.choice(["2, 3, 1", "2, 2, 1"])
            s.click("rebuild")
            assert "bpv-error" not in s.controls.note.value, s.controls.note.value
        elif a == "loss":
            s.loss_in.value = rng.choice(["logistic", "squared"])
        elif a == "predict":
            s.predict_toggle.value = not s.predict_toggle.value
        m = s.model
        assert s.bar.granularity == m.granularity
        assert m.trace is (m.circuit_trace if m.in_circuit else m.module_trace)
        if m.in_circuit:
            assert m.trace.source is m.module_trace
        in_step(s)


# --- expanding one module in place (issue 8) -----------------------------------------------------

def test_expanding_a_module_in_the_stepper_keeps_the_place(stepper):
    s = stepper
    labels = [label for _, label in s.bar.expand_options]
    assert labels[0] == "none" and labels[1] == "M_1 = MM[W[1], b[1]]"
    tr = s.model.module_trace
    n = s.model.n
    for k in range(n + 1):
        s.move(k)
        s.bar.set_expanded("M_1")
        m = s.model
        assert isinstance(m.trace, XP.Expanded) and m.expanded == "M_1"
        assert s.step == (len(m.trace) if k == n else XP.expanded_step(m.trace, k))
        assert (s.step <= m.trace.n_forward) == (k <= tr.n_forward)
        assert s.bar.n == len(m.trace) and f'data-step="{s.step}"' in s.graph.svg()
        assert s.bar.granularity == "modules"
        s.bar.set_expanded("none")
        assert m.trace is m.module_trace and m.expanded is None and s.bar.n == n
        assert s.step == k                       # back without moving: the same step
    # from the expanded view to the circuit and back to modules, and a bad module: a message
    s.bar.set_expanded("M_3")
    s.move(5)
    s.bar.set_granularity("scalar circuit")
    assert s.model.in_circuit and s.model.expanded is None and s.bar.expanded == "none"
    s.move(7)
    s.bar.set_expanded("M_2")
    assert not s.model.in_circuit and s.bar.granularity == "modules"
    assert not s.model.set_expanded("M_99") and "no module named" in s.model.error
    assert not s.bar.message_error


def test_expanded_view_survives_a_rebuild(stepper):
    s = stepper
    s.bar.set_expanded("M_1")
    assert s.model.rebuild(seed=3)
    m = s.model
    assert isinstance(m.trace, XP.Expanded) and m.trace.source is m.module_trace
    assert 0 <= s.step <= len(m.trace) and s.bar.expanded == "M_1"


def test_expanding_after_coming_back_from_the_circuit_keeps_the_module_step():
    """A switch's memory of where it came from is for that switch only (found by the browser
    test: expanding after circuit → modules used the circuit's step number)."""
    m = StepperModel(notes_net(), X, Y)
    assert m.set_granularity("scalar circuit")
    for _ in range(15):
        m.next()
    assert m.set_granularity("modules")
    k = m.step
    assert m.set_expanded("M_1"), m.error
    assert m.set_expanded(None) and m.step == k


# --- a half-built Stepper closes cleanly ---------------------------------------------------------------

def test_a_stepper_whose_constructor_fails_leaves_no_widget_open(monkeypatch):
    import gc
    import sys
    from ipywidgets.widgets.widget import _instances
    from backpropviz.widgets import stepper as widgets
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    net, x, y = bpv.mlp([2, 3, 1], seed=0), [1.0, 2.0], [1.0]
    before = len(_instances)
    with pytest.raises(bpv.BackpropError):
        bpv.Stepper("not a network")

    def broken(self, stepper):
        raise RuntimeError("no graph today")
    monkeypatch.setattr(widgets.GraphPanel, "__init__", broken)     # after several parts exist
    with pytest.raises(RuntimeError, match="no graph today"):
        bpv.Stepper(net, x, y)
    gc.collect()
    assert len(_instances) == before and unraisable == []
    monkeypatch.undo()
    s = bpv.Stepper(net, x, y)
    assert len(_instances) > before + 20
    s.close()
    assert len(_instances) == before


def test_enter_checks_the_answer_once():
    """The answer box sends its text on Enter (continuous_update off): that checks it; the check
    button afterwards does not count the same try twice, nor an empty box after a right one."""
    s = bpv.Stepper(notes_net(), X, Y, predict=True)
    k = next(j for j in range(1, s.model.n + 1) if s.model.needs_prediction(j))
    s.go(k - 1)
    assert not s.answer.continuous_update
    s.answer.value = "[5]"                              # Enter
    s.click("check")
    assert "✘" in s.feedback.value and s.model.tries(k) == 1
    want = s.model.trace[s.model.trace.specs[k - 1].writes]
    s.answer.value = str(np.ravel(want).tolist())        # Enter: right, and on to step k
    assert s.step == k and "✔" in s.feedback.value
    s.click("check")                                    # the same click's button event
    assert "✔" in s.feedback.value and not s.model.tries(k + 1)


def test_the_widget_takes_any_step_asked_for_or_says_why():
    """Stepper.go and the bar: inf goes to the end, 2.5 or None is a message, never a raw error."""
    s = bpv.Stepper(notes_net(), X, Y)
    s.go(float("inf"))
    assert s.step == s.model.n
    s.go(-10 ** 400)
    assert s.step == 0
    with pytest.raises(bpv.BackpropError, match="whole number"):
        s.go(2.5)
    s.move(None)                                  # as a callback would: a message in the widget
    assert "whole number" in s.message.value and s.step == 0


def test_a_move_asked_for_in_a_trace_no_longer_shown_is_dropped():
    """Play's tick or a click sent just before a view switch names the old trace: the kernel drops
    it instead of applying its step number to the scalar circuit."""
    s = bpv.Stepper(notes_net(), X, Y)
    s.go(3)
    old = s.bar.version
    s.bar.set_granularity("scalar circuit")
    assert s.bar.version == old + 1
    at = s.step
    s.bar.handle({"move": 4, "how": "play", "v": old})        # computed in the module view
    assert s.step == at and s.model.in_circuit
    s.bar.handle({"move": at + 1, "how": "button", "v": s.bar.version})
    assert s.step == at + 1
