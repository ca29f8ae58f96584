"""The stepper's model: a trace, a step position and the rebuild settings, in plain Python.

The widget (widgets.py) only reads this model and calls its methods; every rule about what may
happen (clamping the step, keeping the last good trace on a bad rebuild, checking a prediction)
lives here, where it is tested without a browser.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, replace

import numpy as np

from . import modules as M
from .errors import BackpropError, shape_str
from .graph import Sequential, mlp
from .text import exact, fnum, inline, step_equation, step_header, step_text
from .trace import Trace, pretty

MAX_EDITABLE_PARAMS = 60


@dataclass(frozen=True)
class Settings:
    """What a rebuild reads: the input, the label and the network (sizes, activation, loss, seed)."""

    x: tuple
    y: tuple
    sizes: tuple
    activation: str = "relu"
    loss: str = "logistic"
    seed: int = 0
    output_activation: str | None = None    # e.g. the notes' example ends MM, σ before the loss


def same_network(a: Settings, b: Settings) -> bool:
    """Settings that describe the same weights (only x, y or the loss differ)."""
    return (a.sizes, a.activation, a.output_activation, a.seed) == \
        (b.sizes, b.activation, b.output_activation, b.seed)


def parse_array(text: str, what: str) -> np.ndarray:
    """'1, 2' or '[1, 2]' or '[[1, 2], [3, 4]]' → an array; a clear error otherwise."""
    s = str(text).strip()
    if not s:
        raise BackpropError(f"{what}: empty; type numbers such as 1.0, -2")
    if not s.startswith("["):
        s = "[" + s + "]"
    try:
        value = ast.literal_eval(s)
        a = np.array(value, dtype=float)
    except (ValueError, SyntaxError, TypeError):
        raise BackpropError(f"{what}: could not read {text!r} as numbers; write e.g. "
                            f"1.0, -2 or [[1, 2], [3, 4]]") from None
    if not np.isfinite(a).all():
        raise BackpropError(f"{what}: NaN or inf in {text!r}")
    return a


def parse_sizes(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in str(text).replace("-", ",").split(",") if s.strip())
    except ValueError:
        raise BackpropError(f"layer sizes: could not read {text!r}; write e.g. 2, 3, 1") from None
    if len(sizes) < 2 or min(sizes) < 1 or max(sizes) > 64:
        raise BackpropError(f"layer sizes: need at least two sizes between 1 and 64 (input, …, "
                            f"output); got {text!r}")
    return sizes


def _arch(net: Sequential):
    """(sizes, hidden activation, output activation) of an MLP-shaped network, else None.

    MLP-shaped means what ``mlp`` builds: MM, σ, MM, σ, …, MM, optionally one more σ.
    """
    layers, name = net.layers, lambda m: type(m).__name__.lower()
    out_act = name(layers[-1]) if isinstance(layers[-1], M.Activation) else None
    body = layers[:-1] if out_act else layers
    mms, acts = body[0::2], body[1::2]
    if not mms or not all(type(m) is M.MM for m in mms) or len(acts) != len(mms) - 1 or \
            not all(isinstance(a, M.Activation) and name(a) == name(acts[0]) for a in acts):
        return None
    if out_act not in (None, *M.ACTIVATIONS) or any(name(a) not in M.ACTIVATIONS for a in acts):
        return None
    sizes = (mms[0].n_in,) + tuple(m.n_out for m in mms)
    return sizes, name(acts[0]) if acts else "relu", out_act


class StepperModel:
    """A trace and the position in it; rebuilds keep the last good trace when input is bad."""

    def __init__(self, net_or_trace, x=None, y=None):
        self.net: Sequential | None = None
        self.settings: Settings | None = None
        self.error: str = ""
        self.step = -1
        if isinstance(net_or_trace, Trace):
            self.trace = net_or_trace
        elif isinstance(net_or_trace, Sequential):
            self.net = net_or_trace
            x = np.asarray(x, dtype=float)
            self.trace = self.net.backprop(x, y)
            self.settings = self._settings(x)
        else:
            raise BackpropError("Stepper: give a network and x, y (Stepper(net, x, y)) or a trace "
                                f"(Stepper(trace)); got {type(net_or_trace).__name__}")
        self._renderer = None
        self.revealed: set[int] = set()

    def _settings(self, x) -> Settings | None:
        """The rebuild controls' settings, or None (and why, in ``fixed_reason``) where the
        controls cannot describe this network or example."""
        arch = _arch(self.net)
        loss = next((k for k, c in M.LOSSES.items() if type(self.net.loss) is c), None)
        self.fixed_reason = ("the controls describe one example, not a batch" if x.ndim != 1
                             else "the network has no standard loss" if loss is None
                             else "the network is not an MLP built from MM and one activation"
                             if arch is None else "")
        if self.fixed_reason:
            return None
        sizes, act, out_act = arch
        return Settings(tuple(x), tuple(np.ravel(self.trace.given["y"])), sizes, act, loss, 0,
                        out_act)

    # --- position -------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.trace)

    @property
    def n_forward(self) -> int:
        return self.trace.n_forward

    def go(self, k: int) -> int:
        self.step = max(-1, min(self.n - 1, int(k)))
        return self.step

    def next(self):
        return self.go(self.step + 1)

    def prev(self):
        return self.go(self.step - 1)

    def reset(self):
        return self.go(-1)

    def to_backward(self):
        """Jump to the first backward step: the seed ∂J/∂u[k] = 1."""
        return self.go(self.n_forward)

    def counter(self) -> str:
        """'forward 2/5 · backward 0/9' (how many of each have been done)."""
        f = min(self.step + 1, self.n_forward)
        b = max(0, self.step + 1 - self.n_forward)
        return f"forward {f}/{self.n_forward} · backward {b}/{self.n - self.n_forward}"

    # --- what is shown --------------------------------------------------------------------------
    @property
    def renderer(self):
        if self._renderer is None or self._renderer.trace is not self.trace:
            from .draw import renderer
            self._renderer = renderer(self.trace)
        return self._renderer

    def svg(self, caption: bool = True) -> str:
        return self.renderer.svg(self.step, caption)

    def text(self) -> str:
        return step_text(self.trace, self.step)

    def equation(self) -> dict:
        """The step's rule: header, symbols, numbers substituted, result and tag."""
        if self.step < 0:
            s = self.trace.specs[0]
            return {"header": f"before step 1/{self.n}: x, θ and y are given",
                    "symbolic": "next: " + s.formula(), "numbers": "", "result": "", "tag": ""}
        spec = self.trace.specs[self.step]
        sym, num, res = step_equation(self.trace, self.step)
        num, res = num.strip(), res.strip()
        return {"header": step_header(self.trace, self.step), "symbolic": sym,
                "numbers": "" if num == res else num, "result": res, "tag": spec.tag}

    def inspect(self, name: str) -> dict:
        """A node's value and gradient (None until known), with shapes."""
        known = set(self.trace.known(self.step))
        value = self.trace[name] if name in known else None
        gkey = "dJ/d" + name
        grad = self.trace[gkey] if gkey in known else None
        return {"name": name, "value": value, "grad": grad,
                "shape": shape_str(self.trace[name]),
                "has_grad": gkey in self.trace._where}

    # --- rebuilding -------------------------------------------------------------------------------
    def rebuild(self, weights: dict | None = None, keep_net: bool = False, fresh: bool = False,
                **changes) -> bool:
        """A new trace from changed settings; on bad input keep the last good one and say why.

        The network is kept when its sizes, activation and seed are unchanged (``keep_net``: even
        if they changed); ``fresh`` draws new weights from the seed; ``weights`` replaces some.
        """
        if self.settings is None:
            self.error = ("this stepper shows a fixed trace"
                          + (f": {self.fixed_reason}" if getattr(self, "fixed_reason", "") else
                             "; build it from a network to change it"))
            return False
        try:
            st = replace(self.settings, **changes)
            net = self._network(st, weights, keep_net, fresh)
            x = np.array(st.x, dtype=float)
            y = np.array(st.y, dtype=float)
            if y.size == 1:
                y = y.reshape(())
            trace = net.backprop(x, y)
        except BackpropError as e:
            self.error = str(e)
            return False
        self.net, self.settings, self.trace = net, st, trace
        self.error = ""
        self.revealed = set()
        self.go(self.step)          # keep the position where the new trace allows
        return True

    def _network(self, st: Settings, weights, keep_net, fresh) -> Sequential:
        old = self.settings
        if (keep_net or same_network(st, old)) and not fresh:   # perhaps another loss
            net = Sequential(self.net.layers, M.LOSSES[st.loss]())
        else:
            net = mlp(st.sizes, activation=st.activation, loss=st.loss, seed=st.seed,
                      output_activation=st.output_activation)
        return net.with_params(weights) if weights else net

    def weights_text(self) -> str:
        if self.net is None:
            return ""
        # every digit: rebuilding from this text must not round the weights
        return "\n".join(f"{k} = {exact(v)}" for k, v in self.net.params.items())

    def parse_weights(self, text: str) -> dict:
        out = {}
        for line in str(text).splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise BackpropError(f"weights: each line is 'name = numbers'; got {line!r}")
            name, val = (s.strip() for s in line.split("=", 1))
            a = parse_array(val, name)
            old = self.net.params.get(name) if self.net else None
            if old is None:
                raise BackpropError(f"weights: no parameter {name!r}; parameters: "
                                    f"{', '.join(self.net.params)}")
            if a.shape != old.shape:
                raise BackpropError(f"weights: {name} is {shape_str(old)} but the new value is "
                                    f"{shape_str(a)}")
            out[name] = a
        return out

    def loss_comparison(self) -> list[tuple[str, str]]:
        """∂J/∂u[k−1] for each loss on the same network, input and label (or why not)."""
        if self.net is None:
            return []
        x = np.array(self.settings.x, dtype=float)
        y = np.array(self.settings.y, dtype=float)
        rows = []
        k = len(self.net.layers)
        for name, cls in M.LOSSES.items():
            try:
                tr = Sequential(self.net.layers, cls()).backprop(x, y.reshape(()) if y.size == 1 else y)
                rows.append((name, f"∂J/∂u[{k}] = {inline(tr.grad(f'u[{k}]'))}  (J = {fnum(tr.loss)})"))
            except BackpropError as e:
                rows.append((name, f"not defined for this label: {str(e).split(': ')[-1]}"))
        return rows

    # --- predict, then reveal -----------------------------------------------------------------------
    def needs_prediction(self, k: int) -> bool:
        """Steps a learner predicts before they are shown: the backward rules (B1), (B2), sums."""
        return 0 <= k < self.n and self.trace.specs[k].rule in ("B1", "B2", "acc") \
            and k not in self.revealed

    def check_prediction(self, text: str, k: int | None = None, rtol=1e-2, atol=1e-3):
        """(correct, message): shape first, then values, with a hint naming the likely slip."""
        k = self.step + 1 if k is None else k
        spec = self.trace.specs[k]
        want = np.asarray(self.trace[spec.writes], dtype=float)
        try:
            got = parse_array(text, pretty(spec.writes))
        except BackpropError as e:
            return False, str(e)
        if got.size == want.size and got.ndim <= 1 and want.ndim <= 1:
            got = got.reshape(want.shape)       # 0.5 and [0.5] mean the same for a 1-vector
        close = lambda a: a.shape == want.shape and np.allclose(a, want, rtol=rtol, atol=atol)
        if close(got):
            self.revealed.add(k)
            return True, f"Right: {spec.lhs} = {inline(want)} {spec.tag}"
        hint = self._hint(spec, k, got, want)
        return False, hint

    def _hint(self, spec, k, got, want) -> str:
        tr = self.trace
        if got.shape != want.shape:
            if got.shape[::-1] == want.shape or (got.ndim == 2 and got.T.shape == want.shape):
                return (f"Wrong shape: you gave {shape_str(got)}, {spec.lhs} is {shape_str(want)} "
                        f"(the shape of {spec.node} itself, §7.4.1). A missing or extra transpose?")
            return (f"Wrong shape: you gave {shape_str(got)}, but {spec.lhs} has the shape of "
                    f"{spec.node}: {shape_str(want)} (§7.4.1)")
        reads = {key: np.asarray(tr[key], dtype=float) for key in spec.reads}
        v = next((a for key, a in reads.items() if key.startswith("dJ/d")), None)
        near = lambda a: a is not None and a.shape == got.shape and np.allclose(got, a, rtol=1e-2, atol=1e-3)
        op = next((m.op for m in tr.modules if m.name == spec.module), "")
        if spec.rule == "acc":
            if any(near(a) for a in reads.values()):
                return ("That is one user's contribution. The value is used by several modules: "
                        "sum the contributions over all its users (7.53).")
        elif spec.rule == "B1" and op in ("ReLU", "Sigmoid", "Tanh") and near(v):
            return "That is the upstream gradient v itself: you forgot σ'(z) ⊙ v (7.69)."
        elif spec.rule == "B1" and op == "MM":
            W = tr[tr.modules[int(spec.module[2:]) - 1].params[0]]
            if W.shape[0] == W.shape[1] and near(W @ v):
                return "You used W v; the backward function is Wᵀ v (7.63): a missing transpose."
        elif spec.rule == "B2" and spec.tag == "(7.65)":
            z = reads[spec.reads[0]]
            if v is not None and z.ndim == 1 and near(np.outer(z, v)):
                return "You computed z vᵀ; ∂J/∂W = v zᵀ (7.65): rows follow v, columns follow z."
        elif spec.rule == "B1" and op in ("LogisticLoss", "CrossEntropyLoss"):
            squash = "σ(t)" if op == "LogisticLoss" else "softmax(t)"
            if near(reads[spec.reads[0]]):
                return (f"That is t itself; the rule subtracts the label after squashing: "
                        f"{squash} − y {spec.tag}.")
        bad = np.argmax(np.abs(got - want))
        idx = np.unravel_index(bad, want.shape) if want.ndim else ()
        where = f"Check entry {list(map(int, idx))}: you have" if idx else "You have"
        return f"Not quite: the rule is {spec.formula()} {spec.tag}. {where} {fnum(got[idx])}."

    def reveal(self, k: int | None = None):
        k = self.step + 1 if k is None else k
        self.revealed.add(k)
