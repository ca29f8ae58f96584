"""Graded exercises: ``bpv.check(module)`` tests a learner's backward functions.

A learner writes the backward functions of a module whose forward is given::

    class MySigmoid(bpv.Sigmoid):
        def backward(self, z, v):
            s = 1 / (1 + np.exp(-z))
            return s * (1 - s) * v

    bpv.check(MySigmoid)          # or bpv.check(MySigmoid()), or any Module / Loss instance

``check`` compares each backward function, (B1) B[M, z](v) and every parameter's (B2)
B[M, θ](v), with central finite differences of the module's *forward*, using the
vector-Jacobian identity of (7.57)–(7.59): the gradient of Σ v ⊙ M(z) with respect to z is
B[M, z](v) (for a loss, the gradient of v·ℓ(t, y) with respect to t). It tries several seeded
random inputs, single examples and batches (one example per column) where the module takes them.

The report says which function and which entry is wrong, gives a counterexample (z, v, the
parameters) with the numerical and the learner's numbers, names the likely slip from the rule
table (rules.py: missing transpose, z vᵀ for v zᵀ, forgot σ′(z), forgot to squash, forgot 1/B,
forgot the sum over the batch) or the wrong shape (§7.4.1), and runs a small network containing
the module: in Jupyter it draws that network with the nodes whose gradient disagrees with finite
differences marked. Its text (``str(report)``) is deterministic.

Whatever the learner's code does (raise, return None, return the wrong shape, change its input in
place) becomes a message in the report, never a traceback: ``report.errors`` holds each as a
``BackpropError`` naming the module and the function (``report.raise_errors()`` raises the first).
``check`` itself raises ``BackpropError`` only when it cannot test the module at all (not a
module, a two-input op, a class it cannot make, a forward that fails).
"""
from __future__ import annotations

import copy
import math
import re
import traceback
import warnings

import numpy as np

from ..core import expr as E
from ..core import keys as K
from ..core import modules as M
from ..core import rules as R
from ..core.checks import shown as drawable, whole
from ..core.gradcheck import numerical_grad, tolerances
from ..core.numerics import close
from ..core.errors import BackpropError, brief, shape_str
from ..core.keys import Key
from ..core.networks import Sequential
from ..core.program import err_text
from ..display.text import inline
from .exercise_report import MARK_LABEL, Case, CheckReport, Drawing, FunctionReport

RTOL, ATOL, EPS = 1e-5, 1e-6, 1e-6
# check's bounds, so that its work is bounded (central differences cost two forward passes per
# number, for every case): cases, a batch's columns, the seed, and the numbers of one case (its
# input, batch included, and the module's parameters together)
MAX_CASES = 20
MAX_BATCH = 64
MAX_SEED = 2**32 - 1
MAX_NUMBERS = 1024


# --- slips that the rule table does not list (exercises meet them more often than the Stepper) ---

def _forgot_v(ans, r, want):
    v = np.asarray(r["v"], float)
    if np.allclose(v, 1.0) or np.shape(ans) != np.shape(want):
        return False
    return close(ans * v, want) and not close(ans, want)


def _batch_outer(ans, r, want):
    z = np.asarray(r.get("z", 0.0))
    return np.ndim(z) == 2 and np.ndim(want) == 2 and np.shape(ans) != np.shape(want)


def _extra_mean(ans, r, want):
    z = np.asarray(r.get("z", 0.0))
    return np.ndim(z) == 2 and z.shape[1] > 1 and close(np.asarray(ans) * z.shape[1], want)


FORGOT_V = R.Slip("forgot v", "Your answer is right up to the factor v: the backward function "
                  "multiplies by the upstream gradient v = ∂J/∂u; here {rule}.", _forgot_v)
BATCH_OUTER = R.Slip("v zᵀ for a batch", "For a batch, v ∈ R^{m×B} and z ∈ R^{n×B} hold one "
                     "example per column, and ∂J/∂W = v zᵀ (7.65) is one matrix product: it "
                     "sums the B outer products over the columns and has the shape of W.",
                     _batch_outer)
EXTRA_MEAN = R.Slip("extra 1/B", "That is 1/B of the answer: the 1/B of the batch's mean is "
                    "already inside v (the loss put it there, (7.70)); MM's rule is {rule}.",
                    _extra_mean)

EXTRA_SLIPS = {("MM", "B2", "W"): (BATCH_OUTER, EXTRA_MEAN), ("MM", "B2", "b"): (EXTRA_MEAN,)}


