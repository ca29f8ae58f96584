"""The lessons' exit questions, kept here so that a student's copy of a lesson shows the questions
and never their answers: ``bpv.exit_questions("04_mlp")`` in the lesson, the answers, the reasons
and a hint for each typical wrong answer in this file.

    quiz = bpv.exit_questions("00_start_here", trace)   # a question that counts this trace's steps
    quiz                                                # in Jupyter: a box and a check button each
    print(quiz.key())                                   # the teacher's copy: answers and hints
"""
from __future__ import annotations

import html

import numpy as np

from ..core.errors import BackpropError, brief
from ..core.networks import mlp
from ..core.trace import Trace
from ..theory.cost import jacobian_counts
from .quiz import Question, as_typed


class Quiz:
    """A lesson's exit questions, shown together; ``key()`` is the teacher's answer sheet."""

    def __init__(self, lesson: str, questions: list[Question]):
        self.lesson, self.questions = lesson, list(questions)

    def __len__(self):
        return len(self.questions)

    def __getitem__(self, i: int) -> Question:
        return self.questions[i]

    def __iter__(self):
        return iter(self.questions)

    def key(self) -> str:
        """Each question's answer with its reason, and what each typical wrong answer is told (by
        the same check a student's answer goes through)."""
        lines = []
        for n, q in enumerate(self.questions, 1):
            ok, said = q.check(q.typed_answer)
            lines.append(f"q{n}. {q.prompt}")
            lines.append(f"    {'✔' if ok else '✘'} {said}")
            for typed, _ in q.wrong:
                lines.append(f"    typed {typed}: ✘ {q.check(typed)[1]}")
        return "\n".join(lines)

    def __repr__(self):
        return "\n".join(f"q{n}. {q!r}" for n, q in enumerate(self.questions, 1))

    def widget(self):
        import ipywidgets as W
        parts = []
        for n, q in enumerate(self.questions, 1):
            box = q.widget()
            box.children[0].value = f"<b>q{n}.</b> " + box.children[0].value
            parts.append(box)
        title = W.HTML(f"<span>exit questions of lesson {html.escape(self.lesson)}</span>")
        return W.VBox([title, *parts]).add_class("bpv-quiz")

    def _repr_mimebundle_(self, **kwargs):
        data = self.widget()._repr_mimebundle_(**kwargs)
        data = dict(data[0] if isinstance(data, tuple) else data)
        data["text/plain"] = repr(self)
        return data


# --- the lessons -----------------------------------------------------------------------------------
def _l00(trace: Trace) -> list[Question]:
    """About the lesson's network with its σ (M_4) taken out: a pass the lesson never lists, so
    the answers are counted, not read off the page."""
    variant = _without_sigma(trace)
    n_back = len(variant) - variant.n_forward
    at = next(k for k in range(1, len(variant) + 1) if str(variant.spec(k).writes) == "∂J/∂b[2]")
    return [
        Question("Take this lesson's network without its σ: M_1 = MM[W[1], b[1]], M_2 = ReLU, "
                 "M_3 = MM[W[2], b[2]] and the squared loss M_4. How many steps does its backward "
                 "pass take?", answer=n_back,
                 why="One start (the seed); (B1) for M_4, M_3, M_2; (B2) twice for M_3 and "
                     "for M_1.",
                 wrong={str(n_back + 1): "that counts the σ this network no longer has — or a "
                                         "∂J/∂x for M_1, which the backward pass does not "
                                         "need: M_1 applies only (B2).",
                        str(n_back - 1): "the backward pass starts with a step of its own: "
                                         "∂J/∂J = 1, the seed.",
                        "4": "one step per module is too few: a module with parameters applies "
                             "(B2) once per parameter (W and b), and (B1) for its input."}),
        Question("In that network without σ, at which step number is ∂J/∂b[2] computed?",
                 answer=at,
                 why=f"{variant.n_forward} forward steps, the seed, M_4's (B1), then M_3's (B2) "
                     f"for W[2] (7.65) and for b[2] (7.66): step {at}.",
                 wrong={"10": "that is its step in the lesson's network, whose σ adds a forward "
                              "and a backward step before it.",
                        str(at - 1): f"step {at - 1} is ∂J/∂W[2] (7.65): M_3 computes W[2]'s "
                                     f"gradient first, then b[2]'s."}),
    ]


