"""Which notebook cell made a widget, so that a widget made again by the same cell replaces the one
that cell made before.

ipywidgets closes nothing when a cell runs again: the front end clears the cell's output (the old
widget's views are removed), but the widget stays open in the kernel, and so does anything it
does in the background (ipywidgets issues #2747, #3995). The kernel can know which cell is running:
JupyterLab and Notebook 7 send the cell's id with each run (``cellId`` in the execute request's
metadata, ipykernel's ``get_parent()``), and each run has its own message id. Where the front end
sends no id (a script, nbclient and Voilà, the classic Notebook) nothing is known; a widget's
callback (a button) runs in no cell.
"""
from __future__ import annotations

import weakref


def current_cell() -> tuple[str, str] | None:
    """(the id of the notebook cell running now, the id of this run), or None if unknown."""
    try:
        from IPython import get_ipython
        parent = get_ipython().kernel.get_parent()
        cell, run = parent["metadata"]["cellId"], parent["header"]["msg_id"]
    except (ImportError, AttributeError, KeyError, TypeError):
        return None
    return (cell, run) if isinstance(cell, str) and isinstance(run, str) and cell else None


class MadeByCells:
    """The widgets of one kind that are open, each with the cell run that made it (if known)."""

    def __init__(self):
        self._made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def add(self, widget) -> list:
        """Note a new widget; returns the open ones an earlier run of the same cell made (the
        new one replaces them: the caller closes them). Closed widgets are forgotten."""
        here = current_cell()
        replaced = [w for w, made in list(self._made.items())
                    if here is not None and made is not None and made[0] == here[0]
                    and made[1] != here[1] and w is not widget]
        for w in replaced:
            del self._made[w]
        self._made[widget] = here
        return replaced

    def others(self, widget) -> list:
        """Every other widget noted and still open."""
        return [w for w in list(self._made) if w is not widget and w.comm is not None]

    def forget(self, widget):
        self._made.pop(widget, None)


__all__ = ["current_cell", "MadeByCells"]