# --- running the learner's code -----------------------------------------------------------------

def _learner_line(err: BaseException, fn) -> str:
    """The learner's line where ``err`` was raised: 'line 4: return self.W @ v'."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return ""
    frames = [fr for fr in traceback.extract_tb(err.__traceback__)
              if fr.filename == code.co_filename]
    if not frames:
        return ""
    fr = frames[-1]
    line = err_text(" ".join(fr.line.split()), 200)     # one line, its spaces collapsed
    return f" (line {fr.lineno}: {line})" if line else f" (line {fr.lineno})"


def _describe(err: Exception, fn, method: str) -> str:
    if isinstance(err, NotImplementedError) and not str(err):
        return (f"{method} raised NotImplementedError: not written yet (replace "
                f"`raise NotImplementedError()` with your code)")
    text = err_text(err, 100_000).strip()
    msg = err_text(text.splitlines()[0]) if text else ""
    sizes = re.search(r"^matmul: .*\(size (\d+) is different from (\d+)\)", msg)
    if sizes:       # numpy's gufunc wording, in the words of a learner of the notes
        msg = (f"@ could not multiply: the inner sizes differ ({sizes[2]} and {sizes[1]}); "
               f"in A @ B, A's columns must be as many as B's rows")
    return f"{method} raised {type(err).__name__}" + (f": {msg}" if msg else "") \
        + _learner_line(err, fn)


def _culprit(err: Exception, mod) -> str:
    """An exception that escaped backprop, described with the learner's function it came from."""
    for kind, which, method, _ in reversed(_functions(mod)):
        fn = getattr(type(mod), method, None)
        code = getattr(fn, "__code__", None)
        if code is not None and any(fr.filename == code.co_filename and fr.name == method
                                    for fr in traceback.extract_tb(err.__traceback__)):
            return _describe(err, fn, f"{type(mod).__name__}.{method}")
    return _describe(err, None, "backprop")


def _call(fn, method: str, args: tuple, names: tuple, want=None, wrt: str = "z"):
    """Run the learner's function on copies of args: (answer, None) or (None, what went wrong);
    ``want`` (the numerical ∂J/∂wrt) says what shape the answer should have had."""
    copies = tuple(np.array(a, dtype=float) if isinstance(a, np.ndarray) else a for a in args)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(*copies)
    except Exception as err:                   # noqa: BLE001 — the learner's code, any error
        return None, _describe(err, fn, method)
    for name, a, c in zip(names, args, copies):
        if isinstance(a, np.ndarray) and not np.array_equal(a, c):
            return None, (f"{method} changed its input {name} in place; compute a new array "
                          f"instead (in a network, values and gradients are read-only)")
    if out is None:
        return None, f"{method} returned None: is a `return` missing?"
    expected = "" if want is None else \
        f"; return a NumPy array of shape {shape_str(want)} (∂J/∂{wrt} has the shape of {wrt})"
    if not isinstance(out, (np.ndarray, np.number, int, float, list, tuple, str, bytes)):
        # a torch tensor, a Series …: numpy may or may not read it, and a network cannot use it
        return None, (f"{method} returned {type(out).__name__} {_text(out)}, not a NumPy array"
                      f"{expected}" + (" (a torch tensor t: t.detach().numpy())"
                                       if hasattr(out, "__array__") else ""))
    try:
        arr = np.array(out, dtype=float)
    except OverflowError:
        return None, (f"{method} returned {type(out).__name__} {_text(out)}, a number too large "
                      f"for a float (above about 1.8e308){expected}")
    except Exception:                          # noqa: BLE001 — a list of a learner's objects
        return None, f"{method} returned {type(out).__name__} {_text(out)}, not numbers{expected}"
    if not np.isfinite(arr).all():
        return None, f"{method} returned NaN or inf: {inline(arr)}"
    return arr, None


def _text(out) -> str:
    """What a learner's function returned, as a short quoted text (whatever its repr does)."""
    try:
        text = str(out)
    except Exception:                          # noqa: BLE001 — a learner's object, any error
        return "(it cannot be written out)"
    # <Good object at 0x7f…> would make the report's text differ from run to run
    return "(an object)" if " object at 0x" in text else repr(text[:40])


def _agrees(got, want, rtol, atol) -> bool:
    return got is not None and got.shape == want.shape and \
        bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


# --- the module under test ----------------------------------------------------------------------

