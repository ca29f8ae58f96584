"""Build the lessons: lessons/*.py (jupytext percent format: the sources, which review well as
text) → notebooks/*.ipynb, executed, so strict nbval compares their outputs on every test run.

    ./dev lessons                 # every lesson
    ./dev lessons 03_modules      # some (by name, with or without .py)
    ./dev lessons --check         # say which notebooks are out of date with their source

The notebooks keep no widget state: a saved widget cannot talk to a new kernel, and its state is
~100 KB of churn per build. A cell keeps its static SVG and text until it is run.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, NB = ROOT / "lessons", ROOT / "notebooks"
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def sources() -> list[Path]:
    return sorted(SRC.glob("[0-9]*.py"))


def notebook_of(src: Path) -> Path:
    return NB / (src.stem + ".ipynb")


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def out_of_date(src: Path) -> str | None:
    """Why the executed notebook does not match its source (None if it does)."""
    path = notebook_of(src)
    if not path.exists():
        return f"{path.name} is missing"
    if cells(jupytext.read(src)) != cells(nbformat.read(path, as_version=4)):
        return f"{path.name} differs from {src.relative_to(ROOT)}: run ./dev lessons {src.stem}"
    return None


def build(src: Path) -> Path:
    nb = jupytext.read(src)
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):      # stable ids: a rebuild changes only what changed
        cell.id = f"{src.stem[:2]}-{i:03d}"
    NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NB)}}).execute()
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    path = notebook_of(src)
    nbformat.write(nb, path)
    return path


def main(args: list[str]) -> int:
    if args[:1] == ["--check"]:
        problems = [p for p in map(out_of_date, sources()) if p]
        print("\n".join(problems) or "every notebook matches its source")
        return 1 if problems else 0
    wanted = [SRC / (a if a.endswith(".py") else a + ".py") for a in args] or sources()
    for src in wanted:
        if not src.exists():
            print(f"no lesson {src.relative_to(ROOT)}; lessons: "
                  + ", ".join(s.stem for s in sources()))
            return 2
        print("built", build(src).relative_to(ROOT), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
