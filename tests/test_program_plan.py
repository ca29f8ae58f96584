"""The compiled plan (core/program.py): ``Program.values``, training's fast path, and
``Program.run``, the checked run that records the Trace, interpret the same plan. For every
module class with rules they give the same values and gradients bit for bit, and every step of
the plan computes what its spec (the rule the learner reads) says, within 1e-12."""
import copy
import dataclasses
from functools import reduce

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core import modules as M
from backpropviz.core.keys import Key
from backpropviz.core.program import PlanStep, sum_over_users
from backpropviz.core.tracing import record

RNG = np.random.default_rng(20261205)


def traced(f, *inputs):
    """(program, given values) of J = f(inputs), recorded as bpv.trace records it; every input
    gets its gradient."""
    rec, _ = record(f, inputs)
    prog = rec.program()
    return prog, {n: rec.values[n] for n in prog.given_names}


def network(activation="relu", loss="logistic", batch=0, input_grad=False, out_act=None):
    """(program, given values) of one pass through a 3-4-3-2 MLP, as net.backprop runs it."""
    net = bpv.mlp([3, 4, 3, 2], activation=activation, loss=loss, seed=3,
                  output_activation=out_act)
    x = RNG.normal(size=(3, batch) if batch else 3)
    shape = (2, batch) if batch else (2,)
    y = {"squared": RNG.normal(size=shape),
         "logistic": (RNG.random(shape) < 0.5).astype(float),
         "cross_entropy": RNG.integers(0, 2, size=batch) if batch else 1}[loss]
    return net.program(input_grad), net.backprop(x, y, input_grad=input_grad).given


def without_loss():
    """A chain whose last MM gives J itself, of shape (1,)."""
    net = bpv.Sequential([MM2, bpv.Tanh(), bpv.MM(RNG.normal(size=(1, 3)), [0.1])])
    return net.program(True), net.backprop(RNG.normal(size=3), input_grad=True).given


def _five_users(x):
    h = x.tanh()
    return (h * h + h * h.sin() + h).sum()


def _positive(*shape):
    return np.abs(RNG.normal(size=shape)) + 0.5


MM2 = bpv.MM(RNG.normal(size=(3, 3)), RNG.normal(size=3))

CASES = {
    # MM, the activations and the losses, single examples and batches, with and without ∂J/∂x
    **{f"mlp-{act}-{loss}-{'batch' if b else 'one'}{'-x' if ig else ''}":
       (lambda act=act, loss=loss, b=b, ig=ig: network(act, loss, b, ig))
       for act in M.ACTIVATIONS for loss in M.LOSSES for b in (0, 5) for ig in (False, True)
       if (act == "relu" or not ig)},
    "mlp-identity-output": lambda: network("tanh", "squared", 4, out_act="identity"),
    "no loss, J of shape (1,)": lambda: without_loss(),
    # a module applied twice shares its parameters: their gradients are sums (7.53)
    "shared MM": lambda: traced(lambda x: MM2(MM2(x).tanh()).sigmoid().sum(), RNG.normal(size=3)),
    "loss in a trace": lambda: traced(
        lambda x: bpv.CrossEntropyLoss()(MM2(x.relu()), np.array([0.0, 1.0, 0.0])),
        RNG.normal(size=3)),
    # binary ops, with constants and with broadcasting (B1 sums back to the input's shape)
    "arithmetic, broadcast": lambda: traced(
        lambda a, b: ((a + b) * (a - b) / (b * b + 1.0) - 2.0 / b + 3.0 * a).sum(),
        RNG.normal(size=(3, 2)), _positive(2)),
    "div both ways": lambda: traced(lambda a, b: (a / b + b / a).sum(), _positive(4), _positive(4)),
    "elementwise": lambda: traced(lambda z: (z.exp() + z.sin() * z.cos() + z.log()).sum(),
                                  _positive(5)),
    "powers": lambda: traced(
        lambda z: (z ** 2 + z ** 3 + z ** 0.5 + z ** 1 + z ** 0 + z ** -1.5).sum(), _positive(4)),
    "matmul": lambda: traced(
        lambda W, x, v, N: ((W @ x) @ (W @ x) + (v @ W) @ x + (W @ N).sum()),
        RNG.normal(size=(3, 4)), RNG.normal(size=4), RNG.normal(size=3), RNG.normal(size=(4, 2))),
    "index": lambda: traced(
        lambda z, W: (z[[0, 2, 2]].sum() + z[1] * z[1:3].sum() + z[::2].exp().sum()
                      + W[1, 2] + W[:, 1].sum() + W[0].sum() * W[[0, 1], [2, 0]].sum()),
        RNG.normal(size=4), RNG.normal(size=(2, 3))),
    # routing (one module expanded into its entries): (z)ᵢ, and [·] with four inputs
    "routing": lambda: traced(
        lambda z: (M.Stack((2, 2))(M.Entry(0, (4,))(z), M.Entry(3, (4,))(z), z[1],
                                   M.Entry(2)(z) * 2.0) ** 2).sum(), RNG.normal(size=4)),
    # a value with five users: the sum (7.53) has more than three contributions
    "five users": lambda: traced(_five_users, RNG.normal(size=3)),
    "dead branch": lambda: traced(lambda x: (x.sin(), x.cos().sum())[1], RNG.normal(size=2)),
}


