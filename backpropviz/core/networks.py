"""Networks: the chain J = M_k(M_{k−1}(⋯M_1(x))) of (7.60), and the MLP of (7.72).

A ``Sequential`` records its chain once with the same ``Recorder`` that ``bpv.trace`` uses,
without numbers, and runs the compiled program for every (x, y).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from . import modules as M
from .errors import BackpropError, brief, shape_str
from .program import Program, Recorder, as_input
from .trace import Trace
from .checks import whole


class Sequential:
    """The chain J = M_k(⋯M_1(x)) of (7.60); u[0] = x, u[i] = M_i(u[i−1]) (F).

    ``loss`` (a Loss) becomes the last module M_k with the label y; without one, the last module's
    output must be a single number. Parameters are named by parametric module from 1: W[1], b[1],
    W[2], …
    """

    def __init__(self, modules, loss: M.Loss | str | None = None):
        modules = list(modules)
        if not modules:
            raise BackpropError("Sequential: a network needs at least one module; got an empty list")
        if isinstance(loss, str):
            loss = loss_named(loss)
        for i, m in enumerate(modules, 1):
            if not isinstance(m, M.Module) or isinstance(m, M.Loss) or m.arity != 1:
                raise BackpropError(f"Sequential: M_{i} must be a one-input module such as MM or "
                                    f"ReLU (a loss goes in loss=); got {brief(m, 40)}")
            if m.param_names and any(m is prev for prev in modules[:i - 1]):
                j = next(n for n, prev in enumerate(modules, 1) if prev is m)
                raise BackpropError(f"Sequential: M_{i} is the same {type(m).__name__} object as "
                                    f"M_{j}; a chain gives each module its own parameters. To "
                                    f"share parameters, apply the module twice inside bpv.trace(f, x)")
        if loss is not None and not isinstance(loss, M.Loss):
            raise BackpropError(f"Sequential: loss must be a Loss such as SquaredLoss(); got "
                                f"{brief(loss, 40)}")
        self.layers, self.loss = modules, loss
        self._check_sizes()
        self._programs: dict[bool, Program] = {}
        self._label_ctx = None        # see _label_context
        self._shape_of = None         # (input shape, output shape): see output_shape

    def _check_sizes(self):
        prev = None           # (description, its output size)
        n_theta = 0
        for i, m in enumerate(self.layers, 1):
            n_theta += bool(m.param_names)
            if not isinstance(m, (M.MM, M.Activation)):
                prev = None         # a module of one's own may change the size: nothing to check
            if isinstance(m, M.MM):
                here = f"M_{i} = MM[W[{n_theta}], b[{n_theta}]]"
                if prev is not None and prev[1] != m.n_in:
                    raise BackpropError(
                        f"Sequential: {here} has W of shape {shape_str(m.W)}, so it takes "
                        f"{m.n_in} inputs, but {prev[0]} gives {prev[1]} outputs")
                prev = (here, m.n_out)

    @property
    def modules(self) -> list[M.Module]:
        return self.layers + ([self.loss] if self.loss is not None else [])

    def program(self, input_grad: bool = False) -> Program:
        """The compiled graph, built once per network (the numbers change, the plan does not)."""
        if input_grad not in self._programs:
            rec = Recorder()
            u = rec.add_node("u[0]", "input")
            label = rec.add_node("y", "label") if self.loss is not None else None
            for m in self.modules:
                u = rec.equation(m, (u, label) if isinstance(m, M.Loss) else (u,)).output
            self._programs[input_grad] = rec.program(input_grad)
        return self._programs[input_grad]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every parameter by name: W[1], b[1], W[2], …"""
        return {p: getattr(m, local) for p, (m, local) in self.program().param_src.items()}

    def backprop(self, x, y=None, input_grad: bool = False) -> Trace:
        """One forward and one backward pass, every step recorded (F), (B1), (B2)."""
        prog = self.program(input_grad)
        x = as_input(x, "u[0] (the input x)")
        if x.ndim > 2:      # say so before the label's check would complain about shapes
            self.layers[0].check_input(x, f"M_1 = {prog.modules[0].label} (forward step 1 of "
                                          f"{len(prog.modules)}, (F))")
        given = {"u[0]": x}
        for p, (m, local) in prog.param_src.items():
            given[p] = getattr(m, local)
        if self.loss is not None:
            _, where, what, t = self._label_context(x)
            if y is None:
                raise BackpropError(f"{where}: the loss needs a label y: call backprop(x, y)")
            given["y"] = self.loss.check_label(t, as_input(y, what), where)
        elif math.prod(self.output_shape(x)) != 1:
            raise BackpropError(
                f"M_{len(self.modules)}: without a loss the last module's output is J and must "
                f"be a single number, but for an input of shape {shape_str(x)} it has shape "
                f"{shape_str(np.empty(self.output_shape(x)))}; pass loss=")
        return prog.run(given)

    def _label_context(self, x) -> tuple[tuple, str, str, np.ndarray]:
        """What checking a label for input x needs: x's shape, the loss's place and the label's
        name in the messages, and an (unfilled) array of the output's shape; built once per input
        shape (the last one is kept), not on every pass."""
        c = self._label_ctx
        if c is None or c[0] != x.shape:
            k = len(self.modules)
            where = f"M_{k} = {self.loss.label} (forward step {k})"
            c = self._label_ctx = (x.shape, where, f"{where}: the label y",
                                   np.empty(self.output_shape(x)))
        return c

    def output_shape(self, x) -> tuple:
        """The shape of the last module's output u[k] for an input shaped like x: found by one
        forward pass on zeros of that shape (cached for the last input shape), so any module may
        come last (an MM, a Sum, one of a learner's own)."""
        x = np.asarray(x)
        if self._shape_of is not None and self._shape_of[0] == x.shape:
            return self._shape_of[1]
        z = np.zeros(x.shape)
        try:
            with np.errstate(all="ignore"):          # zeros may divide by 0: only shapes count
                for m in self.layers:
                    z = m.forward(z)
            shape = tuple(np.shape(z))
        except Exception:           # noqa: BLE001 - a module that refuses zeros: guess from MMs
            n = x.shape[1:] if x.ndim == 2 else ()
            shape = next(((m.n_out,) + n for m in reversed(self.layers)
                          if isinstance(m, M.MM)), x.shape)
        self._shape_of = (x.shape, shape)
        return shape

    def forward(self, x) -> np.ndarray:
        """The network's output u[k−1] (before the loss), for prediction."""
        u = as_input(x, "u[0] (the input x)")
        for m in self.layers:
            u = m.forward(u)
        return u

    def with_params(self, params: dict) -> "Sequential":
        """A copy with some parameters replaced (by name: W[1], b[2], …), any module type."""
        src = self.program().param_src
        unknown = set(params) - set(src)
        if unknown:
            raise BackpropError(f"no parameter named {sorted(unknown)}; parameters: "
                                f"{', '.join(src)}")
        change: dict[int, dict] = {}
        for p, (m, local) in src.items():
            if p in params:
                change.setdefault(id(m), {})[local] = params[p]   # id: only within this call
        layers = [m.with_params(**change[id(m)]) if id(m) in change else m for m in self.layers]
        return Sequential(layers, self.loss)

    def __repr__(self):
        body = ", ".join(repr(m) for m in self.layers)
        return f"Sequential([{body}], loss={self.loss!r})"


