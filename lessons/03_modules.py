# %% [markdown]
# # Lesson 03 — Backward functions of the basic modules (§7.4.3)
#
# Backpropagation needs only one thing from each module $M$: its **backward function**
# $\mathcal{B}[M, z](v)$, which turns $v = \partial J/\partial u$ (the gradient at the module's
# output $u = M(z)$) into $\partial J/\partial z$ (the gradient at its input). Once every module of
# a network has one, the backward pass is just "apply them in reverse order". This lesson derives
# the backward functions of the three kinds of module an MLP is made of.
#
# **What you will learn**
#
# * the matrix-multiplication module $\mathrm{MM}_{W,b}(z) = Wz + b$: its backward function for the
#   input, $W^\top v$ (7.62)–(7.63), and for its parameters, $v z^\top$ (7.64)–(7.65) and $v$ (7.66);
# * elementwise activations: why their Jacobian is diagonal and why that makes the backward
#   function $\sigma'(z) \odot v$ (7.67)–(7.69);
# * the three losses: squared loss $(t - y)v$, logistic loss (7.70), cross-entropy (7.71);
# * why a backward function costs about as much as the module itself (by counting multiplications);
# * where each rule appears, with its tag, in the trace of a real network.
#
# **What you need**
#
# * the backward function $\mathcal{B}[g, z](v)$ of (7.57)–(7.59) and the rules (B1), (B2)
#   (lessons 01–02);
# * the convention of §7.4.1: $\partial J/\partial z$ has the same shape as $z$;
# * numpy basics (`@`, `.T`, shapes). About 30 minutes. Sections marked *(core)* are the
#   lesson's thread; *(optional)* ones can be skipped on a first reading.

# %% [markdown]
# Throughout, a vector is a **column**: $z \in \mathbb{R}^n$ is an $n \times 1$ matrix. That is what
# makes $W^\top v$ and $v z^\top$ mean what they say. In numpy code, where a transpose is involved,
# we write vectors as columns explicitly, as $n \times 1$ arrays such as `np.array([[5.0], [6.0]])`:
# numpy's `.T` does nothing to a flat (1-D) array.
#
# Recall the recipe (7.58): for a module $u = g(z)$,
#
# $$\big(\mathcal{B}[g, z](v)\big)_i = \sum_j \frac{\partial g_j}{\partial z_i}\, v_j .$$
#
# Each section below is this one sum, worked out for one module.

# %%
import numpy as np
import backpropviz as bpv

# %% [markdown]
# ## 1. MM with respect to its input: $W^\top v$ (7.62)–(7.63) *(core)*
#
# Take $\mathrm{MM}_{W,b}(z) = Wz + b$ with $W \in \mathbb{R}^{m \times n}$, so $z \in \mathbb{R}^n$
# and $v \in \mathbb{R}^m$. Written as the matrix of (7.59), the backward function is
#
# $$\mathcal{B}[\mathrm{MM}, z](v) =
# \begin{bmatrix}
# \frac{\partial (Wz + b)_1}{\partial z_1} & \cdots & \frac{\partial (Wz + b)_m}{\partial z_1} \\
# \vdots & \ddots & \vdots \\
# \frac{\partial (Wz + b)_1}{\partial z_n} & \cdots & \frac{\partial (Wz + b)_m}{\partial z_n}
# \end{bmatrix} v. \tag{7.62}$$
#
# **Why it is $W^\top$.** Output $i$ is $(Wz+b)_i = \sum_j W_{ij} z_j + b_i$, so
# $\partial (Wz+b)_i / \partial z_j = W_{ij}$. In the matrix of (7.62) that number sits in row $j$,
# column $i$: the matrix is $W$ with rows and columns swapped. Hence
#
# $$\mathcal{B}[\mathrm{MM}, z](v) = W^\top v \in \mathbb{R}^n. \tag{7.63}$$
#
# Let us build the (7.62) matrix entry by entry, by finite differences, and see that it is $W^\top$.

