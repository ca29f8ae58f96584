# %% [markdown]
# # Start here: what the stepper shows, and how to drive it
#
# **What you will learn**
# * to read backpropagation as a list of steps: a forward pass (F) that computes every
#   $u^{[i]}$, then a backward pass of (B1) and (B2) steps that compute every gradient;
# * to step through those rules one at a time on the computation graph, with the numbers;
# * to predict a gradient before it is revealed.
#
# **What you need:** the lecture notes, §7.4 (their notation is the tool's: modules $M_i$, values
# $u^{[i]}$ with $u^{[0]} = x$, parameters $\theta^{[i]}$, the backward function
# $\mathcal{B}[M, z](v)$), and about 12 minutes. The next lessons follow the notes section by
# section: 01 the chain rule (7.4.1), 02 the general strategy (7.4.2), 03 the basic modules
# (7.4.3), 04 backprop for MLPs (7.4.4), 05 exercises, 06 the classroom app, 07 the cost of
# backprop (Theorem 7.4.1), 08 training. Sections marked *(core)* are the lesson's thread;
# *(optional)* ones can be skipped on a first reading.
#
# The three rules of §7.4.2:
# * forward (F): $u^{[i]} = M_i(u^{[i-1]})$
# * backward (B1): $\partial J/\partial u^{[i-1]} = \mathcal{B}[M_i, u^{[i-1]}](\partial J/\partial u^{[i]})$
# * backward (B2): $\partial J/\partial \theta^{[i]} = \mathcal{B}[M_i, \theta^{[i]}](\partial J/\partial u^{[i]})$

# %%
import numpy as np
import backpropviz as bpv

# the notes' final example (§7.4.4): a 2-layer network, one example
x = np.array([1.0, 2.0])
W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
b1 = np.array([0.0, 0.0])
W2 = np.array([[0.5, -0.5]])
b2 = np.array([0.0])
y_true = np.array([1.0])

net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2), bpv.Sigmoid()],
                     loss=bpv.SquaredLoss())
trace = net.backprop(x, y_true)     # one forward and one backward pass, every step recorded
print(f"{len(trace)} steps: {trace.n_forward} forward, {len(trace) - trace.n_forward} backward;"
      f" J = {trace.loss:.8g}")

# %% [markdown]
# The network is $M_1 = \mathrm{MM}[W^{[1]}, b^{[1]}]$, $M_2 = \mathrm{ReLU}$,
# $M_3 = \mathrm{MM}[W^{[2]}, b^{[2]}]$, $M_4 = \sigma$ and the squared loss $M_5$, so
# $J = u^{[5]}$. (Lesson 04 reproduces this example of the notes number for number.)
#
# ## Every step of the pass *(core)*
#
# One line per step. The number on the left is the step number you will see everywhere: in the
# stepper's counter, on its slider and in code (`bpv.step_text(trace, 9)` is step 9). Step 0 is
# the state before any step, when only $x$, $\theta$ and $y$ are known. The tag is the equation
# of the notes that the step applies.

# %%
print(bpv.trace_text(trace))

# %% [markdown]
# Steps 1–5 are the forward pass (F). Step 6, the *seed*, starts the backward pass with
# $\partial J/\partial u^{[5]} = 1$: the 1 that the loss's backward function is applied to,
# $\mathcal{B}[\ell, \cdot](1)$ in (7.73) (lesson 04). Then each module, from $M_5$ back to $M_1$,
# applies (B2) for its parameters and (B1) for its input — except $M_1$, whose input is $x$:
# the notes' backward pass does not need $\partial J/\partial x$, so $M_1$ only applies (B2).
#
# ## One step, drawn *(core)*
#
# `bpv.show(trace, step=k)` draws the graph as known after step $k$. Boxes are values
# ($u^{[i]}$, $\theta^{[i]}$, $y$) with their shape; ovals are modules. Blue, solid: the forward
# pass; vermillion, dashed: the backward pass. A thick outline is what the step writes, a dotted
# outline what its rule reads; grey bars are numbers not computed yet (blank, not zero). Step 9
# is (B2) with (7.65) (derived in lesson 03): $\partial J/\partial W^{[2]} = v\, z^\top$ with
# $v = \partial J/\partial u^{[3]}$ (a column) and $z = u^{[2]}$, so it reads $u^{[2]}$ and
# $\partial J/\partial u^{[3]}$.

