"""The cost of backprop (backpropviz/cost.py): Theorem 7.4.1's sweep, Remark 7.4.2's two routes,
and what the forward pass keeps. Counts are checked exactly; times are never asserted."""
import sys

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.theory import cost

X, Y = np.array([1.0, 2.0]), np.array([1.0])


# --- exact counts, by hand ------------------------------------------------------------------------

def test_jacobian_counts_by_hand():
    # σ on 3 numbers: backward 3 derivatives + 3 products; Jacobian 9 entries (3 derivatives),
    # product 9 multiplications + 6 additions → 3 + 15 = 18
    assert cost.jacobian_counts("activation", 3) == {
        "kind": "activation", "n": 3, "forward": 3, "backward": 6,
        "jacobian_entries": 9, "jacobian": 18}
    # MM 2×2 with b: forward 4 × and 4 +; backward Wᵀv 4 × + 2 +, v zᵀ 4 ×; the Jacobian has
    # 2 outputs × (2 + 4 + 2) inputs = 16 entries, each input's gradient 2 × + 1 + → 8 × 3 = 24
    assert cost.jacobian_counts("MM", 2) == {
        "kind": "MM", "n": 2, "forward": 8, "backward": 10,
        "jacobian_entries": 16, "jacobian": 24}
    with pytest.raises(bpv.BackpropError):
        cost.jacobian_counts("conv", 3)


def test_jacobian_costs_n_squared_or_more_and_the_backward_function_as_much_as_forward():
    for n in (10, 100, 1000):
        a, m = cost.jacobian_counts("activation", n), cost.jacobian_counts("MM", n)
        assert a["jacobian"] == 2 * n * n and a["backward"] == 2 * a["forward"]
        assert m["backward"] <= 1.5 * m["forward"] and m["jacobian"] >= n * m["forward"]


def test_sweep_counts_match_a_hand_count_and_the_circuit():
    # 2-3-1, ReLU, logistic: MM 3×2 (6 × + 6 +), ReLU 3, MM 1×3 (3 × + 3 +), loss 5 → N = 26
    s = cost.theorem_sweep([[2, 3, 1]])
    assert s.N.tolist() == [26]
    c = bpv.circuit(bpv.mlp([2, 3, 1], seed=0).backprop(X, Y))
    assert s.backward.tolist() == [c.counts.backward]
    assert s.time[0] > 0 and s.time_numbers[0] > 0


def test_backward_over_N_is_bounded_by_a_constant_over_a_sweep():
    s = cost.theorem_sweep([2, 4, 8, 16, 32, 48])
    assert np.all(np.diff(s.N) > 0)
    assert np.all(s.ratios <= 3.0) and np.all(s.ratios >= 1.0)
    assert 2.0 < s.constant < 3.0
    # the fit through the origin is the least-squares constant
    c = s.constant
    assert all(np.sum((s.backward - c * s.N) ** 2) <= np.sum((s.backward - k * s.N) ** 2)
               for k in (c * 0.99, c * 1.01))
    assert "backward ≈" in s.table() and "build" not in s.table()
    assert "build" in s.table(times=True)


def test_sweep_with_batches_and_other_losses():
    s = cost.theorem_sweep([3, 6], batch=4, loss="cross_entropy", n_out=3, activation="tanh")
    one = cost.theorem_sweep([3, 6], loss="cross_entropy", n_out=3, activation="tanh")
    assert np.all(s.N > 3 * one.N)
    assert np.all(s.ratios < 3.0)


# --- Remark 7.4.2: the Jacobian route and the backward function agree ----------------------------

@pytest.mark.parametrize("seed", range(4))
def test_jacobian_route_equals_backward_function_for_mm(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 7, size=2)
    mod = bpv.MM(rng.normal(size=(m, n)), rng.normal(size=m))
    z, v = rng.normal(size=n), rng.normal(size=m)
    r = cost.compare_routes(mod, z, v)
    assert r.same and r.max_difference < 1e-12
    assert set(r.jacobian) == {"z", "W", "b"}
    # and both are right: against the definitions (7.63), (7.65), (7.66)
    np.testing.assert_allclose(r.jacobian["z"], mod.W.T @ v)
    np.testing.assert_allclose(r.jacobian["W"], np.outer(v, z))
    np.testing.assert_allclose(r.jacobian["b"], v)


@pytest.mark.parametrize("act", [bpv.ReLU, bpv.Sigmoid, bpv.Tanh, bpv.Identity])
def test_jacobian_route_equals_backward_function_for_activations(act):
    rng = np.random.default_rng(7)
    z, v = rng.normal(size=9), rng.normal(size=9)
    r = cost.compare_routes(act(), z, v)
    # the rounding-level difference itself is never printed: it differs between CPUs
    assert r.same and str(r) == "inputs z: the Jacobian route and the backward function agree " \
                                "to 10⁻¹²: True"
    # against central differences of J = v · σ(z)
    eps, mod = 1e-6, act()
    fd = np.array([(v @ mod.forward(z + eps * e) - v @ mod.forward(z - eps * e)) / (2 * eps)
                   for e in np.eye(9)])
    np.testing.assert_allclose(r.jacobian["z"], fd, atol=1e-6)