# %%
W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])     # m × n = 3 × 2, not square on purpose
b = np.zeros(3)
z = np.array([5.0, 6.0])

# the (7.62) matrix: row j, column i holds d(Wz + b)_i / dz_j, here by central differences
M762 = np.array([[bpv.numerical_grad(lambda zz: (W @ zz + b)[i], z)[j] for i in range(3)]
                 for j in range(2)])
print("the (7.62) matrix, 2 × 3:")
print(np.round(M762, 6))
print("equal to W.T:", np.allclose(M762, W.T))

# %% [markdown]
# Now the notes' own code for (7.63), unchanged:

# %%
# Backward for matrix multiplication (the notes' code, §7.4.3)
W = np.array([[1, 2], [3, 4]])
z = np.array([5, 6])
v = np.array([1, 1])
# Forward: MM = W @ z
# Backward: dJ/dz = W.T @ v
backward_z = W.T @ v
print('Backward for MM, dJ/dz:', backward_z)

# %% [markdown]
# It prints `[4 6]`, the numbers the notes' (7.63) promises: $W^\top v = [1 + 3, 2 + 4]$. (The
# notes show this code but not its output.) backpropviz's MM module gives the same numbers. It
# stores $W$ as floats, so numpy writes `4.` with a point; the values are equal:

# %%
mm = bpv.MM(W)                                   # b defaults to zeros
print('Backward for MM, dJ/dz:', mm.backward(z, v))
print('same numbers as the notes:', np.array_equal(mm.backward(z, v), backward_z))

# %% [markdown]
# ## 2. MM with respect to $W$: $v z^\top$ (7.64)–(7.65) *(core)*
#
# $W$ is a matrix, so the matrix of (7.59) would be a 4th-order tensor. Instead, use the sum (7.58)
# in the matrix form (7.55): entry $(i, j)$ of the gradient sums over all $m$ outputs $k$:
#
# $$\big(\mathcal{B}[\mathrm{MM}, W](v)\big)_{ij}
# = \sum_{k=1}^{m} \frac{\partial (Wz+b)_k}{\partial W_{ij}}\, v_k .$$
#
# **Only one output depends on $W_{ij}$.** Output $k$ is $\sum_l W_{kl} z_l + b_k$; it contains
# $W_{ij}$ only when $k = i$, and then with the factor $z_j$. So every term of the sum is $0$ except
# $k = i$:
#
# $$\big(\mathcal{B}[\mathrm{MM}, W](v)\big)_{ij} = v_i\, z_j. \tag{7.64}$$
#
# **A slip in the notes.** The printed (7.64) reads
# $\sum_{j=1}^n \frac{\partial (Wz + b)_i}{\partial W_{ij}} v_i = \sum_{j=1}^n \frac{\partial^2 S}{\partial W_{ij}\, \partial z_j} v_i$:
# it sums over the wrong index ($j$, which is fixed by the entry we want), and the second derivative
# of an "$S$" that is never defined does not belong there. The correct statement is the one above,
# $(\mathcal{B}[\mathrm{MM}, W](v))_{ij} = v_i z_j$, and it is what (7.65) says in matrix form.
#
# **In matrix form.** The matrix whose $(i, j)$ entry is $v_i z_j$ is the outer product of the
# column $v$ ($m \times 1$) with the row $z^\top$ ($1 \times n$):
#
# $$\mathcal{B}[\mathrm{MM}, W](v) = v z^\top \in \mathbb{R}^{m \times n}, \tag{7.65}$$
#
# an $m \times n$ matrix, the shape of $W$, as §7.4.1's convention demands. (Its
# mirror image $z v^\top$ is $n \times m$: the wrong shape, a classic slip.)

# %%
W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])   # m × n = 3 × 2
b = np.zeros(3)
z = np.array([[5.0], [6.0]])          # a column, n × 1 = 2 × 1
v = np.array([[1.0], [-1.0], [2.0]])  # a column, m × 1 = 3 × 1

