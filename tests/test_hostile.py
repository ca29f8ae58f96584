"""Bad input and hostile files: one clear BackpropError, bounded work, nothing injected or kept."""
import copy
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backpropviz as bpv
from backpropviz.teach.stepper import StepperModel


def refused(fn, *fragments):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no ComplexWarning, no RuntimeWarning either
        with pytest.raises(bpv.BackpropError) as info:
            fn()
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))
    return str(info.value)


NET = bpv.mlp([2, 3, 1], seed=0)


# --- numbers and arrays ------------------------------------------------------------------------

@pytest.mark.parametrize("x,says", [
    (None, "None"), ("12", "text"), (["1", "2"], "text"), ([1 + 2j, 0], "complex"),
    (np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "mask"), ([10 ** 400, 1], "too large"),
    ([[1.0, 2.0], [3.0]], "not an array"), (np.zeros((2, 0)), "empty"), ([], "empty"),
    ([np.nan, 1.0], "NaN"), ([1e999, 1.0], "inf"),
])
def test_bad_inputs_are_refused_with_what_is_wrong(x, says):
    refused(lambda: NET.backprop(x, 1.0), "u[0]", says)


@pytest.mark.parametrize("y,says", [("1", "text"), (None, "label y"), ([2.0], "0 or 1")])
def test_bad_labels_are_refused(y, says):
    refused(lambda: NET.backprop([0.5, -1.0], y), says)


@pytest.mark.parametrize("W,says", [(None, "None"), ([[10 ** 400, 1]], "too large"),
                                    ([[np.nan, 1.0]], "NaN"), (np.zeros((0, 2)), "empty"),
                                    ([[1 + 1j, 0]], "complex"), ("ab", "text")])
def test_bad_parameters_are_refused_when_the_module_is_made(W, says):
    refused(lambda: bpv.MM(W), "MM: W", says)


def test_bad_sizes_and_seeds():
    refused(lambda: bpv.mlp([True, 3, 1]), "sizes")
    refused(lambda: bpv.mlp([2, 3, 1], seed=-1), "seed")
    refused(lambda: bpv.mlp([2, 3, 1], seed=1.5), "seed")


def test_three_axes_with_at_in_a_trace_is_refused_before_anything_is_recorded():
    A = np.ones((2, 2, 2))
    msg = refused(lambda: bpv.trace(lambda a, b: (a @ b).sum(), A, np.ones(2)), "@", "2×2×2")
    assert "forward step 1" in msg


@pytest.mark.parametrize("p", [0, 1, 2, 3, 0.5, 1.5, -1, 2.5])
def test_power_at_zero_follows_the_limit_where_it_exists(p):
    x = np.array([0.0, 2.0])
    if p < 0:                                  # 0 ** −1 is infinite: refused in the forward pass
        refused(lambda: bpv.trace(lambda z: (z ** p).sum(), x), "NaN or inf")
        return
    g = bpv.trace(lambda z: (z ** p).sum(), x).grad("u[0]")
    assert g[1] == pytest.approx(p * 2.0 ** (p - 1))
    if p == 0 or p >= 1:                       # d/dz z^p at 0: 0 for p = 0 and p > 1, 1 for p = 1
        assert g[0] == (1.0 if p == 1 else 0.0)
    else:                                      # 0 < p < 1: the slope at 0 is infinite
        assert g[0] == math.inf


# --- the Stepper's rebuilds report errors the same way ------------------------------------------

@pytest.mark.parametrize("change,says", [
    (dict(seed=1.5), "seed"), (dict(seed=-1), "seed"), (dict(loss="hinge"), "loss"),
    (dict(x=("a",)), "text"), (dict(x=(1.0, 2.0, 3.0)), "3"), (dict(sizes=(2, 0, 1)), "sizes"),
    (dict(colour="red"), "no setting"),
])
def test_bad_rebuild_settings_are_reported_not_raised(change, says):
    m = StepperModel(bpv.mlp([2, 3, 1], seed=0), np.array([0.5, -1.0]), 1.0)
    good = m.trace
    assert not m.rebuild(**change)
    assert says in m.error and m.trace is good
    assert m.rebuild(x=(1.0, 2.0)) and not m.error           # and the next good one works


def test_a_wide_network_can_be_rebuilt_unchanged():
    m = StepperModel(bpv.mlp([2, 80, 1], seed=0), np.array([0.5, -1.0]), 1.0)
    assert m.rebuild(sizes=(2, 80, 1)), m.error


# --- trace files from elsewhere ------------------------------------------------------------------

def good_file():
    mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]))
    return bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), np.array([1.0, 0.5])).to_dict()


