"""The notes' equation tags the tool shows (issue 18): the step labels in every notation and the
inspector's text for every node, on the lessons' typical passes, counted from the real output."""
import re

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.display.presentation import node_details, present
from backpropviz.display.text import fnum
from backpropviz.teach.stepper import StepperModel

# (F), (B1), (B2) and (7.52)–(7.80): the 32 tags of §7.4 (the notes number 7.52 to 7.80 without gaps)
ALL_TAGS = ["(F)", "(B1)", "(B2)"] + [f"(7.{i})" for i in range(52, 81)]
TAG = re.compile(r"\((?:F|B1|B2|7\.\d\d)\)")


def notes_final_example():
    """The notes' final example (lessons 00 and 04): MM, ReLU, MM, σ, the squared loss."""
    W1, b1 = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([0.0, 0.0])
    W2, b2 = np.array([[0.5, -0.5]]), np.array([0.0])
    net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2), bpv.Sigmoid()],
                         loss=bpv.SquaredLoss())
    return net.backprop(np.array([1.0, 2.0]), np.array([1.0]))


def lesson04():
    net = bpv.mlp([2, 3, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    return net.backprop(np.array([1.0, -2.0]), 1.0)


def typical_passes() -> dict:
    """The passes the lessons step through: an MLP with the logistic loss (bpv.mlp, lesson 04),
    with the squared loss (bpv.mlp, and the notes' final example), with the cross-entropy loss
    (lessons 02, 03), the scalar circuit of a small MLP (lesson 07) and f = Σ z² (lesson 01)."""
    small = bpv.Sequential([bpv.MM(np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros(2)), bpv.ReLU(),
                            bpv.MM(np.array([[0.5, -0.5]]), np.zeros(1))],
                           loss=bpv.LogisticLoss()).backprop(np.array([1.0, 2.0]), 1.0)
    return {
        "logistic MLP": lesson04(),
        "squared MLP": bpv.mlp([2, 3, 1], activation="relu", loss="squared", seed=1)
        .backprop(np.array([0.5, -1.0]), np.array([0.3])),
        "notes' final example": notes_final_example(),
        "cross-entropy MLP": bpv.mlp([2, 3, 3], activation="relu", loss="cross_entropy", seed=0)
        .backprop(np.array([1.0, 2.0]), 1),
        "scalar circuit": bpv.circuit(small),
        "f = Σ": bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0])),
    }


def shown_texts(trace) -> list[str]:
    """Everything the Stepper shows of a pass: each step's header, equation, tag and TeX in
    every notation it offers, and the inspector's text of every node at the end."""
    m = StepperModel(trace)
    out = []
    for notation in m.notations:
        assert m.set_notation(notation), m.error
        for k in range(m.n + 1):
            m.go(k)
            view = m.view()
            out += [view.text, view.tag, view.tex]
    m.go(m.n)
    for name in trace.node_names:
        out += m.inspect(name)["details"]
    return out


def test_at_least_24_of_the_32_tags_are_shown():
    shown = set()
    for name, trace in typical_passes().items():
        found = set(TAG.findall("\n".join(shown_texts(trace))))
        assert found, f"{name}: no tag shown at all"
        shown |= found
    missing = [t for t in ALL_TAGS if t not in shown]
    assert len(ALL_TAGS) == 32 and not shown - set(ALL_TAGS), shown - set(ALL_TAGS)
    assert len(shown) >= 24, (f"{len(shown)} of the notes' 32 tags are shown; missing: "
                              f"{', '.join(missing)}")


def test_the_count_can_fail():
    """A pass that shows few tags: the count is of what the tool writes, not a list."""
    tr = bpv.trace(lambda z: z.sum(), np.array([1.0]))
    found = set(TAG.findall("\n".join(shown_texts(tr))))
    assert len(found) < 24 and "(7.77)" not in found


# --- the seed and (7.73) ---------------------------------------------------------------------------

def test_the_seed_has_its_own_label_and_7_73_is_the_logistic_loss_step():
    tr = lesson04()
    seed = present(tr, 7)
    assert seed.spec.kind == "seed"
    assert seed.header == "step 7/18 · backward 1/12 · seed: ∂J/∂J = 1"
    assert "(7.73)" not in seed.text
    loss = present(tr, 8)
    assert loss.spec.tag == "(7.70)" and loss.header.endswith("at v = ∂J/∂J = 1: (7.73)")
    f = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))      # no loss at all
    assert "(7.73)" not in "\n".join(bpv.step_text(f, k) for k in range(len(f) + 1))
    assert bpv.step_text(f, 3).splitlines()[0] == "step 3/5 · backward 1/3 · seed: ∂J/∂J = 1"
    sq = notes_final_example()                      # (7.73) is the logistic loss's, not ℓ_sq's
    assert "(7.73)" not in "\n".join(bpv.step_text(sq, k) for k in range(len(sq) + 1))