by_index = np.array([[v[i, 0] * z[j, 0] for j in range(2)] for i in range(3)])   # (7.64)
outer = v @ z.T                                                                 # (7.65)
print("entry by entry, v_i z_j:")
print(by_index)
print(f"v @ z.T, {outer.shape[0]} × {outer.shape[1]} (the shape of W):")
print(outer)
wrong = z @ v.T
print(f"z @ v.T would be {wrong.shape[0]} × {wrong.shape[1]}: not the shape of W")

# %% [markdown]
# Is it really the gradient? Take the simplest $J$ whose gradient at the output is $v$:
# $J(W) = v^\top (Wz + b)$. Central differences in each $W_{ij}$ should give $v z^\top$. The MM
# module's (B2) function `grad_W(z, v)` computes it too (with $z$, $v$ as flat vectors):

# %%
J_of_W = lambda WW: (v.T @ (WW @ z + b[:, None])).item()
numeric = bpv.numerical_grad(J_of_W, W)
from_module = bpv.MM(W, b).grad_W(z.ravel(), v.ravel())
print("finite differences:")
print(np.round(numeric, 6))
print("bpv.MM(W, b).grad_W(z, v):")
print(from_module)
print("all three agree:", np.allclose(numeric, outer) and np.allclose(from_module, outer))

# %% [markdown]
# ## 3. MM with respect to $b$: just $v$ (7.66) *(core)*
#
# Output $i$ depends on $b_j$ only when $i = j$, with slope $1$: the (7.59) matrix for $b$ is the
# identity, so
#
# $$\mathcal{B}[\mathrm{MM}, b](v) = I\, v = v. \tag{7.66}$$
#
# The gradient flows into the bias unchanged.

# %%
print("bpv.MM(W, b).grad_b(z, v) =", bpv.MM(W, b).grad_b(z.ravel(), v.ravel()))
print("v                         =", v.ravel())

# %% [markdown]
# ## 4. What a backward function costs: count the multiplications *(optional)*
#
# The notes say the backward function of MM costs $O(mn)$, the same as the forward $Wz$, up to a
# constant. Rather than time it (timings depend on the machine), **count** the multiplications.
# The loops below do each product the schoolbook way and count every `*`:

# %%
def count_matvec(A, x):
    """A @ x the schoolbook way; returns (result, number of multiplications)."""
    out, mults = np.zeros(A.shape[0]), 0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            out[i] += A[i, j] * x[j]
            mults += 1
    return out, mults


def count_outer(a, c):
    """a cᵀ for columns a (p × 1) and c (q × 1); returns (result, multiplications)."""
    out, mults = np.zeros((a.shape[0], c.shape[0])), 0
    for i in range(a.shape[0]):
        for j in range(c.shape[0]):
            out[i, j] = a[i, 0] * c[j, 0]
            mults += 1
    return out, mults


rng = np.random.default_rng(0)
print(f"{'m × n':>9} {'forward Wz':>11} {'(7.63) Wᵀv':>11} {'(7.65) v zᵀ':>12} {'(7.66)':>7}"
      f" {'backward, all':>14}")
for m, n in [(2, 2), (3, 4), (30, 50)]:
    Wr = rng.normal(size=(m, n))
    zr, vr = rng.normal(size=(n, 1)), rng.normal(size=(m, 1))    # columns
    fwd, c_f = count_matvec(Wr, zr[:, 0])
    bz, c_z = count_matvec(Wr.T, vr[:, 0])
    bW, c_W = count_outer(vr, zr)
    assert np.allclose(bz, Wr.T @ vr[:, 0]) and np.allclose(bW, vr @ zr.T)
    print(f"{f'{m} × {n}':>9} {c_f:>11} {c_z:>11} {c_W:>12} {0:>7} {c_z + c_W:>14}")

