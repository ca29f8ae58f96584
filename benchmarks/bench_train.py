"""Training iterations per second on two moons (200 points, 2-16-16-1 ReLU MLP, logistic loss,
batch 200, α = 0.5): backpropviz's ``Training`` (trace off) against the same loop written by hand
in NumPy (Algorithm 3 and the update, nothing else) and against torch CPU (if installed).

Run:  python benchmarks/bench_train.py     (prints a Markdown table; figures, not a test;
      --quick leaves out the instruction counts under valgrind, which take about a minute)
The loops are run interleaved, several rounds, timed in CPU time of this process (other work on
the machine then costs less), and the best round of each is reported together with the median
and range of the per-round ratio to hand NumPy: this machine's speed drifts from minute to minute.
"""
from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402
from backpropviz import datasets  # noqa: E402
from backpropviz.lab.train import Training  # noqa: E402

LR, ITERS, ROUNDS = 0.5, 2000, 9


def hand_numpy(params, X, Y):
    """Gradient descent as the notes write it: (F), (7.70), (7.65), (7.66), (7.63), (7.69), update."""
    W1, b1, W2, b2, W3, b3 = (p.copy() for p in params)
    B = X.shape[1]

    def iterate():
        z1 = W1 @ X + b1[:, None]
        a1 = np.maximum(z1, 0.0)
        z2 = W2 @ a1 + b2[:, None]
        a2 = np.maximum(z2, 0.0)
        z3 = W3 @ a2 + b3[:, None]
        J = (np.logaddexp(0.0, z3) - Y * z3).sum() / B
        dz3 = (np.exp(-np.logaddexp(0.0, -z3)) - Y) / B
        dW3, db3 = dz3 @ a2.T, dz3.sum(axis=1)
        dz2 = (z2 > 0) * (W3.T @ dz3)
        dW2, db2 = dz2 @ a1.T, dz2.sum(axis=1)
        dz1 = (z1 > 0) * (W2.T @ dz2)
        dW1, db1 = dz1 @ X.T, dz1.sum(axis=1)
        for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2), (W3, dW3), (b3, db3)):
            p -= LR * g
        return float(J)
    return iterate, (W1, b1, W2, b2, W3, b3)


def torch_loop(params, X, Y):
    import torch
    torch.set_num_threads(1)
    P = [torch.tensor(np.asarray(p), requires_grad=True) for p in params]
    tX, tY = torch.tensor(X), torch.tensor(Y)
    opt = torch.optim.SGD(P, lr=LR)

    def iterate():
        W1, b1, W2, b2, W3, b3 = P
        a1 = torch.relu(W1 @ tX + b1[:, None])
        a2 = torch.relu(W2 @ a1 + b2[:, None])
        z3 = W3 @ a2 + b3[:, None]
        J = torch.nn.functional.binary_cross_entropy_with_logits(z3, tY, reduction="mean")
        opt.zero_grad(set_to_none=True)
        J.backward()
        opt.step()
        return float(J.detach())
    return iterate, P


def per_iteration(iterate, n=ITERS) -> float:
    t0 = time.process_time()
    for _ in range(n):
        iterate()
    return (time.process_time() - t0) / n * 1e6


def per_iteration_chunk(lab, n=ITERS) -> float:
    """The lab's way: many iterations per call (the widget trains in chunks between redraws)."""
    t0 = time.process_time()
    lab.step(n)
    return (time.process_time() - t0) / n * 1e6


def _one_loop(which: str, n: int):
    """Run n iterations of one loop and nothing else (the process valgrind counts)."""
    data = datasets.make("two_moons", n=200, seed=0)
    net = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
    if which == "hand":
        f = hand_numpy(list(net.params.values()), data.X, data.Y)[0]
        for _ in range(n):
            f()
    else:
        Training(net, data.X, data.Y, lr=LR).step(n)


def instructions(which: str, a: int = 10, b: int = 410) -> float | None:
    """Instructions per iteration under callgrind: the difference of a runs of b and of a
    iterations, so start-up cancels out. Repeatable whatever else the machine is doing."""
    if not shutil.which("valgrind"):
        return None
    counts = []
    for n in (a, b):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              sys.executable, __file__, "--one", which, str(n)],
                             capture_output=True, text=True, timeout=900).stderr
        counts.append(int(re.search(r"Collected : (\d+)", out).group(1)))
    return (counts[1] - counts[0]) / (b - a)


def main():
    data = datasets.make("two_moons", n=200, seed=0)
    net = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
    params = list(net.params.values())

    # The same numbers first: 50 iterations of each, compared
    lab = Training(net, data.X, data.Y, lr=LR)
    hand, hand_params = hand_numpy(params, data.X, data.Y)
    for _ in range(50):
        assert abs(lab.step() - hand()) < 1e-12
    assert all(np.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(lab.params.values(), hand_params))
    try:
        import torch
        tstep, tparams = torch_loop(params, data.X, data.Y)
        h2, _ = hand_numpy(params, data.X, data.Y)
        for _ in range(50):
            assert abs(tstep() - h2()) < 1e-9
    except ImportError:
        torch, tstep = None, None

    chunked = Training(net, data.X, data.Y, lr=LR)
    runners = {"hand NumPy": hand_numpy(params, data.X, data.Y)[0],
               "backpropviz Training, step() per iteration": Training(net, data.X, data.Y,
                                                                       lr=LR).step,
               "backpropviz Training, step(2000) (as the lab runs)": None}
    if tstep is not None:
        runners["torch CPU (1 thread)"] = torch_loop(params, data.X, data.Y)[0]
    best = {k: float("inf") for k in runners}
    ratios = {k: [] for k in runners}
    for _ in range(ROUNDS):                      # interleaved: drift hits all alike
        here = {}
        for k, f in runners.items():
            here[k] = per_iteration_chunk(chunked) if f is None else per_iteration(f)
            best[k] = min(best[k], here[k])
        for k in runners:
            ratios[k].append(here[k] / here["hand NumPy"])

    print(f"two moons, 200 points, 2-16-16-1 ReLU MLP, logistic loss, batch 200, α = {LR}; "
          f"best of {ROUNDS} interleaved rounds of {ITERS} iterations")
    print(f"Python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print()
    print("| loop | µs per iteration (best) | iterations per second | time ÷ hand NumPy's: "
          "median of rounds (range) |")
    print("|---|---:|---:|---:|")
    for k, us in best.items():
        r = sorted(ratios[k])
        print(f"| {k} | {us:.1f} | {1e6 / us:,.0f} | {r[len(r) // 2]:.2f}× "
              f"({r[0]:.2f}–{r[-1]:.2f}) |")
    quick = "--quick" in sys.argv
    hand_i, bpv_i = (0, 0) if quick else (instructions("hand"), instructions("bpv"))
    if hand_i and bpv_i:
        print()
        print(f"Instructions per iteration (valgrind callgrind, repeatable): hand NumPy "
              f"{hand_i:,.0f}, backpropviz Training {bpv_i:,.0f}: {bpv_i / hand_i:.2f}×")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        _one_loop(sys.argv[2], int(sys.argv[3]))
    else:
        main()
