# %% [markdown]
# # Lesson 04 — Backpropagation for an MLP (§7.4.4, Algorithm 3)
#
# Lesson 03 gave every module of an MLP its backward function. Now we chain them: run the forward
# pass once, keep every value, then walk back from the loss to the first layer, applying one
# backward function per step. Written out for an $r$-layer MLP this is the notes' **Algorithm 3**.
#
# **What you will learn**
#
# * the forward pass (7.72) of an $r$-layer MLP, and how its names ($a^{[i]}$ in (7.72);
#   $z^{[k]}, a^{[k]}$ in Algorithm 3) match the tool's $u^{[i]}$, $W^{[k]}$, $b^{[k]}$;
# * how the backward pass starts (7.73), (7.76): the "1" that is fed to the loss's backward function;
# * the backward recursion (7.74)–(7.75) and Algorithm 3's loop (7.77)–(7.80), with the notes'
#   slips corrected where they occur;
# * the notes' final 2-layer example, reproduced digit for digit;
# * a 3-layer network stepped through, each step labelled with the line of Algorithm 3 it performs,
#   and checked against finite differences.
#
# **What you need**
#
# * lesson 03: $W^\top v$ (7.63), $v z^\top$ (7.65), $v$ (7.66), $\sigma'(z) \odot v$ (7.69), and
#   the loss rules (7.70), (7.71);
# * the rules (B1), (B2) of §7.4.2. About 30 to 35 minutes. Sections marked *(core)* are the
#   lesson's thread; *(optional)* ones can be skipped on a first reading.

# %%
import numpy as np
import backpropviz as bpv

# %% [markdown]
# ## 1. The forward pass (7.72) and its names *(core)*
#
# An $r$-layer MLP with the logistic loss alternates MM modules and activations $\sigma$; the loss is
# the last module. The notes number **every value** in order:
#
# $$a^{[1]} = \mathrm{MM}_{W^{[1]}, b^{[1]}}(x),\quad a^{[2]} = \sigma(a^{[1]}),\quad
# a^{[3]} = \mathrm{MM}_{W^{[2]}, b^{[2]}}(a^{[2]}),\quad a^{[4]} = \sigma(a^{[3]}),\ \ldots,\quad
# J = \ell_{\text{logistic}}(\text{last value}, y). \tag{7.72}$$
#
# So in (7.72) odd-numbered values are MM outputs and even-numbered values are activations, and
# the $r$-th MM's output, the network's output, is value number $2r - 1$.
#
# **A slip in the notes.** The last line of (7.72) is printed
# "$a^{[r]} = \mathrm{MM}_{W^{[r]}, b^{[r]}}(a^{[r-1]})$, $J = \ell_{\text{logistic}}(a^{[r]}, y)$".
# That does not fit the numbering of the lines above it: the $r$-th MM module reads value
# $2r - 2$ and writes value $2r - 1$, so the line should read
# $a^{[2r-1]} = \mathrm{MM}_{W^{[r]}, b^{[r]}}(a^{[2r-2]})$ and
# $J = \ell_{\text{logistic}}(a^{[2r-1]}, y)$. That is how (7.72) is written above ("last value").
# (7.73) keeps the notes' name $a^{[r]}$ for the network's output; read it as $a^{[2r-1]}$.
#
# **Algorithm 3 uses other names for the same values**: it numbers by *layer* $k$, with
# $z^{[k]}$ the pre-activation (MM output) and $a^{[k]} = \sigma(z^{[k]})$ the activation, and
# $a^{[0]} = x$. backpropviz uses the notes' general names of §7.4.2: $u^{[i]}$ is the output of
# module $M_i$, and the parameters are numbered per MM module, as in both (7.72) and Algorithm 3.
# Watch out: **the same letter $a$ means different things** in (7.72) and in Algorithm 3.
#
# | module | tool | (7.72) | Algorithm 3 | parameters: notes θ[i] ↔ tool |
# |---|---|---|---|---|
# | input | $u^{[0]}$ | $x$ | $a^{[0]} = x$ | |
# | $M_1 = \mathrm{MM}$ | $u^{[1]}$ | $a^{[1]}$ | $z^{[1]}$ | $\theta^{[1]} = (W^{[1]}, b^{[1]})$ ↔ `W[1]`, `b[1]` |
# | $M_2 = \sigma$ | $u^{[2]}$ | $a^{[2]}$ | $a^{[1]}$ | $\theta^{[2]} = \emptyset$ |
# | $M_3 = \mathrm{MM}$ | $u^{[3]}$ | $a^{[3]}$ | $z^{[2]}$ | $\theta^{[3]} = (W^{[2]}, b^{[2]})$ ↔ `W[2]`, `b[2]` |
# | $M_{2k-1} = \mathrm{MM}$ | $u^{[2k-1]}$ | $a^{[2k-1]}$ | $z^{[k]}$ | $\theta^{[2k-1]} = (W^{[k]}, b^{[k]})$ ↔ `W[k]`, `b[k]` |
# | $M_{2k} = \sigma$ | $u^{[2k]}$ | $a^{[2k]}$ | $a^{[k]}$ | $\theta^{[2k]} = \emptyset$ |
# | $M_{2r-1} = \mathrm{MM}$ | $u^{[2r-1]}$ | $a^{[2r-1]}$ (the last line's "$a^{[r]}$") | $z^{[r]}$, the logits | ↔ `W[r]`, `b[r]` |
# | $M_{2r} = \ell_{\text{logistic}}$ | $u^{[2r]} = J$ | $J$ | $J$ | |
#
# Here is the same table printed from the tool, for the 3-layer network ($r = 3$) we step through
# in section 6:

