"""The cost of backprop, shown: Theorem 7.4.1, Remark 7.4.2 and the memory of the forward pass.

* ``theorem_sweep(widths)``: growing MLPs, each built as its scalar circuit (``bpv.circuit``),
  with the forward operations N, the backward operations (``circuit.counts``) and the time to
  build the circuit with every forward value and gradient. ``plot_theorem(sweep)`` draws backward
  operations (and time) against N, with straight lines through the origin and their constants:
  Theorem 7.4.1, a gradient circuit of size O(N), computed in time O(N).
* Remark 7.4.2 (as corrected: a backward function applied to one vector v costs about as much as
  the module's forward pass, while forming the full Jacobian (7.59) and multiplying it by v costs
  O(n²) or more): ``jacobian_counts(kind, n)`` counts both routes for an MM module (n×n) and an
  elementwise activation of width n; ``jacobian_vs_backward(ns)`` adds measured times;
  ``plot_jacobian(result)`` draws them; ``compare_routes(module, z, v)`` computes both routes and
  shows that they give the same gradient.
* ``stored(trace)``: what the forward pass must keep for the backward pass, read off the trace's
  steps: every value a backward step reads, in numbers and bytes, per node and in total.

NumPy only at import; matplotlib is imported inside the plotting functions, which build a
``matplotlib.figure.Figure`` directly (never pyplot), so the user's backend is left alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core import modules as M
from ..core.errors import BackpropError
from ..core.trace import Trace

__all__ = ["Sweep", "theorem_sweep", "plot_theorem", "fit_through_origin",
           "jacobian_counts", "jacobian_route", "backward_route", "compare_routes", "Routes",
           "JacobianComparison", "jacobian_vs_backward", "plot_jacobian",
           "Stored", "stored", "figure_image"]


def fit_through_origin(x, y) -> float:
    """The constant c of the least-squares line y = c·x through the origin."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    den = float(np.dot(x[ok], x[ok]))
    return float(np.dot(x[ok], y[ok]) / den) if den else float("nan")


# --- Theorem 7.4.1: a sweep of growing MLPs --------------------------------------------------------

@dataclass
class Sweep:
    """One row per network: its layer sizes, N, backward operations and build times (seconds).

    ``time`` is the first build of the circuit (compiling its structure, then every forward
    value and gradient); ``time_numbers`` a second build on the compiled structure (the forward
    and backward arithmetic alone). Counts are exact and the same on every machine; times are not.
    """

    sizes: list
    N: np.ndarray
    backward: np.ndarray
    time: np.ndarray
    time_numbers: np.ndarray
    activation: str = "relu"
    loss: str = "logistic"

    @property
    def constant(self) -> float:
        """c in backward ≈ c·N (least squares through the origin)."""
        return fit_through_origin(self.N, self.backward)

    @property
    def ratios(self) -> np.ndarray:
        """backward / N for each network: bounded by a constant (Theorem 7.4.1)."""
        return self.backward / self.N

    @property
    def seconds_per_operation(self) -> float:
        return fit_through_origin(self.N, self.time)

    def table(self, times: bool = False) -> str:
        """The rows as text; without times (the default) it is the same on every machine."""
        head = f"{'network':<18} {'N':>9} {'backward':>9} {'backward/N':>11}"
        if times:
            head += f" {'build (s)':>10} {'numbers (s)':>12}"
        lines = [head]
        for s, n, b, t, tn in zip(self.sizes, self.N, self.backward, self.time,
                                  self.time_numbers):
            row = f"{'-'.join(map(str, s)):<18} {int(n):>9,} {int(b):>9,} {b / n:>11.3f}"
            if times:
                row += f" {t:>10.3f} {tn:>12.4f}"
            lines.append(row)
        lines.append(f"fitted through the origin: backward ≈ {self.constant:.3f} N")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _sizes(w, depth, n_in, n_out):
    if isinstance(w, (list, tuple)):
        return [int(s) for s in w]
    return [n_in] + [int(w)] * depth + [n_out]


