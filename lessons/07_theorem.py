# %% [markdown]
# # The cost of backprop: Theorem 7.4.1, Remarks 7.4.2 and 7.4.3
#
# §7.4 opens with a promise: the gradient costs about as much as the loss. This lesson makes that
# promise visible on a network you can step through, then measures it on networks of 69 to 2,309
# operations (and up to about 100,000 if you try it).
#
# **What you will learn**
#
# * Theorem 7.4.1: a circuit of $N$ operations has a gradient circuit of $O(N)$ operations, seen
#   on the *scalar circuit* of a small network (every $+$, $\times$, $\max(0,\cdot)$ on single
#   numbers is one module $M_i$, as in Remark 7.4.3);
# * the counts: $N$, backward operations by kind and by module, and the constant $c$ in
#   "backward $\approx c \cdot N$" over a sweep of growing MLPs;
# * Remark 7.4.2: why backprop never forms a Jacobian (7.59): $n^2$ or more against $n$;
#   and a slip in how the notes state it;
# * what the forward pass must keep for the backward pass, in numbers and bytes.
#
# **What you need**: lesson 02 (the chain of modules, (F), (B1), (B2), Remark 7.4.3) and lesson 03
# (the backward functions (7.63), (7.65), (7.69)). About 25 minutes. Sections marked *(core)* are
# the lesson's thread; *(optional)* ones can be skipped on a first reading.

# %%
import numpy as np
import backpropviz as bpv
from backpropviz import cost
from IPython.display import display

# %% [markdown]
# ## 1. One network, two granularities *(core)*
#
# The network of lesson 02: $M_1 = \mathrm{MM}[W^{[1]}, b^{[1]}]$, $M_2$ = ReLU,
# $M_3 = \mathrm{MM}[W^{[2]}, b^{[2]}]$, $M_4 = \ell_\text{logistic}$, on $x = (1, 2)$ with $y = 1$.
# At module level it has 4 forward steps:

# %%
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
b2 = np.array([0.0])
y = 1.0

net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2)], loss=bpv.LogisticLoss())
trace = net.backprop(x, y)
print(f"{len(trace.modules)} modules, {len(trace)} steps ({trace.n_forward} forward), "
      f"J = {trace.loss:.6f}")
for s in trace.steps[:trace.n_forward]:
    print(f"step {s.number}: {s.tag} {s.node}")

# %% [markdown]
# Theorem 7.4.1 speaks of a *circuit*: every operation acts on single numbers. `bpv.circuit`
# rewrites the same pass that way (Remark 7.4.3: the proof views the network as "compositions of
# many atomic operations"). $\mathrm{MM}[W^{[1]}, b^{[1]}]$ becomes 4 products $W_{ij} z_j$ and,
# for each output entry, a chain of additions $(W_{i1} z_1 + W_{i2} z_2) + b_i$; the loss
# $\log(1 + e^t) - y\,t$ becomes exp, $1 + \cdot$, log, $y \times \cdot$, $-$. Entry $j$ of
# $u^{[i]}$ is written $u^{[i]}_j$, and numbers inside a module are $s[1], s[2], \dots$

# %%
circ = bpv.circuit(trace)
print(f"{circ.n_forward} atomic operations from {len(trace.modules)} modules, {len(circ)} steps "
      f"({circ.n_forward} forward), J = {circ.loss:.6f}")
print()
fwd = circ.steps[:circ.n_forward]
first_mul = next(s for s in fwd if s.module and circ.module(s.module).op == "Mul")
first_add = next(s for s in fwd if s.module and circ.module(s.module).op == "Add")
for s in (first_mul, first_add):
    print("\n".join(bpv.present(circ, s.number).lines))     # header, rule, numbers, result
    print()

# %% [markdown]
# Backward, each atomic operation has a backward function as cheap as the operation itself
# (Remark 7.4.3): a product $a \times b$ sends $b\,v$ to $a$ and $a\,v$ to $b$; a sum sends $v$ to
# both terms; $\max(0, z)$ sends $v$ or $0$. In the circuit a weight entry such as
# $W^{[1]}_{1,1}$ is still a parameter of the network (the Stepper lists it under θ), but no
# module has it as its $\theta^{[i]}$: it is just an input of a multiplication, like
# $u^{[0]}_1$. So its gradient comes from a (B1) step of that
# multiplication, the chain rule (7.53), (7.58) for one input of $\times$, whereas at module level
# (lessons 00–04) $\partial J/\partial W^{[1]}$ is a (B2) step; the numbers are the same. Here
# are the backward steps of that product and that sum:

# %%
bwd = circ.steps[circ.n_forward:]
mul_b = [s for s in bwd if s.module == first_mul.module]
add_b = [s for s in bwd if s.module == first_add.module]
for s in mul_b[:1] + add_b[:1]:
    print("\n".join(bpv.present(circ, s.number).lines))
    print()
print("the circuit's gradients equal the module-level ones:",
      all(np.allclose(circ.module_grad(p), trace.grad(p)) for p in ("W[1]", "b[1]", "W[2]", "b[2]")))

