"""The scalar circuit in front of a class (issue 22): the module view's names survive expanding a
module, the steps are written in the notes' notation (× between single numbers, W^{[1]}_{2,1}),
and the drawn circuit's edge labels do not lie on top of one another."""
import re
from itertools import combinations

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core import keys as K
from backpropviz.display.presentation import present
from backpropviz.theory import expand as X


def notes_trace():
    """The notes' small network (lesson 07): MM, ReLU, MM, ℓ_logistic on x = (1, 2), y = 1."""
    net = bpv.Sequential([bpv.MM(np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros(2)), bpv.ReLU(),
                          bpv.MM(np.array([[0.5, -0.5]]), np.zeros(1))], loss=bpv.LogisticLoss())
    return net.backprop(np.array([1.0, 2.0]), 1.0)


def sigmoid_batch_trace():
    """A batch of 3 through MM, σ, MM, ℓ_sq: other operations (σ, −, ½ ×, 1/B ×) than above."""
    rng = np.random.default_rng(1)
    net = bpv.Sequential([bpv.MM(rng.normal(size=(2, 2)), rng.normal(size=2)), bpv.Sigmoid(),
                          bpv.MM(rng.normal(size=(1, 2)), rng.normal(size=1))],
                         loss=bpv.SquaredLoss())
    return net.backprop(rng.normal(size=(2, 3)), rng.normal(size=(1, 3)))


TRACES = [notes_trace, sigmoid_batch_trace]


# --- 1. names: the module view's names kept, what is opened named by its module -------------------

@pytest.mark.parametrize("make", TRACES)
def test_expanding_a_module_keeps_the_names_of_the_others(make):
    tr = make()
    for mi in tr.modules:
        x = X.expand(tr, mi.name)
        whole = {m.name: (m.label, m.output) for m in x.modules if x.names[m.name] != mi.name}
        assert whole == {m.name: (m.label, m.output) for m in tr.modules if m is not mi}, mi.name
        opened = [m.name for m in x.modules if x.names[m.name] == mi.name]
        assert opened and all(n.startswith(mi.name + ".") for n in opened), opened


def test_the_expanded_module_names_its_operations_as_the_circuit_does():
    """M_1.3 is the same + in the scalar circuit and with M_1 expanded; the routing steps (·)ᵢ
    and [·] are M_1.in1, M_1.in2, … and M_1.out."""
    tr = notes_trace()
    c, x = bpv.circuit(tr), X.expand(tr, "M_1")
    ops = {m.name: (m.label, m.inputs, m.output) for m in c.modules if m.name.startswith("M_1.")}
    assert list(ops) == [f"M_1.{i}" for i in range(1, 9)]
    mine = {m.name: (m.label, m.inputs, m.output) for m in x.modules if x.names[m.name] == "M_1"}
    assert {n: mine[n] for n in ops} == ops
    routing = [n for n in mine if n not in ops]
    assert routing == [f"M_1.in{i}" for i in range(1, 9)] + ["M_1.out"]
    assert [x.module(n).label for n in routing[:2]] == ["(·)₁,₁", "(·)₁"]
    assert x.module("M_1.out").label == "[·]"
    header = bpv.step_text(x, 17).splitlines()[0]
    assert header.endswith("M_1.out = [·]") and "M_17" not in header
    assert bpv.step_text(x, 18).splitlines()[0].endswith("M_2 = ReLU")


@pytest.mark.parametrize("make", TRACES)
def test_the_circuit_names_every_operation_by_its_module(make):
    """M_i.1, M_i.2, … are M_i's operations in the order they are computed."""
    tr = make()
    c = bpv.circuit(tr)
    seen = {}
    for m in c.modules:
        owner = c.node(m.output).part_of[0]
        seen[owner] = seen.get(owner, 0) + 1
        assert m.name == f"{owner}.{seen[owner]}"
    assert seen == c.counts.forward_by_module
    with pytest.raises(bpv.BackpropError, match=rf"M_1 is a module-level module; the circuit "
                       rf"names its {seen['M_1']} operations M_1.1 … M_1.{seen['M_1']}"):
        c.module("M_1")
    # the module-level and circuit steps still map onto each other (the Stepper's switch)
    from backpropviz.theory.circuit import to_circuit, to_modules
    assert [to_modules(c, to_circuit(c, k)) for k in range(len(tr) + 1)][:tr.n_forward + 2] == \
        list(range(tr.n_forward + 2))


def test_module_names_in_tex():
    assert K.tex_name("M_1.3") == "M_{1.3}"
    assert K.tex_name("M_12.40") == "M_{12.40}"
    assert K.tex_name("M_1.in2") == r"M_{1.\mathrm{in}2}"
    assert K.tex_name("M_1.out") == r"M_{1.\mathrm{out}}"
    assert K.tex(K.Key("u[0]₁", True, "M_1.in2")).endswith(r"_{\text{via }M_{1.\mathrm{in}2}}")