# %% [markdown]
# Each of $W^\top v$ and $v z^\top$ is exactly $mn$ multiplications, as many as the forward $Wz$,
# and the bias costs none: MM's backward functions together take $2mn$ multiplications, **twice**
# the forward's $mn$. Counting the additions too, as lesson 07 does, the forward $Wz + b$ is $2mn$
# operations and the backward $3mn - n$, about 1.5 times. Either way the backward pass through MM
# costs a small constant times the forward pass, $O(mn)$ as the notes say, whatever $m$ and $n$
# are. This is the point behind Theorem 7.4.1. (Remark 7.4.2 in the
# notes garbles it as "gradient in $O(N)$ time … Jacobian $O(N^2)$ time"; what it means is that
# applying a backward function to **one vector** $v$ costs about as much as the module itself,
# whereas forming the full Jacobian would cost $O(N^2)$.) We meet the Jacobian next.
#
# *Try it:* add a row `(100, 1)` to the list. How many multiplications does $v z^\top$ take?

# %% [markdown]
# ## 5. Activations: a diagonal Jacobian (7.67)–(7.69) *(core)*
#
# An elementwise activation $\sigma$ (ReLU, sigmoid, tanh) computes output $i$ from input $i$ only.
# So in the (7.59) matrix,
#
# $$\mathcal{B}[\sigma, z](v) =
# \begin{bmatrix}
# \frac{\partial \sigma_1(z)}{\partial z_1} & \cdots & \frac{\partial \sigma_n(z)}{\partial z_1} \\
# \vdots & \ddots & \vdots \\
# \frac{\partial \sigma_1(z)}{\partial z_n} & \cdots & \frac{\partial \sigma_n(z)}{\partial z_n}
# \end{bmatrix} v, \tag{7.67}$$
#
# every entry off the diagonal is $0$ ($\sigma_i$ does not depend on $z_j$ for $j \ne i$), and the
# diagonal holds the derivatives $\sigma'(z_i)$:
#
# $$= \operatorname{diag}(\sigma'(z_1), \ldots, \sigma'(z_n))\, v \tag{7.68}$$
#
# Multiplying by a diagonal matrix just scales each entry of $v$, which is an elementwise product:
#
# $$= \sigma'(z) \odot v \in \mathbb{R}^n. \tag{7.69}$$
#
# Let us check each line with numbers, for the sigmoid $\sigma(z) = 1/(1 + e^{-z})$, whose
# derivative is $\sigma(z)(1 - \sigma(z))$:

# %%
def sigmoid(t):
    return 1 / (1 + np.exp(-t))

z = np.array([-1.0, 2.0, 3.0])
v = np.array([0.5, -1.0, 2.0])

# (7.67): the matrix of (7.59), entry (j, i) = d sigma_i / d z_j, by central differences
M767 = np.array([[bpv.numerical_grad(lambda zz: sigmoid(zz)[i], z)[j] for i in range(3)]
                 for j in range(3)])
print("(7.67) matrix (finite differences):")
print(np.round(M767, 8))
d = sigmoid(z) * (1 - sigmoid(z))                    # sigma'(z)
print("(7.68) diag(σ'(z)) v =", np.diag(d) @ v)
print("(7.69) σ'(z) ⊙ v     =", d * v)
print("bpv.Sigmoid().backward(z, v) =", bpv.Sigmoid().backward(z, v))
print("diagonal matrix equals the finite differences:", np.allclose(M767, np.diag(d), atol=1e-8))
print("(7.68) equals (7.69):", np.allclose(np.diag(d) @ v, d * v))

# %% [markdown]
# **Cost.** Line (7.68) looks like an $n \times n$ matrix times a vector, $n^2$ multiplications;
# line (7.69) needs $n$. Both give the same numbers, because $n^2 - n$ of the products in (7.68)
# are multiplications by $0$:

# %%
for n in [3, 10, 100]:
    dn, vn = rng.normal(size=n), rng.normal(size=n)
    _, c_diag = count_matvec(np.diag(dn), vn)
    print(f"n = {n:>3}: diag(σ'(z)) v takes {c_diag:>5} multiplications "
          f"({c_diag - n} of them by 0); σ'(z) ⊙ v takes {n:>3}")