def _rand(rng, shape) -> np.ndarray:
    """Numbers a learner can retype: one decimal, 0.2 ≤ |x| ≤ 2 (away from ReLU's kink)."""
    mag = rng.uniform(0.2, 2.0, size=shape)
    sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
    return np.round(mag * sign, 1)


def _param(rng, shape) -> np.ndarray:
    """A parameter; a square matrix is drawn again until it is far from symmetric, so that
    W v and Wᵀ v (a missing transpose) differ."""
    while True:
        p = _rand(rng, shape)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 1 or \
                np.abs(p - p.T).max() >= 0.5:
            return p


def _positive(rng) -> float:
    return float(np.round(rng.uniform(0.2, 2.0), 1))


def _instance(module):
    """(a module, a factory of modules with new parameters and shapes, or None)."""
    if isinstance(module, type):
        if not issubclass(module, M.Module):
            raise BackpropError(f"check: {module.__name__} is not a module; subclass one, e.g. "
                                f"class MySigmoid(bpv.Sigmoid)")
        if issubclass(module, M.MM):
            factory = lambda W, b: module(W, b)      # noqa: E731
            try:
                return factory(np.ones((3, 2)), np.zeros(3)), factory
            except Exception as err:               # noqa: BLE001
                raise BackpropError(f"check({module.__name__}): making one with "
                                    f"{module.__name__}(W, b) failed ({type(err).__name__}: "
                                    f"{err}); give an instance: check({module.__name__}(W, b))") \
                    from None
        try:
            return module(), None
        except Exception as err:                   # noqa: BLE001
            raise BackpropError(f"check({module.__name__}): making one with "
                                f"{module.__name__}() failed ({type(err).__name__}: {err}); give "
                                f"an instance: check({module.__name__}(...))") from None
    if isinstance(module, M.Module):
        return module, None
    raise BackpropError(f"check: give a module (a class such as MySigmoid, or an instance such as "
                        f"MySigmoid()); got {type(module).__name__} {str(module)[:40]!r}")


def _owner(mod, method: str) -> type:
    for c in type(mod).__mro__:
        if method in vars(c):
            return c
    return type(mod)


def _functions(mod) -> list[tuple[str, object, str, str]]:
    """(kind, which, method, wrt) of each backward function: (B1) first, then each (B2)."""
    out = [("B1", 0, mod.rule("B1", 0).method or "backward", mod.inputs[0])]
    for p in mod.param_names:
        out.append(("B2", p, mod.rule("B2", p).method or "param_grads", p))
    return out


def _reference_rule(mod, kind, which) -> R.Rule:
    """The rule the learner's function should follow: the nearest class's entry with an
    expression (a learner's override without @rule keeps the tag but drops the expression)."""
    for c in type(mod).__mro__:
        r = getattr(c, "rules", {}).get((kind, which))
        if r is not None and r.expr is not None:
            return r
    return mod.rule(kind, which)


def _rule_text(mod, kind, which, ndims, batch) -> str:
    r = _reference_rule(mod, kind, which)
    ctx = R.Context(ndims, dict(mod.consts), batch)
    e = r.expression(ctx)
    wrt = mod.inputs[0] if kind == "B1" else which
    if e is None:
        text = f"B[{drawable(mod.label)}, {wrt}](v)"
    else:
        text = e.render(E.Format(False, False, lambda name, as_=None: name, ctx.ndim))
    return f"{text} {r.tag}"


def _forward(mod, *args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(mod.forward(*args), dtype=float)


def _label(mod, t, rng):
    if isinstance(mod, M.LogisticLoss):
        return rng.integers(0, 2, size=t.shape).astype(float)
    if isinstance(mod, M.CrossEntropyLoss):
        k = t.shape[0]
        idx = rng.integers(0, k, size=t.shape[1:])
        return (np.arange(k).reshape((k,) + (1,) * (t.ndim - 1)) == idx).astype(float)
    return _rand(rng, t.shape)


def _given_shape(shape) -> tuple:
    """check's ``shape=``: whole numbers ≥ 1 (one, or a tuple or list of them) of at most
    MAX_NUMBERS entries in all, or a BackpropError."""
    form = "check: shape is whole numbers ≥ 1, e.g. shape=(3,) or shape=3; got "
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise BackpropError(form + f"{type(shape).__name__} {brief(shape, 30)}")
    if not shape or len(shape) > 8 or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) and n > 0
            for n in shape):
        raise BackpropError(form + brief(shape, 40))
    if math.prod(shape) > MAX_NUMBERS:
        raise BackpropError(f"check: shape {brief(shape, 40)} has more than {MAX_NUMBERS:,} "
                            f"entries; check works on small inputs (central differences cost "
                            f"two passes per entry): give a smaller shape, e.g. shape=(3,)")
    return tuple(int(n) for n in shape)