# --- 2. notation: × between single numbers, entries as W^{[1]}_{2,1} ------------------------------

def _views(make):
    tr = make()
    return [bpv.circuit(tr)] + [X.expand(tr, mi.name) for mi in tr.modules]


@pytest.mark.parametrize("make", TRACES)
def test_no_elementwise_product_between_two_single_numbers(make):
    for t in _views(make):
        for k, s in enumerate(t.specs, 1):
            if any(np.ndim(t[key]) for _, key in s.subs):
                continue                        # a module-level step: vectors, ⊙ is right there
            p = present(t, k)
            assert "⊙" not in p.text and r"\odot" not in p.tex, p.text


def test_a_product_of_two_numbers_reads_as_the_notes_write_it():
    c = bpv.circuit(notes_trace())
    p = present(c, 5)
    assert p.lines[1:3] == ["s[4] = W[1]₂,₁ × u[0]₁", "     = 0.3 × 1"]
    assert p.tex == r"{s^{[4]}} = {W^{[1]}_{2,1}} \times {u^{[0]}_{1}}"
    back = next(k for k, s in enumerate(c.specs, 1) if s.kind == "B1" and s.module == "M_2.1")
    assert present(c, back).lines[1] == "∂J/∂u[1]₁ = 1[u[1]₁ > 0] × ∂J/∂u[2]₁"
    # the module view's ReLU multiplies vectors: ⊙ there
    tr = notes_trace()
    relu_back = next(k for k, s in enumerate(tr.specs, 1) if s.kind == "B1" and s.module == "M_2")
    assert present(tr, relu_back).lines[1] == "∂J/∂u[1] = 1[u[1] > 0] ⊙ ∂J/∂u[2]"


@pytest.mark.parametrize("make", TRACES)
def test_every_entry_keeps_its_superscript_in_tex(make):
    """No name of the circuit falls back to \\text{…}: entries of W[1] are W^{[1]}_{i,j}."""
    for t in _views(make):
        for k in range(1, len(t) + 1):
            tex = present(t, k).tex
            assert r"\text{" not in tex.replace(r"\text{via }", ""), tex
    c = bpv.circuit(make())
    for name in c.entries("W[1]").ravel():
        i, j = re.fullmatch(r"W\[1\](.),(.)", name).groups()
        sub = f"{'₁₂₃'.index(i) + 1},{'₁₂₃'.index(j) + 1}"
        assert K.tex(K.Key(name)) == "{W^{[1]}_{" + sub + "}}"
    assert K.tex_name("y₁") == "y_{1}" and K.tex_name("u[1]₂,₁₂") == "u^{[1]}_{2,12}"
    assert K.tex_name("u[1]") == "u^{[1]}" and K.tex_name("s[4]") == "s^{[4]}"


# --- 3. the drawn circuit: no edge labels on top of one another ------------------------------------

_ELAB = re.compile(r'<text class="elab" x="([-\d.]+)" y="([-\d.]+)" text-anchor="middle">'
                   r'([^<]*)</text>')


def _label_boxes(svg):
    """Every drawn edge label's box: 11 px text, about 6.6 px a character, centred at x."""
    out = []
    for x, y, text in _ELAB.findall(svg):
        if text:
            w, x, y = 6.6 * len(text), float(x), float(y)
            out.append((text, x - w / 2, y - 11, x + w / 2, y))
    return out


@pytest.mark.parametrize("view", ["circuit", "batch circuit", "expanded"])
def test_edge_labels_do_not_overlap(view):
    """In the scalar circuit every value is one number: no edge says "scalar" (the boxes do),
    where 2–5 such labels overlapped side by side; with M_1 expanded, the module-level edges keep
    their shapes (2×2, 2, and J's "scalar"), the single numbers' edges have none."""
    tr = sigmoid_batch_trace() if view == "batch circuit" else notes_trace()
    t = X.expand(tr, "M_1") if view == "expanded" else bpv.circuit(tr)
    boxes = _label_boxes(bpv.render(t, 1).svg)
    for a, b in combinations(boxes, 2):
        assert a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2], (a, b)
    if view != "expanded":
        assert boxes == []
        return
    module_level = [n for m in t.modules for n in (*m.inputs, *m.params, m.output)
                    if t.node(n).part_of is None]
    assert sorted(b[0] for b in boxes) == sorted(bpv.text.shape_text(t.value(n))
                                                 for n in module_level)
    assert {"2", "2×2"} <= {b[0] for b in boxes}
