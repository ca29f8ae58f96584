"""What a step sends from the kernel to the page: every widget message (changed traits and the
graph's scene messages) as JSON, per click of "step ▶", for the 2-16-16-1 MLP in the module view
and in its scalar circuit. Prints the median and the largest over a whole pass, and the one-off
cost of showing a graph (its drawing)."""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ipywidgets as ipw  # noqa: E402

import backpropviz as bpv  # noqa: E402

SENT: list[int] = []


def _recording(send):
    def run(self, msg, buffers=None):
        SENT.append(len(json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8")))
        return send(self, msg, buffers)
    return run


def per_step(stepper) -> list[int]:
    """Bytes sent by each click of step ▶ through the whole pass."""
    out = []
    stepper.click("reset")
    while stepper.step < stepper.model.n:
        SENT.clear()
        stepper.click("next")
        out.append(sum(SENT))
    return out


def row(name, sizes):
    print(f"{name:<28} {len(sizes):>6} {statistics.median(sizes) / 1e3:>9.2f} "
          f"{max(sizes) / 1e3:>9.2f}")


def main():
    ipw.Widget._send = _recording(ipw.Widget._send)
    net = bpv.mlp([2, 16, 16, 1], activation="relu", loss="logistic", seed=0)
    SENT.clear()
    s = bpv.Stepper(net, np.array([0.5, -1.0]), 1.0)
    opened = sum(SENT)
    print("bytes a step sends, kernel → page (every widget message as JSON), 2-16-16-1 MLP")
    print(f"{'view':<28} {'steps':>6} {'median KB':>9} {'max KB':>9}")
    row("modules", per_step(s))
    SENT.clear()
    s.bar.set_granularity("scalar circuit")
    switched = sum(SENT)
    row("scalar circuit", per_step(s))
    print(f"opening the Stepper: {opened / 1e3:.1f} KB; switching to the scalar circuit "
          f"(its drawing and first scene, once): {switched / 1e3:.1f} KB")


if __name__ == "__main__":
    main()
