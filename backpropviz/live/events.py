"""An event: one attempt at one step of a student's predict mode, as plain, bounded data.

Every field is checked on the way in (a student's kernel, or anyone who can reach the hub
service, may send anything): known keys only, each of its type and within its length; an event
is at most MAX_BYTES of JSON. Nothing in an event is ever formatted or evaluated.
"""
from __future__ import annotations

import json
import math
import re
import secrets

from ..core.errors import BackpropError
from ..teach.stepper import OUTCOMES, PREDICTED as KINDS

VIEWS = ("modules", "scalar circuit", "expanded")
MAX_BYTES = 4096                 # one event as JSON
MAX_ANSWER = 64                  # numbers of an answer kept (a histogram needs the first)
CODE = re.compile(r"^[A-HJ-NP-Z2-9]{6}$")      # a class code: no 0/O, 1/I to misread
STUDENT = re.compile(r"^[\w .'-]{1,32}$")      # a pseudonym: letters, digits, space . ' - _
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
TEXT = {"writes": 64, "kind": 8, "tag": 24, "slip": 48}
# what the teacher's page shows of an event is its shape, not free text a student could fill:
WRITES = re.compile(r"∂J/∂[\w\[\].,′]{1,40}( via M_[\w.]{1,12}( \(\d{1,3}\))?)?")
TAG = re.compile(r"[()§\w.′]{1,24}")
SLIP = re.compile(r"[\w′ /σ]{1,48}")


class EventError(BackpropError):
    """An event refused: what is wrong with it, in one sentence."""


def new_id() -> str:
    """An event's id, made once by the student's kernel so that a resent event is stored once."""
    return secrets.token_hex(16)


def new_code() -> str:
    """A class code a teacher reads out: six letters and digits, none easy to misread."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(6))


def normal_code(text) -> str:
    """A class code as typed (any case, spaces) → its canonical form, or an EventError."""
    code = "".join(str(text).split()).upper() if isinstance(text, str) else ""
    if not CODE.fullmatch(code):
        raise EventError("a class code is 6 letters and digits, e.g. K7QX2M")
    return code


def normal_student(text) -> str:
    """A pseudonym as typed → stripped, or an EventError (no real name is needed)."""
    name = " ".join(text.split()) if isinstance(text, str) else ""
    if not STUDENT.fullmatch(name):
        raise EventError("a name for the class: 1 to 32 letters, digits, spaces or . ' - _")
    return name


def _text(d: dict, key: str, optional: bool = False) -> str | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > TEXT[key]:
        raise EventError(f"an event's {key} is a text of 1 to {TEXT[key]} characters")
    return value


def _finite(a) -> bool:
    """A JSON number that is a finite float (an integer of 400 digits is not one)."""
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        return False
    try:
        return math.isfinite(float(a))
    except OverflowError:
        return False


def validate(d) -> dict:
    """The event as stored: every field checked, nothing else kept; or an EventError."""
    if not isinstance(d, dict):
        raise EventError("an event is a JSON object")
    try:
        size = len(json.dumps(d, ensure_ascii=False, default=str).encode("utf-8"))
    except (ValueError, RecursionError):
        raise EventError("an event is a JSON object of plain fields") from None
    if size > MAX_BYTES:
        raise EventError(f"an event is at most {MAX_BYTES} bytes of JSON")
    known = {"id", "code", "student", "fingerprint", "view", "step", "writes", "kind", "tag",
             "outcome", "slip", "answer", "time"}
    extra = sorted(set(d) - known, key=str)
    if extra:
        raise EventError(f"an event has no field {str(extra[0])[:40]!r}")
    if not isinstance(d.get("id"), str) or not EVENT_ID.fullmatch(d["id"]):
        raise EventError("an event's id is 32 hexadecimal digits")
    if not isinstance(d.get("fingerprint"), str) or not FINGERPRINT.fullmatch(d["fingerprint"]):
        raise EventError("an event's fingerprint is 16 hexadecimal digits")
    step = d.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 100_000:
        raise EventError("an event's step is a whole number from 1 to 100000")
    if d.get("view") not in VIEWS:
        raise EventError(f"an event's view is one of: {', '.join(VIEWS)}")
    if d.get("outcome") not in OUTCOMES:
        raise EventError(f"an event's outcome is one of: {', '.join(OUTCOMES)}")
    answer = d.get("answer")
    if answer is not None and (not isinstance(answer, list) or len(answer) > MAX_ANSWER or not all(
            _finite(a) for a in answer)):
        raise EventError(f"an event's answer is a list of at most {MAX_ANSWER} finite numbers")
    t = d.get("time")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1e11:
        raise EventError("an event's time is seconds since 1970")
    if d.get("kind") not in KINDS:
        raise EventError(f"an event's kind is one of: {', '.join(KINDS)}")
    for key, shape in (("writes", WRITES), ("tag", TAG), ("slip", SLIP)):
        if isinstance(d.get(key), str) and not shape.fullmatch(d[key]):
            raise EventError(f"an event's {key} is not what a step writes, a tag or a slip's name")
    return {"id": d["id"], "code": normal_code(d.get("code")),
            "student": normal_student(d.get("student")), "fingerprint": d["fingerprint"],
            "view": d["view"], "step": step, "writes": _text(d, "writes"),
            "kind": _text(d, "kind"), "tag": _text(d, "tag"), "outcome": d["outcome"],
            "slip": _text(d, "slip", optional=True),
            "answer": None if answer is None else [float(a) for a in answer],
            "time": float(t)}


__all__ = ["OUTCOMES", "EventError", "new_code", "new_id", "normal_code", "normal_student",
           "validate"]
