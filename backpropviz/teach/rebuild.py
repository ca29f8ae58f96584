"""Rebuilding a trace from settings a learner edits: x, y, layer sizes, activation, seed, loss,
weights. A bad setting is reported and the last good network and trace are kept.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, replace

import numpy as np

from ..core import modules as M
from ..core.errors import BackpropError, brief, shape_str
from ..core.networks import Sequential, loss_name, mlp, mlp_shape
from ..core.trace import Trace
from ..display.text import exact, fnum, inline
from ..core.checks import numeric, whole

MAX_EDITABLE_PARAMS = 60
MAX_SIZE = 64                   # units in a layer the controls make
MAX_LAYERS = 8                  # MM layers the controls make
TOO_LARGE = "a number too large for a float (above about 1.8e308)"


@dataclass(frozen=True)
class Settings:
    """What a rebuild reads: the input, the label and the network (sizes, activation, loss, seed)."""

    x: np.ndarray               # read-only arrays: a large input is never copied into a tuple
    y: np.ndarray
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
    try:
        s = str(text).strip()
    except ValueError:                          # an int Python will not write out (4,300 digits)
        raise BackpropError(f"{what}: {TOO_LARGE}") from None
    if not s:
        raise BackpropError(f"{what}: empty; type numbers such as 1.0, -2")
    if not s.startswith("["):
        s = "[" + s + "]"
    try:
        value = ast.literal_eval(s)
        if any(v is None or isinstance(v, (str, bytes, complex))
               for v in np.ravel(np.array(value, object))):
            raise ValueError
        arr = np.array(value, dtype=float)
    except OverflowError:                       # an int of more than 308 digits
        raise BackpropError(f"{what}: {TOO_LARGE} in {brief(text)}") from None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        if "integer string conversion" in str(e):      # an int of more than 4,300 digits
            raise BackpropError(f"{what}: {TOO_LARGE} in {brief(text)}") from None
        raise BackpropError(f"{what}: could not read {brief(text)} as numbers; write e.g. "
                            f"1.0, -2 or [[1, 2], [3, 4]]") from None
    if not np.isfinite(arr).all():              # 1e400 is read as inf
        raise BackpropError(f"{what}: {TOO_LARGE} in {brief(text)}")
    return arr


def parse_sizes(text: str, keep: tuple = ()) -> tuple:
    """'2, 3, 1' or '2-3-1' → (2, 3, 1), within the limits of ``check_sizes``."""
    s = text.strip() if isinstance(text, str) else brief(text)
    parts = s.split(",") if "," in s else s.replace("-", " ").split()
    try:
        sizes = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise BackpropError(f"layer sizes: could not read {brief(text)}; write e.g. 2, 3, 1") \
            from None
    return check_sizes(sizes, keep)


def check_sizes(sizes: tuple, keep: tuple = ()) -> tuple:
    """A network's sizes (input, …, output) as the Stepper draws them: 2 to MAX_LAYERS + 1 sizes,
    each a whole number from 1 to MAX_SIZE (``keep``: the network's own sizes, allowed as they
    are even if larger). One graph a learner can read, and a bounded amount of work."""
    sizes = tuple(whole(n, "layer sizes: a size", 1) for n in sizes)
    if sizes == tuple(keep):
        return sizes
    if not 2 <= len(sizes) <= MAX_LAYERS + 1 or max(sizes) > MAX_SIZE:
        raise BackpropError(f"layer sizes: 2 to {MAX_LAYERS + 1} sizes (input, …, output), each a "
                            f"whole number from 1 to {MAX_SIZE}; got "
                            f"{', '.join(brief(n, 12) for n in sizes[:12])}"
                            f"{' …' if len(sizes) > 12 else ''}")
    return sizes


def fixed_reason(net: Sequential, x) -> str:
    """Why the controls cannot describe this network or example ('' if they can)."""
    return ("the controls describe one example, not a batch" if np.ndim(x) != 1
            else "the controls rebuild networks with one of the three standard losses"
            if loss_name(net.loss) is None
            else "the controls rebuild MLPs made of MM and one activation (this network has "
                 "other modules, such as one of your own)" if mlp_shape(net) is None else "")


class Rebuilder:
    """The network and settings behind a trace; ``rebuild`` makes a new trace or says why not."""

    def __init__(self, net: Sequential, trace: Trace):
        self.net = net
        x = trace.value("u[0]")
        self.settings: Settings | None = None
        self.reason = fixed_reason(net, x)
        if not self.reason:
            shape = mlp_shape(net)
            self.settings = Settings(x, np.ravel(trace.value("y")), shape.sizes, shape.activation,
                                     shape.loss, getattr(net, "seed", 0), shape.output_activation)

    def rebuild(self, weights: dict | None = None, keep_net: bool = False, fresh: bool = False,
                **changes) -> Trace:
        """A new trace from changed settings (BackpropError if they are bad; nothing changes).

        The network is kept when its sizes, activation and seed are unchanged (``keep_net``: even
        if they changed); ``fresh`` draws new weights from the seed; ``weights`` replaces some.
        """
        if self.settings is None:
            raise BackpropError(f"this stepper shows a fixed trace: {self.reason}")
        unknown = set(changes) - set(Settings.__dataclass_fields__)
        if unknown:
            raise BackpropError(f"no setting named {sorted(unknown)}")
        for k in ("x", "y"):
            if k in changes:
                changes[k] = numeric(changes[k], k).ravel()
        if "sizes" in changes:          # the limits live here, not only in the widget
            sizes = changes["sizes"]
            if isinstance(sizes, str):
                changes["sizes"] = parse_sizes(sizes, self.settings.sizes)
            elif isinstance(sizes, (list, tuple)) or np.ndim(sizes) == 1:
                changes["sizes"] = check_sizes(tuple(sizes), self.settings.sizes)
            else:
                raise BackpropError(f"layer sizes: give them as (2, 3, 1) or '2, 3, 1'; got "
                                    f"{brief(sizes)}")
        if "seed" in changes:
            changes["seed"] = whole(changes["seed"], "seed")
        for k in ("loss", "activation", "output_activation"):
            if k in changes and not isinstance(changes[k], str) and not (
                    k == "output_activation" and changes[k] is None):
                raise BackpropError(f"{k}: give its name, e.g. 'relu' or 'squared'; got "
                                    f"{brief(changes[k])}")
        if weights is not None and not isinstance(weights, dict):
            raise BackpropError(f"weights: give a dict such as {{'W[1]': …}}; got {brief(weights)}")
        st = replace(self.settings, **changes)
        net = self._network(st, weights, keep_net, fresh)
        trace = net.backprop(st.x, st.y.reshape(()) if st.y.size == 1 else st.y)
        self.net, self.settings = net, st
        return trace

    def _network(self, st: Settings, weights, keep_net, fresh) -> Sequential:
        if st.loss not in M.LOSSES:
            raise BackpropError(f"loss: choose one of {', '.join(M.LOSSES)}; got {brief(st.loss)}")
        if (keep_net or same_network(st, self.settings)) and not fresh:   # perhaps another loss
            net = Sequential(self.net.layers, M.LOSSES[st.loss]())
            net.seed = getattr(self.net, "seed", 0)
        else:
            net = mlp(st.sizes, activation=st.activation, loss=st.loss, seed=st.seed,
                      output_activation=st.output_activation)
        return net.with_params(weights) if weights else net

    def weights_text(self) -> str:
        # every digit: rebuilding from this text must not round the weights
        return "\n".join(f"{k} = {exact(v)}" for k, v in self.net.params.items())

    def parse_weights(self, text: str) -> dict:
        out = {}
        for line in str(text).splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise BackpropError(f"weights: each line is 'name = numbers'; got {brief(line)}")
            name, val = (s.strip() for s in line.split("=", 1))
            old = self.net.params.get(name)
            if old is None:
                raise BackpropError(f"weights: no parameter {brief(name)}; parameters: "
                                    f"{', '.join(self.net.params)}")
            arr = parse_array(val, name)
            if arr.shape != old.shape:
                raise BackpropError(f"weights: {name} is {shape_str(old)} but the new value is "
                                    f"{shape_str(arr)}")
            out[name] = arr
        return out

    def warning(self) -> str:
        """A loss that does not fit the network's output, said plainly ('' if it fits)."""
        if isinstance(self.net.loss, M.LogisticLoss) and isinstance(self.net.layers[-1], M.Sigmoid):
            return ("The logistic loss takes a logit t and applies σ itself, (σ(t) − y) in (7.70); "
                    "this network already ends in σ, so σ is applied twice and the loss treats a "
                    "probability as a logit. Use the squared loss here (as the notes' example "
                    "does), or end the network with MM.")
        return ""

    @property
    def n_params(self) -> int:
        return sum(a.size for a in self.net.params.values())

    def loss_comparison(self, upto: int | None = None) -> list[tuple[str, str]]:
        """∂J/∂u[k−1] under each loss on the same network, input and label (or why not)."""
        st = self.settings
        x, y = np.array(st.x, dtype=float), np.array(st.y, dtype=float)
        k = len(self.net.layers)
        rows = []
        for name, cls in M.LOSSES.items():
            try:
                tr = Sequential(self.net.layers, cls()).backprop(x, y.reshape(()) if y.size == 1
                                                                 else y)
                rows.append((name, f"∂J/∂u[{k}] = {inline(tr.grad(f'u[{k}]'))}  "
                                   f"(J = {fnum(tr.loss)})"))
            except BackpropError as e:
                rows.append((name, f"not defined for this label: {str(e).split(': ')[-1]}"))
        return rows