# %%
# NBVAL_IGNORE_OUTPUT
bpv.show(trace, step=9)

# %% [markdown]
# The same step as text, which is also what a screen reader reads: the header, the rule, the
# rule with the numbers substituted (the column $v$ on the left of the row $z^\top$), the result,
# and everything known so far.

# %%
print(bpv.step_text(trace, 9))

# %% [markdown]
# ## Your turn: step through it *(core)*
#
# | control | what it does |
# |---|---|
# | **step ▶**, **◀ step** | apply the next rule, or go back one |
# | **to backward pass** | jump to step 6, $\partial J/\partial u^{[5]} = 1$ |
# | **reset** | back to step 0 |
# | ▶ (play) and the slider | run through the steps, or drag to any step |
# | *predict, then reveal* | before each backward step, type the gradient you expect, then *check* (or *reveal*) |
# | *inspect* | a node's value and gradient; it follows the current step unless you pick a node |
# | *change the example or the network* | new $x$, $y$, sizes, activation, seed, weights or loss, then *rebuild* |
#
# Try it: step to step 9 and check the picture above. Then tick *predict, then reveal*, reset,
# and predict two gradients before they are shown:
# * step 6, $\partial J/\partial u^{[5]}$: $u^{[5]}$ *is* $J$, so this needs no rule at all;
# * step 7, $\partial J/\partial u^{[4]}$: it applies the squared loss's backward function
#   $\mathcal{B}[\ell_\text{sq}, t](v) = (t - y)\,v$ with $t = u^{[4]}$ (lesson 03 derives it).
#   With $u^{[4]} = 0.4256$ from the list above, $y = 1$ and $v = 1$ from step 6, what is it?

# %%
# NBVAL_IGNORE_OUTPUT
stepper = bpv.Stepper(net, x, y_true)
stepper

# %% [markdown]
# Behind the widget is a plain model you can drive from code, with the same step numbers. Here
# it goes to step 10 and checks two predictions of step 11, $\partial J/\partial u^{[2]}$, as the
# *check* button does: first the upstream gradient $\partial J/\partial u^{[3]} = [-0.1404]$
# itself, a typical slip, then the right answer. Then it takes step 11 and shows it: (B1) for
# $M_3$, with MM's backward function $W^\top v$ (7.63) from lesson 03.

# %%
model = bpv.StepperModel(net, x, y_true)
model.go(10)
print(model.counter())
right, message = model.check_prediction("[-0.1404]")             # a wrong prediction of step 11
print(message)
right, message = model.check_prediction("[-0.07021, 0.07021]")   # the right one
print(message)
model.go(11)
view = model.view()
print(view.symbolic)
print("=", view.numbers)
print("=", view.result)

# %% [markdown]
# ## Is backprop right? Its numerical twin *(optional)*
#
# Every gradient has a numerical twin: `bpv.gradcheck` compares each one with central finite
# differences $(J(\theta + \varepsilon e_j) - J(\theta - \varepsilon e_j)) / 2\varepsilon$.

# %%
report = bpv.gradcheck(net, x, y_true)
print("gradcheck passed:", report.ok)
print("largest difference below 10⁻⁸:", max(r.max_abs_err for r in report.rows) < 1e-8)

# %% [markdown]
# ## Summary
#
# * Backprop is a list of steps: (F) for every module, the 1 that starts the backward pass, then
#   (B2) and (B1) for every module from the last to the first ($M_1$: (B2) only).
# * Step $k$ means the same state in the drawing, the text, the stepper and the code; step 0 is
#   before any step.
# * The picture marks what each rule writes and what it reads; the text says the same in words.
#
# ## Exit questions
#
# Type your answer and press *check*; the tool checks it.

# %%
# NBVAL_IGNORE_OUTPUT
quiz = bpv.exit_questions("00_start_here", trace)
quiz

# %% tags=["teacher"]
# The teacher's copy only (a student's copy has no such cell): each answer, and what the tool
# tells each typical wrong answer, by the same check as the boxes.
print(quiz.key())