def loss_named(name: str) -> M.Loss:
    if not isinstance(name, str) or name not in M.LOSSES:
        raise BackpropError(f"unknown loss {brief(name, 40)}; choose one of: "
                            f"{', '.join(M.LOSSES)}")
    return M.LOSSES[name]()


MAX_MLP_LAYERS = 1_000          # MM layers of a network mlp makes (the Stepper's controls: 8)
MAX_MLP_WEIGHTS = 10_000_000    # weights and biases together (80 MB of floats)


def _mlp_sizes(sizes) -> list[int]:
    """mlp's sizes as a list of whole numbers, or a BackpropError that says what to give: 2 to
    MAX_MLP_LAYERS + 1 sizes, each ≥ 1, at most MAX_MLP_WEIGHTS weights and biases in all."""
    form = ("mlp: sizes are at least two whole numbers ≥ 1 (input, …, output), e.g. "
            "mlp([2, 3, 1]); got ")
    if isinstance(sizes, np.ndarray) and sizes.ndim != 1:
        raise BackpropError(form + f"an array of shape {shape_str(sizes)}")
    if isinstance(sizes, (str, bytes, dict)) or not hasattr(sizes, "__iter__"):
        raise BackpropError(form + f"{type(sizes).__name__} {brief(sizes, 40)}")
    try:
        got = list(itertools.islice(sizes, MAX_MLP_LAYERS + 2))
    except Exception as err:        # noqa: BLE001 — an iterable that fails as it is read
        raise BackpropError(form + f"{type(sizes).__name__} ({type(err).__name__})") from None
    if len(got) > MAX_MLP_LAYERS + 1:
        raise BackpropError(f"mlp: at most {MAX_MLP_LAYERS + 1} sizes ({MAX_MLP_LAYERS} layers); "
                            f"got more")
    if len(got) < 2 or any(isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer))
                           or n < 1 for n in got):
        raise BackpropError(form + brief(got))
    got = [int(n) for n in got]
    big = next((n for n in got if n > MAX_MLP_WEIGHTS), None)
    n_weights = 0 if big else sum((a + 1) * b for a, b in zip(got[:-1], got[1:]))
    if big or n_weights > MAX_MLP_WEIGHTS:
        raise BackpropError((f"mlp: a layer of more than {MAX_MLP_WEIGHTS:,} units" if big else
                             f"mlp: sizes {brief(got)} make {n_weights:,} weights and biases")
                            + f"; a network here has at most {MAX_MLP_WEIGHTS:,} weights and "
                              f"biases (80 MB): give fewer or narrower layers")
    return got


