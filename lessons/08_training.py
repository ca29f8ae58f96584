# %% [markdown]
# # Training: gradient descent with the gradients you stepped through
#
# The notes sum up §7.4.4 with backprop's purpose: the gradients "are accumulated for use in
# optimization (e.g., gradient descent)". This lesson does that: it trains an MLP as in
# lesson 04, (7.72) (here 2-16-16-1 with ReLU; lesson 04's was 2-3-3-1 with σ), on a toy data
# set, watches the decision boundary move, and opens one iteration's forward and backward pass in
# the Stepper, with the parameters that iteration used.
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
# **What you need**: lesson 04 (the MLP (7.72), Algorithm 3 and (7.73)–(7.80)). About 25 minutes.
# Sections marked *(core)* are the lesson's thread; *(optional)* ones can be skipped on a first
# reading.

# %%
import json
import tempfile
from pathlib import Path

import numpy as np
import backpropviz as bpv
from IPython.display import display

# %% [markdown]
# ## 1. The data: two moons *(core)*
#
# 200 points in the plane, two interleaved half circles, label $y = 0$ or $1$: no straight line
# separates them, so the network needs its hidden layers. The notes work on one example $x$, a
# column; for many examples we put the columns side by side: $X$ is $2 \times 200$ (example $j$
# is column $j$) and $Y$ is $1 \times 200$. The data come from a seed, so everyone gets the same
# points. (In code, Python counts columns from 0: example $j$ is `X[:, j - 1]`.)

# %%
data = bpv.datasets.make("two_moons", n=200, noise=0.1, seed=0)
X, Y = data.X, data.Y
print("X is", "×".join(map(str, X.shape)), " Y is", "×".join(map(str, Y.shape)))
print("examples 1, 2 (label 0) and 101, 102 (label 1), as columns:")
print(np.array2string(X[:, [0, 1, 100, 101]], precision=4, floatmode="fixed"))
print("their labels y:", " ".join(f"{v:.0f}" for v in Y[0, [0, 1, 100, 101]]))

# %% [markdown]
# ## 2. One iteration by hand *(core)*
#
# The network: $\mathrm{MM}[W^{[1]}, b^{[1]}]$, ReLU, $\mathrm{MM}[W^{[2]}, b^{[2]}]$, ReLU,
# $\mathrm{MM}[W^{[3]}, b^{[3]}]$ and the logistic loss $\ell_\text{logistic}$ (its backward
# function is (7.70)), sizes 2-16-16-1, weights from a seed. Its output $u^{[5]}$ is the logit.
#
# For a **batch** of $B$ examples, $J$ is the mean of the examples' losses,
# $J = \frac1B \sum_j J^{j}$ ($J^{j}$: the loss of example $j$, the $J$ of the notes). Each example
# gets its own backward pass, started with $v = \partial J/\partial J^{j} = \frac1B$ instead of
# (7.73)'s 1, so (7.70) gives column $j$ of $\partial J/\partial u^{[5]}$ as
# $\frac1B(\sigma(u^{[5]}_j) - y_j)$. Every parameter is shared by all examples, so its gradient
# adds the examples' ones: with the columns $v_j$ and $z_j$ side by side in $V$ and $Z$, (7.65)
# becomes $\partial J/\partial W = \sum_j v_j z_j^\top = V Z^\top$, and (7.66) becomes
# $\partial J/\partial b = \sum_j v_j$ (the Stepper writes this $\Sigma_j$ on a batch).
#
# One iteration of gradient descent with learning rate $\alpha$ is: the forward pass (F), the
# backward pass (B1), (B2) — Algorithm 3 on the whole batch — then, for every parameter,
#
# $$\theta \leftarrow \theta - \alpha\, \frac{\partial J}{\partial \theta}.$$
#
# `bpv.Training` does exactly this with the network's own backward functions, without recording a
# trace (that is what makes it fast). Iteration $t$ uses the parameters after $t-1$ updates. Below,
# $\|\cdot\|$ is the size of a whole matrix: the square root of the sum of its squared entries.

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
print(f"the trace of iteration 1: {len(trace1.steps)} steps, J = {trace1.loss:.4f}")
print("same numbers as training used:",
      all(np.array_equal(trace1.grad(p), g) for p, g in tr.grads_at_last().items()))