def test_the_mlp_equations_label_only_networks_of_their_shape():
    tr = lesson04()
    heads = [present(tr, k).header for k in range(1, len(tr) + 1)]
    assert all(h.endswith("· in (7.72)") for h in heads[:6])
    assert [h.rsplit("· in ", 1)[-1] for h in heads[8:]] == ["(7.75)", "(7.75)", "(7.74)",
                                                           "(7.74)"] * 2 + ["(7.75)"] * 2
    assert present(tr, 0).header.startswith(
        "step 0/18 · before the first step · J = M_6(M_5(⋯M_1(x))) (7.60) · given")
    # the notes' final example has a σ output under ℓ_sq: not the network of (7.72) (errata)
    sq = notes_final_example()
    assert not any(re.search(r"\(7\.7[2-5]\)", present(sq, k).header) for k in range(len(sq) + 1))


# --- Algorithm 3 -------------------------------------------------------------------------------------

def test_algorithm3_lines_of_lesson_04():
    tr = lesson04()
    lines = [bpv.algorithm3_line(tr, k) for k in range(1, len(tr) + 1)]
    assert [(ln.tag, ln.k) for ln in lines[:6]] == [("(7.72)", 1), ("(7.72)", 1), ("(7.72)", 2),
                                                     ("(7.72)", 2), ("(7.72)", 3), ("(7.72)", None)]
    assert (lines[6].tag, lines[6].label) == ("", "seed: ∂J/∂J = 1, the 1 in (7.76)")
    assert (lines[7].tag, lines[7].k, lines[7].formula) == ("(7.76)", None,
                                                            "∂J/∂z[3] = (σ(z[3]) − y) ∂J/∂J")
    loop = [(ln.tag, ln.k, ln.writes) for ln in lines[8:]]
    assert loop == [("(7.77)", 2, "∂J/∂W[3]"), ("(7.78)", 2, "∂J/∂b[3]"),
                    ("(7.79)", 2, "∂J/∂a[2]"), ("(7.80)", 2, "∂J/∂z[2]"),
                    ("(7.77)", 1, "∂J/∂W[2]"), ("(7.78)", 1, "∂J/∂b[2]"),
                    ("(7.79)", 1, "∂J/∂a[1]"), ("(7.80)", 1, "∂J/∂z[1]"),
                    ("(7.77)", 0, "∂J/∂W[1]"), ("(7.78)", 0, "∂J/∂b[1]")]
    # the corrected lines: v zᵀ in (7.77), ∂J/∂a from ∂J/∂z in (7.79), ∂J/∂z from ∂J/∂a in (7.80)
    assert lines[8].formula == "∂J/∂W[3] = ∂J/∂z[3] a[2]ᵀ"
    assert lines[8].module_formula == "∂J/∂W[3] = ∂J/∂u[5] u[4]ᵀ"
    assert lines[10].formula == "∂J/∂a[2] = W[3]ᵀ ∂J/∂z[3]"
    assert lines[11].formula == "∂J/∂z[2] = σ(z[2]) ⊙ (1 − σ(z[2])) ⊙ ∂J/∂a[2]"
    assert lines[16].formula == "∂J/∂W[1] = ∂J/∂z[1] a[0]ᵀ"
    assert bpv.algorithm3_names(tr)["u[3]"] == "z[2]" and bpv.algorithm3_names(tr)["u[4]"] == "a[2]"
    text = bpv.step_text(tr, 9, notation="algorithm3")
    assert text.splitlines()[:3] == [
        "step 9/18 · backward 3/12 · Algorithm 3 (7.77), k = 2 · (B2) (7.65) · M_5 = MM[W[3], b[3]]",
        "∂J/∂W[3] = ∂J/∂z[3] a[2]ᵀ", "as modules: ∂J/∂W[3] = ∂J/∂u[5] u[4]ᵀ"]
    assert "(7.77)  k = 2  ∂J/∂W[3]" in bpv.trace_text(tr, notation="algorithm3")


