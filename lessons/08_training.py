# %% [markdown]
# # Training: gradient descent with the gradients you stepped through
#
# The notes end §7.4.3 with backprop's purpose: the gradients "are accumulated for use in
# optimization (e.g., gradient descent)". This lesson does that: it trains the MLP of lesson 04 on
# a toy data set, watches the decision boundary move, and opens one iteration's forward and
# backward pass in the Stepper, with the very numbers training used.
#
# **What you will learn**
#
# * gradient descent, $\theta \leftarrow \theta - \alpha\, \partial J/\partial \theta$, for every
#   parameter $\theta$ of the network, with the (B2) gradients (7.65), (7.66);
# * a batch: $B$ examples side by side as the columns of one matrix, $J$ their mean, and why each
#   example's gradient counts $1/B$;
# * what the learning rate $\alpha$ and the batch size $B$ change, seen in the loss curve;
# * how to send your teacher exactly what you see: the lab's state in one file.
#
# **What you need**: lesson 04 (the MLP (7.72), Algorithm 3 and (7.73)–(7.80)). About 20 minutes.

# %%
import tempfile
from pathlib import Path

import numpy as np
import backpropviz as bpv
from IPython.display import display

# %% [markdown]
# ## 1. The data: two moons
#
# 200 points in the plane, two interleaved half circles, label $y = 0$ or $1$: no straight line
# separates them, so the network needs its hidden layers. As in the notes, each example is a
# **column**: $X$ is $2 \times 200$ and $Y$ is $1 \times 200$. The data come from a seed, so
# everyone gets the same points.

# %%
data = bpv.datasets.make("two_moons", n=200, noise=0.1, seed=0)
X, Y = data.X, data.Y
print("X is", "×".join(map(str, X.shape)), " Y is", "×".join(map(str, Y.shape)))
print("the first three examples (columns):")
print(np.array2string(X[:, :3], precision=4, floatmode="fixed"))
print("their labels:", Y[0, :3])

# %% [markdown]
# ## 2. One iteration by hand
#
# The network: $\mathrm{MM}[W^{[1]}, b^{[1]}]$, ReLU, $\mathrm{MM}[W^{[2]}, b^{[2]}]$, ReLU,
# $\mathrm{MM}[W^{[3]}, b^{[3]}]$ and the logistic loss (7.70), sizes 2-16-16-1, weights from a
# seed. For a batch of $B$ examples, $J$ is the **mean** of the $B$ losses, so (7.70) carries a
# $\frac1B$: $\partial J/\partial t = \frac1B(\sigma(t) - y)$, one column per example, and (7.65),
# (7.66) sum over the columns: $\partial J/\partial W = v\, z^\top$ adds the $B$ outer products.
#
# One iteration of gradient descent with learning rate $\alpha$ is: the forward pass (F), the
# backward pass (B1), (B2) — Algorithm 3 on the whole batch — then, for every parameter,
#
# $$\theta \leftarrow \theta - \alpha\, \frac{\partial J}{\partial \theta}.$$
#
# `bpv.Training` does exactly this with the network's own backward functions, without recording a
# trace (that is what makes it fast). Iteration $t$ uses the parameters after $t-1$ updates.

# %%
net = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
tr = bpv.Training(net, X, Y, lr=0.5)
J = tr.step()           # iteration 1
print(f"iteration 1: J = {J:.4f} (the mean over the 200 examples)")
for p, g in tr.grads_at_last().items():
    print(f"  ‖∂J/∂{p}‖ = {np.linalg.norm(g):.4f}")

# %% [markdown]
# The trace of iteration 1 (the same pass, recorded step by step, as in lesson 04) has the same
# gradients, not just close ones:

# %%
trace1 = tr.trace_at(1)
print(trace1)
print("same numbers as training used:",
      all(np.array_equal(trace1.grad(p), g) for p, g in tr.grads_at_last().items()))

# %% [markdown]
# ## 3. The lab
#
# `bpv.TrainingLab` puts this in a widget: **▶ train** runs iterations until you press it again,
# **one iteration** does one, and the picture updates a few times a second. Left: $\sigma(t)$, the
# probability the network gives to $y = 1$, over the plane, with the black line at $\frac12$ (the
# decision boundary) and the 200 points. Middle: $J$ of each batch (log scale). Right: the size
# $\|W^{[l]}\|$ of each layer's weights (solid) and of its gradient $\|\partial J/\partial
# W^{[l]}\|$ (dashed).
#
# Change the learning rate or the batch size while it trains; a change of data, seed, hidden layers
# or $\sigma$ starts a new run. Here it trains 300 iterations from code so that the lesson prints
# the same thing everywhere; in class, press ▶.

# %%
# NBVAL_IGNORE_OUTPUT
lab = bpv.TrainingLab(data="two_moons", hidden=(16, 16), activation="relu", lr=0.5, seed=0)
lab.train(300)
lab

# %%
t = lab.training
print(f"after {t.t} iterations: J = {t.loss_all():.4f} on all examples, "
      f"accuracy {100 * t.accuracy():.1f}%")

# %% [markdown]
# ## 4. Open one iteration in the Stepper
#
# Pick an iteration $t$ and one example of its batch, and press **open in the Stepper** (or call
# `lab.open_iteration(t, example)`): you step through that example's forward and backward pass
# with the parameters iteration $t$ used. The Stepper shows one example; training used the mean of
# the batch, so **each example's gradient counts $\frac1B$**. Check it on iteration 300:

# %%
# NBVAL_IGNORE_OUTPUT
lab.open_iteration(300, example=0)

