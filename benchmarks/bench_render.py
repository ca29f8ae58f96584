"""Rendering speed: first layout, then one step's SVG from the kept layout, against re-running
Graphviz for every step (what notebook users of micrograd's draw_dot do today).

Run:  python benchmarks/bench_render.py      (prints a Markdown table; figures, not a test)
      python benchmarks/bench_render.py exports    (the exports' limits: time and peak memory)
"""
from __future__ import annotations

import json
import statistics
import subprocess
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


# --- the exports' bounds: time and peak memory of the largest exports allowed, and of refusals ---

# one export in a fresh Python process, its address space capped at 4 GB so that nothing it does
# can disturb the machine. Graphviz's own peak is measured through a small Python process that
# runs it: a child's peak RSS counts its parent's memory at the moment it is started, so
# measured from the export's process it would be that process's size, not Graphviz's.
_EXPORT = r"""
import io, json, resource, subprocess, sys, time, warnings
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import numpy as np
sys.path.insert(0, sys.argv[2])
import backpropviz as bpv
from backpropviz.display import draw, engines, export
case = json.loads(sys.argv[1])
graphviz_peak = [0]
MEASURE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdin=sys.stdin, "
           "capture_output=True); sys.stdout.buffer.write(p.stdout); "
           "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
           "sys.exit(p.returncode)")
def run_engine(src, fmt="json", engine=None):
    exe = engines.find_engine(engine)
    p = subprocess.run([sys.executable, "-c", MEASURE, exe, "-T" + fmt], input=src.encode(),
                       capture_output=True, timeout=600)
    graphviz_peak[0] = max(graphviz_peak[0], int(p.stderr.decode().strip().splitlines()[-1]))
    return p.stdout
engines.run_engine = run_engine
sys.path.insert(0, sys.argv[2] + "/tests")
from helpers import chain            # the tests' tall graph (tests/helpers.py)
def notes():
    W1, W2 = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[0.5, -0.5]])
    net = bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(W2, np.zeros(1)),
                          bpv.Sigmoid()], loss=bpv.SquaredLoss())
    return net.backprop(np.array([1.0, 2.0]), [1.0])
def graph(name):
    if name == "notes":
        return notes()
    if name.startswith("chain"):
        return chain(int(name[5:]))
    sizes = [int(n) for n in name.split("-")]
    return bpv.circuit(bpv.mlp(sizes, seed=0).backprop(np.array([0.3, -0.7][:sizes[0]]), 1.0))
tr = graph(case["graph"])
r = draw.renderer(tr)
nodes = len(r.layout.boxes) + len(r.layout.ovals)
steps = case.get("steps")
steps = list(range(len(tr) + 1)) if steps is None else list(range(*steps))
dpi = case.get("dpi")
if dpi == "largest":       # the largest dpi the limits allow
    if case["kind"] == "png":
        fits = lambda w, h: (w * h <= export.MAX_PNG_PIXELS and max(w, h) <= export.MAX_SIDE)
    else:
        fits = lambda w, h: (w * h <= export.MAX_GIF_FRAME_PIXELS and
                             len(steps) * w * h <= export.MAX_GIF_PIXELS)
    dpi = next(d for d in range(600, 9, -1)
               if fits(*export.raster_size(r, steps if case["kind"] == "gif" else [len(tr)], d)))
graphviz_peak[0] = 0                      # the export's own Graphviz runs, not the layout
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with warnings.catch_warnings(record=True) as warned:
    warnings.simplefilter("always")
    try:
        if case["kind"] == "png":
            out = r.png(len(tr), dpi=dpi)
            w, h = export.png_size(out)
            result = f"{w:,}×{h:,} px"
        elif case["kind"] == "gif":
            out = r.gif(steps=steps, dpi=dpi)
            from PIL import Image
            im = Image.open(io.BytesIO(out))
            result = (f"{im.width:,}×{im.height:,} px × {im.n_frames} frames, "
                      f"{len(out) / 1e6:.1f} MB")
        else:
            out = r.flipbook()
            result = f"{len(out) / 1e6:.1f} MB of HTML"
    except Exception as e:
        result = f"refused ({type(e).__name__}): " + str(e)[:90] + "…"
seconds = time.perf_counter() - t
if warned:
    result += " [" + str(warned[0].message).split(": drawn at ")[-1].split(" (")[0] + "]"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps([nodes, len(steps) if case["kind"] == "gif" else "",
                  "" if dpi is None else dpi, result, seconds,
                  before / 1024, peak / 1024, graphviz_peak[0] / 1024]))
"""

EXPORT_CASES = [
    # (what it shows, graph, export, frames as range(a, b) arguments or None for all, dpi)
    ("PNG, the notes' example", "notes", "png", None, None),
    ("PNG, largest allowed (40 MP)", "2-8-1", "png", None, "largest"),
    ("PNG, 1,631-node circuit", "2-16-16-1", "png", None, None),
    ("PNG, dpi asked above the limit", "2-8-1", "png", None, 150),
    ("PNG, 2,883-node graph", "chain720", "png", None, None),
    ("GIF, the notes' example", "notes", "gif", None, None),
    ("GIF, 40-node circuit, every step", "1-2-1", "gif", None, None),
    ("GIF, 69-node circuit, every step", "2-3-1", "gif", None, None),
    ("GIF, largest frames allowed (8 MP)", "2-4-1", "gif", (0, 25), "largest"),
    ("GIF, 395 nodes × 120 frames", "chain98", "gif", (0, 120), None),
    ("GIF, 69-node circuit, dpi=96 asked", "2-3-1", "gif", None, 96),
    ("flipbook, 1,631-node circuit", "2-16-16-1", "flipbook", None, None),
]


def export_bounds():
    """Each export of EXPORT_CASES in a fresh process: what it gave or why it was refused, its
    time, the process's peak memory (RSS) before and after, and Graphviz's peak."""
    root = __file__.rsplit("/benchmarks/", 1)[0]
    print("| case | nodes | frames | dpi | result | s | process MB before → peak "
          "| Graphviz MB |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for label, graph, kind, steps, dpi in EXPORT_CASES:
        case = {"graph": graph, "kind": kind, "steps": steps, "dpi": dpi}
        p = subprocess.run([sys.executable, "-c", _EXPORT, json.dumps(case), root],
                           check=False, capture_output=True, text=True, timeout=1800)
        if p.returncode:
            print(f"| {label} | | | | failed: {p.stderr.strip().splitlines()[-1][:100]} | | | |")
            continue
        nodes, frames, d, result, s, before, peak, gv = json.loads(p.stdout.splitlines()[-1])
        secs = f"{s:.2f}" if s < 1 else f"{s:.1f}"
        print(f"| {label} | {nodes:,} | {frames} | {d} | {result} | {secs} | "
              f"{before:.0f} → {peak:.0f} | {gv:.0f} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["exports"]:
        export_bounds()
    else:
        main()
