"""Keys: what a step reads or writes, as data. The one place where keys become text.

A key names a number in a trace: the value of a node (u[2], W[1], y) or a gradient ∂J/∂(node).
When a value has several users, each user's (B1)/(B2) writes a *contribution* (the key carries the
user, and a count when one module uses the value twice) and an accumulation step (7.53) sums them
into the total ∂J/∂(node).

Node names are plain strings (``u[2]``, ``W[1]``, or a name the user gave); nothing here or
elsewhere builds keys by gluing strings, so a user's name never needs to avoid a key syntax.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

_INDEXED = re.compile(r"([A-Za-z]\w*)\[(\d+)\]$")      # u[2] → u^{[2]} in TeX
_ENTRY = re.compile(r"(.+?)([₀-₉]+(?:,[₀-₉]+)*)")      # W[1]₂,₁: an entry (theory/circuit.py)
_UNSUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_TEX_SPECIAL = {c: "\\" + c for c in "#$%&_{}"} | {"\\": r"\backslash{}", "^": r"\hat{}",
                                                   "~": r"\sim{}"}


@dataclass(frozen=True)
class Key:
    """A number in a trace: ``node``'s value, or (``grad``) ∂J/∂node, or one user's contribution."""

    node: str
    grad: bool = False
    user: str | None = None     # the module whose rule wrote this contribution ("M_3")
    n: int = 0                  # 1, 2, … when that module uses the node more than once

    @classmethod
    def value(cls, node: str) -> "Key":
        return cls(node)

    @classmethod
    def gradient(cls, node: str, user: str | None = None, n: int = 0) -> "Key":
        return cls(node, True, user, n)

    @property
    def total(self) -> "Key":
        """The gradient this contribution is part of (the key itself if it is not one)."""
        return Key(self.node, True) if self.grad else self

    @property
    def is_contribution(self) -> bool:
        return self.user is not None

    def __str__(self) -> str:
        return text(self)

    # JSON: a list, so a trace file holds only names and flags, never text to be formatted
    def to_json(self) -> list:
        return [self.node, self.grad, self.user, self.n]

    @classmethod
    def from_json(cls, data) -> "Key":
        node, grad, user, n = data
        return cls(node, grad, user, n)


# --- the three formatters --------------------------------------------------------------------

def _via(key: Key) -> str:
    return f" via {key.user}" + (f" ({key.n})" if key.n else "")


def text(key: Key) -> str:
    """Plain text: 'u[2]', '∂J/∂u[2]', '∂J/∂u[0] via M_1 (2)'."""
    if not key.grad:
        return key.node
    return "∂J/∂" + key.node + (_via(key) if key.user else "")


def label(key: Key) -> str:
    """A row label in a node's box: 'value', '∂J/∂u[2]', '∂J/∂u[0] via M_1'."""
    if not key.grad:
        return "value"
    return "∂J/∂" + key.node + ("  " + _via(key).strip() if key.user else "")


def tex_name(name: str) -> str:
    """A node or module name in TeX: u[2] → u^{[2]}, W[1]₂,₁ → W^{[1]}_{2,1}, M_3 → M_{3},
    M_1.3 → M_{1.3}, a user's name as \\text{…}."""
    m = _INDEXED.match(name)
    if m:
        return f"{m[1]}^{{[{m[2]}]}}"
    if re.fullmatch(r"[A-Za-z]\d*", name):          # y, x, t1
        return name
    m = _ENTRY.fullmatch(name)
    if m and (_INDEXED.match(m[1]) or re.fullmatch(r"[A-Za-z]\d*", m[1])):
        return tex_name(m[1]) + "_{" + m[2].translate(_UNSUB) + "}"    # as the notes' W_{ij}
    m = re.fullmatch(r"M_(\d+)(\.\d+|\.in\d+|\.out)?", name)     # M_1.in2: theory/expand.py
    if m:
        sub = re.sub(r"[a-z]+", lambda w: rf"\mathrm{{{w[0]}}}", m[2] or "")
        return f"M_{{{m[1]}{sub}}}"
    # html.escape as well: the TeX sits inside an HTML widget before MathJax reads it
    return r"\text{" + "".join(_TEX_SPECIAL.get(c, c) for c in html.escape(name)) + "}"


def tex(key: Key) -> str:
    """TeX: u^{[2]}, \\frac{∂J}{∂u^{[2]}}, and a contribution with its user as a subscript."""
    if not key.grad:
        return "{" + tex_name(key.node) + "}"
    frac = r"\frac{\partial J}{\partial " + tex_name(key.node) + "}"
    if not key.user:
        return frac
    via = r"\text{via }" + tex_name(key.user) + (rf"\,({key.n})" if key.n else "")
    return r"\left." + frac + r"\right|_{" + via + "}"
