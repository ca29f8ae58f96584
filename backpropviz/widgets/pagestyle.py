"""A widget that shows nothing and brings a CSS file into the page (anywidget loads it): how the
training lab, which has no front end of its own, gets its look without a style in a string."""
from __future__ import annotations

from pathlib import Path

import anywidget
import ipywidgets as ipw

HERE = Path(__file__).parent


class PageStyle(anywidget.AnyWidget):
    """The training lab's CSS (lab.css), in the page while the lab is."""

    _esm = HERE / "pagestyle.js"
    _css = HERE / "lab.css"

    def __init__(self):
        super().__init__(layout=ipw.Layout(display="none"))