def _bits(x) -> tuple:
    """A number's exact identity: its type, shape, dtype and bytes (so -0.0 is not 0.0)."""
    a = np.asarray(x)
    return type(x).__name__, a.shape, a.dtype.str, a.tobytes()


def assert_same(prog, given, store) -> None:
    """Every number of the checked run's trace equals the store of ``values`` bit for bit; so do
    the gradients of the parameters and the inputs, looked up by name."""
    tr = prog.run(given)
    assert len(store) == prog.n_given + len(prog.specs)
    for name in prog.given_names:
        assert store[prog.slot(Key(name))] is given[name]
    for i, spec in enumerate(prog.specs):
        assert _bits(store[prog.n_given + i]) == _bits(tr[spec.writes]), \
            f"step {i + 1} ({spec.kind} {spec.module}) writing {spec.writes} differs"
    for node in tr.nodes:
        key = Key.gradient(node.name)
        if key in tr:
            assert _bits(store[prog.slot(key)]) == _bits(tr.grad(node.name)), key
    assert np.asarray(store[prog.loss_slot]).item() == tr.loss


def _unbroadcast_ref(g, shape):
    """Sum g down to shape, as the chain rule does for an input that broadcasting stretched."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g.reshape(shape)


def reference(prog, tr, spec):
    """What step ``spec`` should compute, from its rule alone (module, kind, which; keys), with the
    values the trace holds: an evaluation that does not use the plan."""
    if spec.kind == "seed":
        return np.ones_like(np.asarray(tr[Key(prog.eqns[-1].output)]))
    if spec.kind == "acc":
        return reduce(np.add, [tr[k] for _, k in spec.subs])
    [e] = [e for e in prog.eqns if e.name == spec.module]
    ins = [tr[Key(n)] for n in e.inputs]
    if spec.kind == "F":
        return e.module.forward(*ins)
    v = tr[Key.gradient(e.output)]
    g = e.module.function(spec.kind, spec.which)(*ins, v)
    if spec.kind == "B1":
        return _unbroadcast_ref(g, np.shape(ins[spec.which]))
    return g


def assert_steps_follow_their_rules(prog, given) -> None:
    tr = prog.run(given)
    for spec in prog.specs:
        want = np.asarray(reference(prog, tr, spec), dtype=float)
        got = np.asarray(tr[spec.writes])
        assert got.shape == want.shape, spec.writes
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale,
                                   err_msg=f"{spec.kind} {spec.module} {spec.writes}")


def _plan_args(prog, spec) -> list[int]:
    """The slots the plan must read for a spec: a module's inputs (F), then v (B1, B2); J for
    the seed; the contributions, in order, for a sum (7.53)."""
    if spec.kind == "seed":
        return [prog.slot(Key(prog.eqns[-1].output))]
    if spec.kind == "acc":
        return [prog.slot(k) for _, k in spec.subs]
    [e] = [e for e in prog.eqns if e.name == spec.module]
    keys = [Key(n) for n in e.inputs]
    if spec.kind != "F":
        keys.append(Key.gradient(e.output))
    return [prog.slot(k) for k in keys]


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_gives_the_checked_runs_numbers_bit_for_bit(case):
    prog, given = CASES[case]()
    assert_same(prog, given, prog.values(given))


@pytest.mark.parametrize("case", list(CASES))
def test_every_step_computes_its_rule(case):
    prog, given = CASES[case]()
    assert_steps_follow_their_rules(prog, given)


@pytest.mark.parametrize("case", list(CASES))
def test_the_plan_is_aligned_with_the_specs(case):
    prog, _ = CASES[case]()
    assert len(prog.plan) == len(prog.specs)
    for i, (step, spec) in enumerate(zip(prog.plan, prog.specs)):
        assert isinstance(step, PlanStep)
        assert step.kind == spec.kind and step.out == prog.n_given + i
        assert list(step.args) == _plan_args(prog, spec), spec.writes
        assert step.n == len(step.args)
        assert (step.a, step.b, step.c) == (*step.args[:3], 0, 0, 0)[:3]
        assert step.check == (spec.kind == "F" and
                              prog.eqns[i].module.can_overflow)
        assert (step.fn is sum_over_users) == (spec.kind == "acc")
    if case == "five users":                # the general branch: more than three arguments
        assert max(s.n for s in prog.plan) == 5


def test_every_module_class_with_rules_has_a_case():
    # a class has rules if it declares them with @rule or writes its own rule() (Stack)
    classes = {name for name, cls in M.REGISTRY.items()
               if M.is_builtin(cls) and (cls.rules or "rule" in vars(cls))}
    used = {m.op for make in CASES.values() for m in make()[0].modules}
    assert classes <= used, f"no case for {sorted(classes - used)}"
    # Index, Power, Sum, MatMul, Div among them, by name
    assert {"Index", "Power", "Sum", "MatMul", "Div", "MM"} <= used


def _swap_fn(prog, kind, n):
    """A copy of prog whose plan has the function of one step (of this kind, with n arguments)
    replaced by another step's of the same kind and arity: a wrong plan entry."""
    steps = [i for i, s in enumerate(prog.plan) if s.kind == kind and s.n == n]
    i = steps[0]
    j = next(j for j in steps if prog.plan[j].fn != prog.plan[i].fn)
    plan = list(prog.plan)
    plan[i] = dataclasses.replace(plan[i], fn=plan[j].fn)
    bad = copy.copy(prog)
    bad.plan = tuple(plan)
    return bad