# %%
net = bpv.mlp([2, 3, 3, 1], activation="sigmoid", loss="logistic", seed=0)
x, y = np.array([1.0, -2.0]), 1.0
trace = net.backprop(x, y)
r = 3


names = bpv.algorithm3_names(trace)     # u[1] → z[1], u[2] → a[1], …, u[6] → J


def shape(a):
    """A shape as the notes write it: W is m×n, a vector is a column, n×1; J is a scalar."""
    if np.ndim(a) == 0:
        return "scalar"
    rows, cols = (len(a), 1) if np.ndim(a) == 1 else np.shape(a)
    return f"{rows}×{cols}"


print(f"{'module':<7} {'op':<15} {'tool':<6} {'(7.72)':<7} {'Algorithm 3':<12} {'shape':<7} parameters")
print(f"{'':<7} {'input':<15} {'u[0]':<6} {'x':<7} {names['u[0]'] + ' = x':<12} {shape(x):<7}")
for i in range(1, 2 * r + 1):
    m = trace.module(f"M_{i}")
    eq772 = "J" if i == 2 * r else f"a[{i}]"
    print(f"{m.name:<7} {m.label:<15} {m.output:<6} {eq772:<7} {names[m.output]:<12} "
          f"{shape(trace.value(m.output)):<7} "
          + ", ".join(f"{p} {shape(trace.value(p))}" for p in m.params))

# %% [markdown]
# ## 2. The first backward step (7.73) and the seed *(core)*
#
# The backward pass starts at the loss. $J$ is the loss's output, so the gradient of $J$ with
# respect to that output is $\partial J / \partial J = 1$. Feeding this $v = 1$ to the loss's
# backward function (7.70) gives the gradient at the network's output:
#
# $$\frac{\partial J}{\partial a^{[r]}} = \mathcal{B}[\ell_{\text{logistic}}, a^{[r]}](1)
# = \frac{1}{1 + \exp(-a^{[r]})} - y = \sigma(a^{[r]}) - y. \tag{7.73}$$
#
# (Here $a^{[r]}$ is the notes' name for the network's output: $a^{[2r-1]}$ in the numbering of
# (7.72), Algorithm 3's $z^{[r]}$.)
#
# **How the tool shows this.** The tool makes two steps of it. Its first backward step, the
# **seed**, writes $\partial J/\partial u^{[6]} = 1$: that $1$ is the *argument* of
# $\mathcal{B}[\ell, a^{[r]}](1)$ in (7.73) (and in (7.76) below), not a gradient of the network's
# output. The next step applies the loss's backward function to it, and is tagged with the rule it
# uses, (7.70) for the logistic loss; its result is the right-hand side of (7.73).