def _without_sigma(trace: Trace) -> Trace:
    """Lesson 00's network (MM, ReLU, MM, σ, squared loss) without σ, run on the same x and y."""
    from ..core.modules import MM, ReLU, SquaredLoss
    from ..core.networks import Sequential
    v = trace.value
    net = Sequential([MM(v("W[1]"), v("b[1]")), ReLU(), MM(v("W[2]"), v("b[2]"))],
                     loss=SquaredLoss())
    return net.backprop(v("u[0]"), v("y"))


def _l01() -> list[Question]:
    return [
        Question("Take g(z) = z³ (elementwise), f = Σ and z = [1, 2, 3]. What is ∂J/∂z?",
                 answer=[3.0, 12.0, 27.0], why="(7.53): ∂J/∂z_i = 1 · 3 z_i².",
                 wrong={"[1, 8, 27]": "that is g(z) = z³, the forward value; ∂J/∂z_i is "
                                      "∂f/∂u_i · g′(z_i) = 1 · 3 z_i² (7.53).",
                        "[3, 6, 9]": "g′(z) = 3 z², not 3 z."}),
        Question("J = Σ_ik z_ik² for the 2×2 matrix z = [[1, 2], [3, 4]]. What is ∂J/∂z? "
                 "(type a matrix as [[a, b], [c, d]])",
                 answer=[[2.0, 4.0], [6.0, 8.0]], why="∂J/∂z has the shape of z (7.55).",
                 wrong={"[2, 4, 6, 8]": "the numbers are right, the shape is not: ∂J/∂z has the "
                                        "shape of z, a 2×2 matrix (7.55). Type [[a, b], [c, d]].",
                        "[[1, 4], [9, 16]]": "those are the terms z_ik² of J; ∂J/∂z_ik is the "
                                             "derivative of z_ik², 2 z_ik."}),
        Question("To compute B[g, z](v), what must you know besides v?",
                 answer="g and z", choices=["g and z", "f and u", "f, g and z"],
                 why="(7.56): only g and its input z; nothing about f.",
                 wrong={"f and u": "f is the rest of the network, and v = ∂J/∂u already carries "
                                   "all of it; B[g, z](v) needs g and its input z (7.56).",
                        "f, g and z": "f is not needed: v = ∂J/∂u already carries everything f "
                                      "contributes (7.56)."}),
    ]


def _l02() -> list[Question]:
    return [
        Question("z feeds two modules. The backward pass gives ∂J/∂z via M_1 = [1, 2] and ∂J/∂z "
                 "via M_2 = [0.5, -1]. What is ∂J/∂z?",
                 answer=[1.5, 1.0], why="(7.53): one contribution per user, summed.",
                 wrong={"[1, 2]": "that is one path only: z feeds two modules, and (7.53) adds "
                                  "one contribution per user.",
                        "[0.5, -1]": "that is one path only: z feeds two modules, and (7.53) "
                                     "adds one contribution per user.",
                        "[0.5, -2]": "the contributions add, they do not multiply (7.53).",
                        "[0.75, 0.5]": "the contributions add: a sum, not their mean (7.53)."}),
        Question("bpv.mlp([3, 4, 1], loss='logistic') on one example: how many numbers do u[0], "
                 "u[1], u[2], u[3], u[4] hold together?",
                 answer=13, why="3 + 4 + 4 + 1 + 1: x, MM, σ, MM, and J.",
                 wrong={"12": "J = u[4] is a number too.",
                        "9": "σ is a module of its own and writes its own u[2] (4 numbers) "
                             "beside MM's u[1]."}),
        Question("M_2 = ReLU at u[1] = [0.5, -1.1], with some upstream gradient v = ∂J/∂u[2] = "
                 "[-0.2872, 0.2872]. What is B[ReLU, u[1]](v)?",
                 answer=[-0.2872, 0.0],
                 why="(B1) needs u[1]: ReLU passes v only where u[1] > 0.",
                 wrong={"[-0.2872, 0.2872]": "that is v itself: ReLU's backward is 0 where its "
                                             "input u[1] is negative (7.69).",
                        "[0, 0.2872]": "ReLU passes v where its input is positive: u[1]_1 = 0.5 "
                                       "> 0 keeps v_1, u[1]_2 = −1.1 < 0 gives 0.",
                        "[-0.1436, 0]": "ReLU′(z) is 1 where z > 0, not z itself: v_1 passes "
                                        "unchanged."}),
    ]