# %% [markdown]
# ## 3. The lab *(core)*
#
# `bpv.TrainingLab` puts this in a widget. It starts from the untrained network, at iteration 0.
# **▶ train** runs iterations at the **speed** you choose until you press **▮▮ pause**: 10 per
# second to start with (on two moons the boundary forms in about 100 iterations, so in about
# 10 seconds), 1 or 2 per second to follow each iteration, "as fast as it goes" for long runs;
# **one iteration** does one.
#
# Left: at every point of the plane, the probability the network gives to $y = 1$, the sigmoid of
# its output (blue near 0, red near 1), with a black line where it is $\frac12$ (the decision
# boundary; there is no line if the network never says $\frac12$) and the 200 points; the points
# of iteration $t$'s batch (the iteration in the field **iteration t**, which follows the run) are
# ringed in amber. Middle: $J$ of each batch, before its update, on a log scale (one dot per
# iteration while there are few). Right: for each layer $l = 1, 2, 3$, the size $\|W^{[l]}\|$ of
# its weights (solid) and $\|\partial J/\partial W^{[l]}\|$ of their gradient (dashed). The status
# line gives $J$ on all 200 examples with the parameters as they are now.
#
# Change the learning rate or the batch size while it trains (with $B = 20$, ten batches make an
# epoch: watch the rings move); a change of data, seed, hidden layers or activation starts a new
# run. Press ▶ now and watch.

# %%
# NBVAL_IGNORE_OUTPUT
lab = bpv.TrainingLab(data="two_moons", hidden=(16, 16), activation="relu", lr=0.5, seed=0,
                      speed=10)
lab

# %% [markdown]
# Before any iteration the network already has a boundary, a random one, and some points are on
# their side of it by chance:

# %%
print(f"the lab's run: iteration {lab.training.t}, J = {lab.training.loss_all():.4f} on all "
      f"examples, accuracy {100 * lab.training.accuracy():.1f}%")

# %% [markdown]
# The lab's run is the run of section 2 (the same data, network, seed and $\alpha$), so what the
# lab shows after 300 iterations, `tr` shows too. The cells below use `tr`, trained here from code,
# so that this lesson prints the same numbers whatever you did with the lab.

# %%
run = lab.training
same = (np.array_equal(tr.X, run.X) and np.array_equal(tr.Y, run.Y)
        and all(np.array_equal(tr.net.params[p], v) for p, v in run.net.params.items())
        and (tr.lr, tr.batch, tr.seed) == (run.lr, run.batch, run.seed))
print("the lab's run and tr: same data, θ_0 and settings:", same)
tr.step(299)                                    # iteration 1 ran in section 2
print(f"after {tr.t} iterations: J = {tr.loss_all():.4f} on all examples, "
      f"accuracy {100 * tr.accuracy():.1f}%")

# %% [markdown]
# ## 4. Open one iteration in the Stepper *(core)*
#
# In the lab, pause, choose an iteration $t$ (type it, or click the loss curve there), then click
# a data point: a ringed point opens in the Stepper as that example of iteration $t$'s batch, with
# the parameters iteration $t$ used; any other point opens with the parameters as they are now
# (the message line says so). Or type an example's position in the batch (counted from 0, as
# Python counts: 0 is the first) and press **open in the Stepper**, or call
# `lab.open_iteration(t, example)`. The Stepper shows one example, $J^{j}$ with $B = 1$: (7.70)
# is $(\sigma(u^{[5]}) - y)\cdot 1$, with no $\frac1B$. Training used the mean over the batch,
# so **each example's gradient counts $\frac1B$**; **open its whole batch** (or
# `lab.open_iteration(t, None)`) shows the pass training ran, with $\frac1B$ in (7.70).
#
# Iteration 300's pass for the first example of its batch (position 0), as the lab's Stepper
# shows it:

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(tr.trace_at(300, example=0))

# %% [markdown]
# Check the $\frac1B$ on iteration 300: the batch's gradient is the mean of its examples' ones.

# %%
B = tr.batch_size_at(300)
batch = tr.trace_at(300)                                   # the whole batch, as training ran it
each = [tr.trace_at(300, example=i) for i in range(B)]     # its B examples one by one
mean = sum(e.grad("W[3]") for e in each) / B
print("∂J/∂W[3] of the batch   :", np.array2string(batch.grad("W[3]")[0, :4], precision=4,
                                                     floatmode="fixed"), "…")
print(f"mean of the {B} examples:", np.array2string(mean[0, :4], precision=4,
                                                     floatmode="fixed"), "…")
print("equal within 10⁻¹²:", np.allclose(mean, batch.grad("W[3]"), rtol=0, atol=1e-12))
k = next(s.number for s in batch.steps if s.tag == "(7.70)")     # step numbers count from 1
print(f"the whole batch, step {k}:", bpv.step_text(batch, k).splitlines()[1])

# %% [markdown]
# Equal within rounding, not bit for bit: the batch adds its 200 outer products inside one matrix
# product, the mean above adds them one at a time, and floating-point sums depend on their order.
#
# The first example's own numbers, as the Stepper shows them at step 8, the loss's backward step (7.70),
# just after the seed, step 7, $\partial J/\partial u^{[6]} = 1$: its logit $u^{[5]}$, its
# label, and $\partial J/\partial u^{[5]} = \sigma(u^{[5]}) - y$ (one example: $B = 1$).