# %%
for k in (7, 8):
    print(bpv.step_text(trace, k))
    print()

# %% [markdown]
# ## 3. The recursion (7.74) and the parameter gradients (7.75) *(core)*
#
# From then on, the backward pass goes back one module at a time, applying (B1) with the module's
# backward function: (7.63) for MM, (7.69) for $\sigma$. The notes write this as (7.74):
#
# $$\frac{\partial J}{\partial a^{[k-1]}} = \mathcal{B}[\mathrm{MM}, a^{[k-1]}]\Big(\frac{\partial J}{\partial a^{[k]}}\Big),\qquad
# \frac{\partial J}{\partial a^{[k]}} = \mathcal{B}[\sigma, a^{[k]}]\Big(\frac{\partial J}{\partial a^{[k+1]}}\Big). \tag{7.74}$$
#
# **A slip in the notes.** As printed, (7.74) uses one index $k$ for an MM step and a $\sigma$ step,
# and that does not match the numbering of (7.72), where odd values are MM outputs and even values
# activations: the two lines fit (7.72) only for odd $k$, they never say which $W$ the MM step
# uses, and in the order printed the MM line would need a gradient the $\sigma$ line has not yet
# computed. The rule is simply, for each module, "gradient at the input from gradient at the output":
#
# * each MM module, $a^{[2j-1]} = \mathrm{MM}_{W^{[j]}, b^{[j]}}(a^{[2j-2]})$:
#   $\;\dfrac{\partial J}{\partial a^{[2j-2]}} = W^{[j]\top} \dfrac{\partial J}{\partial a^{[2j-1]}}$ (7.63);
# * each activation, $a^{[2j]} = \sigma(a^{[2j-1]})$:
#   $\;\dfrac{\partial J}{\partial a^{[2j-1]}} = \sigma'(a^{[2j-1]}) \odot \dfrac{\partial J}{\partial a^{[2j]}}$ (7.69).
#
# **Another slip, in the sentence after (7.74).** The notes say these quantities are computed "by
# repeatedly invoking equations (7.69) and (7.65)". (7.65) is MM's rule for $W$, $v z^\top$; the
# MM line of (7.74), the gradient at MM's *input*, is (7.63), $W^\top v$, as the first bullet says.
# (7.65) belongs to (7.75) below.
#
# The parameters of MM module $j$ come from (B2), with the gradient at that module's output:
#
# $$\frac{\partial J}{\partial W^{[j]}} = \mathcal{B}[\mathrm{MM}, W^{[j]}]\Big(\frac{\partial J}{\partial a^{[2j-1]}}\Big) = \frac{\partial J}{\partial a^{[2j-1]}}\, a^{[2j-2]\top},\qquad
# \frac{\partial J}{\partial b^{[j]}} = \mathcal{B}[\mathrm{MM}, b^{[j]}]\Big(\frac{\partial J}{\partial a^{[2j-1]}}\Big) = \frac{\partial J}{\partial a^{[2j-1]}} \tag{7.75}$$
#
# using (7.65) and (7.66). (The notes write the argument as $\partial J/\partial a^{[k]}$ with the
# parameter's index $k$; in the numbering of (7.72) the output of MM module $j$ is $a^{[2j-1]}$.)
# Each parameter gradient needs only the gradient at its own module's output, so (7.75) can be
# interleaved with (7.74); the tool does exactly that.
#
# ## 4. Algorithm 3 *(core)*
#
# Putting (7.72), (7.74) and (7.75) together gives the notes' algorithm. (The sentence before it
# calls it "Algorithm 8"; it is the algorithm printed as **Algorithm 3**.) In Algorithm 3's names:
#
# 1. **Forward pass.** Compute and store every $z^{[k]}$ and $a^{[k]}$, and $J$ (7.72).
# 2. **Backward pass, start.** $\dfrac{\partial J}{\partial z^{[r]}} = \mathcal{B}[\ell_{\text{logistic}}, z^{[r]}](1) = \sigma(z^{[r]}) - y.$ **(7.76)**
# 3. **for** $k = r-1$ **down to** $0$:
#    * $\dfrac{\partial J}{\partial W^{[k+1]}} = \mathcal{B}[\mathrm{MM}, W^{[k+1]}]\Big(\dfrac{\partial J}{\partial z^{[k+1]}}\Big) = \dfrac{\partial J}{\partial z^{[k+1]}}\, a^{[k]\top}$ **(7.77)**
#    * $\dfrac{\partial J}{\partial b^{[k+1]}} = \mathcal{B}[\mathrm{MM}, b^{[k+1]}]\Big(\dfrac{\partial J}{\partial z^{[k+1]}}\Big) = \dfrac{\partial J}{\partial z^{[k+1]}}$ **(7.78)**
#    * when $k \ge 1$: $\dfrac{\partial J}{\partial a^{[k]}} = W^{[k+1]\top} \dfrac{\partial J}{\partial z^{[k+1]}}$ **(7.79)**
#    * when $k \ge 1$: $\dfrac{\partial J}{\partial z^{[k]}} = \mathcal{B}[\sigma, z^{[k]}]\Big(\dfrac{\partial J}{\partial a^{[k]}}\Big) = \sigma'(z^{[k]}) \odot \dfrac{\partial J}{\partial a^{[k]}}$ **(7.80)**
#
# **Slips in the notes' Algorithm 3, corrected above:**
#
# * **(7.77)**: the explanation says the MM backward function computes
#   "$a^{[k]} \cdot (\partial J/\partial z^{[k+1]})^\top$". That is $z v^\top$, the transpose of the
#   right answer, with the wrong shape. Correct: $\partial J/\partial W^{[k+1]} = \partial J/\partial z^{[k+1]}\, a^{[k]\top}$,
#   which is (7.65)'s $v z^\top$ with $v$ the upstream gradient and $z = a^{[k]}$ the module's input
#   (both columns), the shape of $W^{[k+1]}$.
# * **(7.79)**: the notes print $\partial J/\partial z^{[k]} = W^{[k+1]\top}\, \partial J/\partial a^{[k+1]}$,
#   with $z$ and $a$ swapped. With $z$ the pre-activation and $a$ the activation, as the algorithm
#   defines them, the MM module $z^{[k+1]} = W^{[k+1]} a^{[k]} + b^{[k+1]}$ gives
#   $\partial J/\partial a^{[k]} = W^{[k+1]\top}\, \partial J/\partial z^{[k+1]}$ (7.63).
# * **(7.80)**: the notes print $\partial J/\partial a^{[k]} = \sigma'(z^{[k]}) \odot \partial J/\partial z^{[k]}$,
#   again swapped. The activation $a^{[k]} = \sigma(z^{[k]})$ gives
#   $\partial J/\partial z^{[k]} = \sigma'(z^{[k]}) \odot \partial J/\partial a^{[k]}$ (7.69).
# * The loop: the notes write "for $k = r \to 1$", but $W^{[r+1]}$ does not exist and the first layer's
#   $W^{[1]}$ needs $k = 0$ (which the condition "when $k \ge 1$" expects). Read it as $k = r-1$ down
#   to $0$, with $a^{[0]} = x$.
#
# The same loop in numpy, for the 3-layer network above, compared with the tool's gradients
# (vectors are $n \times 1$ columns here, so a vector's ᵀ is always a column's):

