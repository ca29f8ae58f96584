"""Forward + backward of a 2-16-16-1 MLP (ReLU, logistic loss): backpropviz's traced pass against
the same pass written by hand in NumPy (the notes' way) and torch CPU autograd (if installed).

Run:  python benchmarks/bench_core.py [--rounds N] [--batch 1 100]
      (prints a Markdown table; figures, not a test)

The passes are timed interleaved: each round times a few milliseconds of calls of every pass in
turn, in CPU time of this process (time.process_time: other work on a shared machine then costs
less), and the table gives the median over rounds of the per-round ratio trace / hand, which is
robust to the machine's speed drifting, with the best (least disturbed) time of each. The aim
(issue 20): recording a pass costs at most 1.5× the hand-written one, at batch 1 and at batch 100.
"""
from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402

ROUNDS = 201


def hand_numpy(W1, b1, W2, b2, W3, b3):
    """The pass as the notes write it (Algorithm 3), with no bookkeeping at all."""
    def sigmoid(t):
        return np.exp(-np.logaddexp(0.0, -t))

    def step(x, y):
        batch = x.ndim == 2
        B = x.shape[1] if batch else 1
        z1 = W1 @ x + (b1[:, None] if batch else b1)
        a1 = np.maximum(z1, 0.0)
        z2 = W2 @ a1 + (b2[:, None] if batch else b2)
        a2 = np.maximum(z2, 0.0)
        z3 = W3 @ a2 + (b3[:, None] if batch else b3)
        J = (np.logaddexp(0.0, z3) - y * z3).sum() / B
        dz3 = (sigmoid(z3) - y) / B                        # (7.70)
        dW3 = dz3 @ a2.T if batch else np.outer(dz3, a2)   # (7.65)
        db3 = dz3.sum(axis=1) if batch else dz3            # (7.66)
        da2 = W3.T @ dz3                                   # (7.63)
        dz2 = (z2 > 0) * da2                               # (7.69)
        dW2 = dz2 @ a1.T if batch else np.outer(dz2, a1)
        db2 = dz2.sum(axis=1) if batch else dz2
        da1 = W2.T @ dz2
        dz1 = (z1 > 0) * da1
        dW1 = dz1 @ x.T if batch else np.outer(dz1, x)
        db1 = dz1.sum(axis=1) if batch else dz1
        return J, (dW1, db1, dW2, db2, dW3, db3)
    return step


def torch_step(params):
    import torch
    torch.set_num_threads(1)
    P = [torch.tensor(np.asarray(p), requires_grad=True) for p in params]

    def step(x, y):
        W1, b1, W2, b2, W3, b3 = P
        batch = x.dim() == 2
        z1 = W1 @ x + (b1[:, None] if batch else b1)
        a1 = torch.relu(z1)
        z2 = W2 @ a1 + (b2[:, None] if batch else b2)
        a2 = torch.relu(z2)
        z3 = W3 @ a2 + (b3[:, None] if batch else b3)
        J = torch.nn.functional.binary_cross_entropy_with_logits(z3, y, reduction="sum") / (
            x.shape[1] if batch else 1)
        for p in P:
            p.grad = None
        J.backward()
        return J
    return step


def _calls_per_round(fn, target=0.004) -> int:
    """How many calls of fn make a round of about ``target`` seconds of CPU time."""
    n = 1
    while True:
        t0 = time.process_time()
        for _ in range(n):
            fn()
        if time.process_time() - t0 >= target / 4 or n >= 1 << 16:
            return max(1, round(n * target / max(time.process_time() - t0, 1e-9)))
        n *= 2


def interleaved(fns: dict, rounds: int = ROUNDS) -> dict:
    """Per-call CPU time of each function, measured in alternating rounds.

    Every round times ``n`` calls of each function in turn (the order alternates between rounds),
    so that all of them see the same state of a shared, noisy machine. Returns, per name, the
    per-round times in µs per call; compare them round by round (``ratios``). Garbage collection is
    off during a round, as in ``timeit``, and runs between rounds.
    """
    n = _calls_per_round(next(iter(fns.values())))
    times = {name: [] for name in fns}
    order = list(fns.items())
    for r in range(rounds):
        gc.collect()
        gc.disable()
        try:
            for name, fn in (order if r % 2 == 0 else order[::-1]):
                t0 = time.process_time()
                for _ in range(n):
                    fn()
                times[name].append((time.process_time() - t0) / n * 1e6)
        finally:
            gc.enable()
    return times


def ratios(times: dict, name: str, base: str = "hand") -> list[float]:
    """The per-round ratio of ``name``'s time to ``base``'s (same round, same machine state)."""
    return [t / h for t, h in zip(times[name], times[base])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds (default {ROUNDS})")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 100], help="batch sizes")
    args = ap.parse_args(argv)

    net = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
    params = list(net.params.values())
    rng = np.random.default_rng(1)
    hand = hand_numpy(*params)
    try:
        import torch
        tstep = torch_step(params)
    except ImportError:
        torch, tstep = None, None

    rows = []
    for B in args.batch:
        x = rng.normal(size=2) if B == 1 else rng.normal(size=(2, B))
        y = np.array([1.0]) if B == 1 else (rng.random((1, B)) < 0.5).astype(float)
        # same numbers from both: the benchmark compares equal work
        tr = net.backprop(x, y)
        J, grads = hand(x, y)
        assert abs(tr.loss - J) < 1e-12
        assert all(np.allclose(tr.grad(k), g) for k, g in zip(net.params, grads))
        fns = {"hand": lambda x=x, y=y: hand(x, y),
               "bpv": lambda x=x, y=y: net.backprop(x, y),
               "steps": lambda x=x, y=y: net.backprop(x, y).steps}
        if tstep is not None:
            tx, ty = torch.tensor(x), torch.tensor(y)
            assert abs(float(tstep(tx, ty)) - J) < 1e-9
            fns["torch"] = lambda tx=tx, ty=ty: tstep(tx, ty)
        times = interleaved(fns, args.rounds)
        rows.append((B, times))

    print(f"2-16-16-1 MLP, ReLU, logistic loss; µs of CPU time (time.process_time) per forward + "
          f"backward pass; {args.rounds} interleaved rounds")
    print(f"Python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print()
    print("| batch | hand NumPy (best) | backpropviz trace (best) | trace / hand: median "
          "[IQR] | ratio of bests | trace + Step objects (best) | torch autograd (best) "
          "| torch / hand: median |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for B, t in rows:
        r = ratios(t, "bpv")
        q1, med, q3 = np.percentile(r, [25, 50, 75])
        tcol = (f"{min(t['torch']):.1f} | {statistics.median(ratios(t, 'torch')):.2f}×"
                if "torch" in t else "– | –")
        print(f"| {B} | {min(t['hand']):.1f} | {min(t['bpv']):.1f} | {med:.2f}× "
              f"[{q1:.2f}–{q3:.2f}] | {min(t['bpv']) / min(t['hand']):.2f}× | "
              f"{min(t['steps']):.1f} | {tcol} |")
    print()
    print("The median is over rounds of the ratio within one round (aim: at most 1.5×); the "
          "machine may be shared, so run it a few times.")


if __name__ == "__main__":
    main()