def theorem_sweep(widths, depth: int = 2, n_in: int = 2, n_out: int = 1,
                  activation: str = "relu", loss: str = "logistic", seed: int = 0,
                  batch: int | None = None, cold: bool = True) -> Sweep:
    """Build the scalar circuit of growing MLPs and count and time it (Theorem 7.4.1).

    ``widths``: hidden widths (``depth`` hidden layers of that width between ``n_in`` inputs and
    ``n_out`` outputs), or whole layer-size lists such as ``[2, 16, 16, 1]``. Each network is
    ``bpv.mlp(sizes, activation, loss, seed)`` on one seeded random example (or a batch of
    ``batch``). With ``cold`` (the default) a structure compiled before for the same graph is
    dropped first, so ``time`` includes compiling it; it is dropped again afterwards, so a sweep
    does not fill the circuit cache (a circuit of 100,000 operations holds about 400 MB).
    """
    from ..core.networks import mlp
    from .circuit import circuit
    from .engine import clear_caches
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        sizes = _sizes(w, depth, n_in, n_out)
        net = mlp(sizes, activation=activation, loss=loss, seed=seed)
        shape = (sizes[0],) if batch is None else (sizes[0], batch)
        x = rng.normal(size=shape)
        if loss == "cross_entropy":
            y = rng.integers(0, sizes[-1], size=() if batch is None else batch)
        else:
            yshape = (sizes[-1],) if batch is None else (sizes[-1], batch)
            y = (rng.random(yshape) < 0.5).astype(float)
        tr = net.backprop(x, y)
        if cold:
            clear_caches(tr)
        t0 = time.perf_counter()
        c = circuit(tr)
        t1 = time.perf_counter()
        circuit(tr)
        t2 = time.perf_counter()
        counts = c.counts
        rows.append((sizes, counts.forward, counts.backward, t1 - t0, t2 - t1))
        del c
        if cold:
            clear_caches(tr)
    if not rows:
        raise BackpropError("theorem_sweep: give at least one width")
    sizes, N, B, T, TN = zip(*rows)
    return Sweep(list(sizes), np.array(N, dtype=np.int64), np.array(B, dtype=np.int64),
                 np.array(T), np.array(TN), activation, loss)


