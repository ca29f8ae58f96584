"""A probe of the README's guarantees (issue 19): it attacks the documented entry points and counts
what happens, so the issue's figures can be rerun. Figures, not a test.

Run:  python benchmarks/probe_guarantees.py [--seed 19] [--cap 10] [--quick] [--all-raw]
      (~1 minute; prints a Markdown table, then the distinct raw errors)

(a) API calls with hostile arguments: bpv.trace, the modules, bpv.check, bpv.gradcheck, bpv.mlp
    and backprop, StepperModel (go, inspect, rebuild with hostile x, y, sizes, seed, loss and
    weights, parse_weights, check_prediction, the views), Question, parse_array / parse_sizes.
    Each call is ok, a BackpropError, or raw (any other exception; a time-out counts apart).
    Every trace made without an error is checked to hold numbers: each value and gradient a
    float array, a gradient of its node's shape, no NaN or inf. Messages over 1,000 characters
    are counted too.
(b) Mutated files: real traces' to_json and lab files, mutated as JSON (keys dropped, given
    twice, wrong types, huge numbers and shapes, NaN strings, truncation, deep nesting, names
    with control characters) and loaded; a trace that loads is then shown at several steps. A
    load is ok or a BackpropError, and bounded in time (the largest time per file is printed).
(c) Wrong gradients: random small traces (+ − * / @, sin, exp, tanh, σ, ReLU away from its kink,
    powers, sums, indexing, MM, losses) and MLPs from bpv.mlp, every input's and parameter's
    gradient against central differences of J (several step sizes: a disagreement counts only if
    every one disagrees).

Everything is seeded; every trial runs under a time cap (SIGALRM) and the process under a memory
cap (RLIMIT_AS, 2 GB), so the probe is bounded (a trial stuck in one NumPy call ends when that
call returns).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import random
import resource
import signal
import sys
import time
import warnings
from collections import Counter

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402
from backpropviz.core.errors import BackpropError  # noqa: E402
from backpropviz.lab import datasets, labfile  # noqa: E402
from backpropviz.lab.train import Training  # noqa: E402
from backpropviz.teach.quiz import Question  # noqa: E402
from backpropviz.teach.rebuild import check_sizes, parse_array, parse_sizes  # noqa: E402
from backpropviz.teach.stepper import StepperModel  # noqa: E402

LONG_MESSAGE = 1000          # characters: a message longer than this is counted (and listed)


class TimeUp(BaseException):
    """Raised by the alarm: a BaseException, so no `except Exception` in the code swallows it."""


def _alarm(signum, frame):
    raise TimeUp()


class Tally:
    """Outcomes of one part: counts, the slowest trial, and the distinct raw errors."""

    def __init__(self, name):
        self.name, self.counts, self.max_s, self.raw, self.long = name, Counter(), 0.0, {}, {}
        self.seconds, self.slowest, self.time_by = 0.0, "", Counter()

    def run(self, what: str, fn, cap: float):
        """Run fn() under the cap; returns its value (None unless ok)."""
        signal.setitimer(signal.ITIMER_REAL, cap)
        t0 = time.perf_counter()
        value = None
        try:
            value = fn()
            outcome = "ok"
        except BackpropError as e:
            outcome = "BackpropError"
            self.message(what, str(e))
        except TimeUp:
            outcome = "timeout"
            self.raw.setdefault(("timeout", what.split("(")[0]), (what, f"over {cap:g} s"))
        except Exception as e:          # noqa: BLE001 - a raw error: what the probe looks for
            outcome = "raw"
            first = str(e).splitlines()[0][:90] if str(e) else ""
            self.raw.setdefault((type(e).__name__, what.split("(")[0], first[:40]),
                                (what, f"{type(e).__name__}: {first}"))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - t0
        self.time_by[what.split("(")[0]] += took
        if took > self.max_s:
            self.max_s, self.slowest = took, what
        self.counts[outcome] += 1
        return value

    def malformed(self, what: str, tr, finite: bool = True) -> None:
        """A trace made without an error must hold numbers: every value and gradient a float
        array (a learner's backward may return anything), a gradient of its node's shape, and
        (``finite``: a trace made by a run, not read from a file, where NaN and inf are data)
        no NaN or inf."""
        if not isinstance(tr, bpv.Trace):
            return
        self.counts["traces checked"] += 1
        shape = {k.node: np.shape(x) for k, x in zip((s.writes for s in tr.specs), tr.outputs)
                 if not k.grad}
        shape.update((n, np.shape(x)) for n, x in tr.given.items())
        for s, x in zip(tr.specs, tr.outputs):
            if not (isinstance(x, (np.ndarray, np.floating, float))
                    and np.asarray(x).dtype.kind == "f"
                    and (not s.writes.grad or np.shape(x) == shape.get(s.writes.node))):
                kind = "not numbers of its node's shape"
            elif finite and not np.isfinite(x).all():
                kind = "NaN or inf"
            else:
                continue
            self.counts[f"traces holding {kind}"] += 1
            self.raw.setdefault((kind, what),
                                (what, f"a trace holding {s.writes} = {short(x, 30)}, {kind} "
                                       f"(node shape {shape.get(s.writes.node)})"))
            return

    def message(self, what: str, text):
        """A message returned, not raised (a model's ``error``, a check's feedback)."""
        if isinstance(text, str) and len(text) > LONG_MESSAGE:
            self.long.setdefault(what.split("(")[0], (what, f"{len(text)} characters: "
                                                            f"{text[:70]!r}…"))


def short(x, n=48) -> str:
    try:
        s = repr(x)
    except Exception:  # noqa: BLE001 - an int Python will not write out
        s = f"<{type(x).__name__}>"
    return s if len(s) <= n else s[:n] + "…"


# --- (a) hostile API calls ------------------------------------------------------------------------

BIG = "1" + "0" * 400


def hostile_values():
    """Values a learner (or a careless caller) may pass where numbers are expected."""
    return [None, True, 0, -1, 1.5, math.nan, math.inf, -math.inf, 10 ** 400, -10 ** 400, 2 ** 63,
            10 ** 5000, "3", "", "abc", BIG, [], [[]], [1, "a"], [1, [2, 3]], 1j, [1j, 2],
            np.datetime64("2020-01-01"), np.array(["2020-01-01", "2020-01-02"], "M8[D]"),
            datetime.date(2020, 1, 1), [datetime.timedelta(1), 2.0],
            np.ma.masked_array([1.0, 2.0], [0, 1]), object(), {"a": 1}, b"1", np.zeros(0),
            np.zeros((0, 3)), np.ones((1,) * 33), np.array(math.nan), np.array([1.0, math.nan]),
            np.ones((2, 2, 2)), np.array([1, 2], dtype=object), np.array(5.0), np.float32(2),
            1e308, [1e308, 1e308], -1e-320, (1, 2), range(3), np.array([True, False]),
            np.array([1, 2], dtype=np.int64), np.arange(6.0).reshape(2, 3), [2 ** 70, 1]]


def hostile_texts(rng: random.Random, n_random: int):
    """Text typed into a field: well formed, too large, broken, deep, odd characters."""
    fixed = ["", " ", "1", "1, 2", "[1, 2]", "[[1, 2], [3, 4]]", "0.5", "[0.5]", BIG, "-" + BIG,
             f"[{BIG}, 1]", "1e400", "-1e400", "1" * 5000, "nan", "inf", "None", "[None, 1]",
             "[" * 3000, "(" * 3000, "[" * 50 + "1" + "]" * 50, ",".join(["1"] * 20000), "\x00",
             "\u202e1", "\ud800", "1j", "'a'", "b'1'", "{1: 2}", "{1, 2}", "[1, 2", "True",
             "__import__('os').getcwd()", "1; 2", "0x10", "1_0", "2, -3, 1", "2-3-1", "2 3 1",
             "64, 64, 64", "2," * 50, "1e3, 2", "2.0, 3", "...", "[1]*3", "2**2000", "-" * 5000,
             "[[1, 2], [3]]", "((1, 2))", "1.0e-400", "  7  ", "W[1] = 1"]
    chars = "0123456789.,-+e[]() jnaNIf_x'\"=W\n"
    return fixed + ["".join(rng.choice(chars) for _ in range(rng.randint(0, 40)))
                    for _ in range(n_random)]


def traced_functions():
    """f for bpv.trace(f, x): ordinary ones and what a learner should not write."""
    W = np.ones((2, 2))
    return {
        "sum": lambda z: z.sum(),
        "z*z": lambda z: (z * z).sum(),
        "exp": lambda z: z.exp().sum(),
        "z/z": lambda z: (z / z).sum(),
        "z@z": lambda z: (z @ z).sum(),
        "z[0]": lambda z: z[0].sum(),
        "z[::-1]": lambda z: z[::-1].sum(),
        "z[[0,0]]": lambda z: z[[0, 0]].sum(),
        "z[None]": lambda z: z[None].sum(),
        "z[...]": lambda z: z[...].sum(),
        "z[1.5]": lambda z: z[1.5].sum(),
        "z['a']": lambda z: z["a"].sum(),
        "z[2**63]": lambda z: z[2 ** 63].sum(),
        "z[bool]": lambda z: z[[True, False]].sum(),
        "MM": lambda z: bpv.MM(W)(z).sum(),
        "returns z": lambda z: z,
        "returns None": lambda z: None,
        "returns 1.0": lambda z: 1.0,
        "returns a tuple": lambda z: (z.sum(), z.sum()),
        "np.sum": lambda z: np.sum(z),
        "np.maximum": lambda z: np.maximum(z, 0).sum(),
        "abs": lambda z: abs(z).sum(),
        "2**z": lambda z: (2 ** z).sum(),
        "big**z": lambda z: ((10 ** 5000) ** z).sum(),
        "z.T": lambda z: z.T.sum(),
        "z**big": lambda z: (z ** 10 ** 400).sum(),
        "z**huge": lambda z: (z ** 10 ** 5000).sum(),
        "z**nan": lambda z: (z ** math.nan).sum(),
        "z+big": lambda z: (z + 10 ** 400).sum(),
        "z*date": lambda z: (z * np.datetime64("2020-01-01")).sum(),
        "z+'a'": lambda z: (z + "a").sum(),
        "z+None": lambda z: (z + None).sum(),
        "z@W3": lambda z: (z @ np.ones((3, 3))).sum(),
        "loss(z,z)": lambda z: bpv.SquaredLoss()(z, z),
        "loss(z,2z)": lambda z: z.sum() + bpv.SquaredLoss()(z, z * 2.0),
        "logistic": lambda z: bpv.LogisticLoss()(z[0], 1.0),
        "xent": lambda z: bpv.CrossEntropyLoss()(z, np.eye(len(z))[0]),
        "log": lambda z: z.log().sum(),
        "many users": lambda z: sum((z * float(i) for i in range(300)), z * 0.0).sum(),
    }


def bad_modules():
    """A learner's modules that misbehave in every way the checks should catch."""
    out = {}

    def make(name, forward, backward=None, label=None):
        body = {"forward": forward}
        if backward is not None:
            body["backward"] = backward
        if label is not None:
            body["label"] = label
        out[name] = type(name, (bpv.Module,), body)

    make("Fine", lambda self, z: 2 * z, lambda self, z, v: 2 * v)
    make("FwdNone", lambda self, z: None)
    make("FwdText", lambda self, z: "z")
    make("FwdTuple", lambda self, z: (z, z))
    make("FwdBig", lambda self, z: z * 10 ** 400)
    make("FwdNaN", lambda self, z: z * math.nan)
    make("FwdRaises", lambda self, z: 1 / 0)
    make("FwdRecursion", lambda self, z: self.forward(z))
    make("FwdDate", lambda self, z: np.datetime64("2020-01-01"))
    make("FwdShape", lambda self, z: np.ones((2, 2, 2)))
    make("BwdNone", lambda self, z: 2 * z, lambda self, z, v: None)
    make("BwdBig", lambda self, z: 2 * z, lambda self, z, v: 10 ** 400)
    make("BwdText", lambda self, z: 2 * z, lambda self, z, v: "v")
    make("BwdShape", lambda self, z: 2 * z, lambda self, z, v: np.ones(7))
    make("BwdInPlace", lambda self, z: 2 * z, lambda self, z, v: z.__setitem__(0, 9) or v)
    make("BwdRaises", lambda self, z: 2 * z, lambda self, z, v: [][1])
    make("LabelEsc", lambda self, z: 2 * z, lambda self, z, v: 2 * v, label="a\x1b[31m\n")
    make("LabelInt", lambda self, z: 2 * z, lambda self, z, v: 2 * v, label=5)
    make("LabelNone", lambda self, z: 2 * z, lambda self, z, v: 2 * v, label=None)
    make("LabelLong", lambda self, z: 2 * z, lambda self, z, v: 2 * v, label="M" * 10000)
    return out


def part_a(rng: random.Random, cap: float, quick: bool) -> Tally:
    T = Tally("(a) API calls")
    H = hostile_values()
    texts = hostile_texts(rng, 60 if quick else 300)
    x2 = np.array([0.5, -1.2])
    net = bpv.mlp([2, 3, 1], seed=0)

    # bpv.trace: every f on good and hostile inputs, hostile names
    for fname, f in traced_functions().items():
        for x in [x2, np.array([[0.3, -0.7], [1.1, 0.2]]), np.array(0.7)] + (H if not quick else
                                                                              H[::3]):
            T.malformed(f"trace({fname})", T.run(f"trace({fname}, {short(x)})",
                                                  lambda: bpv.trace(f, x), cap))
    for names in [None, [None], ["a\x00"], ["x" * 300], ["a", "a"], "u[0]", [1], [""], ["u[1]"],
                  ["y"], ["W[1]"], ["x[1]", "x[1]"]]:
        T.run(f"trace(names={short(names)})", lambda: bpv.trace(lambda a: a.sum(), x2,
                                                                 names=names), cap)
        T.run(f"trace(2 inputs, names={short(names)})",
              lambda: bpv.trace(lambda a, b: (a * b).sum(), x2, x2, names=names), cap)
    T.run("trace(no input)", lambda: bpv.trace(lambda: 1.0), cap)
    T.run("trace(not callable)", lambda: bpv.trace(5, x2), cap)

    # modules: made with hostile constants and parameters, then applied
    for h in H:
        T.run(f"MM({short(h)})", lambda: bpv.MM(h), cap)
        T.run(f"MM(W, b={short(h)})", lambda: bpv.MM(np.ones((2, 2)), h), cap)
        T.run(f"Power({short(h)})", lambda: bpv.trace(lambda z: bpv.Power(h)(z).sum(), x2), cap)
        T.run(f"MM(name={short(h)})", lambda: bpv.MM(np.ones((2, 2)), name=h), cap)
    # indexing (the Index module is made by z[…] only)
    for h in H + [(0,), (5,), (-3,), slice(None), slice(0, 10 ** 400), slice(None, None, 0),
                  [0, 0, 1], [[0]], (0, 0), (0, slice(None)), 10 ** 30, [-3], Ellipsis,
                  (Ellipsis, None), np.array([[True, False], [False, True]]), [2 ** 63]]:
        for x in (x2, np.arange(6.0).reshape(2, 3), np.ones((2, 2, 2))):
            traced = T.run(f"trace(z[{short(h)}], {x.shape})",
                           lambda: bpv.trace(lambda z: z[h].sum(), x), cap)
            T.malformed(f"trace(z[{short(h)}])", traced)
    for name, cls in bad_modules().items():
        T.malformed(f"trace(module {name})", T.run(
            f"trace(module {name})", lambda: bpv.trace(lambda z: cls()(z).sum(), x2), cap))
        T.malformed(f"trace(z * 1, module {name})", T.run(
            f"trace(z * 1, module {name})", lambda: bpv.trace(lambda z: cls()(z * 1.0).sum(), x2),
            cap))
        T.malformed(f"Sequential(module {name}).backprop", T.run(
            f"Sequential(module {name}).backprop",
            lambda: bpv.Sequential([cls(), bpv.MM(np.ones((1, 2)))],
                                   bpv.SquaredLoss()).backprop(x2, 1.0, input_grad=True), cap))
        T.run(f"check({name})", lambda: str(bpv.check(cls, network=False)), cap)
        T.run(f"render(module {name})",
              lambda: bpv.render(bpv.trace(lambda z: cls()(z).sum(), x2)).svg, cap)

    # bpv.check: built-in modules and hostile options
    for target in [bpv.Sigmoid, bpv.ReLU(), bpv.MM, bpv.SquaredLoss, bpv.Add, bpv.Sum, int, None,
                   "Sigmoid", lambda z: z, bpv.MM(np.ones((2, 3))), bpv.Power(2), bpv.Module]:
        T.run(f"check({short(target)})", lambda: str(bpv.check(target, network=False)), cap)
    for opt in ("seed", "cases", "batch", "rtol", "atol", "eps", "shape"):
        for h in [None, -1, 0, 1.5, math.nan, math.inf, 10 ** 400, 10 ** 5000, "3", True, (2, 2),
                  (10 ** 9,), 10 ** 6]:
            T.run(f"check(Sigmoid, {opt}={short(h)})",
                  lambda: str(bpv.check(bpv.Sigmoid, network=False, **{opt: h})), cap)

    # bpv.gradcheck and networks
    for h in H:
        T.run(f"gradcheck(f, {short(h)})", lambda: str(bpv.gradcheck(lambda z: (z * z).sum(), h)),
              cap)
        T.run(f"gradcheck(net, x={short(h)})", lambda: str(bpv.gradcheck(net, h, 1.0)), cap)
        T.run(f"gradcheck(net, y={short(h)})", lambda: str(bpv.gradcheck(net, x2, h)), cap)
        T.run(f"backprop(x={short(h)})", lambda: net.backprop(h, 1.0), cap)
        T.run(f"backprop(y={short(h)})", lambda: net.backprop(x2, h), cap)
        T.run(f"mlp({short(h)})", lambda: bpv.mlp(h), cap)
        T.run(f"mlp(sizes, seed={short(h)})", lambda: bpv.mlp([2, 3, 1], seed=h), cap)
        T.run(f"mlp(sizes, loss={short(h)})", lambda: bpv.mlp([2, 3, 1], loss=h), cap)
        T.run(f"mlp(sizes, activation={short(h)})", lambda: bpv.mlp([2, 3, 1], activation=h),
              cap)
    for opt in ("eps", "rtol", "atol"):
        for h in [None, 0, -1, math.nan, math.inf, "1e-6", 10 ** 400, 1e-300]:
            T.run(f"gradcheck(f, {opt}={short(h)})",
                  lambda: str(bpv.gradcheck(lambda z: (z * z).sum(), x2, **{opt: h})), cap)
    T.run("gradcheck(net)", lambda: bpv.gradcheck(net), cap)
    T.run("gradcheck(5)", lambda: bpv.gradcheck(5, x2), cap)

    # the Stepper's model
    def model():
        return StepperModel(bpv.mlp([2, 3, 1], seed=0), x2, 1.0)
    m = model()
    for h in H + [m.n, m.n + 1, -5, 3.0, np.int64(4), np.float64(2.5), " 4 "]:
        T.run(f"go({short(h)})", lambda: m.go(h), cap)
        T.run(f"inspect({short(h)})", lambda: m.inspect(h), cap)
        T.run(f"set_granularity({short(h)})", lambda: m.set_granularity(h), cap)
        T.run(f"set_expanded({short(h)})", lambda: m.set_expanded(h), cap)
        T.run(f"reveal({short(h)})", lambda: m.reveal(h), cap)
        T.run(f"needs_prediction({short(h)})", lambda: m.needs_prediction(h), cap)
        T.run(f"check_prediction('1', k={short(h)})", lambda: m.check_prediction("1", h), cap)
        T.run(f"check_prediction({short(h)})", lambda: m.check_prediction(h), cap)
        T.run(f"StepperModel({short(h)})", lambda: StepperModel(h), cap)
        T.run(f"StepperModel(net, x={short(h)})",
              lambda: StepperModel(bpv.mlp([2, 3, 1], seed=0), h, 1.0), cap)
        for field in ("x", "y", "sizes", "seed", "loss", "activation", "output_activation",
                      "weights", "bogus"):
            mm = model()
            T.run(f"rebuild({field}={short(h)})", lambda: mm.rebuild(**{field: h}), cap)
            T.message(f"rebuild({field}=…).error", mm.error)
            T.run(f"after rebuild({field}=…): view", lambda: (mm.view(), mm.counter()), cap)
    for t in texts:
        mm = model()
        for what, fn in [("parse_array", lambda: parse_array(t, "x")),
                         ("parse_sizes", lambda: parse_sizes(t, (2, 3, 1))),
                         ("parse_weights", lambda: mm.rebuilder.parse_weights(t)),
                         ("parse_weights(W[1]=)", lambda: mm.rebuilder.parse_weights(
                             "W[1] = " + t)),
                         ("parse_weights(b[1]=)", lambda: mm.rebuilder.parse_weights(
                             "b[1] = " + t)),
                         ("check_prediction", lambda: m.check_prediction(t, m.n_forward + 2)),
                         ("rebuild(x=parse_array)", lambda: mm.rebuild(x=parse_array(t, "x"))),
                         ("rebuild(sizes=parse_sizes)",
                          lambda: mm.rebuild(sizes=parse_sizes(t, (2, 3, 1)))),
                         ("go(text)", lambda: m.go(t))]:
            value = T.run(f"{what}({short(t)})", fn, cap)
            if isinstance(value, tuple):
                T.message(f"{what}(…) message", value[-1])
    for sizes in [(2, 3, 1), (2, 64, 64, 64, 64, 64, 64, 64, 64), (2,) * 10, (2, 20000, 1),
                  (2, 0, 1), (2, 10 ** 400, 1), (-10 ** 5000, 1), (2.0, 3), ("2", 3), (True, 2)]:
        T.run(f"check_sizes({short(sizes)})", lambda: check_sizes(sizes), cap)

    # questions
    for h in H:
        T.run(f"Question(answer={short(h)})", lambda: repr(Question("q", h)), cap)
        T.run(f"Question(prompt={short(h)})", lambda: repr(Question(h, 1.0)), cap)
        T.run(f"Question(choices={short(h)})", lambda: repr(Question("q", "a", choices=h)), cap)
        T.run(f"Question(choice answer={short(h)})",
              lambda: repr(Question("q", h, choices=["a", "b"])), cap)
    q_num, q_mat = Question("q", [0.5, -1.0]), Question("q", np.eye(2))
    q_choice = Question("q", "4×5", choices=["4×5", "5×4", "20"])
    for t in texts + H:
        for name, q in (("number", q_num), ("matrix", q_mat), ("choice", q_choice)):
            value = T.run(f"Question[{name}].check({short(t)})", lambda: q.check(t), cap)
            if isinstance(value, tuple):
                T.message(f"Question[{name}].check message", value[1])
    return T


# --- (b) mutated trace files and lab files ------------------------------------------------------

def base_traces():
    x = np.array([0.5, -1.2, 2.0])
    net = bpv.mlp([3, 4, 2, 1], seed=1)
    t1 = net.backprop(x, 1.0)
    t2 = bpv.trace(lambda z: (z.sin() * z).sum() + z[0] + (z[[1, 1]] * 2.0).sum(), x)
    t3 = bpv.circuit(bpv.mlp([2, 2, 1], seed=0).backprop(np.array([0.3, -0.4]), 1.0))
    t4 = bpv.trace(lambda z: (z * z).exp().sum(), np.arange(8.0).reshape(2, 2, 2) / 10)
    t5 = bpv.mlp([2, 3, 1], loss="squared", seed=2).backprop(np.ones((2, 4)), np.zeros((1, 4)))
    t6 = bpv.trace(lambda a, b: bpv.SquaredLoss()((a @ b).sigmoid(), np.array([0.2, 0.7])),
                   np.ones((2, 3)) / 3, np.arange(3.0) / 5)
    return [t1, t2, t3, t4, t5, t6]


def base_labs():
    d = datasets.make("two_moons", seed=0)
    tr = Training(bpv.mlp([2, 8, 1], loss=d.loss, seed=0), d.X, d.Y, lr=0.5, batch=40, seed=0)
    tr.step(25)
    with_recipe = labfile.dumps(tr, d.recipe, {"iteration": 20, "example": 1, "step": 2})
    X = np.array([[0.1, 0.4, -0.3, 0.9], [1.0, -0.2, 0.5, 0.0]])
    small = Training(bpv.mlp([2, 3, 1], loss="squared", seed=1), X, np.array([[0.0, 1.0, 0.5,
                                                                                0.2]]),
                     lr=0.1, batch=2, seed=3)
    small.step(7)
    return [with_recipe, labfile.dumps(small)]


def _paths(x, path=()):
    """Every place in a JSON document: (path, value)."""
    yield path, x
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, path + (i,))


