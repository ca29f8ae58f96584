"""Rendering speed: first layout, then one step's SVG from the kept layout, against re-running
Graphviz for every step (what notebook users of micrograd's draw_dot do today).

Run:  python benchmarks/bench_render.py      (prints a Markdown table; figures, not a test)
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402
from backpropviz.display import draw, engines  # noqa: E402
from backpropviz.display.layout import forget_layouts  # noqa: E402


def big_trace(n_ops: int = 330):
    """A traced scalar circuit of about 1,000 nodes (ops, values and constants)."""
    def f(z):
        a, b = z.sin(), z.cos()
        for i in range(n_ops // 3):
            a, b = a * b + 0.5, (a - b).sin()
        return (a + b).sum()
    return bpv.trace(f, np.array([0.3, -0.2]))


def ms(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times)


def measure(name, trace, engine, dot_steps):
    forget_layouts()
    n_nodes = len(trace.nodes) + len(trace.modules)
    t0 = time.perf_counter()
    r = draw.Renderer(trace, engine=engine)
    first = (time.perf_counter() - t0) * 1e3
    r.svg(0)
    steps = list(range(0, len(trace) + 1))
    per_step = [ms(lambda k=k: r.svg(k), repeat=3) for k in steps]
    # the way it is done without a kept layout: Graphviz runs again for every step
    sample = steps[:: max(1, len(steps) // dot_steps)][:dot_steps]
    redo = [ms(lambda k=k: engines.run_engine(r.dot(k), "svg", engine), repeat=1) for k in sample]
    return (name, engine, n_nodes, len(trace), first, statistics.mean(per_step), max(per_step),
            statistics.mean(redo))


def main():
    engines = []
    for e in ("dot", "graphviz-pure"):
        try:
            draw.find_engine(e)
            engines.append(e)
        except draw.EngineMissing:
            print(f"(engine {e} not installed: skipped)")
    mlp = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
    small = mlp.backprop(np.array([0.5, -1.0]), 1.0)
    big = big_trace()
    rows = []
    for e in engines:
        rows.append(measure("2-16-16-1 MLP", small, e, dot_steps=len(small) + 1))
        rows.append(measure("scalar circuit", big, e, dot_steps=3))
    print("ms; per-step SVG = best of 3 for every step, mean and max over steps")
    print()
    print("| graph | engine | nodes | steps | first layout | step SVG mean | step SVG max "
          "| dot per step | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, e, n, s, first, mean, mx, redo in rows:
        print(f"| {name} | {e} | {n} | {s} | {first:.0f} | {mean:.2f} | {mx:.2f} | {redo:.0f} "
              f"| {redo / mean:.0f}× |")


if __name__ == "__main__":
    main()
