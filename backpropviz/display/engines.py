"""Finding a Graphviz engine and running it: system dot, else PyPI's graphviz-pure.

Every Graphviz run of the display layer goes through ``run_engine`` here (the layout of a graph,
PNG and GIF frames), so a test can watch or replace them all in one place.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..core.errors import BackpropError


class EngineMissing(BackpropError):
    """No Graphviz engine: neither a system dot nor graphviz-pure."""


def engine_choice(prefer: str | None = None) -> str | None:
    """The engine asked for: ``prefer``, else the environment variable BACKPROPVIZ_ENGINE, else
    None (whichever is installed)."""
    return prefer or os.environ.get("BACKPROPVIZ_ENGINE")


def find_engine(prefer: str | None = None) -> str:
    """The Graphviz binary to lay out with: system dot, else PyPI's graphviz-pure.

    ``prefer`` (or the environment variable BACKPROPVIZ_ENGINE) is "dot" or "graphviz-pure".
    """
    prefer = engine_choice(prefer)
    names = [prefer] if prefer else ["dot", "graphviz-pure"]
    for name in names:
        path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if path:
            return path
    raise EngineMissing(
        "no Graphviz engine found to draw the graph"
        + (f" (asked for {prefer!r})" if prefer else "") + ". Get one of: "
        "(1) apt-get install graphviz   (2) conda install -c conda-forge graphviz   "
        "(3) pip install graphviz-pure.  Meanwhile bpv.step_text(trace, k) shows the step as text.")


def run_engine(dot_source: str, fmt: str = "json", engine: str | None = None) -> bytes:
    """Run Graphviz quietly: its warnings never reach a notebook's output."""
    exe = find_engine(engine)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode("utf-8"),
                          capture_output=True, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        # Graphviz's own error lines, not a stream of font warnings cut off at some length
        lines = proc.stderr.decode("utf-8", "replace").splitlines()
        errors = [ln for ln in lines if "rror" in ln] or lines[-1:] or ["no output"]
        raise BackpropError(f"Graphviz ({Path(exe).name}) failed: " + "; ".join(errors[:3])[:400])
    return proc.stdout