# %% [markdown]
# So the backward function of an activation costs $O(n)$, like the activation itself.
#
# **A slip in the notes.** The notes say that "at the first sight, equation (7.69) appears to
# indicate the backward function takes $O(n^2)$ time". It is (7.67)–(7.68), the matrix lines, that
# look like $O(n^2)$; (7.69), $\sigma'(z) \odot v$, is already the $O(n)$ form. The paragraph above
# says it that way.
#
# Now the notes' ReLU code, unchanged. For ReLU, $\sigma'(z)$ is $1$ where
# $z > 0$ and $0$ elsewhere: the gradient passes where the unit was on and is blocked where it was off.

# %%
# Backward for ReLU activation (the notes' code, §7.4.3)
def relu(z):
    return np.maximum(0, z)
def relu_prime(z):
    return (z > 0).astype(float)
z = np.array([-1.0, 2.0, 3.0])
v = np.array([0.5, 0.5, 0.5])
dJ_dz = relu_prime(z) * v
print('Backward for ReLU, dJ/dz:', dJ_dz)

# %% [markdown]
# It prints `[0.  0.5 0.5]`: the gradient is blocked at $z_1 = -1$ and passes at $z_2$, $z_3$.
# (Again the notes show the code, not its output.) The ReLU module:

# %%
print('Backward for ReLU, dJ/dz:', bpv.ReLU().backward(z, v))

# %% [markdown]
# ## 6. Losses: a module with a scalar output *(core)*
#
# A loss takes a vector $t$ (the network's output) and gives one number. By (7.59) its backward
# function takes a **scalar** $v$ and returns a vector:
# $[\mathcal{B}[M, t](v)]_i = \frac{\partial M}{\partial t_i}\, v$. At the end of a network
# $J$ *is* the loss, so $v = \partial J/\partial J = 1$.
#
# **Squared loss.** $\ell_{\text{sq}}(t, y) = \tfrac12 \|t - y\|^2$ has
# $\partial \ell_{\text{sq}} / \partial t_i = t_i - y_i$, so
# $\mathcal{B}[\ell_{\text{sq}}, t](v) = (t - y)\, v$. The notes state it in §7.4.3 without an
# equation number, so the tool tags it **(§7.4.3)**. With the output $t = 0.42555748$ and label
# $y = 1$ of the notes' final example (lesson 04):

# %%
t = sigmoid(np.array([-0.3]))         # the notes' a2
y = np.array([1.0])
print("t =", t, "  (t - y) * 1 =", (t - y) * 1)
print("bpv.SquaredLoss().backward(t, y) =", bpv.SquaredLoss().backward(t, y))

# %% [markdown]
# **Logistic loss.** For a label $y \in \{0, 1\}$ and a logit $t$,
# $\ell_{\text{logistic}}(t, y) = \log(1 + e^{t}) - y\,t$ (the notes take it from their
# equation 2.6). Its derivative is $\frac{e^t}{1 + e^t} - y = \sigma(t) - y$, so
#
# $$\mathcal{B}[\ell_{\text{logistic}}, t](v) = \frac{\partial \ell_{\text{logistic}}}{\partial t}\, v = (\sigma(t) - y)\, v. \tag{7.70}$$
#
# The reason it is so simple: the loss "contains" a sigmoid, and its derivative cancels against
# the log. Squash first, then subtract the label. The notes' example applies (7.70) to three logits
# at once (three binary labels; the loss is their sum):

# %%
# Backward for logistic loss (the notes' code, §7.4.3)
def sigmoid(t):
    return 1 / (1 + np.exp(-t))
t = np.array([0.2, -1.0, 0.5])
y = np.array([1, 0, 1])
v = np.ones_like(t)
dJ_dt = (sigmoid(t) - y) * v
print('Backward for logistic loss, dJ/dt:', dJ_dt)

