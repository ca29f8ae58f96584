# %% [markdown]
# # Exercises: write the backward functions yourself
#
# So far backpropviz computed every gradient for you. Here you write the backward functions of
# §7.4.3 yourself, and `bpv.check` tells you, with numbers, whether they are right.
#
# **What you will learn**
#
# * to turn the rules (7.63), (7.65), (7.66), (7.69), (7.70) and (7.71) into code, for one example
#   and for a batch of examples (one example per column);
# * why a backward function can be tested against its forward alone: the gradient of
#   $\sum v \odot M(z)$ with respect to $z$ is $\mathcal{B}[M, z](v)$;
# * to read a failed check: which function, which entry, a counterexample, the likely slip;
# * that a network built from your modules backpropagates exactly like the built-in one.
#
# **What you need**
#
# * the notes' §7.4.3, and lesson 00 (*start here*) for the notation: $u^{[i]}$, $M_i$,
#   $\theta^{[i]}$, $\mathcal{B}[M, z](v)$, $v = \partial J/\partial u$;
# * numpy: `np.exp`, `@` (matrix product), `.T` (transpose), `.sum(axis=...)`, `.ndim`. Mind one
#   trap: a single example is a flat (1-D) array, and numpy's `.T` does nothing to a flat array, so
#   for flat `v` and `z`, `v @ z.T` is a dot product $\sum_i v_i z_i$, a single number (or an
#   error, when $v$ and $z$ differ in length), not the matrix $v z^\top$. Make the column and the
#   row yourself: `np.outer(v, z)`, or
#   `v[:, None] @ z[None, :]` (`v[:, None]` is $v$ as an $m \times 1$ column, `z[None, :]` is
#   $z^\top$ as a $1 \times n$ row);
# * 45 to 60 minutes. Every section is *(core)*, except the Stepper at the end *(optional)*.
#
# **How it is graded.** The teacher's copy of this notebook has the solutions inside nbgrader's
# solution markers. In the student copy (made by nbgrader or by `backpropviz lessons`, see the
# teacher's guide) each solution is replaced by `# YOUR CODE HERE` and `raise NotImplementedError()`:
# write your code there (delete the `raise`); do not change the test cells, which are locked. Each test cell
# runs `bpv.check` on your module and a few direct asserts: when it passes it prints one line;
# when it fails it shows `bpv.check`'s report (what is wrong, a counterexample, the likely slip).
# There are 15 points.

# %%
import numpy as np
import backpropviz as bpv

# %% [markdown]
# ## How `bpv.check` tests a backward function
#
# A module $M$ maps $z$ to $u = M(z)$. Its backward function takes $v = \partial J/\partial u$
# and returns $\partial J/\partial z = \mathcal{B}[M, z](v)$, a sum over the outputs (7.58):
# $(\mathcal{B}[M, z](v))_i = \sum_j \frac{\partial M_j}{\partial z_i} v_j$. That sum is the
# derivative of the number $\sum_j v_j M_j(z)$ with respect to $z_i$, with $v$ held fixed. So the
# *forward* function alone gives the right answer, by central finite differences:
#
# $$\big(\mathcal{B}[M, z](v)\big)_i \approx \frac{\sum v \odot M(z + \varepsilon e_i) - \sum v
# \odot M(z - \varepsilon e_i)}{2\varepsilon}.$$
#
# `bpv.check(MyModule)` does this for the input $z$ (B1) and for every parameter $\theta$ (B2), on
# three single examples and three batches of seeded random numbers, and compares with your code.
#
# Here is what it says about an MM module whose backward forgot the transpose of (7.63):

# %%
class ForgotTranspose(bpv.MM):
    def backward(self, z, v):
        return self.W @ v               # the slip: (7.63) says Wᵀ v


report = bpv.check(ForgotTranspose)
print(report)

