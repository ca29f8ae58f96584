"""Write the lessons in notebooks/ from the cells below, then execute them in place.

    .venv/bin/python tools/make_notebooks.py          # all lessons
The executed outputs are committed: strict nbval compares them on every test run.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"


def md(text):
    return new_markdown_cell(text.strip())


def code(text):
    return new_code_cell(text.strip())


START_HERE = [
    md("""
# Start here: the notes' 2-layer example, step by step

This lesson reproduces the last example of the lecture notes (§7.4, *Example: Full Forward and
Backward Pass for a Simple MLP*) with **backpropviz**, then lets you step through it.

Notation is the notes': modules $M_i$, intermediate values $u^{[i]}$ (with $u^{[0]} = x$),
parameters $\\theta^{[i]}$, and the backward function $\\mathcal{B}[M, z](v)$ that maps
$v = \\partial J/\\partial u$ to $\\partial J/\\partial z$.

* forward (F): $u^{[i]} = M_i(u^{[i-1]})$
* backward (B1): $\\partial J/\\partial u^{[i-1]} = \\mathcal{B}[M_i, u^{[i-1]}](\\partial J/\\partial u^{[i]})$
* backward (B2): $\\partial J/\\partial \\theta^{[i]} = \\mathcal{B}[M_i, \\theta^{[i]}](\\partial J/\\partial u^{[i]})$
"""),
    code("""
import numpy as np
import backpropviz as bpv
from backpropviz.text import inline

# the numbers of the notes' example
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
b2 = np.array([0.0])
y_true = np.array([1.0])

net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2), bpv.Sigmoid()],
                     loss=bpv.SquaredLoss())
trace = net.backprop(x, y_true)     # one forward and one backward pass, every step recorded
trace
"""),
    md("""
**A slip in the notes.** The example is titled as the MLP of (7.72), but its last two modules are
a sigmoid and the *squared* loss $\\tfrac12(a_2 - y)^2$, not the logistic loss of (7.72). The code
is right for what it computes, and so are the numbers below. (More slips: `errata.md`.)

The notes name the values $z_1, a_1, z_2, a_2$; here they are $u^{[1]}, \\dots, u^{[4]}$ and
$J = u^{[5]}$:
"""),
    code("""
def eight(a):   # 8 significant digits, like the notes' printout
    return np.array2string(np.asarray(a), formatter={"float_kind": lambda v: f"{v:.8g}"})

names = {"u[1]": "z1", "u[2]": "a1", "u[3]": "z2", "u[4]": "a2"}
for u, z in names.items():
    print(f"{z} = {u:5} = {eight(trace.value(u))}")
print(f"loss = J     = {trace.loss:.8g}")
print()
for p in ["W[2]", "b[2]", "W[1]", "b[1]"]:
    print(f"dloss/d{p} = {eight(trace.grad(p))}")
"""),
    md("""
Compare with what the notes' own code prints: `z1: [0.5 1.1]`, `a2: [0.42555748]`,
`loss: [0.1649921]`, `dloss/dW2: [-0.07021362 -0.15446997]`, … — the same numbers (the notes print
`dloss/dW2` as a flat vector; its shape is really 1×2, the shape of $W^{[2]}$, §7.4.1).

## Every step of the pass

One line per step: five forward steps (F), then the backward pass, which starts with
$\\partial J/\\partial u^{[5]} = 1$ and applies (B1) and (B2) module by module, from $M_5$ back to $M_1$.
The tag is the equation in the notes.
"""),
    code("print(bpv.trace_text(trace))"),
    md("""
## One step, drawn

`bpv.show(trace, step=k)` draws the graph as known after step *k*: the number you type is the one
the caption, the Stepper's counter and its slider show ("step 9/14"), and step 0 is the state
before the first step, when only $x$, $\\theta$ and $y$ are known. Blue: the forward pass;
vermillion, dashed: the backward pass; grey bars: not computed yet. This step is (B2) with (7.65): $\\partial J/\\partial W^{[2]} = v\\, z^\\top$ with $v = \\partial J/\\partial u^{[3]}$ and $z = u^{[2]}$.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
bpv.show(trace, step=9)
"""),
    md("The same step as text (what a screen reader or a log shows):"),
    code("print(bpv.step_text(trace, 9))"),
    md("""
