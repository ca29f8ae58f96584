# %% [markdown]
# # The general strategy: a chain of modules, a forward and a backward pass
#
# Lesson 01 took one function $g$ and its backward function $\mathcal{B}[g, z](v)$. A network is
# many such pieces, one after another. This lesson follows §7.4.2 of the notes: write the loss as a
# chain of modules, run it forward and keep every intermediate value, then run the chain rule
# backward, one module at a time.
#
# **What you will learn**
#
# * the loss as a chain of modules $M_1, \dots, M_k$ (7.60), and the forward pass (F);
# * why the forward pass keeps every $u^{[i]}$, and how much memory that is;
# * the backward pass: (7.61), (B1) and (B2), and what each step needs;
# * what happens when a value is used by two modules: contributions that add up (7.53);
# * how big a module should be: matrix-level modules vs atomic operations (Remark 7.4.3).
#
# **What you need**: lesson 01 (the backward function $\mathcal{B}[g, z](v)$ and the chain rule
# (7.53)), and an MLP with weights $W^{[1]}, b^{[1]}, \dots$ from the course. About 25 minutes.
# Sections marked *(core)* are the lesson's thread; *(optional)* ones can be skipped on a first
# reading.

# %%
import numpy as np
import backpropviz as bpv
from backpropviz.display.text import inline, shape_text
from IPython.display import display

# %% [markdown]
# ## 1. The loss as a chain of modules (7.60) *(core)*
#
# If every piece of a network has a backward function, we can treat the whole loss as pieces in a
# row: the notes' building blocks MM, $\sigma$, Conv2D, LN, … (in some copies of the notes $\sigma$
# comes out as two garbled characters, an encoding slip: read it as $\sigma$). Losses are modules
# too. So the loss $J$ on one example $(x, y)$ is a composition:
#
# $$J = M_k(M_{k-1}(\cdots M_1(x))). \tag{7.60}$$
#
# The notes' example is a binary classifier MLP: $M_1 = \mathrm{MM}[W^{[1]}, b^{[1]}]$,
# $M_2 = \sigma$, $M_3 = \mathrm{MM}[W^{[2]}, b^{[2]}]$, …, $M_k = \ell_\text{logistic}$. Take two
# layers ($r = 2$, so $k = 4$), with $\sigma$ = ReLU and the weights of the notes' worked example
# (lesson 00). Unlike that example, it ends with the logistic loss, as in (7.60). The label is
# $y = 1$.
#
# Each module $M_i$ has its parameters $\theta^{[i]}$. For $\sigma$ and the loss, $\theta^{[i]}$ is
# empty. The notes number the weights by *layer* and $\theta$ by *module*, so
# $\theta^{[3]} = (W^{[2]}, b^{[2]})$.

# %%
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
b2 = np.array([0.0])
y = 1.0

net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2)], loss=bpv.LogisticLoss())
trace = net.backprop(x, y)

for m in trace.modules:
    i = m.name[2:]
    theta = ", ".join(m.params) if m.params else "(none)"
    print(f"{m.name} = {m.label:<15} θ[{i}] = {theta}")

# %% [markdown]
# ## 2. The forward pass (F) *(core)*
#
# Name every intermediate value. Then the forward pass is $k$ simple steps:
#
# $$u^{[0]} = x, \qquad u^{[i]} = M_i(u^{[i-1]}) \;\; (i = 1, \dots, k), \qquad J = u^{[k]}. \tag{F}$$
#
# The whole pass, forward then backward, as the tool records it (one line per step):

# %%
print(bpv.trace_text(trace))

# %% [markdown]
# Steps 1–4 are (F). The network's output is $u^{[3]} = -0.3$ (the notes' $z_2$), and
# $J = u^{[4]} = \log(1 + e^{-0.3}) + 0.3 \approx 0.8544$. Steps 5–12 are the backward pass,
# which the next sections explain. (Step 6 is $\sigma(u^{[3]}) - y = 0.4256 - 1$: the notes' $a_2$
# minus the label.)
#
# ## 3. Why the forward pass keeps every $u^{[i]}$ *(optional; lesson 07 §5 too)*
#
# The notes say the forward pass must "save all the intermediate variables $u^{[i]}$ in the
# memory". The reason: backward steps read them again. For each value, here are the backward steps
# that read it:

# %%
print(f"{'value':<6} {'numbers':>7} {'bytes':>6}   read again by")
kept_n = kept_b = 0
for i in range(len(trace.modules) + 1):
    name = f"u[{i}]"
    u = trace.value(name)
    readers = [f"step {s.number} {s.tag}" for s in trace.steps
               if s.phase == "backward" and bpv.Key(name) in s.reads]
    if readers:                                 # kept only if a backward step reads it
        kept_n, kept_b = kept_n + u.size, kept_b + u.nbytes
    print(f"{name:<6} {u.size:>7} {u.nbytes:>6}   {', '.join(readers) or 'no backward step'}")
