"""What the composite widgets share: callbacks whose errors are shown inside the widget, buttons
with a CSS class, and closing everything a widget built."""
from __future__ import annotations

import functools
import sys

import ipywidgets as ipw

from ..core.errors import BackpropError

# text MathJax must leave alone (JupyterLab's MathJax 3 honours the first, Voilà's the second)
NO_MATH = 'class="tex2jax_ignore mathjax_ignore"'


def shown_in_widget(handler):
    """Run a callback; a failure becomes a message in the widget, the last good state stays."""
    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as e:          # noqa: BLE001 — a widget must never show a traceback
            prefix = "" if isinstance(e, BackpropError) else type(e).__name__ + ": "
            self.say(prefix + str(e), error=True)
    return run


def button(description, tooltip, cls, **kw):
    """A button as wide as its words, with a CSS class by which the page and tests find it."""
    b = ipw.Button(description=description, tooltip=tooltip, layout=ipw.Layout(width="auto"),
                   **kw)
    b.add_class(cls)
    return b


def _held(widget) -> list:
    """The widgets a widget holds in its traits: children, layout, style, a canvas's toolbar."""
    out = []
    for value in widget.trait_values().values():
        out += [w for w in (value if isinstance(value, (tuple, list)) else (value,))
                if isinstance(w, ipw.Widget)]
    return out


def close_tree(widget, seen: set):
    """Close a widget and every widget below it (ipywidgets' close() closes only the one, and a
    closed box keeps its children, layout and style open). ``seen``: ids already closed."""
    if id(widget) in seen:
        return
    seen.add(id(widget))
    for w in _held(widget):
        close_tree(w, seen)
    widget.close()


class ClosesParts:
    """A composite widget whose close() closes every widget it holds as an attribute, and that
    closes what it built if its constructor fails (nothing half-built stays in the kernel)."""

    def _parts(self) -> list:
        return [w for w in vars(self).values() if isinstance(w, ipw.Widget) and w is not self]

    def close(self):
        if sys.meta_path is None:      # the interpreter is shutting down (ipywidgets' __del__):
            return                     # nothing to tell a front end, and imports fail now
        seen = {id(self)}
        for w in self._parts() + _held(self):
            close_tree(w, seen)
        super().close()