def _input_shape(mod, shape, rng) -> tuple:
    if shape is not None:
        return _given_shape(shape)
    if isinstance(mod, M.MM):
        return (mod.n_in,)
    if isinstance(mod, M.Loss):
        return (3,)
    candidates = [(3,)]
    for p in mod.params.values():
        candidates += [tuple(np.shape(p))[-1:]] if np.ndim(p) else []
    for s in dict.fromkeys(c for c in candidates if c):
        try:
            out = _forward(mod, _rand(rng, s))
            if np.isfinite(out).all():
                return s
        except Exception:                          # noqa: BLE001 — try the next shape
            continue
    raise BackpropError(f"check({type(mod).__name__}): its forward takes none of the input "
                        f"shapes tried ({', '.join(map(shape_str, candidates))}); say which: "
                        f"check(module, shape=(n,))")


def _takes_batches(mod, shape, batch, rng) -> bool:
    if not batch or isinstance(mod, (M.MM, M.Loss, M.Activation)):
        return bool(batch) and len(shape) == 1
    if len(shape) != 1:
        return False
    try:
        out = _forward(mod, _rand(rng, shape + (batch,)))
        return out.ndim == 2 and out.shape[1] == batch
    except Exception:                              # noqa: BLE001
        return False


MM_SHAPES = ((3, 2), (2, 2), (2, 3))     # W's shapes when check makes the MM: square and not


def _cases(mod, factory, shape, n_cases, batch, rng):
    """The numbers of every case: (label, batch size or None, module, inputs by symbol)."""
    is_loss = isinstance(mod, M.Loss)
    out = []
    plans = [(i, None) for i in range(n_cases)]
    if _takes_batches(mod, shape, batch, rng):
        plans += [(i, batch) for i in range(n_cases)]
    for i, B in plans:
        label = f"single example {i + 1}" if B is None else f"batch {i + 1} (B = {B})"
        if factory is not None:                      # an MM that check makes: shapes vary
            m, n = MM_SHAPES[i % len(MM_SHAPES)]
            case_mod = factory(_param(rng, (m, n)), _param(rng, (m,)))
            zshape = (n,)
        else:
            params = {p: _param(rng, np.shape(val)) for p, val in mod.params.items()}
            case_mod = mod.with_params(**params) if params else mod
            zshape = shape
        z = _rand(rng, zshape + ((B,) if B else ()))
        if is_loss:
            y = _label(mod, z, rng)
            v = 1.0 if i == 0 else _positive(rng)
            inputs = {"t": z, "y": y, "v": v}
        else:
            try:
                u = _forward(case_mod, z)
            except Exception as err:                  # noqa: BLE001
                raise BackpropError(f"check({type(mod).__name__}): its forward failed on an "
                                    f"input of shape {shape_str(z)} ({type(err).__name__}: "
                                    f"{err})") from None
            v = _rand(rng, u.shape)
            inputs = {**case_mod.params, "z": z, "v": v}
        out.append((label, B, case_mod, inputs))
    return out


def _expected(case_mod, kind, which, inputs, eps):
    """Central differences of the forward: the gradient of Σ v ⊙ M(z) (or v·ℓ(t, y))."""
    v = inputs["v"]
    if isinstance(case_mod, M.Loss):
        t, y = inputs["t"], inputs["y"]
        return numerical_grad(lambda tt: v * _forward(case_mod, tt, y), t, eps)
    z = inputs["z"]
    if kind == "B1":
        return numerical_grad(lambda zz: np.vdot(v, _forward(case_mod, zz)), z, eps)
    return numerical_grad(lambda th: np.vdot(v, _forward(case_mod.with_params(**{which: th}), z)),
                          inputs[which], eps)