def _l03() -> list[Question]:
    z, v = np.array([1.0, 0.0, -1.0]), np.array([2.0, -1.0])
    return [
        Question("MM with W of shape 2×3, input z = [1, 0, -1] and v = [2, -1]. What is ∂J/∂W = "
                 "B[MM, W](v)?", answer=np.outer(v, z),
                 why="(7.65): v zᵀ, 2×3 like W; entry (i, j) is v_i z_j (7.64).",
                 wrong={as_typed(np.outer(z, v)): "that is z vᵀ, 3×2: ∂J/∂W has W's shape, 2×3, "
                                                "and is v zᵀ (7.65), entry (i, j) = v_i z_j."}),
        Question("ReLU with input z = [3, -2, 0.5] and v = [1, 1, -1]. What is B[σ, z](v)?",
                 answer=[1.0, 0.0, -1.0], why="(7.69): σ′(z) ⊙ v, with ReLU′(z) = [1, 0, 1].",
                 wrong={"[1, 1, -1]": "that is v: ReLU′(z_2) = 0 because z_2 = −2 < 0 (7.69).",
                        "[3, 0, -0.5]": "ReLU′(z) is 1 where z > 0: multiply v by 1 there, not "
                                        "by z.",
                        "[1, 0, 1]": "that is ReLU′(z), the mask; B[σ, z](v) multiplies it by v "
                                     "entry by entry (7.69).",
                        "[1, 0, 0]": "z_3 = 0.5 > 0, so v_3 = −1 passes."}),
        Question("W is 2×5. How many multiplications does the backward function Wᵀv take?",
                 answer=10, why="one per entry of W: Wᵀv is 5 sums of 2 products (7.63).",
                 wrong={"25": "Wᵀv uses each of W's 2 × 5 = 10 entries once; it is not n².",
                        "4": "Wᵀv uses each of W's 2 × 5 = 10 entries once; it is not n².",
                        "20": "that counts (B2)'s v zᵀ too; the backward function Wᵀv (B1) alone "
                              "takes 10.",
                        "7": "2 + 5 adds the sizes; Wᵀv multiplies each of W's 2 × 5 entries "
                             "once."}),
    ]


