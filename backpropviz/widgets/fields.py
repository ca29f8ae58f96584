"""One display of refused fields, for every form in the widgets (the Stepper's rebuild controls,
the training lab): a field that could not be read, or whose value the model refused, is outlined in
red (class ``bpv-bad``) and its message is shown beside the form, as an alert, until the field
reads well again. A control that went back to the model's state after a refusal is not outlined
(it shows what is in force); its message says what was refused and why."""
from __future__ import annotations

import html

import ipywidgets as ipw

# the look of a refused field is in stepper.css and lab.css (.bpv-bad, .bpv-field-error)


class FieldErrors(ipw.HTML):
    """The messages of a form's refused fields, in the form's order; empty when every field reads
    well. ``fields``: the form's fields in order, each named by its description (which starts its
    message)."""

    def __init__(self, fields: list[ipw.Widget]):
        super().__init__()
        self.add_class("bpv-field-errors")
        self.fields = {f.description: f for f in fields}
        self.messages: dict[str, str] = {}          # name → message, in the form's order
        self.outlined: set[str] = set()             # names of the fields outlined in red

    def mark(self, field: ipw.Widget, message: str | None, outline: bool = True):
        """Mark one field with its message, or (message None) show that it reads well.
        ``outline=False``: the message only (the field shows the value in force again)."""
        self._set(field.description, message, outline)
        self._show()

    def mark_all(self, bad: dict[str, str]):
        """Mark the fields named in ``bad`` with their messages; every other field reads well."""
        for name in self.fields:
            self._set(name, bad.get(name))
        self._show()

    def _set(self, name: str, message: str | None, outline: bool = True):
        field = self.fields[name]
        if message and outline:
            field.add_class("bpv-bad")
            self.outlined.add(name)
        else:
            field.remove_class("bpv-bad")
            self.outlined.discard(name)
        messages = {**self.messages, name: message}
        self.messages = {n: messages[n] for n in self.fields if messages.get(n)}

    def _show(self):
        self.value = ("".join(
            f'<div class="bpv-field-error" role="alert">⚠ {html.escape(name)}: '
            f'{html.escape(message)}</div>' for name, message in self.messages.items())
            if self.messages else "")