# %% [markdown]
# Read it from the top: the table has one line per backward function (this class wrote only
# `backward`; `grad_W` and `grad_b` are MM's own), then, for each wrong one, the likely slip, a
# counterexample you can retype, and the entry that is off most. Where $W$ is not square, $W v$
# cannot even be computed, and the report shows the error your code raised.
#
# Last, it builds a small network with the module and checks *every* gradient of it the same
# way. In Jupyter the report draws that network; the nodes whose gradient disagrees with finite
# differences have a purple frame and ✘. One wrong backward function spoils every gradient
# computed after it, on the way back to $u^{[0]}$:

# %%
# NBVAL_IGNORE_OUTPUT
report.picture()

# %% [markdown]
# ## Exercise 1: the sigmoid, (7.69)
#
# An elementwise activation $\sigma$ has the backward function
# $\mathcal{B}[\sigma, z](v) = \sigma'(z) \odot v$ (7.69), and for the sigmoid
# $\sigma(z) = 1/(1 + e^{-z})$, $\sigma'(z) = \sigma(z)(1 - \sigma(z))$. Your class inherits the
# forward from `bpv.Sigmoid`; write `backward`. It must work for a vector $z$ and for a matrix $z$
# (a batch), elementwise, and return the shape of $z$ (§7.4.1: a gradient has the shape of what
# it differentiates).

# %% nbgrader={"grade": false, "grade_id": "sigmoid_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MySigmoid(bpv.Sigmoid):
    """σ(z) = 1/(1 + e^(−z)), elementwise; the forward is given."""

    def backward(self, z, v):
        """B[σ, z](v) = σ'(z) ⊙ v (7.69), with σ'(z) = σ(z)(1 − σ(z))."""
        ### BEGIN SOLUTION
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s) * v
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "sigmoid_backward_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MySigmoid)
print(report.verdict)
assert report.ok, report
# σ'(0) = σ(0)(1 − σ(0)) = 1/4, times v
assert np.allclose(MySigmoid().backward(np.zeros(3), np.array([1.0, 2.0, -4.0])), [0.25, 0.5, -1.0])

# %% [markdown]
# ## Exercise 2: MM, (7.63), (7.65), (7.66)
#
# $\mathrm{MM}_{W, b}(z) = Wz + b$ with $W \in \mathbb{R}^{m \times n}$ has three backward
# functions:
#
# * `backward`: $\mathcal{B}[\mathrm{MM}, z](v) = W^\top v \in \mathbb{R}^n$ (7.63);
# * `grad_W`: $\mathcal{B}[\mathrm{MM}, W](v) = v z^\top \in \mathbb{R}^{m \times n}$ (7.65), the
#   outer product: rows follow $v$, columns follow $z$; the shape of $W$. For a single example
#   ($z$ and $v$ flat), `v @ z.T` is a dot product, not $v z^\top$: write `np.outer(v, z)` or
#   `v[:, None] @ z[None, :]` (see *What you need*);
# * `grad_b`: $\mathcal{B}[\mathrm{MM}, b](v) = v$ (7.66).
#
# **A batch.** With $B$ examples as the columns of $z \in \mathbb{R}^{n \times B}$, the output and
# $v$ are $m \times B$, and $W$, $b$ are shared by every example, so their gradients add up over the
# examples: $\partial J/\partial W = \sum_j v^{(j)} z^{(j)\top}$, which is the one matrix product
# $v z^\top$ again, and $\partial J/\partial b = \sum_j v^{(j)}$, $v$ summed over its columns.
# $W^\top v$ needs no change. (The $1/B$ of the batch's mean is already inside $v$: the loss put it
# there.)

# %% nbgrader={"grade": false, "grade_id": "mm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MyMM(bpv.MM):
    """MM[W, b](z) = W z + b; the forward is given. z is a vector, or n×B (one example a column)."""

    def backward(self, z, v):
        """B[MM, z](v) = Wᵀ v (7.63)."""
        ### BEGIN SOLUTION
        return self.W.T @ v
        ### END SOLUTION

    def grad_W(self, z, v):
        """B[MM, W](v) = v zᵀ (7.65); for a batch, summed over the columns."""
        ### BEGIN SOLUTION
        if z.ndim == 1:
            return np.outer(v, z)
        return v @ z.T
        ### END SOLUTION

    def grad_b(self, z, v):
        """B[MM, b](v) = v (7.66); for a batch, v summed over its columns."""
        ### BEGIN SOLUTION
        if v.ndim == 1:
            return v
        return v.sum(axis=1)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "mm_backward_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MyMM)
