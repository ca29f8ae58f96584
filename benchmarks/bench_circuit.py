"""The scalar circuit (Theorem 7.4.1): building it with every forward value and every gradient,
against micrograd (PyPI ``micrograd``) doing the same forward and backward pass on the same
network, and the operation counts of growing MLPs.

Run:  python benchmarks/bench_circuit.py      (prints Markdown tables; figures, not a test)

micrograd's ``Value`` has no exp or log; the logistic loss needs both, so they are added here in
micrograd's own style (a closure per node), as its lectures add tanh and exp. Its network is
micrograd's ``nn.MLP`` with our weights copied in. Times are medians (µs): one example is one call
of a warm pass; "100 examples looped" is a loop over 100 different examples, per example.
micrograd's objects form reference cycles (each node's backward closure holds the node), so
Python's cyclic garbage collector runs during its passes: it is measured with the collector on
(as installed) and off (``gc.disable()``).
"""
from __future__ import annotations

import gc
import math
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402
from backpropviz.theory import circuit as C  # noqa: E402
from backpropviz.theory import engine  # noqa: E402

SIZES = [2, 16, 16, 1]
REPEATS = 7


# --- micrograd, as installed, with exp and log in its own style ---------------------------------

def micrograd_pass(net):
    """(step(x, y) → (J, gradients in our parameter order)), on micrograd's MLP with our weights."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    def exp(v):
        out = Value(math.exp(v.data), (v,), "exp")

        def _backward():
            v.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(v):
        out = Value(math.log(v.data), (v,), "log")

        def _backward():
            v.grad += out.grad / v.data
        out._backward = _backward
        return out

    mg = MLP(SIZES[0], SIZES[1:])
    params = list(net.params.values())
    for layer, W, b in zip(mg.layers, params[0::2], params[1::2]):
        for neuron, row, bias in zip(layer.neurons, W, b):
            for w, value in zip(neuron.w, row):
                w.data = float(value)
            neuron.b.data = float(bias)

    def step(x, y):
        t = mg([Value(float(v)) for v in x])
        J = log(1 + exp(t)) - float(y) * t               # ℓ_logistic(t, y)
        mg.zero_grad()
        J.backward()
        return J
    return mg, step


def micrograd_grads(mg):
    """micrograd's gradients as our W[1], b[1], … arrays."""
    out = []
    for layer in mg.layers:
        out.append(np.array([[w.grad for w in n.w] for n in layer.neurons]))
        out.append(np.array([n.b.grad for n in layer.neurons]))
    return out


# --- timing --------------------------------------------------------------------------------------

def one(fn, arg, n=200) -> float:
    """Median µs of single calls."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn(*arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def looped(fn, examples) -> float:
    """Median over repeats of (a loop over the examples) / their number, in µs per example."""
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for x, y in examples:
            fn(x, y)
        times.append((time.perf_counter() - t) / len(examples))
    return statistics.median(times) * 1e6


def with_gc(enabled: bool, measure):
    was = gc.isenabled()
    gc.enable() if enabled else gc.disable()
    try:
        return measure()
    finally:
        gc.enable() if was else gc.disable()


# --- the comparison -------------------------------------------------------------------------

def speed_table():
    net = bpv.mlp(SIZES, activation="relu", loss="logistic", seed=0)
    rng = np.random.default_rng(1)
    examples = [(rng.normal(size=2), float(rng.random() < 0.5)) for _ in range(100)]
    x0, y0 = examples[0]

    def circuit(x, y):
        return C.circuit(net.backprop(x, y))

    engine.clear_caches()
    t = time.perf_counter()
    c = circuit(x0, y0)
    first = (time.perf_counter() - t) * 1e6
    rows = {}
    rows["module-level trace (net.backprop)"] = (
        one(net.backprop, (x0, y0)), looped(net.backprop, examples))
    rows["scalar circuit (backprop + bpv.circuit)"] = (
        one(circuit, (x0, y0)), looped(circuit, examples))
    try:
        mg, mg_step = micrograd_pass(net)
    except ImportError:
        print("(micrograd is not installed: pip install micrograd; its rows are left out)")
        return net, c, first, rows
    J = mg_step(x0, y0)
    # the same numbers: J and every parameter gradient
    assert abs(J.data - c.loss) < 1e-12
    for name, g in zip(net.params, micrograd_grads(mg)):
        assert np.allclose(c.module_grad(name), g, rtol=1e-10, atol=1e-14), name
    rows["micrograd, gc on (as installed)"] = with_gc(True, lambda: (
        one(mg_step, (x0, y0)), looped(mg_step, examples)))
    rows["micrograd, gc off"] = with_gc(False, lambda: (
        one(mg_step, (x0, y0)), looped(mg_step, examples)))
    return net, c, first, rows


def breakdown(net, x, y):
    """Where one example's time goes (µs, medians): the module-level pass, finding the cached
    structure, the forward groups, the backward groups, and gathering the steps' numbers."""
    tr = net.backprop(x, y)
    st = engine.compile_structure(tr)
    val, grad, _ = st.values(tr)
    cval = np.empty(st.n_slots)
    parts = {"module-level trace": one(net.backprop, (x, y)),
             "find the structure": one(engine.compile_structure, (tr,))}
    parts["given numbers into one array"] = one(lambda: np.concatenate(
        [np.ravel(tr.given[n]) for n, _ in st.given_layout]), ())
    parts[f"forward: {len(st.run)} groups"] = one(lambda: [r.forward(val) for r in st.run], ())
    g = grad.copy()
    parts[f"backward: {len(st.run)} groups"] = one(
        lambda: [r.backward(val, g, cval) for r in reversed(st.run)], ())
    parts["every step's number (one gather)"] = one(
        lambda: np.concatenate((val, grad, cval))[st.step_src], ())
    parts["the Circuit object"] = one(lambda: C.Circuit(st, tr, val, grad, val), ())
    parts["all of bpv.circuit(trace)"] = one(C.circuit, (tr,))
    return st, parts


