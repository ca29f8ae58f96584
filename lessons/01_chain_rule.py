# %% [markdown]
# # The chain rule, and the backward function $\mathcal{B}[g, z](v)$
#
# Backpropagation is the chain rule, applied one piece of a network at a time. This lesson looks
# at a single piece: a function $g$ with input $z$ and output $u$, followed by "the rest" $f$. It
# follows §7.4.1 of the notes, equations (7.52)–(7.59).
#
# **What you will learn**
#
# * the chain rule (7.53) written out with numbers, and the same step in backpropviz;
# * the Jacobian form (7.54)/(7.59) and the backward function $\mathcal{B}[g, z](v)$ of (7.57);
# * why $\mathcal{B}[g, z]$ is a *linear* map of $v$, and why it needs only $g$ and $z$ (7.56);
# * the shape convention: $\partial J/\partial z$ has the shape of $z$, even for a matrix (7.55);
# * why backprop never builds the full Jacobian (Remark 7.4.2).
#
# **What you need**: partial derivatives, vectors and matrices, a little numpy. Lesson 00 helps but
# is not required. About 25 minutes. Run the cells from top to bottom (Shift+Enter). Sections
# marked *(core)* are the lesson's thread; *(optional)* ones can be skipped on a first reading.

# %%
import numpy as np
import backpropviz as bpv
from backpropviz.display.text import inline, fnum
from IPython.display import display

# %% [markdown]
# ## 1. One function after another (7.52) *(core)*
#
# A loss is built from simple pieces. Start with two: $g$ turns $z$ into $u$, and $f$ turns $u$
# into the single number $J$:
#
# $$z \in \mathbb{R}^m, \qquad u = g(z) \in \mathbb{R}^n, \qquad J = f(u) \in \mathbb{R}. \tag{7.52}$$
#
# The notes' example: $g$ squares every entry, $f$ adds them up. Their code, unchanged:

# %%
# Example: composition of functions in numpy
def g(z):
    # Example: elementwise square
    return z ** 2

def f(u):
    # Example: sum of elements
    return np.sum(u)

z = np.array([1.0, 2.0, 3.0])
u = g(z)
J = f(u)
print('u:', u)
print('J:', J)

# %% [markdown]
# So $u = [1, 4, 9]$ and $J = 14$, as in the notes. Here $m = n = 3$.
#
# ## 2. The chain rule, entry by entry (7.53) *(core)*
#
# $J$ depends on $z_i$ only *through* the entries $u_1, \dots, u_n$. Nudge $z_i$: each $u_j$ moves
# by $\partial g_j/\partial z_i$ times the nudge, and each move of $u_j$ moves $J$ by
# $\partial J/\partial u_j$ times it. Adding up over every path $j$ gives the chain rule:
#
# $$\forall i \in \{1, \ldots, m\}, \quad \frac{\partial J}{\partial z_i} = \sum_{j=1}^n \frac{\partial J}{\partial u_j} \frac{\partial g_j}{\partial z_i}. \tag{7.53}$$
#
# In the example, $\partial J/\partial u_j = 1$ (a sum grows by 1 when one term does), and
# $\partial g_j/\partial z_i = 2 z_i$ if $i = j$, else $0$. The notes' code puts these
# derivatives in a matrix with one row per $z_i$ and one column per $u_j$:

# %%
# Chain rule for vector functions
dJ_du = np.ones_like(u)  # dJ/du for f(u) = sum(u) is 1 for each element
# For g(z) = z**2, dg_j/dz_i = 2*z[i] if i==j else 0 (diagonal)
dg_dz = np.diag(2 * z)
dJ_dz = dg_dz @ dJ_du
print('dJ/dz:', dJ_dz)

# %% [markdown]
# $\partial J/\partial z = [2, 4, 6]$, as in the notes. Here is (7.53) written out term by term,
# with `dg_dz[i, j]` $= \partial g_j/\partial z_i$:

# %%
for i in range(3):
    terms = [f"{fnum(dJ_du[j])}·{fnum(dg_dz[i, j])}" for j in range(3)]
    total = sum(dJ_du[j] * dg_dz[i, j] for j in range(3))
    print(f"(7.53)  ∂J/∂z_{i + 1} = " + " + ".join(terms) + f" = {fnum(total)}")

# %% [markdown]
# Only the term $j = i$ survives: $z_i$ reaches $J$ through $u_i$ alone.
#
# ## 3. The same step in backpropviz *(optional)*
#
# `bpv.trace` runs a function on a traced value and records every piece as a module $M_i$ with
# output $u^{[i]}$. Here $M_1 = (\cdot)^2$ is our $g$ and $M_2 = \Sigma$ is our $f$. Mind the names:
# the tool calls $z$ **u[0]**, $u$ **u[1]** and $J$ **u[2]**.

# %%
chain = bpv.trace(lambda z: (z ** 2).sum(), np.array([1.0, 2.0, 3.0]))
print(bpv.trace_text(chain))

# %% [markdown]
# Steps 1–2 are the forward pass. The backward pass starts from $\partial J/\partial J = 1$
# (step 3, the *seed*: the 1 that the last module's backward function is applied to, as in the
# notes' $\mathcal{B}[\ell, a^{[r]}](1)$ of (7.73); lesson 04). Step 4 goes back through $\Sigma$: every
# $u_j$ gets $\partial J/\partial u_j = 1$ (the tool writes "∂J/∂u[2] 𝟏": the number
# ∂J/∂u[2] times the vector of ones 𝟏, here [1, 1, 1]).
#
# Step 5 is our chain rule (7.53) for $g$, with $v = \partial J/\partial u^{[1]}$:

# %%
print(bpv.step_text(chain, 5))

# %% [markdown]
# The tool writes the step in the vector form $2\,u^{[0]} \odot v$ and tags it (7.58), the
# backward-function form of (7.53) that we meet in section 4. It is (7.53) with the zero terms left
# out: entry $i$ is $\partial J/\partial u_i \cdot 2 z_i$.
#
# **Try it.** Step through the pass yourself. Tick *predict, then reveal* and type
# $\partial J/\partial u^{[0]}$ before step 5 shows it.

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(chain)

# %% [markdown]
# The widget runs on a plain model you can also drive from code. Five steps in:

# %%
model = bpv.StepperModel(chain)
for _ in range(5):
    model.next()
print(model.counter())
view = bpv.present(chain, 5)
print(view.header)
print(view.symbolic, "=", view.numbers, "=", view.result)
right, message = model.check_prediction("[2, 4, 6]", k=5)
print("a prediction of [2, 4, 6] for this step:", message)

# %% [markdown]
# ## 4. The Jacobian (7.54) and the backward function (7.57)–(7.59) *(core)*
#
# Write $v = \partial J/\partial u$ as a column ($n \times 1$). The sums (7.53) for all $i$ at once
# are a matrix times $v$, with one row per $z_i$ and one column per $u_j$ ($m \times n$):
#
# $$\frac{\partial J}{\partial z} = \begin{bmatrix} \frac{\partial u_1}{\partial z_1} & \cdots & \frac{\partial u_n}{\partial z_1} \\ \vdots & \ddots & \vdots \\ \frac{\partial u_1}{\partial z_m} & \cdots & \frac{\partial u_n}{\partial z_m} \end{bmatrix} \frac{\partial J}{\partial u}. \tag{7.54}$$
#
# The Jacobian of $g$, $Dg(z) \in \mathbb{R}^{n \times m}$, has one row per *output*:
# $(Dg)_{ji} = \partial g_j / \partial z_i$. So the matrix in (7.54) is its transpose,
# $Dg(z)^\top$ ($m \times n$), and (7.54) says $\partial J/\partial z = Dg(z)^\top v$.
#
# The notes give the map $v \mapsto \partial J/\partial z$ a name, the **backward function** of $g$
# at $z$ (the notes print it once as "[Bg, z]"; it is $\mathcal{B}[g, z]$):
#
# $$\frac{\partial J}{\partial z} = \mathcal{B}[g, z]\left(\frac{\partial J}{\partial u}\right) \tag{7.57}$$
#
# entry by entry, from (7.53), and as a matrix, from (7.54):
#
# $$(\mathcal{B}[g, z](v))_i = \sum_{j=1}^n \frac{\partial g_j}{\partial z_i} \cdot v_j, \tag{7.58}$$
#
# $$\mathcal{B}[g, z](v) = Dg(z)^\top v. \tag{7.59}$$
#
# Three ways to compute $\mathcal{B}[g, z](v)$ for $g(z) = z^2$: build the Jacobian and multiply by
# its transpose (7.59); do the sums (7.58); or use the module's backward function, which never
# builds a matrix ($2z \odot v$).