# %% [markdown]
# Step through the whole circuit (the same Stepper as in lesson 00, on a `Trace` of single
# numbers; there too each weight entry's gradient is a (B1) step of its product):

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(circ)

# %%
print(f"the circuit has {len(circ)} steps: {circ.n_forward} forward, then the seed ∂J/∂J = 1, "
      f"then {len(circ) - circ.n_forward - 1} backward; the module-level trace has {len(trace)}")
print("∂J/∂W[1] from the circuit:", np.round(circ.module_grad("W[1]"), 6).tolist())

# %% [markdown]
# ## 2. Counting: N forward operations, how many backward? *(core)*
#
# `circ.counts` counts the atomic operations. A backward step (B1) is a constant number of
# arithmetic operations on single numbers, and a sum (7.53) of $m$ contributions is $m - 1$
# additions. The seed $\partial J / \partial J = 1$ costs nothing.

# %%
c = circ.counts
print(c)

# %% [markdown]
# Count $M_1$ by hand: 4 products and 4 additions forward, $N_{M_1} = 8$. Backward, every product
# has two inputs, $W_{ij}$ and $z_j$; the notes' backward pass stops at $u^{[1]}$, so only the
# $W_{ij}$ get a gradient (4 operations), and each of the 4 additions passes $v$ to its 2 terms:
# $\partial J/\partial b^{[1]}_i$ and the product's gradient. That is at most **twice** the forward
# count per operation, since every atomic operation has at most two inputs: the whole backward pass
# is at most about $2N$ plus the sums (7.53), which Theorem 7.4.1 turns into "$O(N)$".

# %%
print(f"N = {c.forward}, backward = {c.backward}, backward / N = {c.backward / c.forward:.3f}")
print(f"M_1: forward {c.forward_by_module['M_1']}, backward {c.backward_by_module['M_1']}")

# %% [markdown]
# ## 3. Theorem 7.4.1 on growing networks *(core)*
#
# Now MLPs $2 - w - w - 1$ (ReLU, logistic loss) for growing $w$: build the scalar circuit of each,
# with every forward value and gradient, and count. If the gradient circuit has size $O(N)$, the
# points (N, backward) lie under a straight line through the origin.

# %%
sweep = cost.theorem_sweep([4, 8, 16, 24, 32])
print(sweep)

# %% [markdown]
# The plot shows the counts on the left; on the right the time it took to build each circuit on
# this machine (first the compiled structure, then the forward and backward numbers alone), also
# straight lines. The star is our small network from section 1.

# %%
# NBVAL_IGNORE_OUTPUT
cost.figure_image(cost.plot_theorem(sweep, circuit=circ))

# %%
print(f"constant: backward ≈ {sweep.constant:.3f} N; "
      f"backward/N from {sweep.ratios.min():.3f} to {sweep.ratios.max():.3f}; "
      f"largest N = {int(sweep.N.max()):,}")

# %% [markdown]
# The ratio rises from 1.899 at $N = 69$ to 2.373 at $N = 2{,}309$, and the line fitted through
# the origin has slope 2.357. It rises by less each time (0.21, 0.16, 0.07, 0.04) while $N$ grows
# 33-fold: backward $\approx c \cdot N$ with $c$ levelling off, which is Theorem 7.4.1's $O(N)$.
# The counts say where $c$ comes from: a product is one forward operation and two backward ones,
# an addition one and at most two, ReLU one and one, and a value read by $w$ products needs
# $w - 1$ more additions to sum its contributions (7.53). In a wide network the $w \times w$ layer
# dominates: $2w^2$ operations forward, about $5w^2$ backward, so $c$ approaches 2.5 from below.
#
# *Try it:* `cost.theorem_sweep([32, 64, 128, 224])` goes up to about 100,000 operations in a few
# seconds. Does the ratio pass 2.5?
#
# ## 4. Remark 7.4.2: the backward function, never the Jacobian *(core)*
#
# For a module $u = g(z)$ with $z, u \in \mathbb{R}^n$, (7.59) writes
# $\mathcal{B}[g, z](v) = \big[\partial g_j / \partial z_i\big]_{ij}\, v$, a Jacobian times a vector.
# Forming that matrix costs $n^2$ numbers. The backward functions of lesson 03 never form it:
#
# * activation $\sigma$ (7.67)–(7.69): the Jacobian is $\mathrm{diag}(\sigma'(z))$, $n^2$ entries
#   and $2n^2$ operations with the product; $\sigma'(z) \odot v$ is $2n$;
# * MM with $W \in \mathbb{R}^{n \times n}$: the Jacobian with respect to $z$, $W$ and $b$ has
#   $n \cdot (n + n^2 + n)$ entries (the part for $W$ is a 3-index array,
#   $\partial (Wz+b)_i / \partial W_{kl} = \delta_{ik} z_l$), so about $2n^3$ operations with the
#   product; $W^\top v$ (7.63), $v z^\top$ (7.65) and $v$ (7.66) are $3n^2 - n$, about 1.5 times
#   the forward pass $Wz + b$ ($2n^2$).
#
# Both routes give the same gradient:

