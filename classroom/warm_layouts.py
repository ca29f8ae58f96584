"""Lay out, before a class, every graph the classroom app's Steppers can show, into the layout cache
that all kernels of this machine share (backpropviz/display/layout.py): the module graph, the
scalar circuit and each module expanded. The pre-heated kernels and the students' then read them.

Run:  .venv/bin/python classroom/warm_layouts.py [notebooks/06_classroom.ipynb]

It runs the notebook's code cells as the kernel would (in the notebook's folder, with the same
environment: BPV_LAYOUT_CACHE, BACKPROPVIZ_ENGINE), finds its Steppers (a variable, or the value
of a cell's last line) and draws each of their views once. Run it again after changing the
teacher's cell; a graph already in the cache costs a few milliseconds.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import backpropviz as bpv
from backpropviz.display.layout import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def steppers(notebook: Path) -> list:
    """The Steppers the notebook's code cells make (the cells must be plain Python)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    ns, shown = {"__name__": "__main__"}, []
    os.chdir(notebook.parent)
    with contextlib.redirect_stdout(io.StringIO()):
        for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            tree = ast.parse("".join(cell["source"]), f"{notebook.name}, code cell {i + 1}")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, f"cell {i + 1}", "exec"), ns)
            if last is not None:       # what Jupyter shows under the cell
                shown.append(eval(compile(ast.Expression(last.value), f"cell {i + 1}", "eval"), ns))
    found = []
    for v in list(ns.values()) + shown:
        if isinstance(v, bpv.Stepper) and all(v is not s for s in found):
            found.append(v)
    return found


def views(stepper) -> list[tuple[str, object]]:
    """What a learner can switch the Stepper to: modules, the scalar circuit, one module open."""
    m = stepper.model
    out = [("modules", m.module_trace)]
    if not m.circuit_reason:
        out.append(("scalar circuit", bpv.circuit(m.module_trace)))
    out += [(f"{mi.name} expanded", bpv.circuit(m.module_trace, expand=mi.name))
            for mi in m.expandable()]
    return out


def main(argv: list[str]) -> int:
    notebook = Path(argv[0] if argv else ROOT / "notebooks" / "06_classroom.ipynb").resolve()
    print(f"layout cache: {cache_dir() or 'off (BPV_LAYOUT_CACHE)'}")
    for n, s in enumerate(steppers(notebook), 1):
        for name, trace in views(s):
            t = time.perf_counter()
            try:
                bpv.render(trace, 0)
                what = f"{time.perf_counter() - t:.2f} s"
            except bpv.BackpropError as e:          # too large to draw: the app says so too
                what = f"not drawn ({str(e)[:60]}…)"
            print(f"Stepper {n}, {name}: {len(trace.nodes) + len(trace.modules)} nodes, {what}")
        s.close()          # closed here, not by ipywidgets' __del__ while Python shuts down
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