def plot_theorem(sweep: Sweep, circuit=None, times: bool = True):
    """Backward operations against N (left) and build time against N (right), each with the
    measured points and the straight line through the origin fitted to them; the constants are
    in the legends. ``circuit``: a learner's own circuit, marked on the left panel with its own
    N and backward count. Returns a ``matplotlib.figure.Figure`` (no pyplot).

    Lines: left, measured + fit (+ your network); right, build + fit, and on a twin axis
    (milliseconds) numbers-only + fit.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4) if times else (5.5, 4), layout="constrained")
    axes = fig.subplots(1, 2) if times else [fig.subplots()]
    ax = axes[0]
    N = sweep.N.astype(float)
    xs = np.array([0.0, N.max() * 1.05])
    c = sweep.constant
    ax.plot(N, sweep.backward, "o-", color="#0072B2", label="backward operations (measured)")
    ax.plot(xs, c * xs, "--", color="#D55E00", label=f"{c:.3f} · N (fit through 0)")
    if circuit is not None:
        cn = circuit.counts
        ax.plot([cn.forward], [cn.backward], "*", color="#009E73", markersize=14,
                label=f"your network: N = {cn.forward:,}, backward = {cn.backward:,}")
    ax.set_xlabel("forward operations N")
    ax.set_ylabel("backward operations")
    ax.set_title(f"Theorem 7.4.1: backward ≈ {c:.3f} N")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    if times:
        ax = axes[1]
        k, kn = sweep.seconds_per_operation, fit_through_origin(N, sweep.time_numbers)
        ax.plot(N, sweep.time, "o-", color="#0072B2", label="build the circuit (first time)")
        ax.plot(xs, k * xs, "--", color="#D55E00", label=f"{k * 1e6:.2f} µs · N")
        tw = ax.twinx()             # the arithmetic alone is ~100× faster: its own scale
        tw.plot(N, sweep.time_numbers * 1e3, "s-", color="#009E73",
                label="forward + backward numbers only (right scale)")
        tw.plot(xs, kn * xs * 1e3, ":", color="#CC79A7", label=f"{kn * 1e6:.3f} µs · N")
        ax.set_xlabel("forward operations N")
        ax.set_ylabel("seconds (build)")
        tw.set_ylabel("milliseconds (numbers only)")
        ax.set_title("time: also straight lines (this machine)")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        tw.set_ylim(bottom=0)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    return fig


# --- Remark 7.4.2: the full Jacobian against the backward function ------------------------------

KINDS = ("activation", "MM")


def jacobian_counts(kind: str, n: int) -> dict:
    """Exact operation counts for one module of width n, one example.

    ``kind="activation"``: σ elementwise on z ∈ Rⁿ.
      forward n (one σ per entry); backward (7.69) σ'(z) ⊙ v: n derivatives + n products = 2n;
      Jacobian (7.67): n² entries (n derivatives on the diagonal, zeros elsewhere), then the
      matrix times v: n² products + n(n − 1) additions; with the n derivatives, 2n².
    ``kind="MM"``: Wz + b with W n×n.
      forward n² products + n² additions (a chain over the n products and b) = 2n²; backward
      Wᵀv (7.63): n² + n(n − 1), v zᵀ (7.65): n², v (7.66): 0, so 3n² − n; Jacobian of the
      output (n numbers) with respect to all n + n² + n inputs (z, W, b), (7.59)/(7.62): n³ + 2n²
      entries (W_ij, δ_ik z_j, δ_ik, no arithmetic), then for each of the n² + 2n inputs a sum
      of n products: (n² + 2n)(2n − 1) operations.
    """
    n = int(n)
    if n < 1:
        raise BackpropError(f"jacobian_counts: n must be a positive integer; got {n}")
    if kind == "activation":
        return {"kind": kind, "n": n, "forward": n, "backward": 2 * n,
                "jacobian_entries": n * n, "jacobian": 2 * n * n}
    if kind == "MM":
        inputs = n * n + 2 * n
        return {"kind": kind, "n": n, "forward": 2 * n * n, "backward": 3 * n * n - n,
                "jacobian_entries": n * inputs, "jacobian": inputs * (2 * n - 1)}
    raise BackpropError(f"jacobian_counts: kind must be one of {', '.join(KINDS)}; got {kind!r}")


def _check_route_module(module):
    if isinstance(module, M.MM) or isinstance(module, M.Activation):
        return
    raise BackpropError(f"compare_routes: give an MM module or an elementwise activation "
                        f"(ReLU, Sigmoid, Tanh, Identity); got {type(module).__name__}")


def jacobian_route(module, z, v) -> dict:
    """∂J/∂(each input) by forming the full Jacobian (7.59) and multiplying it by v.

    Activation σ: the n×n matrix [∂σ_j(z)/∂z_i] of (7.67), diag(σ'(z)) (7.68), times v.
    MM[W, b]: the matrix [∂(Wz + b)_j/∂z_i] of (7.62) (that is, Wᵀ) times v; the 3-index array
    ∂(Wz + b)_i/∂W_kl = δ_ik z_l contracted with v; the matrix [∂(Wz + b)_j/∂b_i] (the identity)
    of (7.66) times v. Returns {"z": …} or {"z": …, "W": …, "b": …}. One example (z a vector).
    """
    _check_route_module(module)
    z, v = np.asarray(z, float), np.asarray(v, float)
    if isinstance(module, M.Activation):
        n = z.size
        Jt = np.zeros((n, n))
        Jt[np.arange(n), np.arange(n)] = module.derivative(z)   # ∂σ_j/∂z_i = 0 for i ≠ j
        return {"z": Jt @ v}
    W = module.W
    m, n = W.shape
    Jz = np.empty((n, m))                       # row i: ∂(Wz + b)_1..m / ∂z_i = W_1i … W_mi
    Jz[...] = W.T
    JW = np.zeros((m, m, n))                    # ∂(Wz + b)_i / ∂W_kl = δ_ik z_l
    JW[np.arange(m), np.arange(m), :] = z
    Jb = np.eye(m)                              # ∂(Wz + b)_j / ∂b_i = δ_ij
    return {"z": Jz @ v, "W": np.tensordot(v, JW, axes=(0, 0)), "b": Jb.T @ v}


def backward_route(module, z, v) -> dict:
    """∂J/∂(each input) with the module's backward functions: σ'(z) ⊙ v (7.69); Wᵀv (7.63),
    v zᵀ (7.65), v (7.66)."""
    _check_route_module(module)
    z, v = np.asarray(z, float), np.asarray(v, float)
    out = {"z": module.backward(z, v)}
    if isinstance(module, M.MM):
        out.update(module.param_grads(z, v))
    return out


@dataclass
class Routes:
    """The gradient both ways and how far apart they are (``same``: within 1e-12)."""

    jacobian: dict
    backward: dict
    max_difference: float

    @property
    def same(self) -> bool:
        return all(np.allclose(self.jacobian[k], self.backward[k], rtol=1e-12, atol=1e-12)
                   for k in self.backward)

    def __str__(self):
        # the difference itself is rounding noise that depends on the CPU's order of sums:
        # say it against the tolerance, never print it
        return (f"inputs {', '.join(self.backward)}: the Jacobian route and the backward "
                f"function agree to 10⁻¹²: {self.same}")


def compare_routes(module, z, v) -> Routes:
    """Both routes for one module, one example: they give the same gradient (Remark 7.4.2)."""
    J, B = jacobian_route(module, z, v), backward_route(module, z, v)
    diff = max(float(np.max(np.abs(J[k] - B[k]))) for k in B)
    return Routes(J, B, diff)


@dataclass
class JacobianComparison:
    """Rows (one per module kind and n): exact counts and measured median times in seconds
    (NaN where the Jacobian would have more than ``max_entries`` entries and was not formed)."""

    rows: list = field(default_factory=list)

    def of(self, kind: str) -> list:
        return [r for r in self.rows if r["kind"] == kind]

    def table(self, times: bool = False) -> str:
        head = (f"{'module':<11} {'n':>5} {'forward':>12} {'backward fn':>12} "
                f"{'Jacobian':>15} {'Jacobian/backward':>18}")
        if times:
            head += f" {'t backward (s)':>15} {'t Jacobian (s)':>15}"
        lines = [head]
        for r in self.rows:
            row = (f"{r['kind']:<11} {r['n']:>5} {r['forward']:>12,} {r['backward']:>12,} "
                   f"{r['jacobian']:>15,} {r['jacobian'] / r['backward']:>18,.1f}")
            if times:
                row += f" {r['time_backward']:>15.2e} {r['time_jacobian']:>15.2e}"
            lines.append(row)
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _median_time(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def jacobian_vs_backward(ns=(100, 200, 500, 1000, 2000, 4000), kinds=KINDS,
                         activation: str = "sigmoid", repeat: int = 3, seed: int = 0,
                         max_entries: float = 2e7) -> JacobianComparison:
    """For each n: the counts of ``jacobian_counts`` and the measured median times of the two
    routes (``jacobian_route``, ``backward_route``) on seeded random W (n×n), b, z, v. An MM's
    full Jacobian has n³ + 2n² entries, so above ``max_entries`` (160 MB of float64) it is only
    counted, not formed (its time is NaN)."""
    rng = np.random.default_rng(seed)
    act = M.ACTIVATIONS[activation]()
    res = JacobianComparison()
    for kind in kinds:
        for n in ns:
            row = jacobian_counts(kind, n)
            z, v = rng.normal(size=n), rng.normal(size=n)
            mod = act if kind == "activation" else M.MM(rng.normal(size=(n, n)),
                                                         rng.normal(size=n))
            row["time_backward"] = _median_time(lambda: backward_route(mod, z, v), repeat)
            row["time_jacobian"] = (_median_time(lambda: jacobian_route(mod, z, v), repeat)
                                    if row["jacobian_entries"] <= max_entries else float("nan"))
            res.rows.append(row)
    return res


def plot_jacobian(result: JacobianComparison, times: bool = True):
    """Operations (left) and measured time (right) against n, log–log: for each module kind, the
    full Jacobian (7.59) and the backward function. Slope 2 (n²) against slope 1 (n) for the
    activation; 3 against 2 for MM. Returns a ``matplotlib.figure.Figure`` (no pyplot).
    Lines per panel: 2 per module kind (Jacobian, backward function)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4) if times else (5.5, 4), layout="constrained")
    axes = fig.subplots(1, 2) if times else [fig.subplots()]
    colours = {"activation": ("#D55E00", "#0072B2"), "MM": ("#CC79A7", "#009E73")}
    name = {"activation": "σ", "MM": "MM"}
    for kind in dict.fromkeys(r["kind"] for r in result.rows):
        rows = result.of(kind)
        n = np.array([r["n"] for r in rows], float)
        cj, cb = colours.get(kind, ("k", "grey"))
        axes[0].plot(n, [r["jacobian"] for r in rows], "o-", color=cj,
                     label=f"{name[kind]}: full Jacobian × v (7.59)")
        axes[0].plot(n, [r["backward"] for r in rows], "s--", color=cb,
                     label=f"{name[kind]}: backward function " +
                     ("(7.69)" if kind == "activation" else "(7.63), (7.65), (7.66)"))
        if times:
            axes[1].plot(n, [r["time_jacobian"] for r in rows], "o-", color=cj,
                         label=f"{name[kind]}: full Jacobian × v")
            axes[1].plot(n, [r["time_backward"] for r in rows], "s--", color=cb,
                         label=f"{name[kind]}: backward function")
    axes[0].set_ylabel("operations")
    axes[0].set_title("Remark 7.4.2: operations (exact)")
    if times:
        axes[1].set_ylabel("seconds (median, this machine)")
        axes[1].set_title("measured time")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width n")
        ax.legend(loc="upper left", fontsize=8)
    return fig


