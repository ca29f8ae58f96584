"""More raw errors a learner met (issue 19): each is now a clear BackpropError, or works. A value
with thousands of users, ints too large for a float, a learner's backward that returns a torch
tensor, dates, trace files that loaded but then failed, 3-D round trips, control characters in a
label, module-level names asked of the circuit, a class defined again, numbers typed as text."""
import datetime
import json
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backpropviz as bpv
from helpers import refused
from backpropviz.core import expr as E

X = np.array([1.0, 2.0])


# --- 1. a value with thousands of users --------------------------------------------------------

def many_users(n):
    def f(z):
        acc = z * 0.0
        for i in range(1, n):
            acc = acc + z * float(i)
        return acc.sum()
    return f


def test_a_value_with_2000_users_is_traced_and_its_sum_shown():
    """RecursionError before: the sum (7.53) of 2,000 contributions was nested 2,000 deep."""
    tr = bpv.trace(many_users(2000), X)
    np.testing.assert_array_equal(tr.grad("u[0]"), [1999 * 1000.0] * 2)
    k = next(k for k, s in enumerate(tr.specs, 1) if s.kind == "acc")
    text = bpv.step_text(tr, k)
    assert "∂J/∂u[0] via M_1 + ∂J/∂u[0] via M_2 +" in text and text.count(" + ") == 2 * 1999
    assert bpv.step_text(tr, len(tr))


def test_step_text_with_900_users_at_every_kind_of_step():
    """RecursionError in step_text before (the rule's text was rendered recursively)."""
    tr = bpv.trace(many_users(900), X)
    from backpropviz.display.presentation import present
    for k in {1, tr.n_forward + 1, len(tr)} | {k for k, s in enumerate(tr.specs, 1)
                                                if s.kind == "acc"}:
        view = present(tr, k)
        assert view.text and view.tex


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 7), tex=st.booleans(), numbers=st.booleans())
def test_the_flat_sum_reads_as_the_nested_one(n, tex, numbers):
    """The flat sum writes and computes exactly what c0 + c1 + … nested to the left did."""
    syms = [E.Sym(f"c{i}") for i in range(n)]
    nested = syms[0]
    for s in syms[1:]:
        nested = nested + s
    fmt = E.Format(tex, numbers, lambda name, as_=None: f"-{name}" if numbers else name)
    flat = E.plus(syms)
    assert flat.render(fmt) == nested.render(fmt) and flat.symbols() == nested.symbols()
    env = {f"c{i}": np.array([0.1 * i, 1e16, -1e16]) for i in range(n)}
    np.testing.assert_array_equal(flat.eval(env), nested.eval(env))


# --- 2. ints too large for a float, or for an index --------------------------------------------

@pytest.mark.parametrize("make", [lambda: bpv.Power(10 ** 400), lambda: bpv.Power(-10 ** 400),
                                  lambda: bpv.Power(10 ** 5000),
                                  lambda: bpv.trace(lambda z: (z ** 10 ** 400).sum(), X)])
def test_a_power_too_large_for_a_float(make):
    """OverflowError before."""
    refused(make, "power: the exponent", "too large for a float", "z ** 2")


@pytest.mark.parametrize("f, shape", [
    (lambda z: z[2 ** 63], (2,)), (lambda z: z[-2 ** 63 - 1], (2,)),
    (lambda z: z[10 ** 5000], (2,)), (lambda z: z[[2 ** 63]].sum(), (2,)),
    (lambda z: z[[0, 2 ** 64]].sum(), (2,)), (lambda z: z[0, 2 ** 63], (2, 2)),
    (lambda z: z[np.array([2 ** 63], dtype=np.uint64)].sum(), (2,)),
])
def test_an_index_too_large_for_numpy(f, shape):
    """OverflowError (or a position wrapped round to a negative one) before."""
    msg = refused(lambda: bpv.trace(f, np.ones(shape)), "out of range",
                  f"a value of shape {'×'.join(map(str, shape))}")
    assert len(msg) < 300


def test_a_ragged_list_of_positions():
    refused(lambda: bpv.trace(lambda z: z[[[0], [0, 1]]].sum(), X), "lists of equal length")


# --- 3. bpv.check on a backward that returns a torch tensor or 10**400 ----------------------------

