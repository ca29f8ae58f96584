"""The training lab's state as one JSON file, so a learner can send a teacher exactly what they see.

The file is data: the network's recipe (sizes, activation, loss) and θ_0, the data (a toy set's
recipe, or the arrays), the training seed, the settings in force from each iteration on, the
iteration reached, θ at that iteration and what the Stepper shows. Loading checks every field,
replays the run from θ_0 and requires the replay to reach the file's θ (to 1e-9): a file that is
damaged, from another version or edited by hand gives one clear error, and nothing changes.
"""
from __future__ import annotations

import json

import numpy as np

from . import datasets
from ..core import modules as M
from ..core.errors import BackpropError
from ..core.networks import Sequential
from ..core.jsonfile import Bad, array, checked_load, list_of, need, obj, read_json
from .train import MAX_ITERATIONS, MAX_SEED, Segment, Training, check_lr, describe, work

FORMAT = "backpropviz.lab/1"
MAX_CHARS = 32_000_000
MAX_LAYERS, MAX_WIDTH, MAX_FEATURES = 8, 256, 10
MAX_WORK = 5e10        # multiply-adds a load may replay (about a minute here); saving checks it too
MATCH = 1e-9           # relative agreement of the replayed θ with the file's (BLAS may differ)


def _arr(a) -> dict:
    a = np.asarray(a, dtype=float)
    return {"shape": list(a.shape), "data": [float(x) for x in a.ravel()]}


def to_dict(tr: Training, data_recipe: dict | None = None, view: dict | None = None) -> dict:
    """The file's content for this run (``view``: what the Stepper shows, or None)."""
    recipe = describe(tr.net)
    if recipe is None:
        raise BackpropError("only an MLP (MM, activation, MM, …, MM and a loss, as bpv.mlp "
                            "builds) can be saved; this network has other modules")
    _savable(tr, recipe, data_recipe)
    data = ({"recipe": dict(data_recipe)} if data_recipe is not None else
            {"X": _arr(tr.X), "Y": _arr(tr.Y)})
    return {
        "format": FORMAT,
        "network": {**recipe, "theta0": {p: _arr(v) for p, v in tr.net.params.items()}},
        "data": data,
        "training": {"seed": tr.seed, "iteration": tr.t,
                     "segments": [[s.start, s.lr, s.batch] for s in tr.segments]},
        "theta": {p: _arr(v) for p, v in tr.params.items()},
        "view": view,
    }


def _savable(tr: Training, recipe: dict, data_recipe) -> None:
    """A file this version could not load back is refused when saving, saying why."""
    sizes = recipe["sizes"]
    why = []
    if len(sizes) > MAX_LAYERS + 1 or max(sizes) > MAX_WIDTH or sizes[0] > MAX_FEATURES:
        why.append(f"the network {'-'.join(map(str, sizes))} is larger than a lab file holds "
                   f"(at most {MAX_LAYERS} layers of {MAX_WIDTH} units, {MAX_FEATURES} inputs)")
    if data_recipe is None and tr.n > datasets.MAX_POINTS:
        why.append(f"the data has {tr.n} examples (a lab file holds {datasets.MAX_POINTS})")
    cost = work(tr.segments, tr.t, sum(v.size for v in tr.params.values()), tr.n)
    if cost > MAX_WORK:
        why.append(f"loading it would replay {tr.t} iterations ({cost:.2g} multiply-adds, more "
                   f"than {MAX_WORK:.0g}): save an earlier run, or use a smaller network or batch")
    if why:
        raise BackpropError("cannot save this lab: " + "; ".join(why))


def dumps(tr: Training, data_recipe=None, view=None) -> str:
    return json.dumps(to_dict(tr, data_recipe, view), separators=(",", ":"), allow_nan=False)


def loads(text) -> tuple[Training, dict | None, dict | None]:
    """(training, data recipe or None, view or None) from a file's text; see the module doc."""
    return checked_load(_load, read_json(text, "lab file", MAX_CHARS), "lab file")


def _int(x, where, lo, hi):
    need(type(x) is int and lo <= x <= hi, where, f"expected a whole number from {lo} to {hi}, "
                                                   f"got {str(x)[:30]}")
    return x


def _finite(a, where):
    need(bool(np.isfinite(a).all()), where, "all numbers must be finite")
    return a


def _network(d) -> Sequential:
    obj(d, ("sizes", "activation", "loss", "theta0"), "network")
    sizes = list_of(d["sizes"], "network.sizes")
    need(2 <= len(sizes) <= MAX_LAYERS + 1, "network.sizes", f"2 to {MAX_LAYERS + 1} sizes")
    for i, n in enumerate(sizes):
        _int(n, f"network.sizes[{i}]", 1, MAX_WIDTH)
    need(sizes[0] <= MAX_FEATURES, "network.sizes", f"at most {MAX_FEATURES} input features")
    need(d["activation"] in M.ACTIVATIONS, "network.activation",
          f"one of {', '.join(M.ACTIVATIONS)}")
    need(d["loss"] in M.LOSSES, "network.loss", f"one of {', '.join(M.LOSSES)}")
    theta0 = obj(d["theta0"], [f"{p}[{i}]" for i in range(1, len(sizes)) for p in "Wb"],
                  "network.theta0")
    budget = [MAX_WIDTH * MAX_WIDTH * MAX_LAYERS * 2]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        W = _finite(array(theta0[f"W[{i}]"], f"network.theta0.W[{i}]", budget), f"W[{i}]")
        b = _finite(array(theta0[f"b[{i}]"], f"network.theta0.b[{i}]", budget), f"b[{i}]")
        need(W.shape == (n_out, n_in) and b.shape == (n_out,), f"network.theta0 layer {i}",
              f"W[{i}] must be {n_out}×{n_in} and b[{i}] of {n_out}; got {W.shape}, {b.shape}")
        layers.append(M.MM(W, b))
        if i < len(sizes) - 1:
            layers.append(M.ACTIVATIONS[d["activation"]]())
    return Sequential(layers, M.LOSSES[d["loss"]]())