assert report.function("backward").ok, report
# the notes' example of (7.63): W = [[1, 2], [3, 4]], v = [1, 1] gives Wᵀ v = [4, 6]
mm = MyMM(np.array([[1.0, 2.0], [3.0, 4.0]]))
assert np.allclose(mm.backward(np.array([5.0, 6.0]), np.array([1.0, 1.0])), [4.0, 6.0])
print("backward agrees with central differences")

# %% nbgrader={"grade": true, "grade_id": "mm_grad_W_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MyMM)
assert report.function("grad_W").ok, report
W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])           # m = 3, n = 2
got = MyMM(W).grad_W(np.array([1.0, -1.0]), np.array([1.0, 2.0, 3.0]))
assert got.shape == (3, 2) and np.allclose(got, [[1, -1], [2, -2], [3, -3]])
print("grad_W agrees with central differences, for single examples and batches")

# %% nbgrader={"grade": true, "grade_id": "mm_grad_b_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MyMM)
assert report.function("grad_b").ok, report
print(report.verdict)

# %% [markdown]
# ## Exercise 3: the logistic loss, (7.70)
#
# A loss is the last module; its input is the logit $t$ and it also reads the label $y$. For one
# example, $\ell_\text{logistic}(t, y) = \sum_i \big(\log(1 + e^{t_i}) - y_i t_i\big)$, and
# $\mathcal{B}[\ell_\text{logistic}, t](v) = (\sigma(t) - y)\, v$ (7.70), where $v$ is a number
# ($\partial J/\partial J = 1$ in a network). For a batch ($t, y \in \mathbb{R}^{k \times B}$),
# $J$ is the mean of the $B$ losses, so the gradient carries a factor $1/B$. The forward is given;
# write `backward(t, y, v=1.0)`.

# %% nbgrader={"grade": false, "grade_id": "logistic_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MyLogisticLoss(bpv.LogisticLoss):
    """J = ℓ_logistic(t, y), the mean over the columns of a batch; the forward is given."""

    def backward(self, t, y, v=1.0):
        """B[ℓ_logistic, t](v) = (σ(t) − y) v (7.70), times 1/B for a batch of B columns."""
        ### BEGIN SOLUTION
        B = t.shape[1] if t.ndim == 2 else 1
        return (1.0 / (1.0 + np.exp(-t)) - y) * v / B
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "logistic_backward_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MyLogisticLoss)
print(report.verdict)
assert report.ok, report
# the notes' example of (7.70)
got = MyLogisticLoss().backward(np.array([0.2, -1.0, 0.5]), np.array([1.0, 0.0, 1.0]))
assert np.allclose(got, [-0.450166, 0.26894142, -0.37754067])

# %% [markdown]
# ## Exercise 4: cross-entropy, (7.71)
#
# For $k$ classes the logits are $t \in \mathbb{R}^k$ and the label $y$ is one-hot;
# $\ell_\text{ce}(t, y) = -\sum_i y_i \log \operatorname{softmax}(t)_i$ and
# $\mathcal{B}[\ell_\text{ce}, t](v) = (\operatorname{softmax}(t) - y)\, v$ (7.71), with
# $\operatorname{softmax}(t)_i = e^{t_i} / \sum_j e^{t_j}$. For a batch, softmax works on each
# column (`axis=0`) and the gradient carries $1/B$. Tip: $\operatorname{softmax}(t) =
# \operatorname{softmax}(t - \max t)$, and the shifted form never overflows.