# %% [markdown]
# It prints `[-0.450166    0.26894142 -0.37754067]`: $\sigma(0.2) - 1$, $\sigma(-1) - 0$,
# $\sigma(0.5) - 1$. The module (whose $v$ is the scalar $1$ by default), and finite differences of
# the loss itself:

# %%
logistic = bpv.LogisticLoss()
print('Backward for logistic loss, dJ/dt:', logistic.backward(t, y))
print('finite differences              :', np.round(bpv.numerical_grad(lambda tt: logistic(tt, y), t), 8))

# %% [markdown]
# **Cross-entropy.** With $K$ classes the network outputs $K$ logits $t \in \mathbb{R}^K$;
# $\hat y = \operatorname{softmax}(t)$, $\hat y_c = e^{t_c} / \sum_{c'} e^{t_{c'}}$, are the
# predicted probabilities; the label is one-hot, $y = e_c$ for the true class $c$; and
# $\ell_{\text{ce}}(t, y) = -\log \hat y_c$. The same cancellation as for the logistic loss
# (the notes refer to their equation 2.17) gives
#
# $$\mathcal{B}[\ell_{\text{ce}}, t](v) = \frac{\partial \ell_{\text{ce}}}{\partial t}\, v = (\hat y - y)\, v, \quad \hat y = \operatorname{softmax}(t). \tag{7.71}$$
#
# You need several outputs to see it work. Three logits, true class $c = 3$, so $y = e_3$:

# %%
t = np.array([1.0, 2.0, 0.5])
y = np.array([0.0, 0.0, 1.0])               # one-hot e_3: the true class is class 3
y_hat = np.exp(t) / np.exp(t).sum()         # softmax
print("softmax(t)      =", y_hat)
print("(ŷ - y) * 1     =", (y_hat - y) * 1)
ce = bpv.CrossEntropyLoss()
print("module backward =", ce.backward(t, y))
print("finite diffs    =", np.round(bpv.numerical_grad(lambda tt: ce(tt, y), t), 8))
print("entries sum to  =", f"{(y_hat - y).sum():.1f}")

# %% [markdown]
# The gradient pushes the true class's logit up (negative entry: increasing $t_3$ lowers $J$) and
# the others down, in proportion to how much probability they wrongly get. Its entries sum to $0$.
#
# *Note on the tool:* the label can be given as the one-hot $y = e_3$, as here, or as the class's
# Python index, which counts from 0: class 3 is index 2, so `ce(t, 2)` and `ce.backward(t, 2)`
# mean $y = e_3$.

# %% [markdown]
# ## 7. The same rules inside a network *(optional)*
#
# Now put the modules together: $x \in \mathbb{R}^2$ → MM → ReLU → MM → three logits →
# cross-entropy, with true class 3 ($y = e_3$). The tool records every step with the tag of the
# rule it applies. The second hidden unit is off (its input is negative), so watch ReLU block it.

# %%
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, -0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5], [1.0, 0.25], [-0.3, 0.8]])
b2 = np.array([0.0, 0.1, -0.1])

net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2)],
                     loss=bpv.CrossEntropyLoss())
y = np.array([0.0, 0.0, 1.0])       # one-hot e_3: class 3
trace = net.backprop(x, y)
print(bpv.trace_text(trace))

# %% [markdown]
# Steps 1–4 are the forward pass (F); step 5 seeds the backward pass with
# $\partial J/\partial u^{[4]} = 1$ (the $v = 1$ a loss receives). Every later step is one rule
# of this lesson. Step 6 is (7.71), the cross-entropy's backward function:

# %%
print(bpv.step_text(trace, 6))

# %% [markdown]
# Steps 7–9 are MM's three rules at $M_3$: (7.65) with $v = \partial J/\partial u^{[3]}$ and
# $z = u^{[2]}$ (the numbers line writes $v$ as a column and $z^\top$ as a row), (7.66), and
# (7.63) (there $v$ is again a column, beside the matrix $W^{[2]\top}$). In step 7 the second column of $\partial J/\partial W^{[2]}$ is $0$: it multiplies
# $u^{[2]}_2 = 0$, the output of the hidden unit that is off.

