"""Joining a class: a row of the Stepper's predict box, shown when the server keeps a class's
answers (live/link.py: BPV_CLASS_DIR or the hub service). Each attempt then goes to the class;
the Stepper works the same whether the learner joins or not."""
from __future__ import annotations

import hashlib
import html

import ipywidgets as ipw

from ..core.errors import BackpropError
from ..live.link import ClassLink, from_environment
from ..live.store import StoreError
from .base import button


def fingerprint(trace) -> str:
    """The network, its numbers and its example, as 16 hex digits: a class's events are about one
    network (a rebuilt one is another)."""
    return hashlib.sha256(trace.to_json().encode("utf-8")).hexdigest()[:16]


class ClassJoin(ipw.HBox):
    """class code, a name (optional: one is made up), join; then the link's status."""

    def __init__(self, model, destination=None):
        self.model, self.link = model, None
        self.destination = destination if destination is not None else from_environment()
        narrow = {"description_width": "initial"}
        self.code = ipw.Text(description="class code", placeholder="K7QX2M", style=narrow,
                             layout=ipw.Layout(width="170px")).add_class("bpv-class-code")
        self.name = ipw.Text(description="your name", placeholder="optional", style=narrow,
                             layout=ipw.Layout(width="185px")).add_class("bpv-class-name")
        self.join_btn = button("join", "join your class: your predictions are shown to your "
                               "teacher, with this name", "bpv-class-join")
        self.status = ipw.HTML().add_class("bpv-class-status")
        super().__init__([self.code, self.name, self.join_btn, self.status],
                         layout=ipw.Layout(flex_flow="row wrap", align_items="center"))
        self.add_class("bpv-class")
        self.layout.display = "flex" if self.destination is not None else "none"
        self._fp = {}
        self.join_btn.on_click(lambda _: self.join())
        model.on_attempt(self._attempt)

    def join(self) -> None:
        """Join the class typed (a wrong code or name is said here, nothing else changes)."""
        if self.destination is None:
            return
        try:
            link = ClassLink(self.destination, self.code.value, self.name.value,
                             on_status=self._show)
        except (BackpropError, StoreError) as e:
            self._show(f"not joined: {e}", error=True)
            return
        self.link = link
        self.name.value = link.student
        for w in (self.code, self.name, self.join_btn):     # joined: one line of status stays
            w.layout.display = "none"
        self._show(link.status())

    def _attempt(self, attempt: dict) -> None:
        if self.link is None:
            return
        trace = self.model.module_trace
        if trace not in self._fp:
            self._fp = {trace: fingerprint(trace)}
        try:
            self.link.send(attempt, self._fp[trace])
        except Exception as e:       # noqa: BLE001 — the lesson goes on whatever the class does
            self._show(f"not sent: {type(e).__name__}", error=True)

    def _show(self, text: str, error: bool = False) -> None:
        colour = "#b3261e" if error else "#555"
        self.status.value = (f'<span role="status" style="color:{colour}">'
                             f"{html.escape(text)}</span>")