def _dump(x, dup=None) -> str:
    """JSON text, with the first key of the object at path ``dup`` written twice."""
    def go(y, path):
        if isinstance(y, dict):
            items = [json.dumps(str(k)) + ":" + go(v, path + (k,)) for k, v in y.items()]
            if path == dup and items:
                items.insert(1, items[0])
            return "{" + ",".join(items) + "}"
        if isinstance(y, list):
            return "[" + ",".join(go(v, path + (i,)) for i, v in enumerate(y)) + "]"
        return json.dumps(y)
    return go(x, ())


NASTY = [None, True, False, "x", "", "\x1b[31m", "NaN", "Infinity", "-Infinity", "nan", "1", 0, 1,
         -1, 1.5, 1e308, -1e308, 10 ** 400, 2 ** 63, 10 ** 18, 5_000_000, [], {}, [None],
         [5_000_000, 0], [10 ** 9], [0] * 40, [1] * 33, [[[[]]]], {"shape": [], "data": []},
         ["u[0]", False, None, 0], "M" * 300, "u[0]", "M_1", "F", "B1", "Index", "MM"]


def mutate(doc, rng: random.Random) -> str:
    """One random mutation of a JSON document, as text."""
    kind = rng.choice(["drop", "drop", "replace", "replace", "replace", "duplicate", "truncate",
                       "nest", "shape", "data", "swap", "text"])
    places = list(_paths(doc))
    if kind == "truncate":
        text = json.dumps(doc)
        return text[:rng.randint(0, len(text) - 1)]
    if kind == "nest":
        depth = rng.choice([100, 1000, 100_000])
        return json.dumps(doc)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    if kind == "text":
        text = json.dumps(doc)
        i = rng.randint(0, len(text) - 1)
        return text[:i] + rng.choice(["NaN", "Infinity", "\x00", ",", "}", "]", '"', "1e999",
                                      "-", "9" * 5000]) + text[i + 1:]
    doc = json.loads(json.dumps(doc))
    places = list(_paths(doc))
    path, value = rng.choice(places[1:])
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if kind == "drop":
        del parent[path[-1]]
    elif kind == "replace":
        parent[path[-1]] = rng.choice(NASTY)
    elif kind == "duplicate":
        dicts = [p for p, v in places if isinstance(v, dict) and v]
        return _dump(doc, rng.choice(dicts))
    elif kind == "shape":
        shapes = [p for p, v in places if p and p[-1] == "shape"]
        if shapes:
            sp = rng.choice(shapes)
            target = doc
            for p in sp[:-1]:
                target = target[p]
            target["shape"] = rng.choice([[5_000_000, 0], [10 ** 9], [0], [], [1] * 33,
                                          [2 ** 40, 2 ** 40], [-1], [3, 0, 10 ** 6]])
    elif kind == "data":
        datas = [p for p, v in places if p and p[-1] == "data" and isinstance(v, list) and v]
        if datas:
            dp = rng.choice(datas)
            target = doc
            for p in dp:
                target = target[p]
            target[rng.randrange(len(target))] = rng.choice(["NaN", "Infinity", "1", None, 1e308,
                                                             10 ** 400, [1.0], True])
    elif kind == "swap" and isinstance(parent, list) and len(parent) > 1:
        i = rng.randrange(len(parent))
        parent[path[-1]], parent[i] = parent[i], parent[path[-1]]
    return json.dumps(doc)