# %%
for k in (7, 8, 9):
    print(bpv.step_text(trace, k))
    print()

# %% [markdown]
# Step 10 is (7.69) at the ReLU: the second entry is blocked, because $u^{[1]}_2 < 0$.

# %%
print(bpv.step_text(trace, 10))

# %% [markdown]
# **One network, three losses.** Only the loss's own step changes when you change the loss. Here is
# step 6 under each of the three losses, with the same logits and the one-hot label $[0, 0, 1]$
# (for the logistic loss that means three separate binary labels):

# %%
for loss in [bpv.SquaredLoss(), bpv.LogisticLoss(), bpv.CrossEntropyLoss()]:
    other = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2)], loss=loss)
    tr = other.backprop(x, y)
    view = bpv.present(tr, 6)
    print(f"{tr.module('M_4').label:<11} step 6 {view.tag:<9} {view.symbolic} = {view.result}")

# %% [markdown]
# ## 8. Your turn: step through it *(optional)*
#
# Press **step ▶** to apply one rule at a time, or **to backward pass** to jump to the seed. Tick
# *predict, then reveal*: before each backward step, type the gradient you expect. The *loss*
# switch compares the three losses on the same network.
#
# *Try it:* predict step 6 as $t - y$ (forgetting the softmax), and read the hint. Then change
# $x$ to `[1, -2]` and rebuild: which hidden unit does ReLU block now?

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(net, x, y)

# %%
# The widget is driven by a plain model. The same predictions from code:
# first the forgotten softmax, then the right answer.
model = bpv.StepperModel(net, x, y)
model.go(5)                                   # after the seed; step 6 is next
print(model.counter())
as_text = lambda a: "[" + ", ".join(f"{e:.6f}" for e in a) + "]"   # what a learner types
t_out = trace.value("u[3]")
right, message = model.check_prediction(as_text(t_out - y))
print(message)
y_hat = np.exp(t_out) / np.exp(t_out).sum()
right, message = model.check_prediction(as_text(y_hat - y))
print(message)

# %% [markdown]
# ## Summary
#
# | module | backward for the input | for the parameters | cost |
# |---|---|---|---|
# | $\mathrm{MM}_{W,b}$ | $W^\top v$ (7.62)–(7.63) | $v z^\top$ (7.64)–(7.65), $v$ (7.66) | $mn$ multiplications each, $2mn$ in all: twice the forward's $mn$ |
# | activation $\sigma$ | $\sigma'(z) \odot v$ (7.67)–(7.69) | — | $n$, not $n^2$ |
# | $\ell_{\text{sq}}$ | $(t - y)v$ (§7.4.3) | — | $n$ |
# | $\ell_{\text{logistic}}$ | $(\sigma(t) - y)v$ (7.70) | — | $n$ |
# | $\ell_{\text{ce}}$ | $(\operatorname{softmax}(t) - y)v$ (7.71) | — | $n$ |
#
# * Every rule is the sum (7.58) with most terms zero: one output per $W_{ij}$, one per $b_i$, one
#   per activation input.
# * Entry $(i, j)$ of $\partial J/\partial W$ is $v_i z_j$ (the notes' printed (7.64) is garbled);
#   as a matrix $v z^\top$, with $v$ and $z$ columns, the shape of $W$.
# * The diagonal Jacobian of an activation is never formed: $\sigma'(z) \odot v$.
# * Losses receive $v = 1$; the logistic and cross-entropy rules are "squash, then subtract the label".
#
# Next, lesson 04 chains these rules into the backward pass of a whole MLP (Algorithm 3).

# %% [markdown]
# ## Exit questions
#
# Answer in the boxes (numbers as `[1, 2]` or `[[1, 2], [3, 4]]`), then press *check*.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("03_modules")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