# %%
sigmoid = lambda t: 1 / (1 + np.exp(-t))
col = lambda v: np.reshape(v, (-1, 1))                 # a vector as an n × 1 column
Wk = {k: net.params[f"W[{k}]"] for k in range(1, r + 1)}
bk = {k: col(net.params[f"b[{k}]"]) for k in range(1, r + 1)}

# 1. forward pass (7.72), storing every z[k] and a[k]
a, z = {0: col(x)}, {}
for k in range(1, r + 1):
    z[k] = Wk[k] @ a[k - 1] + bk[k]
    if k < r:
        a[k] = sigmoid(z[k])
# 2. (7.76)
dz = {r: sigmoid(z[r]) - y}
dW, db, da = {}, {}, {}
# 3. the loop, k = r-1 down to 0
for k in range(r - 1, -1, -1):
    dW[k + 1] = dz[k + 1] @ a[k].T                     # (7.77)  (m×1)(1×n): the shape of W[k+1]
    db[k + 1] = dz[k + 1]                              # (7.78)
    if k >= 1:
        da[k] = Wk[k + 1].T @ dz[k + 1]                # (7.79), corrected
        dz[k] = sigmoid(z[k]) * (1 - sigmoid(z[k])) * da[k]   # (7.80), corrected

for k in range(1, r + 1):
    same_W = np.allclose(dW[k], trace.grad(f"W[{k}]"), rtol=0, atol=1e-12)
    same_b = np.allclose(db[k].ravel(), trace.grad(f"b[{k}]"), rtol=0, atol=1e-12)
    print(f"layer {k}: ∂J/∂W[{k}] is {shape(dW[k])}, the same as the tool's: {same_W}; "
          f"∂J/∂b[{k}] the same: {same_b}")