# --- memory: what the forward pass keeps for the backward pass -----------------------------------

@dataclass
class Stored:
    """The values the backward steps read, per node: ``rows`` are dicts with node, kind
    (input, value, param, label, const), shape, numbers, bytes and the numbers of the backward
    steps that read it. ``numbers``/``bytes`` total what the forward pass keeps (x = u[0] and
    the values it computes); ``all_numbers``/``all_bytes`` add the parameters, labels and
    constants the backward steps also read (they are kept anyway)."""

    rows: list

    def _total(self, what, kinds=None):
        return int(sum(r[what] for r in self.rows if kinds is None or r["kind"] in kinds))

    @property
    def numbers(self) -> int:
        return self._total("numbers", ("input", "value", "loss"))

    @property
    def bytes(self) -> int:
        return self._total("bytes", ("input", "value", "loss"))

    @property
    def all_numbers(self) -> int:
        return self._total("numbers")

    @property
    def all_bytes(self) -> int:
        return self._total("bytes")

    def by_kind(self) -> dict:
        out: dict = {}
        for r in self.rows:
            n, b = out.get(r["kind"], (0, 0))
            out[r["kind"]] = (n + r["numbers"], b + r["bytes"])
        return out

    def table(self, limit: int = 40) -> str:
        lines = [f"{'node':<10} {'kind':<6} {'shape':<9} {'numbers':>8} {'bytes':>9}   read by "
                 f"backward steps"]
        for r in self.rows[:limit]:
            steps = r["read_by"]
            shown = ", ".join(map(str, steps[:6])) + (", …" if len(steps) > 6 else "")
            shape = "×".join(map(str, r["shape"])) or "1"
            lines.append(f"{r['node']:<10} {r['kind']:<6} {shape:<9} {r['numbers']:>8,} "
                         f"{r['bytes']:>9,}   {shown}")
        if len(self.rows) > limit:
            lines.append(f"… and {len(self.rows) - limit:,} more nodes")
        lines.append(f"kept by the forward pass (x and the values u): {self.numbers:,} numbers = "
                     f"{self.bytes:,} bytes; with the parameters and labels read too: "
                     f"{self.all_numbers:,} numbers = {self.all_bytes:,} bytes")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def stored(trace: Trace) -> Stored:
    """What the forward pass must keep for the backward pass: every value (not gradient) that a
    backward step reads, from the trace's steps, in the order of the trace's nodes. Works on a
    module-level trace and on a scalar circuit (where an addition's backward step reads no value
    at all, and a product's reads the other factor)."""
    if not isinstance(trace, Trace):
        raise BackpropError(f"stored: give a trace (net.backprop(x, y), bpv.circuit(trace)); "
                            f"got {type(trace).__name__}")
    read_by: dict = {}
    for i, s in enumerate(trace.specs):
        if s.phase != "backward":
            continue
        for k in s.reads:
            if not k.grad:
                read_by.setdefault(k.node, []).append(i + 1)
    rows = []
    for node in trace.nodes:
        steps = read_by.get(node.name)
        if steps is None:
            continue
        a = np.asarray(trace.value(node.name))
        rows.append({"node": node.name, "kind": node.kind, "shape": a.shape,
                     "numbers": int(a.size), "bytes": int(a.nbytes), "read_by": steps})
    return Stored(rows)


def figure_image(fig, fmt: str = "png"):
    """A Figure as an IPython image (for a notebook whose kernel never imported pyplot)."""
    import io

    from IPython.display import SVG, Image
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=90)
    return Image(buf.getvalue(), format="png") if fmt == "png" else SVG(buf.getvalue())
