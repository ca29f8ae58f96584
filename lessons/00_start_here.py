# %% [markdown]
# # Start here: the notes' 2-layer example, step by step
#
# This lesson reproduces the last example of the lecture notes (§7.4, *Example: Full Forward and
# Backward Pass for a Simple MLP*) with **backpropviz**, then lets you step through it.
#
# Notation is the notes': modules $M_i$, intermediate values $u^{[i]}$ (with $u^{[0]} = x$),
# parameters $\theta^{[i]}$, and the backward function $\mathcal{B}[M, z](v)$ that maps
# $v = \partial J/\partial u$ to $\partial J/\partial z$.
#
# * forward (F): $u^{[i]} = M_i(u^{[i-1]})$
# * backward (B1): $\partial J/\partial u^{[i-1]} = \mathcal{B}[M_i, u^{[i-1]}](\partial J/\partial u^{[i]})$
# * backward (B2): $\partial J/\partial \theta^{[i]} = \mathcal{B}[M_i, \theta^{[i]}](\partial J/\partial u^{[i]})$

# %%
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


# %% [markdown]
# **A slip in the notes.** The example is titled as the MLP of (7.72), but its last two modules are
# a sigmoid and the *squared* loss $\tfrac12(a_2 - y)^2$, not the logistic loss of (7.72). The code
# is right for what it computes, and so are the numbers below. (More slips: `errata.md`.)
#
# The notes name the values $z_1, a_1, z_2, a_2$; here they are $u^{[1]}, \dots, u^{[4]}$ and
# $J = u^{[5]}$:

# %%
def eight(a):   # 8 significant digits, like the notes' printout
    return np.array2string(np.asarray(a), formatter={"float_kind": lambda v: f"{v:.8g}"})

names = {"u[1]": "z1", "u[2]": "a1", "u[3]": "z2", "u[4]": "a2"}
for u, z in names.items():
    print(f"{z} = {u:5} = {eight(trace.value(u))}")
print(f"loss = J     = {trace.loss:.8g}")
print()
for p in ["W[2]", "b[2]", "W[1]", "b[1]"]:
    print(f"dloss/d{p} = {eight(trace.grad(p))}")

# %% [markdown]
# Compare with what the notes' own code prints: `z1: [0.5 1.1]`, `a2: [0.42555748]`,
# `loss: [0.1649921]`, `dloss/dW2: [-0.07021362 -0.15446997]`, … — the same numbers (the notes print
# `dloss/dW2` as a flat vector; its shape is really 1×2, the shape of $W^{[2]}$, §7.4.1).
#
# ## Every step of the pass
#
# One line per step: five forward steps (F), then the backward pass, which starts with
# $\partial J/\partial u^{[5]} = 1$ and applies (B1) and (B2) module by module, from $M_5$ back to $M_1$.
# The tag is the equation in the notes.

# %%
print(bpv.trace_text(trace))

# %% [markdown]
# ## One step, drawn
#
# `bpv.show(trace, step=k)` draws the graph as known after step *k*: the number you type is the one
# the caption, the Stepper's counter and its slider show ("step 9/14"), and step 0 is the state
# before the first step, when only $x$, $\theta$ and $y$ are known. Blue: the forward pass;
# vermillion, dashed: the backward pass; grey bars: not computed yet. This step is (B2) with (7.65): $\partial J/\partial W^{[2]} = v\, z^\top$ with $v = \partial J/\partial u^{[3]}$ and $z = u^{[2]}$.

# %%
# NBVAL_IGNORE_OUTPUT
bpv.show(trace, step=9)

# %% [markdown]
# The same step as text (what a screen reader or a log shows):

# %%
print(bpv.step_text(trace, 9))

# %% [markdown]
# ## Your turn: step through it
#
# Press **step ▶** to apply one rule at a time (**◀ step** goes back), or **to backward pass** to
# jump to $\partial J/\partial u^{[5]} = 1$; the play button runs through the steps by itself. Tick
# *predict, then reveal* to type each gradient before it is shown. Below the graph, the inspector
# follows the current step (or shows the node you pick); change $x$, $y$, the weights or the loss,
# then *rebuild*.

# %%
# NBVAL_IGNORE_OUTPUT
stepper = bpv.Stepper(net, x, y_true)
stepper

# %% [markdown]
# Behind the widget is a plain model you can drive from code. Nine steps in, the backward pass has
# just applied (7.65) to get $\partial J/\partial W^{[2]}$:

# %%
model = bpv.StepperModel(net, x, y_true)
for _ in range(9):
    model.next()
print(model.counter())
view = model.view()
print(view.symbolic)
print("=", view.numbers)
print("=", view.result)

# %% [markdown]
# ## Is backprop right? Its numerical twin
#
# `bpv.gradcheck` compares every gradient with central finite differences
# $(J(\theta + \varepsilon e_j) - J(\theta - \varepsilon e_j)) / 2\varepsilon$.

# %%
report = bpv.gradcheck(net, x, y_true)
print("gradcheck passed:", report.ok)
print("largest difference below 1e-8:", max(r.max_abs_err for r in report.rows) < 1e-8)

# %% [markdown]
# ## The chain rule example (7.52)–(7.54)
#
# Any composition of ops can be traced: here $u = z^2$ (elementwise) and $J = \sum_j u_j$.

# %%
chain = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
print("J =", f"{chain.loss:g}")
print("dJ/dz =", inline(chain.grad("u[0]")))
print()
print(bpv.trace_text(chain))
