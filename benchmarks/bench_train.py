"""Training iterations per second on two moons (200 points, 2-16-16-1 ReLU MLP, logistic loss,
batch 200, α = 0.5): backpropviz's ``Training`` (trace off) against the same loop written by hand
in NumPy (Algorithm 3 and the update, nothing else) and against torch CPU (if installed).

Run:  python benchmarks/bench_train.py     (prints a Markdown table; figures, not a test)
The three are run interleaved, several rounds, and the best round of each is reported: this
machine's speed drifts by ±20 % from minute to minute.
"""
from __future__ import annotations

import platform
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402
from backpropviz import datasets  # noqa: E402
from backpropviz.train import Training  # noqa: E402

LR, ITERS, ROUNDS = 0.5, 2000, 7


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
    t0 = time.perf_counter()
    for _ in range(n):
        iterate()
    return (time.perf_counter() - t0) / n * 1e6


def per_iteration_chunk(lab, n=ITERS) -> float:
    """The lab's way: many iterations per call (the widget trains in chunks between redraws)."""
    t0 = time.perf_counter()
    lab.step(n)
    return (time.perf_counter() - t0) / n * 1e6


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
    for _ in range(ROUNDS):                      # interleaved: drift hits all alike
        for k, f in runners.items():
            us = per_iteration_chunk(chunked) if f is None else per_iteration(f)
            best[k] = min(best[k], us)

    print(f"two moons, 200 points, 2-16-16-1 ReLU MLP, logistic loss, batch 200, α = {LR}; "
          f"best of {ROUNDS} interleaved rounds of {ITERS} iterations")
    print(f"Python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print()
    print("| loop | µs per iteration | iterations per second | time ÷ hand NumPy's |")
    print("|---|---:|---:|---:|")
    h = best["hand NumPy"]
    for k, us in best.items():
        print(f"| {k} | {us:.1f} | {1e6 / us:,.0f} | {us / h:.2f}× |")


if __name__ == "__main__":
    main()