# %%
z = np.array([1.0, 2.0, 3.0])
v = np.array([1.0, 1.0, 1.0])          # ∂J/∂u, a column of n = 3 entries

Dg = np.diag(2 * z)                    # the Jacobian of g: (Dg)[j, i] = ∂g_j/∂z_i, n × m
by_759 = Dg.T @ v
by_758 = np.array([sum(Dg[j, i] * v[j] for j in range(3)) for i in range(3)])
square = bpv.Power(2)                  # the module M = (·)² with its hand-written backward
by_module = square.backward(z, v)      # B[g, z](v) = 2 z ⊙ v

print("(7.59) Dgᵀ v         =", inline(by_759))
print("(7.58) sums over j   =", inline(by_758))
print("B[(·)², z](v) = 2z⊙v =", inline(by_module))

# %% [markdown]
# All three give $[2, 4, 6]$. Here $Dg$ is diagonal, so the transpose changes nothing. It matters
# as soon as $m \neq n$. Take $g(z) = Az$ with $A \in \mathbb{R}^{2 \times 3}$: $z$ has $m = 3$
# entries, $u$ has $n = 2$, $Dg = A$ is $2 \times 3$, and (7.59) is $A^\top v$ with
# $v \in \mathbb{R}^{2}$ a column: a $3 \times 2$ matrix times a $2 \times 1$ column.

# %%
A = np.array([[1.0, 2.0, 3.0],
              [4.0, 5.0, 6.0]])
v2 = np.array([1.0, 1.0])              # ∂J/∂u for J = Σ_j u_j, a 2 × 1 column
print(f"A is {A.shape[0]} × {A.shape[1]}; Aᵀ is {A.shape[1]} × {A.shape[0]}; v is {v2.size} × 1")
print("(7.59) Aᵀ v =", inline(A.T @ v2, "column"), "(3 × 1, the shape of z)")

lin = bpv.trace(lambda z: (A @ z).sum(), np.array([1.0, 2.0, 3.0]))
print("backpropviz: ∂J/∂u[0] =", inline(lin.grad("u[0]")))

# %% [markdown]
# ## 5. $\mathcal{B}[g, z]$ is linear in $v$, but depends on $z$ *(optional)*
#
# For a fixed $z$, every entry of (7.58) is a fixed weighted sum of the $v_j$. So
# $\mathcal{B}[g, z]$ is a **linear map** from $\mathbb{R}^n$ to $\mathbb{R}^m$:
# $\mathcal{B}[g, z](\alpha v + \beta w) = \alpha\,\mathcal{B}[g, z](v) + \beta\,\mathcal{B}[g, z](w)$.
# Check it with random (seeded) $v$, $w$, $\alpha$, $\beta$:

# %%
rng = np.random.default_rng(0)
v, w = rng.normal(size=3), rng.normal(size=3)
alpha, beta = 2.5, -0.75

def B(v, z=np.array([1.0, 2.0, 3.0])):
    return square.backward(z, v)       # B[g, z](v) for g = (·)²