def _find_slip(mod, kind, which, got, inputs, want) -> R.Slip | None:
    if got is None:
        return None
    slips = tuple(mod.rule(kind, which).slips) + EXTRA_SLIPS.get(
        ("MM" if isinstance(mod, M.MM) else "", kind, which), ())
    if kind == "B1":
        slips += (FORGOT_V,)
    values = {k: np.asarray(val, dtype=float) for k, val in inputs.items()}
    for slip in slips:
        try:
            with np.errstate(all="ignore"):
                if slip.matches(got, values, want):
                    return slip
        except (KeyError, ValueError, IndexError, TypeError):   # the slip needs another symbol
            continue
    return None


# --- a network with the learner's module, and the nodes where backprop disagrees ------------------

def _network(mod, factory, shape, rng, B):
    """(net, x, y) containing the module (x with B columns, or one example for B None), or None
    where no small network fits it."""
    cols = (B,) if B else ()
    logistic = M.LogisticLoss()
    if isinstance(mod, M.Loss):
        k = shape[0]
        layer = M.MM(_param(rng, (k, 2)), _param(rng, (k,)))
        return Sequential([layer], loss=mod), _rand(rng, (2,) + cols), \
            _label(mod, np.zeros((k,) + cols), rng)
    if isinstance(mod, M.MM):
        if factory is not None:
            first = factory(_param(rng, (2, 2)), _param(rng, (2,)))
            second = factory(_param(rng, (2, 2)), _param(rng, (2,)))
        else:
            m = mod.n_out
            first = mod.with_params(W=_param(rng, mod.W.shape), b=_param(rng, mod.b.shape))
            second = copy.copy(mod)
            second.W, second.b = M.frozen(_param(rng, (m, m))), M.frozen(_param(rng, (m,)))
        x = _rand(rng, (first.n_in,) + cols)
        y = rng.integers(0, 2, size=(second.n_out,) + cols).astype(float)
        return Sequential([first, M.Sigmoid(), second], loss=logistic), x, y
    if len(shape) != 1:
        return None
    params = {p: _param(rng, np.shape(val)) for p, val in mod.params.items()}
    middle = mod.with_params(**params) if params else mod
    try:
        out = _forward(middle, np.full(shape + cols, 0.3))
    except Exception:                                  # noqa: BLE001
        return None
    if out.shape[1:] != cols or out.ndim != 1 + len(cols):
        return None
    n = shape[0]
    try:
        net = Sequential([M.MM(_param(rng, (n, 2)), _param(rng, (n,))), middle,
                          M.MM(_param(rng, (1, out.shape[0])), _param(rng, (1,)))],
                         loss=logistic)
    except BackpropError:       # Sequential's size check assumes n outputs for n inputs
        return None
    return net, _rand(rng, (2,) + cols), rng.integers(0, 2, size=(1,) + cols).astype(float)


def _network_words(net, x, mine: str) -> str:
    shown = "one example" if x.ndim == 1 else f"a batch of {x.shape[1]} examples, one per column"
    dims = str(x.shape[0]) if x.ndim == 1 else f"{{{x.shape[0]}×{x.shape[1]}}}"
    parts = [f"x = u[0] ∈ R^{dims} ({shown})"]
    for m in net.program(input_grad=True).modules:
        parts.append(f"{m.name} = {m.label}" + (f" (your {m.op})" if m.op == mine else ""))
    return ", ".join(parts)


def _marks(net, trace, rtol, atol, eps) -> list[str]:
    """The nodes whose ∂J/∂node disagrees with central differences of J, in the order the
    backward pass computes them (gradcheck's approach, for every node: a value u[i] is perturbed
    and the modules after it run forward again; a parameter through its module's forward)."""
    mods = net.modules
    y = trace.given.get("y")

    def J_from(i, u):                  # J as a function of u[i]
        for m in mods[i:]:
            u = _forward(m, u, y) if isinstance(m, M.Loss) else _forward(m, u)
        return u

    fd = {}
    for i in range(len(mods)):                          # u[0] … u[k−1]
        name = f"u[{i}]"
        fd[name] = lambda u, i=i: J_from(i, u)
    for e in net.program(input_grad=True).eqns:         # parameters: through their module
        i = int(e.name.split("_")[1])
        for p, local in zip(e.params, e.module.param_names):
            fd[p] = lambda th, i=i, m=e.module, local=local: J_from(
                i, _forward(m.with_params(**{local: th}), trace.value(f"u[{i - 1}]")))
    order = [s.writes.node for s in trace.specs if s.kind in ("B1", "B2", "acc")
             and not s.writes.is_contribution]
    marked = []
    for name in dict.fromkeys(order):
        if name not in fd:
            continue
        want = numerical_grad(fd[name], trace.value(name), eps)
        got = np.asarray(trace.grad(name), dtype=float)
        if not (np.isfinite(got).all() and _agrees(got, want, rtol, atol)):
            marked.append(name)
    return marked