def _mutations():
    """Hand-made hostile files: each must give one BackpropError, never anything else."""
    d = good_file()
    out = {}

    def mut(name, fn):
        e = copy.deepcopy(d)
        fn(e)
        out[name] = e
    mut("format", lambda e: e.update(format="backpropviz.trace/1"))
    mut("extra key", lambda e: e.update(extra=1))
    mut("missing key", lambda e: e.pop("out"))
    mut("null nodes", lambda e: e.update(nodes=None))
    mut("node not a list", lambda e: e["nodes"].__setitem__(0, "u[0]"))
    mut("unknown kind", lambda e: e["nodes"][0].__setitem__(1, "evil"))
    mut("control char name", lambda e: e["nodes"][0].__setitem__(0, "a\x00b"))
    mut("unknown op", lambda e: e["modules"][0].__setitem__("op", "os.system"))
    mut("unknown input", lambda e: e["modules"][0].__setitem__("inputs", ["nope"]))
    mut("huge pad", lambda e: e["steps"][0].__setitem__("kind", "{z:>200000000}"))
    mut("out one short", lambda e: e["out"].pop())
    mut("shape mismatch", lambda e: e["out"][0].__setitem__("shape", [3]))
    mut("negative shape", lambda e: e["out"][0].__setitem__("shape", [-1]))
    mut("three axes", lambda e: e["out"][0].__setitem__("shape", [1, 1, 2]))
    mut("null data", lambda e: e["out"][0].__setitem__("data", None))
    mut("text number", lambda e: e["out"][0]["data"].__setitem__(0, "1.0"))
    mut("bool number", lambda e: e["out"][0]["data"].__setitem__(0, True))
    mut("reads the future", lambda e: e["steps"][0]["subs"].__setitem__(
        0, ["z", ["u[3]", False, None, 0]]))
    mut("written twice", lambda e: e["steps"][1].__setitem__("writes", e["steps"][0]["writes"]))
    mut("unknown user", lambda e: e["steps"][-1]["subs"][0][1].__setitem__(2, "M_99"))
    mut("bad which", lambda e: e["steps"][-3].__setitem__("which", [0]))
    mut("bad phase", lambda e: e["steps"][0].__setitem__("phase", "backward"))
    mut("given unknown node", lambda e: e["given"].__setitem__("zz", {"shape": [], "data": [1]}))
    mut("nan const", lambda e: e["modules"][0]["consts"].append(["p", "NaN"]))
    return out


MUTATIONS = _mutations()


def test_the_good_file_loads():
    tr = bpv.Trace.from_dict(good_file())
    assert tr.loss > 0 and len(tr) > 5


def test_text_in_a_file_is_shown_as_text_never_formatted():
    d = good_file()
    d["modules"][0]["given_name"] = "{z.__class__.__mro__}"
    tr = bpv.Trace.from_dict(d)
    text = "\n".join(bpv.step_text(tr, k) for k in range(len(tr) + 1))
    assert "{z.__class__.__mro__}" in text and "object" not in text


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_hostile_trace_files_give_one_clear_error(name):
    text = json.dumps(MUTATIONS[name])
    msg = refused(lambda: bpv.Trace.from_json(text), "not a valid backpropviz trace")
    assert len(msg) < 400


@pytest.mark.parametrize("text,says", [
    ("", "JSON"), ("{", "JSON"), ("null", "object"), ("[]", "object"), ('"x"', "object"),
    ("[" * 100000 + "]" * 100000, "JSON"), ('{"format": NaN}', "JSON"),
    ("x" * 60_000_001, "characters"),
])
def test_files_that_are_not_traces(text, says):
    refused(lambda: bpv.Trace.from_json(text), says)


def test_nan_and_inf_round_trip_in_standard_json():
    tr = bpv.trace(lambda x: ((x ** 0.5) * 0.0).sum(), [0.0, 4.0])
    text = tr.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert bpv.Trace.from_json(text).same_as(tr)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_mutations_of_a_trace_file_load_exactly_or_fail_clearly(data):
    d = good_file()
    path = []
    node = d
    for _ in range(data.draw(st.integers(1, 5))):      # walk down to a random place
        if isinstance(node, dict) and node:
            k = data.draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            k = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        path.append(k)
        parent, node = node, node[k]
    if not path:
        return
    new = data.draw(st.one_of(st.none(), st.booleans(), st.integers(-3, 10 ** 6),
                              st.floats(allow_nan=False), st.text(max_size=20),
                              st.lists(st.integers(0, 3), max_size=3)))
    parent[path[-1]] = new
    try:
        tr = bpv.Trace.from_dict(d)
    except bpv.BackpropError:
        return
    # whatever loads is usable: every step can be shown
    for k in range(len(tr) + 1):
        bpv.step_text(tr, k)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_name_is_refused_clearly_or_drawn_escaped(name):
    try:
        mm = bpv.MM(np.eye(2), name=name, param_names=(name + "W", "b"))
    except bpv.BackpropError:
        return
    tr = bpv.trace(lambda z: mm(z).sum(), np.array([1.0, 2.0]))
    for k in range(len(tr) + 1):
        text = bpv.step_text(tr, k)
        text.encode("utf-8")                    # no lone surrogate reaches the output
    from backpropviz.display import draw
    r = draw.Renderer(tr, layout=draw.Layout(tr, place=False))
    src = r.dot(len(tr))
    assert "<script" not in src.lower() or "&lt;script" in src


def test_a_large_input_is_summarized_in_the_fields_and_rebuilds_unchanged():
    n = 20_000
    s = bpv.Stepper(bpv.mlp([n, 2, 1], seed=0), np.linspace(-1.0, 1.0, n), 1.0)
    assert s.x_in.disabled and "min -1" in s.x_in.value and len(s.x_in.value) < 100
    before = s.model.trace
    s.seed_in.value = "3"
    s.click("rebuild")
    assert s.model.trace is not before and "bpv-error" not in s.message.value
    np.testing.assert_array_equal(s.model.trace.value("u[0]"), before.value("u[0]"))


_ELEMENTS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                      st.integers(-10 ** 400, 10 ** 400), st.booleans(),
                      st.complex_numbers(max_magnitude=10), st.text(max_size=3), st.none())


@settings(max_examples=300, deadline=None)
@given(st.lists(_ELEMENTS, min_size=0, max_size=3), st.one_of(_ELEMENTS, st.just(1.0)))
def test_any_numbers_give_a_trace_or_one_clear_error(x, y):
    """Whatever a learner types: a finite trace, or a BackpropError (never another exception,
    never a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            tr = NET.backprop(x, y)
        except bpv.BackpropError:
            return
    assert math.isfinite(tr.loss)