def use_trace(tr) -> None:
    """What a learner does with a loaded trace: show it, step through it, ask for gradients."""
    repr(tr)
    n = len(tr)
    for k in sorted({0, 1, tr.n_forward, tr.n_forward + 1, n // 2, n}):
        if 0 <= k <= n:
            bpv.step_text(tr, k)
            bpv.present(tr, k)
    for node in tr.nodes[:40]:
        try:
            tr.grad(node.name)
        except BackpropError:
            pass
    StepperModel(tr).go(n)


def part_b(rng: random.Random, cap: float, quick: bool) -> Tally:
    T = Tally("(b) mutated files")
    per = 12 if quick else 45
    # a 5.6 MB file too (the scalar circuit of a 8-48-48-1 MLP): validation is linear in size
    large = bpv.circuit(bpv.mlp([8, 48, 48, 1], seed=0).backprop(np.ones(8), 1.0))
    for tr, n in [(t, per) for t in base_traces()] + [(large, 2 if quick else 6)]:
        doc = json.loads(tr.to_json())
        T.run("trace file: the original", lambda: use_trace(bpv.Trace.from_json(tr.to_json())),
              cap)
        for _ in range(n):
            text = mutate(doc, rng)
            loaded = T.run(f"Trace.from_json(mutated, {len(text) / 1e6:.1f} MB)",
                           lambda: bpv.Trace.from_json(text), cap)
            if loaded is not None:
                T.malformed("Trace.from_json", loaded, finite=False)
                T.run("a loaded trace, used", lambda: use_trace(loaded), cap)
    for text in base_labs():
        doc = json.loads(text)
        T.run("lab file: the original", lambda: labfile.loads(text), cap * 6)
        for _ in range(per):
            bad = mutate(doc, rng)
            # a replay the file asks for may take up to a minute by design (5e10 operations)
            got = T.run("labfile.loads(mutated)", lambda: labfile.loads(bad), cap * 6)
            if got is not None:
                T.run("a loaded lab, one more iteration", lambda: got[0].step(1), cap)
    return T


# --- (c) gradients against central differences ---------------------------------------------------

def random_function(rng: np.random.Generator, shape):
    """A random composition of traced operations, kept smooth (denominators ≥ 1, exp of bounded
    values, ReLU checked away from 0 by the caller), returning a single number. The composition
    is drawn from its own seed on every call, so J is the same function each time."""
    def unary(r, a):
        pick = int(r.integers(0, 11))
        if pick == 0:
            return a.sin()
        if pick == 1:
            return a.sin().exp()
        if pick == 2:
            return a.tanh()
        if pick == 3:
            return a.sigmoid()
        if pick == 4:
            return a.relu()
        if pick == 5:
            return a ** 2
        if pick == 6:
            return (a * a + 1.0).log()
        if pick == 7:
            return a.cos() * 0.5
        if pick == 8 and a.shape and a.shape[0] > 1:
            return a[1:] if len(a.shape) == 1 else a[0]
        if pick == 9 and a.shape:
            return a[[0, 0]] if len(a.shape) == 1 else a[:, 0]
        return a * float(r.normal())

    def binary(r, a, b):
        pick = int(r.integers(0, 5))
        if pick == 0:
            return a + b
        if pick == 1:
            return a - b
        if pick == 2:
            return a * b
        if pick == 3:
            return a / (b * b + 1.0)
        if len(a.shape) == 1 and a.shape == b.shape:
            return a @ b
        return a * b

    seed, loss = int(rng.integers(0, 2 ** 31)), int(rng.integers(0, 3))
    W = rng.normal(size=(3, shape[0])) if len(shape) == 1 else None

    def f(z):
        r = np.random.default_rng(seed)
        vals = [z]
        for _ in range(int(r.integers(2, 7))):
            a = vals[int(r.integers(0, len(vals)))]
            if r.integers(0, 3) == 0 or len(vals) < 2:
                vals.append(unary(r, a))
            else:
                b = vals[int(r.integers(0, len(vals)))]
                vals.append(binary(r, a, b) if a.shape == b.shape else binary(r, a, a))
        out = vals[-1]
        if loss == 1 and W is not None and out.shape == shape:
            return bpv.SquaredLoss()(bpv.MM(W)(out), np.ones(3) * 0.3)
        if loss == 2 and len(out.shape) == 1 and out.shape[0] > 1:
            return bpv.CrossEntropyLoss()(out, np.eye(out.shape[0])[0])
        return out.sum() + (z * z).sum() * 0.1
    return f


def near_a_kink(tr) -> bool:
    """A ReLU whose input has an entry near 0: central differences straddle the kink."""
    for s in tr.specs:
        if s.kind == "F" and s.module is not None:
            m = tr.module(s.module)
            if m.op == "ReLU":
                if np.min(np.abs(tr.value(m.inputs[0]))) < 1e-3:
                    return True
    return False


def disagrees(analytic, J, x, names) -> list[str]:
    """The inputs whose gradient disagrees with central differences at every step size."""
    bad = []
    for i, name in enumerate(names):
        ok = False
        for eps in (1e-6, 1e-5, 1e-4, 1e-7):
            def Ji(xi, i=i):
                args = list(x)
                args[i] = xi
                return J(*args)
            num = bpv.numerical_grad(Ji, x[i], eps)
            scale = max(1.0, float(np.max(np.abs(num))))
            if np.allclose(analytic[i], num, rtol=1e-4, atol=1e-6 * scale):
                ok = True
                break
        if not ok:
            bad.append(name)
    return bad


def part_c(rng: np.random.Generator, cap: float, quick: bool) -> tuple[Tally, dict]:
    T = Tally("(c) gradients")
    stats = Counter()
    wrong = []
    n_traced, n_mlp = (30, 10) if quick else (100, 30)

    def one_traced(i):
        shape = [(3,), (2, 3), (4,), ()][i % 4]
        f = random_function(rng, shape)
        x = rng.normal(size=shape)
        tr = bpv.trace(f, x, names=["z"])
        if near_a_kink(tr):
            stats["skipped (ReLU near 0)"] += 1
            return
        g = [tr.grad("z")]
        bad = disagrees(g, lambda z: bpv.trace(f, z, names=["z"]).loss, [x], ["z"])
        rep = bpv.gradcheck(f, x)          # also the parameters of an MM inside f
        stats["traces"] += 1
        stats["gradients compared"] += 1 + len(rep.rows)
        if bad:
            wrong.append(f"trace {i}: {bad} disagree with central differences")
        if not rep.ok:
            stats["gradcheck reports FAILED"] += 1
            wrong.append(f"trace {i}: gradcheck FAILED\n{rep}")

    def one_mlp(i):
        act = ["relu", "sigmoid", "tanh"][i % 3]
        loss = ["logistic", "squared", "cross_entropy"][i % 3]
        sizes = [int(s) for s in rng.integers(1, 5, size=int(rng.integers(2, 5)))]
        sizes[-1] = max(sizes[-1], 2) if loss == "cross_entropy" else sizes[-1]
        if loss == "logistic":
            sizes[-1] = 1
        net = bpv.mlp(sizes, activation=act, loss=loss, seed=int(rng.integers(0, 1000)))
        batch = int(rng.integers(1, 4))
        x = rng.normal(size=(sizes[0], batch)) if batch > 1 else rng.normal(size=sizes[0])
        if loss == "cross_entropy":
            y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], size=batch)]
            y = y[:, 0] if batch == 1 else y
        elif loss == "logistic":
            y = rng.integers(0, 2, size=(1, batch)).astype(float)
            y = y.reshape(()) if batch == 1 else y
        else:
            y = rng.normal(size=(sizes[-1], batch)) if batch > 1 else rng.normal(size=sizes[-1])
        tr = net.backprop(x, y, input_grad=True)
        if near_a_kink(tr):
            stats["skipped (ReLU near 0)"] += 1
            return
        names = list(net.params) + ["u[0]"]
        given = [net.params[p] for p in net.params] + [x]

        def J(*vals):
            return net.with_params(dict(zip(net.params, vals[:-1]))).backprop(vals[-1], y).loss
        analytic = [tr.grad(n) for n in names]
        bad = disagrees(analytic, J, given, names)
        stats["MLPs"] += 1
        stats["gradients compared"] += len(names)
        if bad:
            wrong.append(f"mlp {i} {sizes} {act} {loss}: {bad}")
    for i in range(n_traced):
        T.run(f"random trace {i}", lambda: one_traced(i), cap)
    for i in range(n_mlp):
        T.run(f"random MLP {i}", lambda: one_mlp(i), cap)
    stats["wrong gradients"] = len(wrong)
    return T, {"stats": stats, "wrong": wrong}