left = B(alpha * v + beta * w)
right = alpha * B(v) + beta * B(w)
print("B(αv + βw)     =", inline(left))
print("αB(v) + βB(w)  =", inline(right))
print("equal:", np.allclose(left, right))

# %% [markdown]
# The map itself changes with $z$: same $v$, another $z$, another result. That is why the notes
# treat the backward function as a function of both $z$ and $v$.

# %%
ones = np.ones(3)
print("B[g, [1, 2, 3]]([1, 1, 1])  =", inline(B(ones, np.array([1.0, 2.0, 3.0]))))
print("B[g, [-1, 0, 5]]([1, 1, 1]) =", inline(B(ones, np.array([-1.0, 0.0, 5.0]))))

# %% [markdown]
# ## 6. Only $g$ and $z$ are needed (7.56) *(core)*
#
# Here is the key point of §7.4.1. To turn $\partial J/\partial u$ into $\partial J/\partial z$,
# (7.54) uses only the derivatives of $g$ at $z$. It never looks inside $f$:
#
# $$\frac{\partial J}{\partial u} \xrightarrow[\text{chain rule, (7.54) only requires info about } g(z) \text{ and } z]{} \frac{\partial J}{\partial z}. \tag{7.56}$$
#
# Test it: keep $g = (\cdot)^2$ and $z$, but change the rest to $f(u) = \sum_j \sin u_j$. The step
# for $g$ uses the same rule; only the incoming $v$ differs. Then compute that step ourselves from
# $g$, $z$ and $v$ alone:

# %%
other = bpv.trace(lambda z: (z ** 2).sin().sum(), np.array([1.0, 2.0, 3.0]))
last = len(other)                      # the last step goes back through g
print(bpv.present(chain, len(chain)).symbolic, "  (f = Σ)")
print(bpv.present(other, last).symbolic, "  (f = Σ sin)")
print()
v_other = other.grad("u[1]")           # ∂J/∂u, whatever f is
print("v = ∂J/∂u[1]                =", inline(v_other))
print("B[(·)², z](v), from g, z, v =", inline(square.backward(z, v_other)))
print("backpropviz's ∂J/∂u[0]      =", inline(other.grad("u[0]")))

# %% [markdown]
# In a network, $g$ will be one module $M_i$ and $f$ everything after it: however big $f$ is, each
# module only needs its own backward function. That is lesson 02.
#
# ## 7. When $z$ is a matrix (7.55) *(core)*
#
# **Shape convention:** $\partial J/\partial z$ always has the shape of $z$. For
# $z \in \mathbb{R}^{p \times s}$, its $(i, k)$ entry is $\partial J/\partial z_{ik}$. Writing
# (7.54) would mean flattening $z$ into a vector, but (7.53) just runs over both indices:
#
# $$\forall i, k, \quad \frac{\partial J}{\partial z_{ik}} = \sum_{j=1}^n \frac{\partial J}{\partial u_j} \frac{\partial g_j}{\partial z_{ik}}. \tag{7.55}$$
#
# **A slip in the notes.** The notes introduce (7.55) with "$z \in \mathbb{R}^{k \times s}$" and
# then write $\forall i, k$: the letter $k$ is both the number of rows and the column index (and
# §7.4.2 uses $k$ again for the number of modules). Here the rows are counted by $p$: $i$ runs
# from 1 to $p$ (the row), $k$ from 1 to $s$ (the column).
#
# Example: $p = 2$, $s = 3$, $u = g(z) = z\,c$ with a fixed column $c \in \mathbb{R}^3$, and
# $J = \sum_j u_j^2$.
# Since $u_j = \sum_k z_{jk} c_k$, we get $\partial g_j/\partial z_{ik} = c_k$ if $j = i$, else $0$.

# %%
Z = np.array([[1.0, 2.0, 3.0],
              [-1.0, 0.5, 2.0]])
c = np.array([1.0, -1.0, 2.0])
mat = bpv.trace(lambda Z: ((Z @ c) ** 2).sum(), Z)
print(bpv.trace_text(mat))
print()
print(f"z is {bpv.text.shape_text(Z)}; ∂J/∂z is {bpv.text.shape_text(mat.grad('u[0]'))}")