# %% [markdown]
# ## 5. The notes' final example, digit for digit *(optional)*
#
# The notes end §7.4 with a 2-layer example in numpy. **Say it plainly: it is not the MLP of
# (7.72).** Its output goes through a sigmoid, $a_2 = \sigma(z_2)$, and the loss is the *squared*
# loss $\tfrac12 (a_2 - y)^2$, not the logistic loss of (7.72). The code is right for what it
# computes. Here it is, unchanged, with what it prints:

# %%
# The notes' code (§7.4, "Example: Full Forward and Backward Pass for a Simple MLP")
import numpy as np

def relu(z):
    return np.maximum(0, z)
def relu_prime(z):
    return (z > 0).astype(float)
def sigmoid(z):
    return 1 / (1 + np.exp(-z))
def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)

# Forward pass
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
b2 = np.array([0.0])
y_true = np.array([1.0])

# Layer 1
z1 = W1 @ x + b1
print('z1:', z1)
a1 = relu(z1)
print('a1:', a1)
# Layer 2
z2 = W2 @ a1 + b2
print('z2:', z2)
a2 = sigmoid(z2)
print('a2:', a2)
# Loss (mean squared error for demonstration)
loss = 0.5 * (a2 - y_true) ** 2
print('loss:', loss)

# Backward pass
# dL/da2
dloss_da2 = a2 - y_true
# dL/dz2
dloss_dz2 = dloss_da2 * sigmoid_prime(z2)
# dL/dW2
dloss_dW2 = dloss_dz2 * a1
print('dloss/dW2:', dloss_dW2)
# dL/db2
dloss_db2 = dloss_dz2
print('dloss/db2:', dloss_db2)
# dL/da1
dloss_da1 = W2.T @ dloss_dz2
# dL/dz1
dloss_dz1 = dloss_da1 * relu_prime(z1)
# dL/dW1
dloss_dW1 = np.outer(dloss_dz1, x)
print('dloss/dW1:', dloss_dW1)
# dL/db1
dloss_db1 = dloss_dz1
print('dloss/db1:', dloss_db1)

# %% [markdown]
# The same network in backpropviz: MM, ReLU, MM, σ, then the squared loss. In the tool's names
# $z_1, a_1, z_2, a_2$ are $u^{[1]}, \ldots, u^{[4]}$ and the loss is $J = u^{[5]}$. We print the
# tool's numbers through the same numpy printing (8 significant digits), each in its own shape:

# %%
example = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2), bpv.Sigmoid()],
                         loss=bpv.SquaredLoss())