def mlp(sizes, activation: str = "relu", loss: str | None = "logistic", seed: int = 0,
        output_activation: str | None = None) -> Sequential:
    """An MLP (7.72): MM[W[1], b[1]], σ, MM[W[2], b[2]], σ, …, MM[W[r], b[r]], then the loss.

    Weights are drawn N(0, 2/(n_in + n_out)) from ``numpy.random.default_rng(seed)``; biases are
    0.01, so a unit whose inputs are all 0 does not sit exactly on ReLU's kink (where backprop's
    σ'(0) = 0 and finite differences disagree). ``net.seed`` remembers the seed.
    ``sizes``: 2 to 1,001 whole numbers ≥ 1, with at most 10 million weights and biases in all
    (``MAX_MLP_LAYERS``, ``MAX_MLP_WEIGHTS``).
    """
    sizes = _mlp_sizes(sizes)
    seed = whole(seed, "mlp: the seed")
    hidden = len(sizes) > 2                 # the hidden layers' activation is used
    for what, name in (("activation", activation), ("output activation", output_activation)):
        if (name is not None or what == "activation" and hidden) and (
                not isinstance(name, str) or name not in M.ACTIVATIONS):
            raise BackpropError(f"mlp: unknown {what} {brief(name, 40)}; choose one of: "
                                f"{', '.join(M.ACTIVATIONS)}" + (" (or None: none)" if
                                                                 what != "activation" else ""))
    loss_module = loss_named(loss) if loss is not None else None
    rng = np.random.default_rng(seed)
    layers: list[M.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))
        layers.append(M.MM(W, np.full(n_out, 0.01)))
        if i < len(sizes) - 2:
            layers.append(M.ACTIVATIONS[activation]())
    if output_activation is not None:
        layers.append(M.ACTIVATIONS[output_activation]())
    net = Sequential(layers, loss_module)
    net.seed = int(seed)
    return net


# --- which networks are MLPs (one definition: the lab, its files and the Stepper's controls) ----

@dataclass(frozen=True)
class MLPShape:
    """The arguments of ``mlp`` that build a network's architecture (its weights aside)."""

    sizes: tuple[int, ...]
    activation: str                  # the hidden layers' σ ("relu" where there is none)
    loss: str | None                 # a name in LOSSES, or None (no loss, or not a standard one)
    output_activation: str | None


def loss_name(loss) -> str | None:
    """The name under which ``mlp`` builds exactly this loss's class, or None."""
    return next((k for k, c in M.LOSSES.items() if type(loss) is c), None)


def mlp_shape(net: Sequential) -> MLPShape | None:
    """How ``mlp`` would build net (MM, σ, MM, σ, …, MM, optionally one more σ, all of the
    classes mlp uses, one hidden σ), or None: a network of other modules, of a learner's
    subclasses, or with mixed activations is not an MLP that can be rebuilt or saved."""
    act_names = {cls: k for k, cls in M.ACTIVATIONS.items()}
    layers = list(net.layers)
    out_act = act_names.get(type(layers[-1])) if layers else None
    body = layers[:-1] if out_act else layers
    mms, acts = body[0::2], body[1::2]
    if not mms or not all(type(m) is M.MM for m in mms) or len(acts) != len(mms) - 1:
        return None
    kinds = {act_names.get(type(a)) for a in acts}
    if None in kinds or len(kinds) > 1:
        return None
    return MLPShape((mms[0].n_in,) + tuple(m.n_out for m in mms),
                    kinds.pop() if kinds else "relu", loss_name(net.loss), out_act)