print(f"kept for the backward pass: {kept_n} numbers = {kept_b} bytes (8 bytes per number)")

# %% [markdown]
# Every $u^{[i]}$ before $J$ is read again by the backward pass. Without them we would have to
# recompute the forward pass. $J = u^{[4]}$ itself is read by no backward step (the backward pass
# starts from $\partial J/\partial J = 1$), so it need not be kept: here the forward pass keeps
# 7 numbers, 56 bytes (lesson 07 counts the same 56 bytes). For a real network it is a lot more:
# the same count for a 784–256–10 MLP on a batch of 32 images (one image per column):

# %%
big = bpv.mlp([784, 256, 10], activation="relu", loss="cross_entropy", seed=0)
rng = np.random.default_rng(0)
X = rng.normal(size=(784, 32))
labels = rng.integers(0, 10, size=32)
big_trace = big.backprop(X, labels)
sizes = {f"u[{i}]": big_trace.value(f"u[{i}]") for i in range(5)}
print(f"{'value':<6} {'shape':>8} {'numbers':>8}")
for name, u in sizes.items():
    print(f"{name:<6} {shape_text(u):>8} {u.size:>8,}")
n = sum(u.size for u in sizes.values())
kept = {k: u for k, u in sizes.items() if k != "u[4]"}   # J itself is read by no backward step
print(f"kept for the backward pass (u[0] … u[3], not J): {sum(u.size for u in kept.values()):,} "
      f"numbers = {sum(u.nbytes for u in kept.values()):,} bytes")

# %% [markdown]
# This memory grows with the batch size and the depth. It is why training needs much more memory
# than prediction.
#
# ## 4. The backward pass: (7.61), (B1), (B2) *(core)*
#
# Now use lesson 01 inside the chain. Take $z = u^{[i-1]}$, $g = M_i$ and $u = u^{[i]}$, and let
# $f$ be everything after $M_i$. We never need to know $f$: by (7.56), turning
# $\partial J/\partial u^{[i]}$ into $\partial J/\partial u^{[i-1]}$ takes only $M_i$ and its input.
#
# **A slip in the notes.** In (7.61) the notes draw the arrow from
# $\partial J/\partial u^{[i-1]}$ to $\partial J/\partial u^{[i]}$. The backward pass goes **the
# other way**, from $\partial J/\partial u^{[i]}$ to $\partial J/\partial u^{[i-1]}$, and needs only
# $M_i$ and $u^{[i-1]}$:
#
# $$\frac{\partial J}{\partial u^{[i]}} \xrightarrow[\text{chain rule, only requires info about } M_i(\cdot) \text{ and } u^{[i-1]}]{} \frac{\partial J}{\partial u^{[i-1]}}. \tag{7.61}$$
#
# With the backward function of (7.57), that is
#
# $$\frac{\partial J}{\partial u^{[i-1]}} = \mathcal{B}[M_i, u^{[i-1]}]\left(\frac{\partial J}{\partial u^{[i]}}\right). \tag{B1}$$
#
# The same chain rule with $z = \theta^{[i]}$ gives the parameters' gradients:
#
# $$\frac{\partial J}{\partial \theta^{[i]}} = \mathcal{B}[M_i, \theta^{[i]}]\left(\frac{\partial J}{\partial u^{[i]}}\right). \tag{B2}$$
#
# The pass starts from $\partial J/\partial u^{[k]} = 1$ (step 5, the seed) and
# goes from $M_k$ back to $M_1$. For each module, the tool does (B2) first and then (B1), the order of
# the notes' Algorithm 3 (lesson 04). Here are a (B2) step and a (B1) step:

# %%
print(bpv.step_text(trace, 7))
print()
print(bpv.step_text(trace, 10))

# %% [markdown]
# The (B1) step is just the module's backward function applied to numbers from the trace. Do it by
# hand with the module object $M_2$:

# %%
M2 = net.layers[1]                     # M_2 = ReLU
by_hand = M2.backward(trace.value("u[1]"), trace.grad("u[2]"))
print("B[M_2, u[1]](∂J/∂u[2]) =", inline(by_hand))
print("trace's ∂J/∂u[1]       =", inline(trace.grad("u[1]")))

# %% [markdown]
# Check the claim of (7.61) on every backward step. A step for module $M_i$ may read only
# $\partial J/\partial u^{[i]}$, the input $u^{[i-1]}$, the parameters $\theta^{[i]}$ and (for the
# loss) the label $y$. It never reads anything from other modules:

# %%
ok = True
for s in trace.steps:
    if s.phase != "backward" or s.module is None:
        continue
    m = trace.module(s.module)
    allowed = {bpv.Key.gradient(m.output)} | {bpv.Key(n) for n in m.inputs + m.params}
    ok = ok and set(s.reads) <= allowed
    print(f"step {s.number:>2} {s.rule.label} {s.tag:<7} {s.module}: {s.writes} "
          f"from {', '.join(map(str, s.reads))}")
print("every step reads only ∂J/∂u[i], u[i-1], θ[i] (and y) of its own M_i:", ok)

# %% [markdown]
# Note that (B2) for $M_i$ needs only $\partial J/\partial u^{[i]}$ and $u^{[i-1]}$, not the
# gradients further back. So the (B1) and (B2) steps can be interleaved, as the notes say.
#
# **Try it.** Step through the MLP. Press **to backward pass**, tick *predict, then reveal* and
# type each gradient before it is shown. Then change $x$ to `[-3, 2]`, rebuild, and see which
# entry of $\partial J/\partial u^{[1]}$ the ReLU now stops (and why it needs $u^{[1]}$ to know).

# %%
# NBVAL_IGNORE_OUTPUT
bpv.Stepper(net, x, y)

# %% [markdown]
# The same from code: jump to the backward pass, go to step 8, and predict step 9,
# $\partial J/\partial u^{[2]} = W^{[2]\top}\, \partial J/\partial u^{[3]}$:

# %%
model = bpv.StepperModel(net, x, y)
model.to_backward()
print(model.counter(), "·", model.view().symbolic)
model.go(8)
print(model.counter())
right, message = model.check_prediction("[-0.5744, 0]")        # a wrong guess gets a hint
print(message)
right, message = model.check_prediction("[-0.2872, 0.2872]")
print(message)

# %% [markdown]
# ## 5. A value with two users: contributions add up (7.53) *(core)*
#
# In a chain, every $u^{[i]}$ is read by one module. Real networks also reuse values, for example
# in a *skip connection* $J = \sum_j \big(\mathrm{MM}[W, b](z) + z\big)_j^2$. Here $z$ feeds both
# the MM and the addition. What is $\partial J/\partial z$ now?
#
# Lesson 01 already has the answer. In (7.53),
# $\frac{\partial J}{\partial z_i} = \sum_j \frac{\partial J}{\partial u_j} \frac{\partial g_j}{\partial z_i}$
# sums over **every output** $u_j$ that $z$ feeds. Think of the two users as one $g$ with two
# blocks of outputs, $g(z) = (\mathrm{MM}(z), z)$. The sum over $j$ splits into a sum over the MM's
# outputs and a sum over the addition's. Each part is one user's backward function. So each user
# gives a **contribution**, and $\partial J/\partial z$ is their sum.

# %%
mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]))
z0 = np.array([1.0, 0.5])
skip = bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), z0)
for m in skip.modules:
    print(f"{m.name} = {m.label:<14} reads {', '.join(m.inputs)}")
print()
print(bpv.trace_text(skip))

# %% [markdown]
# $u^{[0]} = z$ is read by $M_1$ (the MM) and by $M_2$ (the $+$). Step 9 is the contribution via
# $M_2$, step 12 the one via $M_1$, and step 13 sums them, as (7.53) says:

# %%
print(bpv.step_text(skip, 13))

# %% [markdown]
# Check the sum against central finite differences, and see what goes wrong if one user is
# forgotten:

# %%
via_1 = skip.grad("u[0]", via="M_1")
via_2 = skip.grad("u[0]", via="M_2")
numeric = bpv.numerical_grad(lambda z: ((mm(z) + z) ** 2).sum(), z0)
print("via M_1           =", inline(via_1))
print("via M_2           =", inline(via_2))
print("sum (7.53)        =", inline(via_1 + via_2))
print("finite diffs      =", inline(numeric))
print("sum matches:", np.allclose(via_1 + via_2, numeric, atol=1e-6),
      "· via M_1 alone matches:", np.allclose(via_1, numeric, atol=1e-6))