ex = example.backprop(x, y_true)
print('z1:', ex.value('u[1]'))
print('a1:', ex.value('u[2]'))
print('z2:', ex.value('u[3]'))
print('a2:', ex.value('u[4]'))
print('loss:', np.atleast_1d(ex.value('u[5]')))
print('dloss/dW2:', ex.grad('W[2]'))
print('dloss/db2:', ex.grad('b[2]'))
print('dloss/dW1:', ex.grad('W[1]'))
print('dloss/db1:', ex.grad('b[1]'))

# %% [markdown]
# One printing detail: the tool's $J$ is a number, while the notes' `loss` is a list of one number
# (because `y_true` is); `np.atleast_1d` prints the number the same way.
#
# **A slip in the notes' code: the shape of `dloss_dW2`.** The notes compute
# `dloss_dW2 = dloss_dz2 * a1`, which is flat: 2 numbers in a row, not a matrix. But a gradient has
# the shape of its parameter (§7.4.1): $W^{[2]}$ is $1 \times 2$, so $\partial J/\partial W^{[2]}$ is
# $1 \times 2$, the $v z^\top$ of (7.65) with $v = $ `dloss_dz2` ($1 \times 1$) and $z = $ `a1`
# ($2 \times 1$). In numpy that is `np.outer(dloss_dz2, a1)`, as the notes' own code does for
# `dloss_dW1`. The digits are right; the shape is not, and the Stepper says so if you type the
# notes' flat answer at step 9:

# %%
check_W2 = bpv.StepperModel(example, x, y_true)
check_W2.go(8)                                        # step 9, ∂J/∂W[2], is next
for answer in (dloss_dW2, np.outer(dloss_dz2, a1)):   # the notes' line, then (7.65)'s v zᵀ
    right, message = check_W2.check_prediction(str(answer.tolist()))
    print(message)

# %% [markdown]
# Line by line, are the printed digits the same, and the shapes?

# %%
pairs = [("z1:", z1, ex.value("u[1]")), ("a1:", a1, ex.value("u[2]")),
         ("z2:", z2, ex.value("u[3]")), ("a2:", a2, ex.value("u[4]")),
         ("loss:", loss, np.atleast_1d(ex.value("u[5]"))),
         ("dloss/dW2:", dloss_dW2, ex.grad("W[2]")),
         ("dloss/db2:", dloss_db2, ex.grad("b[2]")),
         ("dloss/dW1:", dloss_dW1, ex.grad("W[1]")),
         ("dloss/db1:", dloss_db1, ex.grad("b[1]"))]
for label, notes_value, tool_value in pairs:
    digits = str(np.ravel(notes_value)) == str(np.ravel(tool_value))
    same_shape = np.shape(notes_value) == np.shape(tool_value)
    print(f"{label:<11} notes {str(notes_value).replace(chr(10), ''):<40} same digits: {digits}, "
          f"same shape: {same_shape}")
largest = max(np.max(np.abs(np.ravel(nv) - np.ravel(tv))) for _, nv, tv in pairs)
print("all values agree to within 10⁻¹²:", bool(largest < 1e-12))

# %% [markdown]
# Every printed digit agrees; every shape too, except the notes' flat `dloss_dW2`. (The floats can
# differ in the last bit, about $10^{-17}$, because the tool computes $\sigma$ in a way that cannot
# overflow.)
#
# **Where the example sits in Algorithm 3.** $z_1 = z^{[1]}$, $a_1 = a^{[1]}$, $z_2 = z^{[2]}$, and
# then the example adds one more module, $a_2 = \sigma(z_2)$, that Algorithm 3 does not have. Its
# backward pass therefore starts differently: the seed (step 6, the same $1$), then the squared
# loss's backward function $(t - y)v$ (step 7, tagged (§7.4.3), in place of (7.70)), then an
# extra (7.69) step for the output sigmoid (step 8). From step 9 on it is Algorithm 3's loop with
# $r = 2$: (7.77), (7.78), (7.79), (7.80) for $k = 1$, then (7.77), (7.78) for $k = 0$.