# %%
batch = t.trace_at(300)                                   # the whole batch, as training ran it
each = [t.trace_at(300, example=i) for i in range(200)]   # the 200 examples one by one
mean = sum(e.grad("W[3]") for e in each) / 200
print("∂J/∂W[3] of the batch   :", np.array2string(batch.grad("W[3]")[0, :4], precision=4,
                                                     floatmode="fixed"), "…")
print("mean of the 200 examples:", np.array2string(mean[0, :4], precision=4,
                                                     floatmode="fixed"), "…")
print("equal to 1e-12:", np.allclose(mean, batch.grad("W[3]"), rtol=0, atol=1e-12))

# %% [markdown]
# Example 0's own numbers, as the Stepper shows them at the first backward step (7.70): its
# logit $t = u^{[5]}$, its label, and $\partial J/\partial u^{[5]} = \sigma(t) - y$ (one example:
# $B = 1$ in the Stepper's trace).

# %%
e0 = each[0]
k = next(s.number for s in e0.steps if s.tag == "(7.70)")     # step numbers count from 1
print(f"u[5] = {e0.value('u[5]')[0]:.4f}, y = {e0.value('y')[0]:.0f}")
print(bpv.step_text(e0, k))

# %% [markdown]
# ## 5. The learning rate and the batch size
#
# The same network and data, 300 iterations, four learning rates. Too small: $J$ hardly moves.
# Larger: faster, until the steps overshoot: at $\alpha = 8$ the network ends up giving every
# point the same answer (accuracy 50%), and larger still, $J$ overflows and training stops with a
# message naming the iteration.

# %%
for lr in (0.05, 0.5, 2.0, 8.0):
    run = bpv.Training(bpv.mlp([2, 16, 16, 1], loss="logistic", seed=0), X, Y, lr=lr)
    try:
        run.step(300)
        print(f"α = {lr:<4}: J after 300 iterations = {run.loss_all():.4f}, "
              f"accuracy {100 * run.accuracy():.1f}%")
    except bpv.BackpropError as err:
        print(f"α = {lr:<4}: stopped at iteration {run.t + 1}: {str(err)[:70]}…")

# %% [markdown]
# A batch of $B < 200$ examples: each iteration looks at $B$ shuffled examples (a new shuffle every
# epoch, from the seed). Iterations are cheaper, and $J$ of each batch is noisier: compare the
# spread of the last 50 batch losses.

# %%
for B in (200, 50, 10):
    run = bpv.Training(bpv.mlp([2, 16, 16, 1], loss="logistic", seed=0), X, Y, lr=0.5, batch=B)
    run.step(300)
    last = np.array(run.history.loss[-50:])
    print(f"B = {B:>3}: {200 // B} iterations per epoch; last 50 batch losses: mean "
          f"{last.mean():.4f}, spread (std) {last.std():.4f}")

# %% [markdown]
# ## 6. Save, send, load
#
# **save lab file** gives a link to download the lab's state: network, data, seed, settings,
# iteration and what the Stepper shows. Your teacher loads it with **load lab file** (or
# `bpv.TrainingLab.load(path)`) and sees the same thing: the run is replayed from its seed and
# must arrive at the same weights, so a damaged or edited file is refused with one message.

# %%
folder = Path(tempfile.mkdtemp())
lab.save(folder / "my_lab.json")
again = bpv.TrainingLab.load(folder / "my_lab.json")
print("same iteration:", again.training.t == lab.training.t)
print("same weights:", all(np.array_equal(again.training.params[p], lab.training.params[p])
                           for p in lab.training.params))
print("same Stepper view:", again.opened == lab.opened)
text = (folder / "my_lab.json").read_text().replace('"iteration": 300', '"iteration": 301', 1)
try:
    again.load_text(text)
except bpv.BackpropError as err:
    print("an edited file:", str(err)[:92], "…")

# %% [markdown]
# ## Summary
#
# * Gradient descent: $\theta \leftarrow \theta - \alpha\,\partial J/\partial\theta$ for every
#   parameter, with the gradients of Algorithm 3; `bpv.Training` runs it with the same backward
#   functions as the Stepper's trace, and `trace_at(t)` gives iteration $t$'s pass with the same
#   numbers.
# * A batch is $B$ examples as columns; $J$ is their mean, so each example's gradient counts
#   $\frac1B$, and (7.65), (7.66) sum over the columns.
# * $\alpha$ too small: slow; too large: $J$ jumps or blows up. A small $B$: cheaper, noisier steps.
# * The lab's state is one file: the same network, data, seed and settings give the same weights.
#
# ## Exit questions

# %%
# NBVAL_IGNORE_OUTPUT
q1 = bpv.Question("A bias entry is b = 0.3 and its gradient ∂J/∂b = 0.2. With α = 0.5, what is b "
                  "after one iteration of gradient descent?", answer=0.2,
                  why="θ ← θ − α ∂J/∂θ = 0.3 − 0.5 × 0.2 = 0.2.")
q2 = bpv.Question("A batch has 4 examples. For one weight, the four examples' own gradients are "
                  "0.4, 0.0, −0.2 and 0.2. Which gradient does training use for that weight?",
                  answer=0.1, why="J is the mean over the batch: (0.4 + 0 − 0.2 + 0.2) / 4 = 0.1.")
q3 = bpv.Question("200 examples, batch size B = 50: how many iterations make one epoch (every "
                  "example seen once)?", answer=4, why="200 / 50 = 4 batches per shuffle.")
display(q1, q2, q3)

# %%
print(q1.check("0.2"))
print(q2.check("0.1"))
print(q3.check("4"))
