# %% [markdown]
# # Classroom: predict every gradient, then reveal it
#
# Open this lesson with Voilà (`./dev voila`) for a clean app without code cells.
#
# A 2-3-1 network with ReLU and the logistic loss (7.72). *Predict, then reveal* is on: press ▶;
# before each backward rule is applied, type the gradient you expect (a vector such as
# `[0.1, -0.2]` or a matrix such as `[[0.1, 0.2, 0.3]]`) and press *check*. Wrong shape, a missing
# transpose or a forgotten σ'(z) each get their own hint. *reveal* shows the answer.

# %%
# NBVAL_IGNORE_OUTPUT
import numpy as np
import backpropviz as bpv

net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)
x, y = np.array([1.0, -2.0]), 1.0
stepper = bpv.Stepper(net, x, y, predict=True)
stepper

# %%
trace = stepper.model.trace
print(trace)
print("parameters:", ", ".join(f"{k} {bpv.text.shape_text(v)}" for k, v in net.params.items()))

# %% [markdown]
# ## A value used twice: gradients add up
#
# Here $x$ feeds two modules: $J = \sum_j \big(\mathrm{MM}[W, b](x) + x\big)_j^2$, a skip
# connection. The backward pass reaches $x$ along both paths; each path gives a contribution and an
# extra step sums them (the sum over $j$ in (7.53)).

# %%
# NBVAL_IGNORE_OUTPUT
mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]))
skip = bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), np.array([1.0, 0.5]))
bpv.Stepper(skip)

# %%
for step in skip.steps:
    if step.kind == "acc":
        print(bpv.present(skip, step.number).symbolic)
print("dJ/dx =", bpv.text.inline(skip.grad("u[0]")))