# --- the table ------------------------------------------------------------------------------------

BAD_SHAPE = "traces holding not numbers of its node's shape"


def table(parts, extra) -> str:
    rows = ["| part | trials | ok | BackpropError | raw | time-outs | max s | long messages | "
            "traces made: holding a non-number / NaN or inf | s in all |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for T in parts:
        c = T.counts
        trials = sum(c[k] for k in ("ok", "BackpropError", "raw", "timeout"))
        rows.append(f"| {T.name} | {trials} | {c['ok']} | {c['BackpropError']} | "
                    f"{c['raw']} | {c['timeout']} | {T.max_s:.2f} | {len(T.long)} | "
                    f"{c['traces checked']}: {c[BAD_SHAPE]} / {c['traces holding NaN or inf']} "
                    f"| {T.seconds:.0f} |")
    lines = ["\n".join(rows), ""]
    for T in parts:
        if T.raw:
            lines.append(f"{T.name}: {len(T.raw)} distinct raw errors, time-outs or traces holding "
                         f"a non-number (first 5; --all-raw for all):")
            for what, msg in list(T.raw.values())[:5]:
                lines.append(f"  {what}  →  {msg}")
        if T.long:
            lines.append(f"{T.name}: messages over {LONG_MESSAGE} characters (first 5):")
            for what, n in list(T.long.values())[:5]:
                lines.append(f"  {what}: {n}")
        lines.append(f"{T.name}: the slowest trial, {T.max_s:.2f} s: {T.slowest}")
    st = extra["stats"]
    lines.append(f"(c) {st['traces']} random traces and {st['MLPs']} MLPs, "
                 f"{st['gradients compared']} gradients compared, "
                 f"{st['skipped (ReLU near 0)']} skipped (a ReLU input near 0): "
                 f"wrong gradients {st['wrong gradients']}")
    for w in extra["wrong"][:5]:
        lines.append(f"  {w}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--cap", type=float, default=10.0, help="seconds per trial (lab loads: 6×)")
    ap.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    ap.add_argument("--memory-gb", type=float, default=2.0,
                    help="address space of the process (a larger allocation: MemoryError)")
    ap.add_argument("--all-raw", action="store_true", help="list every distinct raw error")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    signal.signal(signal.SIGALRM, _alarm)
    limit = int(args.memory_gb * 2 ** 30)      # unbounded memory shows as a MemoryError, not swap
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    t0 = time.perf_counter()
    a = part_a(random.Random(args.seed), args.cap, args.quick)
    a.seconds = time.perf_counter() - t0
    b = part_b(random.Random(args.seed + 1), args.cap, args.quick)
    b.seconds = time.perf_counter() - t0 - a.seconds
    c, extra = part_c(np.random.default_rng(args.seed + 2), args.cap, args.quick)
    c.seconds = time.perf_counter() - t0 - a.seconds - b.seconds
    print(table([a, b, c], extra))
    if args.all_raw:
        for T in (a, b, c):
            print(T.name, "time by call:", ", ".join(f"{k} {v:.1f} s"
                                                    for k, v in T.time_by.most_common(8)))
            for what, msg in T.raw.values():
                print(f"{T.name}: {what}  →  {msg}")
    print(f"\nseed {args.seed}, cap {args.cap:g} s per trial, {time.perf_counter() - t0:.0f} s in "
          f"all, numpy {np.__version__}, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