class GradTensor:
    """Like a torch tensor that requires grad: numpy cannot read it."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def __array__(self, *args, **kwargs):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                           "tensor.detach().numpy() instead.")

    def __repr__(self):
        return f"tensor({self.a.tolist()}, requires_grad=True)"


class Tensor(GradTensor):
    """Like a torch tensor numpy can read (but a network cannot compute with)."""

    def __array__(self, dtype=None, copy=None):
        return self.a.astype(dtype or float)


class NotAnArray:
    def __init__(self, a):
        self.a = a


def _sig(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("returns, said", [
    (lambda z, v: GradTensor(v), "returned GradTensor 'tensor(["),
    (lambda z, v: Tensor(_sig(z) * (1 - _sig(z)) * v), "returned Tensor 'tensor(["),
    (lambda z, v: NotAnArray(v), "returned NotAnArray (an object)"),
    (lambda z, v: [GradTensor(v)], "returned list"),
    (lambda z, v: 10 ** 400, "returned int '1000"),
    (lambda z, v: 10 ** 5000, "returned int (it cannot be written out)"),
])
def test_check_says_what_a_backward_returned_and_what_it_should(returns, said):
    """A raw RuntimeError or OverflowError from bpv.check before (or a pass for a tensor numpy
    could read, whose network then failed at another module)."""
    class Mine(bpv.Sigmoid):
        def backward(self, z, v):
            return returns(z, v)
    report = bpv.check(Mine)
    text = str(report)
    assert not report.ok and f"Mine.backward {said}" in text
    assert "return a NumPy array of shape 3 (∂J/∂z has the shape of z)" in text
    assert "shape 3×4" in text                             # a batch: the shape of that z
    assert report.errors and all(isinstance(e, bpv.BackpropError) for e in report.errors)
    assert " at 0x" not in text                            # the report reads the same every run


def test_a_network_names_the_step_that_returned_something_else():
    class Mine(bpv.Sigmoid):
        def backward(self, z, v):
            return Tensor(_sig(z) * (1 - _sig(z)) * v)
    text = str(bpv.check(Mine))
    assert "Backprop through it failed" in text
    assert "which M_2 ((B1) (7.69)) returned as a Tensor, not a NumPy array of floats" in text


def test_a_parameter_gradient_too_large_names_its_shape():
    class Mine(bpv.MM):
        def grad_W(self, z, v):
            return 10 ** 400
    text = str(bpv.check(Mine))
    assert "Mine.grad_W returned int" in text and "(∂J/∂W has the shape of W)" in text


# --- 4. dates and times are not numbers -------------------------------------------------------

@pytest.mark.parametrize("x", [
    np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([3], dtype="timedelta64[D]"),
    np.datetime64("2020-01-01"), np.array([np.datetime64("2020-01-01")], dtype=object),
    [np.datetime64("2020-01-01"), 1.0], [datetime.date(2020, 1, 1)],
    [datetime.timedelta(days=1)], [1.0, np.timedelta64(1, "h")],
])
def test_dates_and_times_are_refused_where_numbers_enter(x):
    """A date was read as 18262.0 (days since 1970) before."""
    refused(lambda: bpv.trace(lambda z: z.sum(), x), "u[0] (input 1 of f)", "dates and times")
    refused(lambda: bpv.Sequential([bpv.Sum()]).backprop(x), "dates and times")


def test_dates_are_refused_as_parameters_and_labels():
    refused(lambda: bpv.MM(np.array([["2020-01-01"]], dtype="datetime64[D]"), [0.0]),
            "MM", "dates and times")
    refused(lambda: bpv.trace(lambda z: bpv.SquaredLoss()(z, np.array([1], "timedelta64[s]")),
                              np.array([1.0])), "the label", "dates and times")


@pytest.mark.parametrize("x, J", [(np.array([True, False, True]), 2.0), ([1, 2.5], 3.5),
                                  (np.array([1, 2], dtype=object), 3.0)])
def test_booleans_and_numbers_in_object_arrays_still_count(x, J):
    assert bpv.trace(lambda z: z.sum(), x).loss == J


@pytest.mark.parametrize("x", [np.array([1 + 0j]), [1, 2 + 0j], [np.complex64(1)],
                               np.array([1j], dtype=object)])
def test_complex_numbers_stay_refused(x):
    refused(lambda: bpv.trace(lambda z: z.sum(), x), "complex numbers")


# --- 5. trace files that loaded but then failed ---------------------------------------------

def good() -> dict:
    return bpv.trace(lambda z: (z[0] * z).sum(), X).to_dict()


def load(d):
    return bpv.Trace.from_json(json.dumps(d))


def test_a_trace_file_without_steps_is_refused_on_load():
    """It loaded, then repr and step_text raised IndexError: J = u[k] is what the last forward
    step writes, and such a file has none (a run always records one)."""
    d = good()
    d["steps"], d["out"] = [], []
    refused(lambda: load(d), "not a valid backpropviz trace", "at least one forward step")
    d["modules"] = []
    refused(lambda: load(d), "at least one forward step")


def test_a_trace_without_steps_made_in_memory_shows_no_steps():
    tr = bpv.trace(lambda z: z.sum(), X)
    empty = bpv.Trace(tr.nodes, (), (), tr.given, [])
    assert "0 steps" in repr(empty) and "no J" in repr(empty)
    assert "no steps" in bpv.step_text(empty, 0)


def test_forward_steps_after_the_backward_pass_are_refused():
    d = bpv.trace(lambda z: (z * z).sum(), X).to_dict()
    seed = next(i for i, s in enumerate(d["steps"]) if s["kind"] == "seed")
    d["steps"].insert(seed + 1, dict(d["steps"][0], writes=["u[9]", False, None, 0]))
    d["nodes"].append(["u[9]", "value", "M_1", None])
    d["out"].insert(seed + 1, d["out"][0])
    refused(lambda: load(d), "forward steps (F) come first")


def test_a_vector_loss_is_refused_on_load():
    d = good()
    j = max(i for i, s in enumerate(d["steps"]) if s["kind"] == "F")
    d["out"][j] = {"shape": [2], "data": [1.0, 2.0]}
    refused(lambda: load(d), f"out[{j}]", "J = u[3] must be a single number", "shape [2]")


def test_an_empty_value_with_a_huge_dimension_is_shown_without_work_per_row():
    """[5000000, 0] holds no numbers: it loads, and text summarises it (a.min() of an empty
    array raised ValueError; nothing may go row by row)."""
    d = bpv.trace(lambda z: (z * z).sum(), X).to_dict()
    empty = {"shape": [5_000_000, 0], "data": []}
    d["given"]["u[0]"] = empty
    for i, s in enumerate(d["steps"]):
        if s["writes"][0] in ("u[0]", "u[1]"):
            d["out"][i] = empty
    d["out"][0] = empty
    d["out"][1] = {"shape": [], "data": [0.0]}
    start = time.perf_counter()
    tr = load(d)
    texts = [repr(tr)] + [bpv.step_text(tr, k) for k in range(len(tr) + 1)]
    from backpropviz.display.presentation import trace_text
    texts.append(trace_text(tr))
    assert time.perf_counter() - start < 2
    assert "5000000×0: empty" in texts[2] and tr.loss == 0.0
    from backpropviz.theory.circuit import decomposition_reason
    refused(lambda: bpv.circuit(tr), "circuit: u[0] has no numbers (shape 5000000×0)")
    assert "one node per number" in decomposition_reason(tr)


@pytest.mark.parametrize("consts, said", [
    ([["zn", 1.0], ["z0", 2.0], ["on", 0.0]], "p0 is missing"),
    ([["zn", 1.0], ["z0", 2.0], ["on", 0.0], ["p0", 0.5]], "p0 is 0.5, not a whole number"),
    ([["zn", 1.0], ["z0", 2.0], ["on", 0.0], ["p0", 2.0]], "p0 is 2.0, not a whole number from 0 to 1"),
    ([["zn", 1e300], ["on", 0.0]], "zn is 1e+300"),
    ([["zn", 1.0], ["z0", 2.0], ["on", 1.0], ["o0", 1e15], ["p0", 0.0]], "selects 1000000000000000 "),
    ([["zn", 2.0], ["z0", 1e15], ["z1", 1e15], ["on", 0.0], ["p0", 0.0]], "more than the 5000000"),
])
def test_an_index_whose_constants_do_not_describe_one_is_refused_on_load(consts, said):
    """An unused Index with incomplete constants loaded, then drawing it raised KeyError 'p0'."""
    d = good()
    d["modules"].append(dict(d["modules"][0], name="M_9", consts=consts))
    msg = refused(lambda: load(d), "not a valid backpropviz trace", "modules[3]", said)
    assert len(msg) < 300


def test_a_value_and_its_gradient_have_the_same_shape_in_a_file():
    d = good()
    d["out"][1]["shape"] = [1, 1, 2]            # u[2], a value of 2 entries, made 1×1×2
    refused(lambda: load(d), "a gradient has the shape of its node (1, 1, 2)")


# --- 6. the exact round trip, for every shape tracing takes --------------------------------------

FUNCTIONS = {
    "square": lambda z: (z * z).sum(),
    "ops": lambda z: (z.exp() * 2.0 + z.tanh() - z.sin() / 3.0).sum(),
    "reuse": lambda z: ((z * z).sigmoid() * z).sum(),
    "first": lambda z: (z[0] * z[0]).sum(),
}


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=4).map(tuple),
       name=st.sampled_from(sorted(FUNCTIONS)), seed=st.integers(0, 2 ** 16))
def test_trace_to_json_from_json_is_exact_for_every_shape(shape, name, seed):
    """3-D inputs were traced but their file refused ('a shape is at most 2 sizes')."""
    x = np.random.default_rng(seed).normal(size=shape)
    try:
        tr = bpv.trace(FUNCTIONS[name], x)
    except bpv.BackpropError:
        assert name == "first" and (len(shape) == 0 or len(shape) > 3)   # z[0] of those
        return
    text = tr.to_json()
    back = bpv.Trace.from_json(text)
    assert back.same_as(tr) and back.to_json() == text


def test_a_circuit_of_a_3d_value_round_trips():
    tr = bpv.trace(lambda z: (z * z).sum(), np.arange(1.0, 9.0).reshape(2, 2, 2))
    c = bpv.circuit(tr)
    assert bpv.Trace.from_json(c.to_json()).same_as(c)


def test_more_axes_than_a_file_keeps_are_refused_where_they_enter():
    refused(lambda: bpv.trace(lambda z: z.sum(), np.ones((1,) * 33)), "33 axes", "at most 32")


# --- 7. control characters in a label -------------------------------------------------------

def _module_class(label, name="Twice"):
    ns = {"bpv": bpv}
    exec(f"class {name}(bpv.Module):\n"
         f"    label = {label!r}\n"
         f"    def forward(self, z): return 2 * z\n"
         f"    def backward(self, z, v): return 2 * v\n", ns)
    return ns[name]


@pytest.mark.parametrize("label, shown", [("\x00", "\\x00"), ("\x1b[31m", "\\x1b[31m"),
                                          ("a\x0cb", "a\\x0cb"), ("a\nb", "a\\nb"),
                                          ("\ud800", "\\ud800"), ("\ufffe", "\\ufffe")])
def test_a_label_with_control_characters_is_drawn_as_their_escapes(label, shown):
    """The SVG was not XML (XML 1.0 forbids these characters, even escaped)."""
    tr = bpv.trace(lambda z: _module_class(label)()(z).sum(), X)
    assert tr.modules[0].label == shown
    for k in range(len(tr) + 1):
        ET.fromstring(bpv.render(tr, step=k).svg)
    assert bpv.Trace.from_json(tr.to_json()).same_as(tr)


def test_a_label_made_by_label_for_is_shown_the_same_way():
    class Beep(bpv.Module):
        def forward(self, z):
            return 2 * z

        def backward(self, z, v):
            return 2 * v

        @classmethod
        def label_for(cls, consts):
            return "x\x07y"
    tr = bpv.trace(lambda z: Beep()(z).sum(), X)
    assert tr.modules[0].label == "x\\x07y" and "x\\x07y(u[0])" in bpv.step_text(tr, 1)
    ET.fromstring(bpv.render(tr, step=1).svg)


@pytest.mark.parametrize("attr", ["inputs = ('z\\x00',)", "param_names = ('W b',)"])
def test_input_and_parameter_names_are_python_names(attr):
    code = f"class Odd(bpv.Module):\n    {attr}\n"
    refused(lambda: exec(code, {"bpv": bpv}), "Odd: the input and parameter names are Python names")


# --- 8. a module-level name asked of the circuit ----------------------------------------------

@pytest.mark.parametrize("ask, method", [("grad", "module_grad"), ("value", "module_value"),
                                         ("node", "module_value")])
def test_the_circuit_points_a_module_level_name_to_module_grad(ask, method):
    """circuit.grad("W[1]") listed the circuit's nodes (about a thousand of them for a network)."""
    c = bpv.circuit(bpv.mlp([2, 8, 8, 1], seed=0).backprop(X, 1.0))
    msg = refused(lambda: getattr(c, ask)("W[1]"), "W[1] is a module-level node",
                  f"circuit.{method}('W[1]')", "W[1]₁,₁")
    assert len(msg) < 400
    assert hasattr(c, method)
    np.testing.assert_array_equal(c.module_grad("W[1]").shape, (8, 2))
    assert c.grad("u[6]") == 1.0                      # J, a single number, keeps its name


