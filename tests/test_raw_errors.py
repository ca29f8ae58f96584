"""Raw errors a learner met (issue 19): each is now a BackpropError that says what to write
instead, and nothing that worked before stops working."""
import json

import numpy as np
import pytest

import backpropviz as bpv

X = np.array([1.0, 2.0])


@pytest.mark.parametrize("f, instead", [
    (lambda z: np.sum(z * z), "write z.sum()"),
    (lambda z: np.maximum(z, 0).sum(), "z.relu()"),
    (lambda z: np.exp(z).sum(), "z.exp()"),
    (lambda z: (2 ** z).sum(), "traced exponent"),
    (lambda z: abs(z).sum(), "abs()"),
    (lambda z: z.T @ z, "no transpose"),
    (lambda z: np.linalg.norm(z), "np.norm"),
    (lambda z: np.asarray(z).sum(), "NumPy function"),
])
def test_numpy_and_python_on_a_traced_value_say_what_to_write(f, instead):
    with pytest.raises(bpv.BackpropError, match="traced value u\\[|no transpose") as e:
        bpv.trace(f, X)
    assert instead in str(e.value)


@pytest.mark.parametrize("f, J", [(lambda z: (np.array([1.0, 2.0]) * z).sum(), 5.0),
                                  (lambda z: np.ones(2) @ z, 3.0),
                                  (lambda z: (np.ones(2) - z).sum(), -1.0),
                                  (lambda z: (np.ones(2) / z).sum(), 1.5)])
def test_an_array_on_the_left_of_an_operator_is_still_recorded(f, J):
    tr = bpv.trace(f, X)
    assert tr.loss == J and bpv.gradcheck(f, X).ok


def test_no_node_named_lists_a_few_nodes_not_thousands():
    c = bpv.circuit(bpv.mlp([2, 8, 8, 1], seed=0).backprop(X, 1.0))
    with pytest.raises(bpv.BackpropError) as e:
        c.value("nope")
    assert len(str(e.value)) < 600 and f"({len(c.nodes)} in all)" in str(e.value)


def test_duplicate_keys_in_a_file_are_refused():
    tr = bpv.trace(lambda z: (z ** 2).sum(), X)
    text = tr.to_json()
    assert bpv.Trace.from_json(text).same_as(tr)
    twice = text.replace('"format":', '"format": "x", "format":', 1)
    assert json.loads(twice)["format"] == "backpropviz.trace/2"      # plain JSON takes the last
    with pytest.raises(bpv.BackpropError, match="'format' is given twice"):
        bpv.Trace.from_json(twice)