# %%
rng = np.random.default_rng(0)
n = 5
mm = bpv.MM(rng.normal(size=(n, n)), rng.normal(size=n))
z, v = rng.normal(size=n), rng.normal(size=n)
print("MM:     ", cost.compare_routes(mm, z, v))
print("sigmoid:", cost.compare_routes(bpv.Sigmoid(), z, v))
print("∂J/∂z by the Jacobian:", np.round(cost.jacobian_route(bpv.Sigmoid(), z, v)["z"], 6).tolist())
print("∂J/∂z by (7.69):      ", np.round(bpv.Sigmoid().backward(z, v), 6).tolist())

# %% [markdown]
# but not at the same cost. Counted exactly, for widths up to 800:

# %%
ns = (50, 100, 200, 400, 800)
jac = cost.jacobian_vs_backward(ns)
print(jac)

# %% [markdown]
# And measured (medians of 3 runs on this machine; MM's Jacobian is formed only while it fits in
# 160 MB, up to $n = 200$: at $n = 800$ it would have over 500 million entries):

# %%
# NBVAL_IGNORE_OUTPUT
cost.figure_image(cost.plot_jacobian(jac))

# %%
for kind in ("activation", "MM"):
    a, b = jac.of(kind)[0], jac.of(kind)[-1]
    grow_j, grow_b = b["jacobian"] / a["jacobian"], b["backward"] / a["backward"]
    print(f"{kind:<10}: n × {b['n'] // a['n']} → Jacobian operations × {grow_j:,.0f}, "
          f"backward function × {grow_b:,.0f}")

# %% [markdown]
# On a log–log plot a cost $n^p$ is a line of slope $p$: the activation's Jacobian has slope 2
# against slope 1 for (7.69), and MM's Jacobian slope 3 against slope 2 for (7.63), (7.65), (7.66).
#
# **A slip in the notes.** Remark 7.4.2 ends: "This is why, when $z \in \mathbb{R}^N$, we can
# compute the gradient in $O(N)$ time, which might be potentially even much smaller than the size
# of the full Jacobian, which is $O(N^2)$ time." Read literally, a *gradient* of a scalar $J$ with
# respect to $z \in \mathbb{R}^N$ has $N$ entries and no Jacobian is involved. What is meant: a
# backward function $\mathcal{B}[g, z]$ applied to **one vector** $v$ costs about as much as the
# module's forward pass ($O(n)$ for an activation, $O(n^2)$ for an $n \times n$ MM), while forming
# the full Jacobian of the module and multiplying it by $v$ would cost $O(n^2)$ for the activation,
# and more for MM. That is exactly what the table above counts.
#
# ## 5. What the forward pass keeps (Remark 7.4.3 and (F)) *(optional)*
#
# The backward steps read values: (7.65) reads $u^{[i-1]}$, (7.69) reads $z$, (7.63) reads $W$.
# `cost.stored` lists, from the trace's own steps, every value some backward step reads:

# %%
kept = cost.stored(trace)
print(kept)

# %% [markdown]
# $J = u^{[4]}$ is read by no backward step, and neither are $W^{[1]}$ and the $b$'s. In the
# scalar circuit the list is finer: an addition's backward step reads no value at all, a product's
# reads the *other* factor:

# %%
kept_c = cost.stored(circ)
print(kept_c.table(limit=12))
print()
print(f"{'by kind':<8} {'numbers':>8} {'bytes':>6}")
for kind, (numbers, nbytes) in kept_c.by_kind().items():
    print(f"{kind:<8} {numbers:>8} {nbytes:>6}")

# %% [markdown]
# Memory also grows linearly: for the sweep's largest network, the module-level pass keeps

# %%
big = bpv.mlp([2, 32, 32, 1], activation="relu", loss="logistic", seed=0)
kb = cost.stored(big.backprop(x, np.array([1.0])))
print(f"{kb.numbers:,} numbers = {kb.bytes:,} bytes of values (x and the u[i]), "
      f"{kb.all_numbers:,} numbers with the parameters the backward steps read")

# %% [markdown]
# ## Summary
#
# * **Theorem 7.4.1**: viewed as a circuit of $N$ atomic operations (Remark 7.4.3), the backward
#   pass has at most a constant times $N$ operations: from $1.9N$ to $2.4N$ for these MLPs of 69
#   to 2,309 operations (fitted: $2.357N$), levelling off below $2.5N$; the time is a straight
#   line too.
# * Every atomic operation has a backward function as cheap as itself; MM's backward functions
#   (7.63), (7.65), (7.66) cost about 1.5 times its forward pass.
# * **Remark 7.4.2**: backprop applies backward functions to one vector $v$ and never forms the
#   Jacobian (7.59): $2n$ against $2n^2$ for an activation, $3n^2 - n$ against about $2n^3$ for
#   MM. The notes' last sentence of the remark says "gradient … $O(N)$, Jacobian $O(N^2)$"; the
#   point is the backward function on one $v$ against the full Jacobian.
# * The price of the speed is memory: the forward pass keeps every value a backward step reads.
#
# ## Exit questions

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("07_theorem")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
