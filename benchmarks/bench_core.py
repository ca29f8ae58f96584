"""Forward + backward of a 2-16-16-1 MLP (ReLU, logistic loss): backpropviz's traced pass against
the same pass written by hand in NumPy (the notes' way) and torch CPU autograd (if installed).

Run:  python benchmarks/bench_core.py      (prints a Markdown table; figures, not a test)
"""
from __future__ import annotations

import platform
import sys
import timeit

import numpy as np

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
import backpropviz as bpv  # noqa: E402


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


def best_of(fn, repeat=7, number=None) -> float:
    """Best per-call time in µs over several repeats (the least disturbed measurement)."""
    if number is None:
        n, t = 1, 0.0
        while t < 0.05:
            n *= 2
            t = timeit.timeit(fn, number=n)
        number = n
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main():
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
    for B in (1, 100):
        x = rng.normal(size=2) if B == 1 else rng.normal(size=(2, B))
        y = np.array([1.0]) if B == 1 else (rng.random((1, B)) < 0.5).astype(float)
        # same numbers from both: the benchmark compares equal work
        tr = net.backprop(x, y)
        J, grads = hand(x, y)
        assert abs(tr.loss - J) < 1e-12
        assert all(np.allclose(tr.grad(k), g) for k, g in zip(net.params, grads))
        t_hand = best_of(lambda: hand(x, y))
        t_bpv = best_of(lambda: net.backprop(x, y))
        t_steps = best_of(lambda: net.backprop(x, y).steps)
        t_torch = None
        if tstep is not None:
            tx, ty = torch.tensor(x), torch.tensor(y)
            assert abs(float(tstep(tx, ty)) - J) < 1e-9
            t_torch = best_of(lambda: tstep(tx, ty))
        rows.append((B, t_hand, t_bpv, t_steps, t_torch))

    print(f"2-16-16-1 MLP, ReLU, logistic loss; best of 7 repeats; µs per forward+backward pass")
    print(f"Python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print()
    print("| batch | hand NumPy | backpropviz trace | ratio | trace + Step objects | torch autograd "
          "| torch ratio | bpv speed-up over torch |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for B, th, tb, ts, tt in rows:
        tcol = (f"{tt:.1f} | {tt / th:.2f}× | {tt / tb:.2f}×" if tt else "– | – | –")
        print(f"| {B} | {th:.1f} | {tb:.1f} | {tb / th:.2f}× | {ts:.1f} | {tcol} |")


if __name__ == "__main__":
    main()