def test_algorithm3_where_a_step_is_no_line_of_it():
    ex = notes_final_example()              # MM, ReLU, MM, σ, ℓ_sq: Algorithm 3's loop from step 9
    lines = {k: bpv.algorithm3_line(ex, k) for k in range(1, len(ex) + 1)}
    assert [lines[k] is None for k in (4, 5, 7, 8)] == [True] * 4   # σ output, ℓ_sq after it
    assert lines[6].tag == "" and lines[6].label == "seed: ∂J/∂J = 1"
    assert [(lines[k].tag, lines[k].k) for k in range(9, 15)] == [
        ("(7.77)", 1), ("(7.78)", 1), ("(7.79)", 1), ("(7.80)", 1), ("(7.77)", 0), ("(7.78)", 0)]
    assert "not a line of Algorithm 3" in present(ex, 8, "algorithm3").header
    # ∂J/∂x (input_grad) is no line of the algorithm (its (7.79) asks k ≥ 1)
    net = bpv.mlp([2, 2, 1], activation="relu", loss="logistic", seed=0)
    full = net.backprop(np.array([1.0, 2.0]), 1.0, input_grad=True)
    k = next(i for i, s in enumerate(full.specs, 1) if s.writes == bpv.Key.gradient("u[0]"))
    assert bpv.algorithm3_line(full, k) is None and bpv.algorithm3_line(full, k - 1).tag == "(7.78)"
    # another loss in (7.76): said so
    sq = bpv.mlp([2, 2, 1], loss="squared", seed=0).backprop(np.array([1.0, 2.0]), np.array([0.5]))
    start = next(bpv.algorithm3_line(sq, k) for k in range(1, len(sq) + 1)
                 if bpv.algorithm3_line(sq, k) and bpv.algorithm3_line(sq, k).tag == "(7.76)")
    assert start.note == "with ℓ_sq in place of ℓ_logistic" and "ℓ_sq in place" in start.label


def test_algorithm3_refuses_what_is_not_an_mlp():
    f = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0]))
    with pytest.raises(bpv.BackpropError, match="Algorithm 3 is the backward pass of an MLP"):
        bpv.algorithm3_line(f, 1)
    with pytest.raises(bpv.BackpropError, match="notation: choose one of modules, algorithm3"):
        bpv.step_text(f, 1, notation="alg3")
    batch = bpv.mlp([2, 2, 1], seed=0).backprop(np.ones((2, 4)), np.array([1.0, 0, 1, 0]))
    with pytest.raises(bpv.BackpropError):
        present(batch, 1, "algorithm3")
    assert StepperModel(f).notations == ("modules",)


def test_the_stepper_switches_notation():
    tr = lesson04()
    s = bpv.Stepper(tr)
    assert [v for v, _ in s.bar.notation_options] == ["modules", "algorithm3"]
    s.go(11)
    assert "(7.79)" not in s.equation.value
    s.bar.handle({"notation": "algorithm3"})
    assert s.bar.notation == "algorithm3" and s.model.notation == "algorithm3"
    eq = s.equation.value
    assert "Algorithm 3 (7.79), k = 2" in eq and r"\text{(7.79)}" in eq and "a^{[2]}" in eq
    assert "as modules: ∂J/∂u[4] = W[3]ᵀ ∂J/∂u[5]" in eq
    s.bar.handle({"notation": "nonsense"})                 # refused: the notation stays
    assert s.model.notation == "algorithm3" and "choose one of" in s.bar.message
    s.bar.set_granularity("scalar circuit")                # the circuit has the tool's names
    assert s.model.shown_notation == "modules" and "Algorithm 3" not in s.equation.value
    s.close()
    f = bpv.Stepper(bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0])))
    assert f.bar.notation_options == [["modules", "modules: u[i], M_i"]]   # no choice: hidden
    f.close()
    with pytest.raises(bpv.BackpropError, match="Algorithm 3"):
        bpv.Stepper(bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0])), notation="algorithm3")
    a = bpv.Stepper(tr, notation="algorithm3")
    a.go(12)
    assert "Algorithm 3 (7.80), k = 2" in a.equation.value
    a.close()


# --- the inspector: entrywise forms with the numbers --------------------------------------------