# --- 9. a class defined again --------------------------------------------------------------

def test_a_class_defined_again_is_drawn_with_its_new_label():
    """The layout kept per graph showed the first label (ModuleInfo was equal: same class name)."""
    old = _module_class("first", "DefinedTwiceInATest")
    t1 = bpv.trace(lambda z: old()(z).sum(), X)
    assert "first" in bpv.render(t1).svg
    new = _module_class("second", "DefinedTwiceInATest")
    t2 = bpv.trace(lambda z: new()(z).sum(), X)
    svg = bpv.render(t2).svg
    assert re.findall(r"first|second", svg) == ["second"] * len(re.findall(r"first|second", svg))
    assert "second" in svg and "first" not in svg
    assert "first" in bpv.render(t1).svg and "second" not in bpv.render(t1).svg   # as recorded


# --- 10. numbers typed as text: never an OverflowError --------------------------------------

BIG = "1" + "0" * 400


def test_numbers_typed_too_large_for_a_float_name_their_field():
    from backpropviz.teach.rebuild import parse_array, parse_sizes
    from backpropviz.teach.stepper import StepperModel
    for text in (BIG, f"[{BIG}, 1]", f"[[1, {BIG}]]", "-1e400", "1" * 5000):
        refused(lambda: parse_array(text, "W[1]"), "W[1]:")
    refused(lambda: parse_sizes(f"2, {BIG}, 1"), "layer sizes")
    refused(lambda: parse_sizes("2, " + "1" * 5000 + ", 1"), "layer sizes")
    m = StepperModel(bpv.mlp([2, 3, 1], seed=0), X, 1.0)
    k = next(k for k in range(1, m.n + 1) if m.needs_prediction(k))
    ok, msg = m.check_prediction(BIG, k)
    assert not ok and msg.startswith(bpv.Key.gradient(m.trace.specs[k - 1].node).__str__())
    refused(lambda: m.rebuilder.parse_weights(f"b[1] = {BIG}, 1, 1"), "b[1]:")
    refused(lambda: m.rebuilder.parse_weights(f"W[1] = [[{BIG}, 1], [1, 1], [1, 1]]"), "W[1]:")
    for field in ("x", "y"):
        assert m.rebuild(**{field: [10 ** 400] * (2 if field == "x" else 1)}) is False
        assert m.error.startswith(f"{field}: a number too large for a float")
    ok, msg = bpv.Question("q", 1.0).check(BIG)
    assert not ok and msg.startswith("your answer:")