# %%
e0 = each[0]
k = next(s.number for s in e0.steps if s.tag == "(7.70)")     # step numbers count from 1
print(f"u[5] = {e0.value('u[5]')[0]:.4g}, y = {e0.value('y')[0]:.0f}")
print(bpv.step_text(e0, k))

# %% [markdown]
# ## 5. The learning rate and the batch size *(core)*
#
# The same network and data, 300 iterations, four learning rates. Small: slower. Larger: faster,
# until the steps overshoot.

# %%
for lr in (0.05, 0.5, 2.0, 8.0):
    r = bpv.Training(bpv.mlp([2, 16, 16, 1], loss="logistic", seed=0), X, Y, lr=lr)
    r.step(300)
    print(f"α = {lr:<4}: J after 300 iterations = {r.loss_all():.4f}, "
          f"accuracy {100 * r.accuracy():.1f}%")

# %% [markdown]
# At $\alpha = 8$ an early step threw the ReLUs of the second hidden layer below 0 for every
# point: they output 0, so the network's output is $b^{[3]}$ whatever the point (accuracy 50%,
# $J \approx \log 2$), and by (7.69) every gradient behind a ReLU stuck at 0 is 0: only $b^{[3]}$
# still moves, so the run cannot recover. A "dead" ReLU is a classic effect of too large a step:

# %%
a = X
for m in r.network.layers[:4]:     # M_1 … M_4: MM, ReLU, MM, ReLU
    a = m.forward(a)
print(f"units of u[4] that are 0 on all 200 points: {int((a.max(axis=1) == 0).sum())} of 16")
print("largest |∂J/∂W[l]| at the last iteration:",
      ", ".join(f"{p} {np.abs(g).max():.1g}" for p, g in r.grads_at_last().items() if p[0] == "W"))

# %% [markdown]
# On other data the same mistake makes $J$ overflow; the run then stops at that iteration with a
# message, and keeps the parameters from before it (here the squared loss on the `sine` data):

# %%
s = bpv.datasets.make("sine")
r = bpv.Training(bpv.mlp([1, 16, 1], loss="squared", seed=0), s.X, s.Y, lr=8.0)
try:
    r.step(300)
except bpv.BackpropError as err:
    print(err)

# %% [markdown]
# A batch of $B < 200$ examples: an **epoch** shuffles the 200 examples (from the seed) and cuts
# them into $\lceil 200/B \rceil$ batches, the last one smaller if $B$ does not divide 200, so every
# example is used once per epoch. An iteration costs about $B$ examples' work, so compare the
# batch sizes at the same work: 12,000 examples' passes each. A small $B$ makes more updates for
# that work, each one from a noisier estimate of the gradient: its batch losses scatter.

# %%
for B in (200, 50, 10):
    r = bpv.Training(bpv.mlp([2, 16, 16, 1], loss="logistic", seed=0), X, Y, lr=0.5, batch=B)
    r.step(12_000 // B)
    last = r.history.loss[-20:]
    print(f"B = {B:>3}: {r.t:>4} iterations ({-(-200 // B)} per epoch); J on all examples "
          f"{r.loss_all():.4f}; last 20 batch losses from {min(last):.4f} to {max(last):.4f}")

# %% [markdown]
# ## 6. Save, send, load *(optional)*
#
# **save lab file** gives a link to download the lab's state: network, data, seed, settings,
# iteration and what the Stepper shows (one example of an iteration's batch). Below, the lab of
# section 3 as it is now (after Run All: at iteration 0). Your teacher loads it with **load lab file** (or
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
edited = json.loads((folder / "my_lab.json").read_text())
edited["training"]["iteration"] += 1           # claims one more iteration than was run
try:
    again.load_text(json.dumps(edited))
except bpv.BackpropError as err:
    print("an edited file:", err)

# %% [markdown]
# ## Summary
#
# * Gradient descent: $\theta \leftarrow \theta - \alpha\,\partial J/\partial\theta$ for every
#   parameter, with the gradients of Algorithm 3; `bpv.Training` runs it with the same backward
#   functions as the Stepper's trace, and `trace_at(t)` gives iteration $t$'s pass with the same
#   numbers.
# * A batch is $B$ examples as columns; $J = \frac1B\sum_j J^j$, so each example's gradient counts
#   $\frac1B$, and (7.65), (7.66) sum over the columns: $V Z^\top$ and $\sum_j v_j$.
# * $\alpha$ small: slow; too large: the steps overshoot, ReLUs can die (the run is stuck) or $J$
#   overflows (the run stops). A small $B$: more, cheaper, noisier steps for the same work.
# * The lab's state is one file: the same network, data, seed and settings give the same weights.
#
# ## Exit questions

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("08_training")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