def test_inspector_shows_the_entrywise_forms_with_their_numbers():
    tr = lesson04()
    n = len(tr)
    W = "\n".join(node_details(tr, "W[3]", n, (0, 1)))
    v, z = tr.grad("u[5]"), tr.value("u[4]")
    assert "(7.55)" in W and "(7.64)" in W and "(7.65)" in W
    assert (f"∂J/∂W[3]₁,₂ = ∂J/∂u[5]₁ u[4]₂ = ({fnum(v[0])}) × {fnum(z[1])} = "
            f"{fnum(tr.grad('W[3]')[0, 1])}") in W
    mm = "\n".join(node_details(tr, "u[2]", n, (1,)))      # ∂J/∂u[2] = W[2]ᵀ ∂J/∂u[3]
    assert "(7.62)" in mm and "(7.59)" in mm and "(7.63)" in mm and "(7.53), (7.58)" in mm
    assert mm.rstrip().endswith(f"= {fnum(tr.grad('u[2]')[1])}")
    sig = "\n".join(node_details(tr, "u[3]", n))            # σ: a diagonal matrix
    assert "(7.67)" in sig and "(7.68)" in sig and "(7.69)" in sig
    d = tr.value("u[4]") * (1 - tr.value("u[4]"))
    assert f"[∂g_j/∂z_i] = [[{fnum(d[0])}, 0, 0], [0, {fnum(d[1])}, 0], [0, 0, {fnum(d[2])}]]" in sig
    assert "(7.52) with z = u[3], u = g(z) = u[4], J = f(u) = M_6(M_5(u))" in sig
    assert "(7.56), (7.61): ∂J/∂u[4] → ∂J/∂u[3] needs only M_4 and u[3]" in sig
    b = "\n".join(node_details(tr, "b[2]", n, (2,)))
    assert "(7.66)" in b and f"∂J/∂b[2]₃ = ∂J/∂u[3]₃ = {fnum(tr.grad('b[2]')[2])}" in b
    assert "u[3] is a[3] in (7.72) and z[2] in Algorithm 3" in "\n".join(node_details(tr, "u[3]", 0))
    assert not any("∂J" in line for line in node_details(tr, "u[3]", 11))   # not yet computed
    with pytest.raises(bpv.BackpropError, match="entry"):
        node_details(tr, "W[3]", n, (5, 0))
    # f = Σ z² (7.52)–(7.54): the notes' own numbers, diag(2z) and ∂J/∂z = [2, 4, 6]
    f = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
    text = "\n".join(node_details(f, "u[0]", len(f), (2,)))
    assert "[∂g_j/∂z_i] = [[2, 0, 0], [0, 4, 0], [0, 0, 6]]" in text
    assert "∂J/∂u[0]₃ = Σ_j ∂g_j/∂z₃ ∂J/∂u[1]_j = 0 × 1 + 0 × 1 + 6 × 1 = 6" in text


def test_the_inspector_widget_shows_them_escaped_and_for_the_entry_picked():
    tr = lesson04()
    s = bpv.Stepper(tr)
    s.go(len(tr))
    s.inspector.pick("W[2]")
    labels = [lab for lab, _ in s.inspector.entry_pick.options]
    assert labels[:4] == ["1,1", "1,2", "1,3", "2,1"]
    s.inspector.entry_pick.value = (1, 0)
    html_text = s.inspector.node_rules.value
    assert "(7.64)" in html_text and "∂J/∂W[2]₂,₁ = ∂J/∂u[3]₂ u[2]₁" in html_text
    assert s.inspector.follow.value is False
    s.inspector.pick("u[6]")                        # a single number: no entry to pick
    assert s.inspector.entry_pick.layout.display == "none"
    s.close()


def test_the_predict_box_asks_in_the_notation_shown():
    """In Algorithm 3's notation the prompt names ∂J/∂a[k] / ∂J/∂z[k] and the line with its k;
    after a wrong try, the line's rule in those names."""
    net = bpv.mlp([2, 3, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    s = bpv.Stepper(net, np.array([1.0, -2.0]), 1.0, predict=True, notation="algorithm3")
    s.model.go(10)
    s.predict_box.refresh("step")
    assert "∂J/∂a[2]</b> (Algorithm 3 (7.79), k = 2)" in s.predict_box.prompt.value
    s.model.check_prediction("[1, 2, 3, 4]", 11)          # a wrong try shows the line's rule
    s.predict_box.refresh("step")
    assert "∂J/∂a[2]</b> = W[3]ᵀ ∂J/∂z[3] (7.79)" in s.predict_box.prompt.value
    s.model.set_notation("modules")
    s.predict_box.refresh("step")
    assert "∂J/∂u[4]" in s.predict_box.prompt.value