def _data(d, net):
    need(isinstance(d, dict) and set(d) in ({"recipe"}, {"X", "Y"}), "data",
          "expected {\"recipe\": …} or {\"X\": …, \"Y\": …}")
    if "recipe" in d:
        r = obj(d["recipe"], ("name", "n", "noise", "seed"), "data.recipe")
        need(r["name"] in datasets.MAKERS, "data.recipe.name",
              f"one of {', '.join(datasets.MAKERS)}")
        _int(r["n"], "data.recipe.n", 4, datasets.MAX_POINTS)
        _int(r["seed"], "data.recipe.seed", 0, MAX_SEED)
        need(type(r["noise"]) in (int, float) and 0 <= r["noise"] <= 1, "data.recipe.noise",
              "a number from 0 to 1")
        ds = datasets.make(r["name"], r["n"], float(r["noise"]), r["seed"])
        return ds.X, ds.Y, dict(r)
    budget = [datasets.MAX_POINTS * (MAX_FEATURES + MAX_WIDTH)]
    X = _finite(array(d["X"], "data.X", budget), "data.X")
    need(X.ndim == 2 and 1 <= X.shape[1] <= datasets.MAX_POINTS and X.shape[0] <= MAX_FEATURES,
         "data.X", f"one example per column: at most {MAX_FEATURES} features × "
                   f"{datasets.MAX_POINTS} examples; got {list(X.shape)}")
    Y = _finite(array(d["Y"], "data.Y", budget), "data.Y")
    need(Y.shape[-1:] == X.shape[1:] and Y.size <= MAX_WIDTH * X.shape[1], "data.Y",
         f"one label (column) per example: {X.shape[1]} of them; got {list(Y.shape)}")
    return X, Y, None


def _view(v):
    if v is None:
        return None
    obj(v, ("iteration", "example", "step"), "view")
    return {k: _int(v[k], f"view.{k}", 0, 10**9) for k in ("iteration", "example", "step")}


def _load(d):
    obj(d, ("format", "network", "data", "training", "theta", "view"), "the file")
    need(d["format"] == FORMAT, "format",
          f"this is {str(d['format'])[:40]!r}; this version of backpropviz reads {FORMAT!r}")
    net = _network(d["network"])
    X, Y, recipe = _data(d["data"], net)
    tr_d = obj(d["training"], ("seed", "iteration", "segments"), "training")
    seed = _int(tr_d["seed"], "training.seed", 0, MAX_SEED)
    t = _int(tr_d["iteration"], "training.iteration", 0, MAX_ITERATIONS)
    segs = list_of(tr_d["segments"], "training.segments")
    need(1 <= len(segs) <= 1000, "training.segments", "1 to 1000 segments")
    parsed = []
    for i, s in enumerate(segs):
        w = f"training.segments[{i}]"
        list_of(s, w, 3)
        start = _int(s[0], w + " start", 1, t + 1)
        need(start == 1 if i == 0 else start > parsed[-1][0], w,
              "segments start at iteration 1 and in increasing order")
        need(type(s[1]) in (int, float), w, "the learning rate must be a number")
        try:
            lr = check_lr(s[1])
        except BackpropError as e:
            raise Bad(f"{w}: {e}") from None
        parsed.append((start, lr, _int(s[2], w + " batch", 1, X.shape[1])))
    view = _view(d["view"])
    tr = Training(net, X, Y, lr=parsed[0][1], batch=parsed[0][2], seed=seed)
    # everything is checked before the replay, the only slow part
    theta = obj(d["theta"], list(tr.params), "theta")
    budget = [MAX_WIDTH * MAX_WIDTH * MAX_LAYERS * 2]
    theirs = {}
    for p, mine in tr.params.items():
        theirs[p] = _finite(array(theta[p], f"theta.{p}", budget), f"theta.{p}")
        need(theirs[p].shape == mine.shape, f"theta.{p}", f"shape {list(mine.shape)} expected")
    if view is not None:
        need(1 <= view["iteration"] <= t, "view.iteration", f"an iteration from 1 to {t}")
        need(view["step"] <= len(tr.program.specs), "view.step",
              f"a step from 0 to {len(tr.program.specs)}")
    tr.segments = [Segment(*p) for p in parsed]
    need(tr.batch_size_at(view["iteration"]) > view["example"] if view else True,
          "view.example", "a position in that iteration's batch")
    cost = work(tr.segments, t, sum(v.size for v in tr.params.values()), tr.n)
    need(cost <= MAX_WORK, "training", f"replaying {t} iterations would take {cost:.2g} "
                                        f"multiply-adds, more than the {MAX_WORK:.0g} allowed")
    tr.step(t)                              # the replay, with the file's settings in force
    for p, mine in tr.params.items():
        scale = max(1.0, float(np.abs(mine).max()))
        need(float(np.abs(theirs[p] - mine).max()) <= MATCH * scale, f"theta.{p}",
              f"replaying the file's {t} iterations does not give its weights (edited by hand, "
              f"or saved by another version?)")
    tr.restore(theirs)                       # exactly what the learner saw
    return tr, recipe, view


def save(path, tr: Training, data_recipe=None, view=None) -> None:
    text = dumps(tr, data_recipe, view)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def load(path):
    with open(path, "rb") as f:
        return loads(f.read(MAX_CHARS + 1))


__all__ = ["FORMAT", "to_dict", "dumps", "loads", "save", "load"]