def _run_network(mod, factory, shape, rng, rtol, atol, eps, batch):
    """(words, note, marked, trace) for a small network containing the learner's module: one
    example, then (if every gradient agreed there) a batch, where 1/B and the sums over the
    batch show."""
    mine = type(mod).__name__
    result = ("", "", frozenset(), None)
    for B in (None, batch if batch and _takes_batches(mod, shape, batch, rng) else None):
        built = _network(mod, factory, shape, rng, B)
        if built is None or (B is None and result[3] is not None):
            continue
        net, x, y = built
        words = _network_words(net, x, mine)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trace = net.backprop(x, y, input_grad=True)
                # a gradient that is not numbers (a torch tensor) fails here, if not before
                marked = _marks(net, trace, rtol, atol, eps)
        except Exception as err:                    # noqa: BLE001 — the learner's code failed
            msg = str(err) if isinstance(err, BackpropError) else _culprit(err, mod)
            return words, f"Backprop through it failed, so there is no drawing: {msg}", \
                frozenset(), None
        if marked:
            names = ", ".join(K.text(Key.gradient(n)) for n in marked)
            note = (f"Backprop disagrees with finite differences at {names} (✘ in the "
                    f"drawing): a wrong gradient spoils every gradient computed from it.")
            return words, note, frozenset(marked), trace
        result = (words, "Every gradient backprop computes agrees with finite differences.",
                  frozenset(), trace)
    return result


# --- check ----------------------------------------------------------------------------------------

