# %% [markdown]
# # Predict every gradient, then reveal it
#
# Press **step ▶** to go through the forward pass. Before each backward rule is applied you are
# asked for the gradient it computes: type it (a number such as `0.25`, a vector such as
# `[0.1, -0.2]`, a matrix such as `[[0.1, 0.2, 0.3]]`) and press **check**. A wrong shape, a
# missing transpose or a forgotten $\sigma'(z)$ each get their own hint, and after a first wrong
# try the rule itself is shown. **reveal** shows the answer and moves on.
#
# You need the backward functions of lesson 03 — $W^\top v$ (7.63), $v z^\top$ (7.65), $v$ (7.66),
# $\sigma'(z) \odot v$ (7.69), $(\sigma(t) - y)\,v$ (7.70) — and the order of Algorithm 3
# (lesson 04). The second part, a value used twice, needs the sum over users (7.53) of lesson 02.

# %%
# NBVAL_IGNORE_OUTPUT
# TEACHER: set the class's network and example in this one cell (Voilà hides the code).
import numpy as np
import backpropviz as bpv

net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)   # sizes, σ, loss, seed
x, y = np.array([1.0, -2.0]), 1.0                                      # the example

stepper = bpv.Stepper(net, x, y, predict=True)
stepper

# %% [markdown]
# ## A value used twice: its gradients add up
#
# Here $x$ feeds two modules, $J = \sum_j \big(\mathrm{MM}[W, b](x) + x\big)_j^2$ (a skip
# connection). The backward pass reaches $x$ along both paths; each path gives one contribution,
# and a last step adds them: the sum over the users of $x$ in the chain rule (7.53).

# %%
# NBVAL_IGNORE_OUTPUT
mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]))
skip = bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), np.array([1.0, 0.5]))
bpv.Stepper(skip, predict=True)

# %% [markdown]
# The last step of that pass, written out:

# %%
print(bpv.step_text(skip, len(skip)).split("\nknown:")[0])