def test_routes_refuse_other_modules():
    with pytest.raises(bpv.BackpropError, match="MM module or an elementwise"):
        cost.compare_routes(bpv.SquaredLoss(), np.ones(2), np.ones(2))


def test_jacobian_vs_backward_rows_and_skipped_jacobians():
    r = cost.jacobian_vs_backward((4, 8, 300), repeat=1, max_entries=1e6)
    assert [(x["kind"], x["n"]) for x in r.rows] == [
        ("activation", 4), ("activation", 8), ("activation", 300), ("MM", 4), ("MM", 8),
        ("MM", 300)]
    for x in r.rows:
        assert x == {**cost.jacobian_counts(x["kind"], x["n"]),
                     "time_backward": x["time_backward"], "time_jacobian": x["time_jacobian"]}
    mm300 = r.of("MM")[-1]
    assert np.isnan(mm300["time_jacobian"]) and mm300["time_backward"] > 0   # 27 M entries
    assert not np.isnan(r.of("activation")[-1]["time_jacobian"])
    assert "t Jacobian" not in r.table() and "t Jacobian" in r.table(times=True)


# --- memory: what the forward pass keeps ---------------------------------------------------------

def test_stored_matches_the_arrays_the_backward_steps_read():
    net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)
    tr = net.backprop(X, Y)
    st = cost.stored(tr)
    names = [r["node"] for r in st.rows]
    # u[0] … u[3] (not J = u[4]); W[2] (read by Wᵀv); y (read by the loss's backward); not W[1],
    # b[1], b[2]: (7.65) reads u[0], not W[1], and no step needs a b
    assert set(names) == {"u[0]", "u[1]", "u[2]", "u[3]", "W[2]", "y"}
    for r in st.rows:
        a = tr.value(r["node"])
        assert r["numbers"] == a.size and r["bytes"] == a.nbytes and r["shape"] == a.shape
        assert all(bpv.Key(r["node"]) in tr.specs[k - 1].reads for k in r["read_by"])
        assert all(tr.specs[k - 1].phase == "backward" for k in r["read_by"])
    assert st.numbers == 2 + 3 + 3 + 1 and st.bytes == 8 * st.numbers
    assert st.all_numbers == st.numbers + 3 + 1
    assert st.by_kind()["param"] == (3, 24)
    assert "72 bytes" in st.table()


def test_stored_on_a_batch_and_on_the_circuit():
    net = bpv.mlp([2, 4, 2], activation="sigmoid", loss="squared", seed=1)
    Xb = np.random.default_rng(0).normal(size=(2, 5))
    tr = net.backprop(Xb, np.zeros((2, 5)))
    st = cost.stored(tr)
    assert st.numbers == sum(tr.value(f"u[{i}]").size for i in range(4))
    c = bpv.circuit(tr)
    sc = cost.stored(c)
    assert all(r["numbers"] == 1 and r["bytes"] == 8 for r in sc.rows)
    kept = {r["node"] for r in sc.rows}
    # every number a backward step of the circuit reads, and nothing else
    expect = {k.node for s in c.specs if s.phase == "backward" for k in s.reads if not k.grad}
    assert kept == expect
    with pytest.raises(bpv.BackpropError):
        cost.stored("not a trace")


# --- plots: Figures with the expected lines, pyplot never imported ------------------------------

def test_plots_return_figures_with_the_expected_lines():
    from matplotlib.figure import Figure
    s = cost.theorem_sweep([2, 4, 8])
    c = bpv.circuit(bpv.mlp([2, 3, 1], seed=0).backprop(X, Y))
    f = cost.plot_theorem(s, circuit=c)
    assert isinstance(f, Figure)
    assert [len(a.lines) for a in f.axes] == [3, 2, 2]
    assert f"{s.constant:.3f}" in f.axes[0].get_title()
    assert [len(a.lines) for a in cost.plot_theorem(s, times=False).axes] == [2]
    # the fitted line goes through the origin
    x, y = f.axes[0].lines[1].get_data()
    assert x[0] == 0 and y[0] == 0
    r = cost.jacobian_vs_backward((4, 8), repeat=1)
    g = cost.plot_jacobian(r)
    assert isinstance(g, Figure) and [len(a.lines) for a in g.axes] == [4, 4]
    assert [len(a.lines) for a in cost.plot_jacobian(r, times=False).axes] == [4]
    assert cost.figure_image(g).data[:4] == b"\x89PNG"


def test_cost_does_not_import_pyplot():
    import subprocess
    code = ("import sys, numpy as np, backpropviz as bpv; from backpropviz import cost; "
            "cost.plot_jacobian(cost.jacobian_vs_backward((3,), repeat=1)); "
            "cost.plot_theorem(cost.theorem_sweep([2])); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