def check(module, *, seed: int = 0, cases: int = 3, batch: int | None = 4, shape=None,
          rtol: float = RTOL, atol: float = ATOL, eps: float = EPS,
          network: bool = True) -> CheckReport:
    """Check a module's backward functions against central differences of its forward.

    ``module``: a module class (``MySigmoid``; an MM subclass is made with random W, b of
    several shapes) or an instance (its parameters' shapes are kept, their values drawn anew).
    ``cases`` single examples and, where the module takes a batch (one example per column),
    ``cases`` batches of ``batch`` columns (``batch=None``: none), drawn from
    ``numpy.random.default_rng(seed)``; ``shape``: the input's shape for a module check cannot
    guess it for. A case agrees when |yours − numerical| ≤ atol + rtol·|numerical| entrywise.
    ``network``: also run a small network containing the module (drawn in Jupyter, with the
    nodes whose gradient disagrees with finite differences marked).
    Bounds (central differences cost two passes per number): 1 to MAX_CASES (20) cases, a batch
    of 2 to MAX_BATCH (64) columns, a seed from 0 to 2³² − 1, at most MAX_NUMBERS (1,024) numbers
    in one case (its input, batch included, and the parameters); eps in (0, 1], rtol, atol ≥ 0.

    Returns a ``CheckReport``: ``report.ok``, ``report.slips``, ``str(report)``.
    """
    mod, factory = _instance(module)
    if len(mod.inputs) != 1 and not isinstance(mod, M.Loss):
        raise BackpropError(f"check({type(mod).__name__}): it takes {len(mod.inputs)} inputs; "
                            f"check works on one-input modules (z) and losses (t, y)")
    seed = _bounded(seed, "seed", 0, MAX_SEED)
    cases = _bounded(cases, "cases", 1, MAX_CASES)
    if batch is not None:
        batch = _bounded(batch, "batch (columns of a batch; None: no batches)", 2, MAX_BATCH)
    eps, rtol, atol = tolerances(eps, rtol, atol, "check")
    n_params = sum(int(np.size(p)) for p in mod.params.values())
    if n_params > MAX_NUMBERS:
        raise BackpropError(f"check({type(mod).__name__}): its parameters have {n_params:,} "
                            f"numbers; check works on small modules (at most {MAX_NUMBERS:,}, "
                            f"central differences cost two passes per number): give one with "
                            f"small parameters, e.g. W of 3×2")
    rng = np.random.default_rng(seed)
    shape = _input_shape(mod, shape, rng)
    n_case = math.prod(shape) * (batch or 1) + n_params
    if n_case > MAX_NUMBERS:
        raise BackpropError(f"check({type(mod).__name__}): a case would hold {n_case:,} numbers "
                            f"(the input of shape {shape_str(np.empty(shape))}"
                            + (f" in batches of {batch}" if batch else "")
                            + (f" and {n_params:,} parameters" if n_params else "")
                            + f"); check works on at most {MAX_NUMBERS:,}: give a smaller shape"
                            + (" or batch (batch=None: no batches)" if batch else ""))
    plans = _cases(mod, factory, shape, int(cases), batch, rng)

    functions = []
    for kind, which, method, wrt in _functions(mod):
        owner = _owner(mod, method)
        results = []
        for label, B, case_mod, inputs in plans:
            want = _expected(case_mod, kind, which, inputs, eps)
            fn = case_mod.function(kind, which)
            names = ("t", "y", "v") if isinstance(case_mod, M.Loss) else ("z", "v")
            got, error = _call(fn, f"{type(mod).__name__}.{method}",
                               tuple(inputs[n] for n in names), names, want, wrt)
            ok = error is None and _agrees(got, want, rtol, atol)
            ndims = {s: np.ndim(val) for s, val in inputs.items()}
            rule = _rule_text(case_mod, kind, which, ndims, B)
            slip = None if ok else _find_slip(case_mod, kind, which, got, inputs, want)
            shown = tuple((s, inputs[s]) for s in inputs)
            results.append(Case(label, shown, want, got, error, ok, rule, slip))
        mine = not M.is_builtin(owner) or M.is_builtin(type(mod))
        name = f"B[{drawable(mod.label)}, {wrt}](v) = {K.text(Key.gradient(wrt))}"
        single = {s: np.ndim(val) for s, val in plans[0][3].items()}
        functions.append(FunctionReport(method, kind, wrt, owner.__name__, mine, name,
                                        _rule_text(mod, kind, which, single, None),
                                        tuple(results)))

    n_single = sum(1 for p in plans if p[1] is None)
    n_batch = len(plans) - n_single
    sym = mod.inputs[0]
    if factory is not None:
        shapes = ", ".join(f"{m}×{n}" for m, n in MM_SHAPES[:min(cases, len(MM_SHAPES))])
        what = f"W is {shapes}"
    else:
        what = f"{sym} is {shape_str(np.empty(shape))}"
        what += "".join(f", {p} is {shape_str(val)}" for p, val in mod.params.items())
    setup = (f"Cases: {n_single} single example{'s' if n_single > 1 else ''}"
             + (f" and {n_batch} batch{'es' if n_batch > 1 else ''} of B = {batch} columns"
                if n_batch else " (no batches)")
             + f" ({what}), numbers from seed {seed}.")
    label = _module_formula(mod)
    words, note, marked, trace = ("", "", frozenset(), None)
    if network:
        net_rng = np.random.default_rng([int(seed), 7])
        words, note, marked, trace = _run_network(mod, factory, shape, net_rng, rtol, atol,
                                                   eps, batch)
    return CheckReport(type(mod).__name__, label, tuple(functions), setup, rtol, atol, eps,
                       int(seed), words, note, marked, trace)


def _bounded(n, what: str, low: int, high: int) -> int:
    """check's whole-number options (seed, cases, batch): from low to high, or a BackpropError."""
    if isinstance(n, str):               # "3" is not read here: an argument is not a typed field
        raise BackpropError(f"check: {what} is a whole number from {low} to {high:,}; got text "
                            f"{brief(n, 30)}")
    n = whole(n, f"check: {what}", low)
    if n > high:
        raise BackpropError(f"check: {what} is a whole number from {low} to {high:,}; got "
                            f"{brief(n, 30)}")
    return n


def _module_formula(mod) -> str:
    """How the report names the module: its forward rule where it has one, 'MM: W z + b'."""
    r = mod.rule("F")
    ins = {s: 1 for s in mod.inputs} | {p: np.ndim(val) for p, val in mod.params.items()}
    e = r.expression(R.Context(ins, dict(mod.consts), None))
    name = drawable(mod.label) + (f"[{', '.join(mod.param_names)}]" if mod.param_names else "")
    name += "(" + ", ".join(mod.inputs) + ")"
    if e is None:
        return name
    body = e.render(E.Format(False, False, lambda n, as_=None: n, lambda n: ins.get(n, 0)))
    return name if body == name else f"{name} = {body}"


__all__ = ["check", "CheckReport", "FunctionReport", "Case", "Drawing", "MARK_LABEL", "RTOL", "ATOL",
           "EPS"]