@pytest.mark.parametrize("kind,n", [("F", 1), ("B1", 2), ("B2", 2)])
def test_the_comparisons_fail_on_a_swapped_plan_entry(kind, n):
    """The tests above can fail: a fast path whose plan has one wrong function gives numbers the
    checked run does not, and a checked run with it computes a step that is not its rule."""
    prog, given = CASES["elementwise" if kind != "B2" else "mlp-relu-squared-one"]()
    assert_same(prog, given, prog.values(given))
    bad = _swap_fn(prog, kind, n)
    with pytest.raises(AssertionError, match="differs"):
        assert_same(prog, given, bad.values(given))
    nf = bad.n_forward                   # the checked run reads the plan split at the forward
    bad._forward, bad._backward = bad.plan[:nf], bad.plan[nf:]
    with pytest.raises((AssertionError, bpv.BackpropError)):   # a wrong shape: refused at its step
        assert_steps_follow_their_rules(bad, given)


def test_a_plan_step_applies_its_function_to_its_slots():
    store = [np.array(2.0), np.array(3.0), np.array(5.0), np.array(7.0), None]
    step = PlanStep.make("acc", sum_over_users, (0, 1, 2, 3), 4)
    assert (step.n, step.a, step.b, step.c) == (4, 0, 1, 2)
    assert float(step(store)) == 17.0
    assert float(PlanStep.make("F", np.negative, (2,), 4)(store)) == -5.0
    assert float(PlanStep.make("B1", np.subtract, (3, 0), 4)(store)) == 5.0


class _Unwritten(M.Module):
    """A learner's module whose backward function is not written yet."""

    def forward(self, z):
        return z * 2.0


class _ReturnsNothing(M.Module):
    """A learner's module whose backward function forgets its return."""

    def forward(self, z):
        return z * 1.0

    def backward(self, z, v):
        z * v


def test_a_failing_backward_step_is_named_by_both_paths():
    for f, message in [
            (lambda x: _Unwritten()(x.sin()).sum(),
             "M_2 (backward step 3, (7.57)): computing ∂J/∂u[1] is not written yet"),
            (lambda x: (_ReturnsNothing()(x.sin()) * 2.0).sum(),
             "M_2 (backward step 4, (7.57)): computing ∂J/∂u[1] failed: TypeError")]:
        prog, given = traced(f, np.array([0.5, 1.0]))
        for path in (prog.run, prog.values):
            with pytest.raises(bpv.BackpropError) as e:
                path(given)
            assert str(e.value).startswith(message)


def test_a_forward_overflow_is_named_by_both_paths():
    prog, given = traced(lambda x: (x * 1000.0).exp().sum(), np.array([1.0, 2.0]))
    message = (r"M_2 = exp \(forward step 2 of 3, \(F\)\): u\[2\] contains NaN or inf although "
               r"its inputs are finite")
    for path in (prog.run, prog.values):
        # (values leaves numpy's errstate to its caller: training sets it once for many passes)
        with np.errstate(all="ignore"), pytest.raises(bpv.BackpropError, match=message):
            path(given)