# --- also: one forward pass per trace, exceptions of a learner's forward, the live network ---------

def test_trace_runs_each_forward_once():
    """bpv.trace ran every forward twice: once recording, once in the pass."""
    calls = []

    class Counted(bpv.Module):
        def forward(self, z):
            calls.append(1)
            return 2 * z

        def backward(self, z, v):
            return 2 * v
    tr = bpv.trace(lambda z: Counted()(Counted()(z)).sum(), X)
    assert len(calls) == 2 and tr.loss == 12.0
    np.testing.assert_array_equal(tr.grad("u[0]"), [4.0, 4.0])


def test_a_forward_that_overflows_is_still_named_by_the_pass():
    msg = refused(lambda: bpv.trace(lambda z: (z * 1e200 * 1e200).sum(), X), "M_2",
                  "contains NaN or inf")
    assert "forward step 2" in msg


@pytest.mark.parametrize("body, said", [("raise RuntimeError('boom')", "RuntimeError: boom"),
                                        ("return 1 / 0", "ZeroDivisionError"),
                                        ("raise NotImplementedError()", "not written yet")])
def test_any_exception_of_a_forward_while_tracing_names_the_step(body, said):
    ns = {"bpv": bpv}
    exec(f"class Fails(bpv.Module):\n    def forward(self, z):\n        {body}\n", ns)
    refused(lambda: bpv.trace(lambda z: ns["Fails"]()(z).sum(), X),
            "M_1 = M (forward step 1, (F))", said)


def test_training_shows_its_current_network():
    """Lesson 08 read r._live.layers: r.network is the network with the current θ."""
    data = bpv.datasets.make("sine")
    r = bpv.Training(bpv.mlp([1, 4, 1], loss="squared", seed=0), data.X, data.Y, lr=0.1)
    r.step(5)
    net = r.network
    for p, v in r.params.items():
        np.testing.assert_array_equal(net.params[p], v)
    u = data.X
    for m in net.layers:
        u = m.forward(u)
    np.testing.assert_array_equal(u, r.predict(data.X))
    r.step(1)
    assert not all(np.array_equal(net.params[p], v) for p, v in r.params.items())  # a copy


def test_div_backward_where_v_over_b_underflows():
    """−(a/b)(v/b) gave −0 where v/b underflowed although −a·v/b² = −1e-290 is a normal number
    (the example hypothesis found for test_wrong_numbers' property)."""
    a, b, v = 1.1868678078048077e+118, 2.9319530499563337e+84, 7.242886386014443e-240
    got = bpv.Div().grad_b(np.array([a]), np.array([b]), np.array([v]))
    np.testing.assert_allclose(got, [-1e-290], rtol=1e-9)