# %%
print(bpv.trace_text(ex))

# %% [markdown]
# With the logistic loss of (7.72) on $z_2$ instead (no output sigmoid), the start (7.76) would give
# $\partial J/\partial z_2 = \sigma(z_2) - y$ in one step. *Try it:* build
# `bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2)], loss=bpv.LogisticLoss())` and
# compare $\partial J/\partial u^{[3]}$ with the $-0.1404$ above.
#
# ## 6. A 3-layer network, step by step *(core)*
#
# Back to the 3-layer network of section 1: $x \in \mathbb{R}^2$, two hidden layers of 3 sigmoid
# units, one logit, the logistic loss, label $y = 1$, weights drawn with `seed=0`. Six forward
# steps, then twelve backward steps:

# %%
x, y = np.array([1.0, -2.0]), 1.0
print(" → ".join(["x"] + [trace.module(f"M_{i}").label for i in range(1, 2 * r + 1)]))
print(bpv.trace_text(trace))

# %% [markdown]
# Each backward step of the trace is one line of Algorithm 3. The tool tags a step with the rule of
# lesson 03 it applies; the algorithm's line is the same rule in the algorithm's names: **(7.77) is
# the (7.65) step, (7.78) the (7.66) step, (7.79) the (7.63) step, (7.80) the (7.69) step**, and
# the loss's step (7.70) is (7.76).

# %%
# bpv.algorithm3_line(trace, k): the line of Algorithm 3 (corrected) that step k performs, its k
print(f"{'step':>4}  {'tool rule':<9} {'tool writes':<11} {'Algorithm 3':<16} {'k':<6} writes")
for step in trace.steps[trace.n_forward:]:
    line = bpv.algorithm3_line(trace, step.number)
    k = "" if line.k is None else f"k = {line.k}"
    print(f"{step.number:>4}  {step.tag:<9} {str(step.writes):<11} {line.tag or line.note:<16} "
          f"{k:<6} {line.writes}")

# %% [markdown]
# Read the loop in the table: $k = 2$ is steps 9–12, $k = 1$ steps 13–16, and $k = 0$ only
# steps 17–18 (for $k = 0$ there is no $\partial J/\partial a^{[0]}$ to compute: the notes' backward
# pass stops at the first layer's parameters). Here is the iteration $k = 2$ in full. Step 9 is
# (7.77), $\partial J/\partial W^{[3]} = \partial J/\partial z^{[3]}\, a^{[2]\top}$ (a $1 \times 1$
# column times a $1 \times 3$ row); step 10 is (7.78):

# %%
for k in (9, 10):
    print(bpv.step_text(trace, k))
    print()

# %% [markdown]
# Step 11 is (7.79), $\partial J/\partial a^{[2]} = W^{[3]\top} \partial J/\partial z^{[3]}$, and
# step 12 is (7.80), $\partial J/\partial z^{[2]} = \sigma'(z^{[2]}) \odot \partial J/\partial a^{[2]}$
# with the sigmoid's $\sigma' = \sigma(1 - \sigma)$:

# %%
for k in (11, 12):
    print(bpv.step_text(trace, k))
    print()