# %% nbgrader={"grade": false, "grade_id": "ce_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MyCrossEntropyLoss(bpv.CrossEntropyLoss):
    """J = ℓ_ce(t, y) on logits t with one-hot labels y, the mean over a batch; forward given."""

    def backward(self, t, y, v=1.0):
        """B[ℓ_ce, t](v) = (softmax(t) − y) v (7.71), times 1/B for a batch of B columns."""
        ### BEGIN SOLUTION
        B = t.shape[1] if t.ndim == 2 else 1
        e = np.exp(t - t.max(axis=0))
        return (e / e.sum(axis=0) - y) * v / B
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ce_backward_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = bpv.check(MyCrossEntropyLoss)
print(report.verdict)
assert report.ok, report
# t = log [1, 1, 2]: softmax(t) = [1/4, 1/4, 1/2]; the label is class 3, y = e_3
got = MyCrossEntropyLoss().backward(np.log([1.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0]))
assert np.allclose(got, [0.25, 0.25, -0.5])

# %% [markdown]
# ## Your modules in a network
#
# Your four modules, checked one by one:

# %%
for mine in (MySigmoid, MyMM, MyLogisticLoss, MyCrossEntropyLoss):
    print(bpv.check(mine, network=False).verdict)

# %% [markdown]
# Now the MLP of (7.72) with two layers, built from your modules only:
# $M_1 = \mathrm{MM}[W^{[1]}, b^{[1]}]$, $M_2 = \sigma$, $M_3 = \mathrm{MM}[W^{[2]}, b^{[2]}]$ and
# the logistic loss. Backprop runs *your* code at every backward step, (B1) and (B2). Its gradients
# should equal those of the same network made of backpropviz's modules, and pass `gradcheck`:

# %% nbgrader={"grade": true, "grade_id": "network_test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
W1, b1 = np.array([[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]]), np.array([0.01, 0.02, -0.03])
W2, b2 = np.array([[0.7, -0.8, 0.9]]), np.array([0.05])
x, y = np.array([1.0, 2.0]), np.array([1.0])

yours = bpv.Sequential([MyMM(W1, b1), MySigmoid(), MyMM(W2, b2)], loss=MyLogisticLoss())
builtin = bpv.Sequential([bpv.MM(W1, b1), bpv.Sigmoid(), bpv.MM(W2, b2)], loss=bpv.LogisticLoss())
mine, ref = yours.backprop(x, y), builtin.backprop(x, y)
for p in ["W[1]", "b[1]", "W[2]", "b[2]"]:
    assert np.allclose(mine.grad(p), ref.grad(p), rtol=1e-12, atol=1e-14), p
assert bpv.gradcheck(yours, x, y).ok
print(f"J = {mine.loss:.6f}; every gradient equals the built-in network's; gradcheck passed")

# %% [markdown]
# *(optional)* Step through it: the Stepper shows your modules like any other (their rules come from the
# classes you extended, so the equations carry the notes' tags).

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(yours, x, y)

# %% [markdown]
# The step where your sigmoid's backward function runs, as text, and the gradients your code
# computed:

# %%
step = next(s.number for s in mine.steps if s.kind == "B1" and s.module == "M_2")
print(bpv.step_text(mine, step))
print()
for p in ["W[1]", "b[1]", "W[2]", "b[2]"]:
    print(f"∂J/∂{p} =", np.array2string(mine.grad(p), precision=6, suppress_small=True))

# %% [markdown]
# ## Summary
#
# * A backward function $\mathcal{B}[M, z](v)$ is the gradient of $\sum v \odot M(z)$ with respect
#   to $z$ (7.58), so the forward function alone checks it, by central differences. That is what
#   `bpv.check` does, for $z$ (B1) and every parameter (B2), on single examples and batches.
# * The rules in code: $W^\top v$ (7.63); $v z^\top$ (7.65) and $v$ (7.66), summed over a batch's
#   columns; $\sigma'(z) \odot v$ (7.69); $(\sigma(t) - y)v$ (7.70) and
#   $(\operatorname{softmax}(t) - y)v$ (7.71), with $1/B$ for a batch.
# * Every gradient has the shape of what it differentiates (§7.4.1): most slips (a missing
#   transpose, $z v^\top$ for $v z^\top$, a batch not summed) show up as a wrong shape first.
# * One wrong backward function spoils every gradient computed after it on the way back; a network
#   of correct modules needs no other code to backpropagate.
#
# ## Exit questions
#
# Answer in the boxes, then press *check*.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("05_exercises")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
