"""The Stepper's model keeps its own limits and its views apart (issue 19): what a field can ask
for is bounded in the model, not only in the widget; a prediction revealed in one view is not
revealed in another."""
import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.teach.rebuild import MAX_LAYERS, MAX_SIZE, parse_array, parse_sizes
from backpropviz.teach.stepper import StepperModel


def model():
    return StepperModel(bpv.mlp([2, 3, 1], seed=0), np.array([1.0, 2.0]), 1.0)


@pytest.mark.parametrize("sizes, what", [((2, 20000, 20000, 1), "from 1 to 64"),
                                          ((2,) * 12000, "2 to 9 sizes"),
                                          ((2, 0, 1), "whole number ≥ 1"),
                                          ((2, 10**400, 1), "from 1 to 64")])
def test_the_model_refuses_networks_too_large_to_draw(sizes, what):
    """A MemoryError (20,000-wide layers) or 45 s and 2 GB (12,000 layers) before."""
    m = model()
    before = m.trace
    assert m.rebuild(sizes=sizes) is False and what in m.error
    assert m.trace is before                              # the last good trace stays


def test_the_largest_network_the_controls_allow_is_built():
    m = model()
    sizes = (2,) + (MAX_SIZE,) * (MAX_LAYERS - 1) + (1,)
    assert m.rebuild(sizes=sizes) is True and m.error == ""


@pytest.mark.parametrize("text", ["2, -3, 1", "2,,-3,1", "2, 3.5, 1", "two, 3"])
def test_sizes_with_a_negative_or_broken_entry_are_refused(text):
    """'2, -3, 1' was read as 2-3-1."""
    with pytest.raises(bpv.BackpropError, match="layer sizes"):
        parse_sizes(text)


def test_sizes_written_either_way():
    assert parse_sizes("2, 3, 1") == parse_sizes("2-3-1") == parse_sizes("2 3 1") == (2, 3, 1)


@pytest.mark.parametrize("text", ["1" + "0" * 400, "[1, 1" + "0" * 400 + "]", "-1e400"])
def test_a_number_too_large_for_a_float_is_a_clear_error(text):
    """'⚠ OverflowError' before."""
    with pytest.raises(bpv.BackpropError, match="x:"):
        parse_array(text, "x")
    m = model()
    assert m.check_prediction(text)[0] is False


def test_predictions_revealed_in_one_view_stay_in_that_view():
    """Modules, the scalar circuit and one module expanded: three views, each with its own
    revealed steps (the old swap of two sets leaked between the second and the third)."""
    m = model()
    k_mod = next(k for k in range(1, m.n + 1) if m.needs_prediction(k))
    m.reveal(k_mod)
    assert not m.needs_prediction(k_mod)
    assert m.set_granularity("scalar circuit")
    k_circ = next(k for k in range(1, m.n + 1) if m.trace.specs[k - 1].kind == "B1")
    assert m.needs_prediction(k_circ)                     # nothing revealed here yet
    m.reveal(k_circ)
    assert m.set_expanded("M_1")
    assert all(m.needs_prediction(k) for k in range(1, m.n + 1)
               if m.trace.specs[k - 1].kind in ("B1", "B2", "acc"))
    assert m.set_expanded(None)                            # back to modules: its own again
    assert not m.needs_prediction(k_mod)
    assert m.set_granularity("scalar circuit") and not m.needs_prediction(k_circ)
    assert m.set_granularity("modules") and m.rebuild(x=np.array([0.5, 0.5]))
    assert m.needs_prediction(k_mod)                      # a new pass: nothing revealed