# %% [markdown]
# ## 7. Your turn: step through it *(optional)*
#
# The Stepper below speaks Algorithm 3 (`notation="algorithm3"`). Each step's header names the
# line of Algorithm 3 it performs and its $k$, then the tool's rule: "Algorithm 3 (7.77), k = 1 ·
# (B2) (7.65)". The equation is written in $z^{[k]}, a^{[k]}$ and tagged with that line; under it,
# after "as modules:", the same rule in the tool's names $u^{[i]}$, then the numbers. The predict
# box asks in Algorithm 3's names too ("predict ∂J/∂a[2] (Algorithm 3 (7.79), k = 2)"); the graph
# keeps the tool's names: there $\partial J/\partial u^{[4]}$ is $\partial J/\partial a^{[2]}$
# (the table of section 1 translates). The **notation** menu in the
# bar at the top (*Algorithm 3: z[k], a[k]* or *modules: u[i], M_i*) switches the equation between
# the two.
#
# Press **to backward pass**: step 7 is the seed, "the 1 in (7.76)". Then, before each
# **step ▶**, name the next step's line of Algorithm 3, (7.76)–(7.80), and its $k$, and check
# them in the header. Tick *predict, then reveal* to type each gradient first.
#
# *Try it:* predict step 13, $\partial J/\partial W^{[2]}$, the way the notes' explanation of (7.77)
# writes it, $a^{[1]} (\partial J/\partial z^{[2]})^\top$, and read what the tool says. Then change
# the seed and rebuild.

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(net, x, y, notation="algorithm3")

# %%
# The same from code: go to step 12, then predict step 13 first the way the notes'
# explanation of (7.77) writes it, then the right way.
model = bpv.StepperModel(net, x, y, notation="algorithm3")
model.go(12)
print(model.counter())
a_1 = col(trace.value("u[2]"))                # a[1], a 3 × 1 column
dz_2 = col(trace.grad("u[3]"))                # ∂J/∂z[2], a 3 × 1 column
as_text = lambda M: "[" + ", ".join("[" + ", ".join(f"{e:.6f}" for e in row) + "]" for row in M) + "]"
right, message = model.check_prediction(as_text(a_1 @ dz_2.T))
print("a[1] (∂J/∂z[2])ᵀ:", message)
right, message = model.check_prediction(as_text(dz_2 @ a_1.T))
print("∂J/∂z[2] a[1]ᵀ:  ", message)

# %% [markdown]
# ## 8. Is it right? gradcheck *(optional)*
#
# `bpv.gradcheck` perturbs each parameter entry by $\pm\varepsilon$, reruns the forward pass and
# compares $(J(\theta + \varepsilon e_j) - J(\theta - \varepsilon e_j)) / 2\varepsilon$ with
# backprop's gradient, for all six parameters of the 3-layer network:

# %%
report = bpv.gradcheck(net, x, y)
for row in report.rows:
    print(f"{row.name:<5} {shape(trace.grad(row.name)):>4}  agrees with finite differences: {row.ok}  "
          f"(largest difference below 10⁻⁸: {row.max_abs_err < 1e-8})")
print("gradcheck passed:", report.ok)

# %% [markdown]
# ## Summary
#
# * Forward (7.72): store every value. The tool's $u^{[i]}$ is (7.72)'s $a^{[i]}$; in Algorithm 3,
#   $u^{[2k-1]} = z^{[k]}$ (pre-activation) and $u^{[2k]} = a^{[k]}$ (activation); $\theta^{[2k-1]} = (W^{[k]}, b^{[k]})$.
# * Start (7.73)/(7.76): feed $1 = \partial J/\partial J$ to the loss's backward function, giving
#   $\sigma(z^{[r]}) - y$. The tool shows the $1$ as its own step, the seed.
# * Loop, $k = r-1$ down to $0$: (7.77) $= $ (7.65), (7.78) $= $ (7.66), and for $k \ge 1$
#   (7.79) $= $ (7.63), (7.80) $= $ (7.69). Corrected: $\partial J/\partial W^{[k+1]} = \partial J/\partial z^{[k+1]} a^{[k]\top}$,
#   $\partial J/\partial a^{[k]} = W^{[k+1]\top} \partial J/\partial z^{[k+1]}$,
#   $\partial J/\partial z^{[k]} = \sigma'(z^{[k]}) \odot \partial J/\partial a^{[k]}$.
# * The notes' final example (sigmoid output, *squared* loss) is reproduced to every printed digit.
# * Each backward step costs about what its forward step did, so the whole gradient costs a small
#   multiple of one forward pass (Theorem 7.4.1).

# %% [markdown]
# ## Exit questions
#
# Answer in the boxes, then press *check*. For the choices, type one of them as shown.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("04_mlp")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