# %% [markdown]
# ## 6. How big is a module? (Remark 7.4.3) *(optional)*
#
# The notes prove Theorem 7.4.1 with **atomic** modules: $+$, $\times$, $x^2$, each with a backward
# function as cheap as the operation itself. In practice, modules are bigger, such as a whole
# matrix multiplication MM. The two views give the same gradients. Let us compare them on one small
# function, $J = \sum_i (Wz + b)_i^2$:
#
# * module level: $\mathrm{MM}[W, b]$, then $(\cdot)^2$, then $\Sigma$;
# * matrix ops: `W @ z`, `+ b`, $(\cdot)^2$, $\Sigma$, with $W$, $z$, $b$ as inputs;
# * atomic: every entry a separate number, $a_1 = W_{11} z_1 + W_{12} z_2 + b_1$,
#   $a_2 = W_{21} z_1 + W_{22} z_2 + b_2$, and $J = a_1^2 + a_2^2$: 4 products, 4 additions,
#   2 squares and one last addition, 11 atomic modules.
#
# `bpv.circuit` rewrites a module-level trace in atomic operations (lesson 07 uses it for
# Theorem 7.4.1). In its names, $u^{[0]}_k$ is entry $k$ of $u^{[0]} = z$, and $W^{[1]}_{ik}$ is
# entry $(i, k)$ of $W$; `module_grad` gathers the entries' gradients back into a vector or matrix.

# %%
W = np.array([[0.5, -1.0], [2.0, 0.25]])
b = np.array([0.1, -0.1])
z = np.array([1.0, 0.5])

mod_tr = bpv.trace(lambda z: (bpv.MM(W, b)(z) ** 2).sum(), z)
ops_tr = bpv.trace(lambda W, z, b: ((W @ z + b) ** 2).sum(), W, z, b, names=["W", "z", "b"])
atom_tr = bpv.circuit(mod_tr)                 # the same pass, one module per atomic operation

for label, t in [("module level (MM)", mod_tr), ("matrix ops (@)", ops_tr), ("atomic", atom_tr)]:
    print(f"{label:<18} {len(t.modules):>3} modules {len(t):>3} steps   J = {t.loss:.4g}")
print()
print("∂J/∂z:", inline(mod_tr.grad("u[0]")), "|", inline(ops_tr.grad("z")), "|",
      inline(atom_tr.module_grad("u[0]")))
print("∂J/∂W:", inline(mod_tr.grad("W[1]")), "|", inline(ops_tr.grad("W")), "|",
      inline(atom_tr.module_grad("W[1]")))
print("∂J/∂b:", inline(mod_tr.grad("b[1]")), "|", inline(ops_tr.grad("b")), "|",
      inline(atom_tr.module_grad("b[1]")))

# %% [markdown]
# Same $J$, same gradients; 9 steps against 34. In the atomic circuit every $z_k$ is read by two
# multiplications, so its gradient is again a sum over users (7.53). ($M_{1.2}$ is the second
# atomic operation of $M_1$, the product $W_{12} z_2$; $M_{1.6}$ is $W_{22} z_2$.)

# %%
for s in atom_tr.steps:
    if s.kind == "acc":                       # a sum over users (7.53)
        view = bpv.present(atom_tr, s.number)
        print(view.symbolic, "=", view.result)

# %% [markdown]
# As $W$ grows to $n \times n$, the module-level trace keeps 3 modules (its arrays grow), while the
# atomic circuit grows like $n^2$. The arithmetic is about the same either way: MM's backward
# computes $W^\top v$ and $v z^\top$ ($v$ a column), $n^2$ multiplications each, and each of the
# $n^2$ atomic $\times$ passes back two products, one per input. Bigger modules just mean fewer,
# larger steps.

# %%
print(f"{'n':>3} {'module steps':>13} {'atomic modules':>15} {'atomic steps':>13} {'same ∂J/∂W':>11}")
for n in (2, 3, 4, 8):
    rng = np.random.default_rng(n)
    Wn, zn, bn = rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n)
    t_mod = bpv.trace(lambda z: (bpv.MM(Wn, bn)(z) ** 2).sum(), zn)
    t_atom = bpv.circuit(t_mod)
    same = np.allclose(t_atom.module_grad("W[1]"), t_mod.grad("W[1]"))
    print(f"{n:>3} {len(t_mod):>13} {len(t_atom.modules):>15} {len(t_atom):>13} {str(same):>11}")

# %% [markdown]
# ## Summary
#
# * The loss is a chain of modules, $J = M_k(\cdots M_1(x))$ (7.60). The forward pass (F) computes
#   $u^{[1]}, \dots, u^{[k]}$ and **keeps them**, because the backward pass reads them again.
# * The backward pass goes from $\partial J/\partial u^{[i]}$ to $\partial J/\partial u^{[i-1]}$
#   (7.61, with the arrow as corrected above). Each step needs only $M_i$, $\theta^{[i]}$ and
#   $u^{[i-1]}$: (B1) for the input, (B2) for the parameters.
# * A value used by several modules gets one contribution per user, and (7.53) sums them.
# * Modules can be atomic operations or whole matrix multiplications: the gradients are the same,
#   and so is the arithmetic, in fewer and larger steps (Remark 7.4.3).

# %% [markdown]
# ## Exit questions
#
# Answer in the boxes (a vector as `[1, 2]`, a number as `7`), then press *check*.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("02_strategy")
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