## Your turn: step through it

Press **step ▶** to apply one rule at a time (**◀ step** goes back), or **to backward pass** to
jump to $\\partial J/\\partial u^{[5]} = 1$; the play button runs through the steps by itself. Tick
*predict, then reveal* to type each gradient before it is shown. Below the graph, the inspector
follows the current step (or shows the node you pick); change $x$, $y$, the weights or the loss,
then *rebuild*.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
stepper = bpv.Stepper(net, x, y_true)
stepper
"""),
    md("""
Behind the widget is a plain model you can drive from code. Nine steps in, the backward pass has
just applied (7.65) to get $\\partial J/\\partial W^{[2]}$:
"""),
    code("""
model = bpv.StepperModel(net, x, y_true)
for _ in range(9):
    model.next()
print(model.counter())
view = model.view()
print(view.symbolic)
print("=", view.numbers)
print("=", view.result)
"""),
    md("""
## Is backprop right? Its numerical twin

`bpv.gradcheck` compares every gradient with central finite differences
$(J(\\theta + \\varepsilon e_j) - J(\\theta - \\varepsilon e_j)) / 2\\varepsilon$.
"""),
    code("""
report = bpv.gradcheck(net, x, y_true)
print("gradcheck passed:", report.ok)
print("largest difference below 1e-8:", max(r.max_abs_err for r in report.rows) < 1e-8)
"""),
    md("""
## The chain rule example (7.52)–(7.54)

Any composition of ops can be traced: here $u = z^2$ (elementwise) and $J = \\sum_j u_j$.
"""),
    code("""
chain = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
print("J =", f"{chain.loss:g}")
print("dJ/dz =", inline(chain.grad("u[0]")))
print()
print(bpv.trace_text(chain))
"""),
]


CLASSROOM = [
    md("""
# Classroom: predict every gradient, then reveal it

Open this lesson with Voilà (`./dev voila`) for a clean app without code cells.

A 2-3-1 network with ReLU and the logistic loss (7.72). *Predict, then reveal* is on: press ▶;
before each backward rule is applied, type the gradient you expect (a vector such as
`[0.1, -0.2]` or a matrix such as `[[0.1, 0.2, 0.3]]`) and press *check*. Wrong shape, a missing
transpose or a forgotten σ'(z) each get their own hint. *reveal* shows the answer.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
import numpy as np
import backpropviz as bpv

net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)
x, y = np.array([1.0, -2.0]), 1.0
stepper = bpv.Stepper(net, x, y, predict=True)
stepper
"""),
    code("""
trace = stepper.model.trace
print(trace)
print("parameters:", ", ".join(f"{k} {bpv.text.shape_text(v)}" for k, v in net.params.items()))
"""),
    md("""
## A value used twice: gradients add up

Here $x$ feeds two modules: $J = \\sum_j \\big(\\mathrm{MM}[W, b](x) + x\\big)_j^2$, a skip
connection. The backward pass reaches $x$ along both paths; each path gives a contribution and an
extra step sums them (the sum over $j$ in (7.53)).
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]))
skip = bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), np.array([1.0, 0.5]))
bpv.Stepper(skip)
"""),
    code("""
for step in skip.steps:
    if step.kind == "acc":
        print(bpv.present(skip, step.number).symbolic)
print("dJ/dx =", bpv.text.inline(skip.grad("u[0]")))
"""),
]


def write(name, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = NB / name
    nbformat.write(nb, path)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                    "--inplace", "--ExecutePreprocessor.timeout=300", str(path)], check=True)
    strip_widget_state(path)
    print("wrote", path)


def strip_widget_state(path):
    """Keep no widget state: a saved widget cannot talk to a new kernel, and its state is ~100 KB
    of churn per regeneration. The cell keeps its static SVG and text until it is run."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    nbformat.write(nb, path)


LESSONS = {"00_start_here.ipynb": START_HERE, "01_classroom.ipynb": CLASSROOM}

if __name__ == "__main__":
    wanted = sys.argv[1:] or list(LESSONS)
    for name in wanted:
        write(name, LESSONS[name])