def sweep():
    """Counts and build times for MLPs 16-w-w-1 (ReLU, logistic loss) up to N ≥ 100,000."""
    rows = []
    for w in (4, 16, 32, 64, 128, 220):
        net = bpv.mlp([16, w, w, 1], activation="relu", loss="logistic", seed=0)
        tr = net.backprop(np.ones(16), 1.0)
        engine.clear_caches()
        t = time.perf_counter()
        c = C.circuit(tr)                       # structure and values
        build = time.perf_counter() - t
        again = one(C.circuit, (net.backprop(np.full(16, 0.5), 0.0),), n=5)
        cnt = c.counts
        rows.append((w, cnt.forward, cnt.backward, cnt.ratio, len(c), build, again / 1e3))
    return rows


def main():
    net, c, first, rows = speed_table()
    nan = (float("nan"), float("nan"))
    micro_on = rows.get("micrograd, gc on (as installed)", nan)
    micro_off = rows.get("micrograd, gc off", nan)
    module = rows["module-level trace (net.backprop)"]
    print(f"2-16-16-1 MLP, ReLU, logistic loss; µs per example (medians); Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"circuit: {c.counts.forward} forward operations, {c.counts.backward} backward "
          f"operations, {len(c)} steps; the first example also compiles the structure: "
          f"{first / 1e3:.0f} ms")
    print()
    print("| pass | one example | 100 examples looped | micrograd (gc on) / this "
          "| micrograd (gc off) / this | this / module-level trace |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (t1, t100) in rows.items():
        print(f"| {name} | {t1:.0f} | {t100:.0f} | {micro_on[1] / t100:.1f}× "
              f"| {micro_off[1] / t100:.1f}× | {t100 / module[1]:.1f}× |")
    print()
    st, parts = breakdown(net, np.array([0.5, -1.0]), 1.0)
    print("Where the circuit's time goes (one example, µs, medians of single calls):")
    print()
    print("| part | µs |")
    print("|---|---:|")
    for name, t in parts.items():
        print(f"| {name} | {t:.1f} |")
    print()
    t = time.perf_counter()
    rows = sweep()
    total = time.perf_counter() - t
    print("Theorem 7.4.1 on MLPs 16-w-w-1 (ReLU, logistic loss), one example: operations and the "
          "time to build the circuit (structure and values; then values only, structure cached)")
    print()
    print("| w | forward N | backward | backward / N | steps | build (s) | next example (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for w, nf, nb, ratio, steps, build, again in rows:
        print(f"| {w} | {nf:,} | {nb:,} | {ratio:.2f} | {steps:,} | {build:.2f} | {again:.1f} |")
    print()
    print(f"whole sweep: {total:.1f} s")


if __name__ == "__main__":
    main()