def _l04() -> list[Question]:
    net = mlp([2, 3, 3, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    deep = net.backprop(np.array([1.0, -2.0]), 1.0)
    n = len(deep) - deep.n_forward
    return [
        Question("Algorithm 3's line (7.79) multiplies by W[k+1]ᵀ. Which gradient does it compute?",
                 answer="∂J/∂a[k]", choices=["∂J/∂a[k]", "∂J/∂z[k]", "∂J/∂W[k+1]"],
                 why="W[k+1]ᵀ ∂J/∂z[k+1] is MM's (B1) (7.63) for MM's input a[k].",
                 wrong={"∂J/∂z[k]": "that is what the notes print at (7.79), a slip: with z[k] "
                                    "the pre-activation and a[k] the activation, W[k+1]ᵀ "
                                    "∂J/∂z[k+1] is ∂J/∂a[k]; ∂J/∂z[k] comes next, from σ′ (7.80).",
                        "∂J/∂W[k+1]": "∂J/∂W[k+1] = ∂J/∂z[k+1] a[k]ᵀ (7.77): an outer product, "
                                      "with no W in it."}),
        Question("An MLP with layers of 2, 4, 2 and 1 units: W[2] is 2×4. What is the shape of "
                 "∂J/∂W[2] = ∂J/∂z[2] a[1]ᵀ (7.77)?", answer="2×4",
                 choices=["2×4", "4×2", "2×2", "4×4"],
                 why="∂J/∂z[2] is a 2×1 column and a[1]ᵀ a 1×4 row: 2×4, W[2]'s own shape.",
                 wrong={"4×2": "that is a[1] (∂J/∂z[2])ᵀ, the order of the notes' explanation of "
                                "(7.77), a slip: ∂J/∂W[2] has W[2]'s shape, 2×4.",
                        "2×2": "a[1] has 4 entries (the first hidden layer), so a[1]ᵀ is 1×4 and "
                               "the outer product is 2×4.",
                        "4×4": "∂J/∂z[2] has 2 entries (the second layer's): (2×1)(1×4) = 2×4."}),
        Question("A 4-layer MLP (r = 4) with the logistic loss: how many backward steps does the "
                 "tool's trace have, the seed included?", answer=n,
                 why="the seed, the loss's (B1), then (B2) for W and b and (B1) for each of the "
                     "four MM and (B1) for each of the three σ — except M_1, whose input x "
                     "needs no gradient.",
                 wrong={str(n + 1): "M_1's input is x: no ∂J/∂x is needed, so M_1 applies only "
                                    "(B2).",
                        str(n - 1): "count the seed ∂J/∂J = 1: it is a step of its own.",
                        "8": "one step per module is too few: each MM applies (B2) for W and for "
                             "b, and (B1) for its input."}),
    ]


def _l05() -> list[Question]:
    s2 = 1 / (1 + np.exp(-2.0))
    return [
        Question("W is 3×2 and a batch has B = 5 examples. What is the shape of ∂J/∂W?",
                 answer="3×2", choices=["3×2", "2×3", "3×2×5", "5×3×2"],
                 why="A gradient has the shape of what it differentiates (§7.4.1); v zᵀ (7.65) "
                     "adds up the batch's outer products.",
                 wrong={"2×3": "that is Wᵀ's shape; ∂J/∂W has W's shape.",
                        "3×2×5": "the batch's outer products are added, not stacked: V Zᵀ sums "
                                 "over the examples, so ∂J/∂W keeps W's shape.",
                        "5×3×2": "the batch's outer products are added, not stacked: V Zᵀ sums "
                                 "over the examples, so ∂J/∂W keeps W's shape."}),
        Question("The logistic loss on one example with t = [0, 2], y = [1, 0] and v = 1: what is "
                 "∂J/∂t (7.70)?", answer=[-0.5, s2],
                 why="(σ(t) − y) v with σ(0) = 0.5 and σ(2) ≈ 0.8808.",
                 wrong={as_typed(np.array([0.5, -s2])): "the sign: (7.70) is (σ(t) − y) v, not "
                                                      "(y − σ(t)) v.",
                        as_typed(np.array([-0.5, s2 - 1])): "y_2 = 0, so the second entry is "
                                                          "σ(2) − 0.",
                        "[-1, 2]": "the loss's backward applies σ to t first: σ(t) − y, not "
                                   "t − y."}),
        Question("bpv.check passes your cross-entropy backward on single examples but, on "
                 "batches, your numbers are B times too big. Which slip is it?",
                 answer="forgot 1/B",
                 choices=["forgot 1/B", "missing transpose", "forgot σ′(z)", "forgot to squash"],
                 why="J is the mean over the batch, so (7.71) carries 1/B.",
                 wrong={c: "that slip shows already on single examples, where bpv.check passed; "
                           "a factor of exactly B appears only when there are B examples."
                        for c in ["missing transpose", "forgot σ′(z)", "forgot to squash"]}),
    ]


def _l07() -> list[Question]:
    n = 300
    jac = jacobian_counts("activation", n)
    return [
        Question("A circuit has N = 1,000 atomic operations, each with at most two inputs, and no "
                 "value is used twice. At most how many backward (B1) operations does it need?",
                 answer=2000, why="one (B1) per input of each operation: at most 2 per operation.",
                 wrong={"1000": "an operation with two inputs has two (B1) steps, one for each "
                                "input.",
                        "4000": "one (B1) per input: at most 2 per operation, 2 × 1,000."}),
        Question(f"How many operations does forming the full Jacobian of ReLU on {n} numbers and "
                 f"multiplying it by v take, counted as in the table of §4 (derivatives, "
                 f"products and additions)?", answer=jac["jacobian"],
                 why=f"{n} derivatives on the diagonal (7.67), then {n}² products and {n}·{n - 1} "
                     f"additions for the matrix times v: 2 × {n}² in all.",
                 wrong={str(jac["backward"]): f"that is the backward function σ′(z) ⊙ v (7.69): "
                                              f"{n} derivatives and {n} products; the question "
                                              f"forms the whole {n}×{n} Jacobian first.",
                        str(jac["jacobian_entries"]): f"that is the Jacobian's {n}² entries; "
                                                      f"multiplying it by v takes {n}² products "
                                                      f"and {n}·{n - 1} additions, which with "
                                                      f"the {n} derivatives make 2 × {n}²."}),
        Question("MM[W[1], b[1]] with W[1] 4×3 (so z = u[0] has 3 entries), one example: how many "
                 "numbers must the forward pass keep for its (B2) step ∂J/∂W[1] = v zᵀ?",
                 answer=3, why="(7.65) reads z = u[0], 3 numbers (and the upstream v).",
                 wrong={"12": "v zᵀ does not read W: it needs the module's input z = u[0], 3 "
                              "numbers.",
                        "4": "4 is the size of MM's output, whose gradient is v; from the "
                             "forward pass (7.65) reads only the input z = u[0], 3 numbers.",
                        "16": "v zᵀ reads only z = u[0] (3 numbers) from the forward pass; W "
                              "and b are not read."}),
    ]


def _l08() -> list[Question]:
    return [
        Question("A bias entry is b = 0.3 and its gradient ∂J/∂b = 0.2. With α = 0.5, what is b "
                 "after one iteration of gradient descent?", answer=0.2,
                 why="θ ← θ − α ∂J/∂θ = 0.3 − 0.5 × 0.2 = 0.2.",
                 wrong={"0.4": "gradient descent subtracts the step: θ ← θ − α ∂J/∂θ.",
                        "0.1": "0.1 is the step α ∂J/∂θ itself; subtract it from b = 0.3."}),
        Question("A batch has 4 examples. For one weight, the Stepper shows the four examples' own "
                 "gradients (each with B = 1): 0.4, 0.0, −0.2 and 0.2. Which gradient does "
                 "training use for that weight?",
                 answer=0.1, why="J is the mean over the batch: (0.4 + 0 − 0.2 + 0.2) / 4 = 0.1.",
                 wrong={"0.4": "that is the sum; J is the mean over the batch, so divide by "
                               "B = 4."}),
        Question("200 examples, batch size B = 30: how many iterations make one epoch (every "
                 "example used once)?", answer=7,
                 why="⌈200 / 30⌉ = 7: six batches of 30 and a last one of 20.",
                 wrong={"6": "⌊200 / 30⌋ = 6 leaves out the last, smaller batch of 20.",
                        "6.67": "iterations are whole: six full batches and a last one of 20."}),
    ]


LESSONS = {"00_start_here": _l00, "01_chain_rule": _l01, "02_strategy": _l02,
           "03_modules": _l03, "04_mlp": _l04, "05_exercises": _l05, "07_theorem": _l07,
           "08_training": _l08}


def exit_questions(lesson: str, trace: Trace | None = None) -> Quiz:
    """The exit questions of a lesson ('04_mlp', or '04'); lesson 00 asks about its own trace."""
    names = [n for n in LESSONS if lesson in (n, n[:2])] if isinstance(lesson, str) else []
    if len(names) != 1:
        raise BackpropError(f"exit_questions: no lesson {brief(lesson)}; the lessons with exit "
                            f"questions are {', '.join(LESSONS)}")
    name = names[0]
    if name == "00_start_here":
        if not isinstance(trace, Trace):
            raise BackpropError(f"exit_questions('00_start_here', trace): lesson 00's questions "
                                f"are about its trace; got {brief(trace)}")
        return Quiz(name, _l00(trace))
    if trace is not None:
        raise BackpropError(f"exit_questions({name!r}) takes no trace")
    return Quiz(name, LESSONS[name]())


__all__ = ["Quiz", "exit_questions"]