# %% [markdown]
# Now (7.55) by hand, with $\partial J/\partial u$ from the trace. (In the code, Python counts
# from 0: `by_755[i, k]` is the notes' entry $(i + 1, k + 1)$.)

# %%
dJ_du = mat.grad("u[1]")               # ∂J/∂u, u = z c
by_755 = np.zeros_like(Z)
for i in range(2):
    for k in range(3):
        by_755[i, k] = sum(dJ_du[j] * (c[k] if j == i else 0.0) for j in range(2))
print("(7.55) by hand :", inline(by_755))
print("backpropviz    :", inline(mat.grad("u[0]")))

# %% [markdown]
# Step 7 of the trace writes this as $\partial J/\partial u^{[1]}\, c^\top$: a $2 \times 1$ column
# times a $1 \times 3$ row gives a $2 \times 3$ matrix, the shape of $z$.
#
# ## 8. Why not build the Jacobian? (Remark 7.4.2) *(optional; lesson 07 counts it in full)*
#
# **A slip in the notes.** Remark 7.4.2 ends with "we can compute the gradient in $O(N)$ time, which
# might be potentially even much smaller than the size of the full Jacobian, which is $O(N^2)$
# time". The point it means: **applying a backward function to one vector $v$ costs about as much as
# running the module forward; forming the full Jacobian would cost $O(N^2)$.** For $g(z) = z^2$
# with $z \in \mathbb{R}^N$, the forward pass and $2z \odot v$ are both $O(N)$. (The remark also
# says: where $J$ does not depend on a coordinate of $z$, that gradient entry is $0$, not NaN.)
#
# Count what each way stores and multiplies, for growing $N$:

# %%
print(f"{'N':>6} {'Jacobian entries':>17} {'its bytes':>11} {'mults for Dgᵀv':>15}"
      f" {'B[g,z](v) entries':>18} {'mults for 2z⊙v':>15} {'same?':>6}")
for N in (10, 100, 1000):
    z_N = np.arange(1.0, N + 1.0)
    v_N = np.linspace(-1.0, 1.0, N)
    Dg_N = np.diag(2 * z_N)                   # the full Jacobian, n × m = N × N
    full = Dg_N.T @ v_N                       # N·N multiply-adds
    back = square.backward(z_N, v_N)          # 2 z ⊙ v: 2N multiplications
    print(f"{N:>6} {Dg_N.size:>17,} {Dg_N.nbytes:>11,} {Dg_N.size:>15,}"
          f" {back.size:>18,} {2 * N:>15,} {str(np.allclose(full, back)):>6}")

# %% [markdown]
# At $N = 1000$ the Jacobian has a million entries, 999,000 of them zero. The backward function
# gives the same 1000 numbers with 2000 multiplications. Networks have millions of values, so
# backprop only ever applies backward functions to vectors.
#
# ## Summary
#
# * (7.52): $J = f(g(z))$. The chain rule (7.53) sums over every path $z_i \to u_j \to J$.
# * (7.54)/(7.59): the same as a matrix, $\partial J/\partial z = Dg(z)^\top v$ with $v = \partial J/\partial u$ a column.
# * The backward function $\mathcal{B}[g, z](v)$ (7.57), (7.58) maps $v = \partial J/\partial u$ to
#   $\partial J/\partial z$. It is linear in $v$, depends on $z$, and needs only $g$ and $z$ (7.56).
# * $\partial J/\partial z$ has the shape of $z$, also for a matrix (7.55).
# * A backward function costs about what its module's forward costs; the full Jacobian would cost
#   $O(N^2)$ (Remark 7.4.2, as corrected above).

# %% [markdown]
# ## Exit questions
#
# Answer in the boxes (a vector as `[1, 2, 3]`, a matrix as `[[1, 2], [3, 4]]`), then press *check*.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("01_chain_rule")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
