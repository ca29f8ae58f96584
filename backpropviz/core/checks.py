"""Where numbers and names enter: each is checked once, with a message that says what is wrong.

``numeric`` turns what a user gives (a number, a list, an array) into a read-only float array, or
refuses it: None, strings, complex numbers (their imaginary part would be dropped), dates and times
(a date would be read as a count of days), masked arrays (their mask would be dropped), integers too
large for a float, empty arrays, NaN and inf.
``name`` refuses names that cannot be shown (control characters, lone surrogates) or are too long.
"""
from __future__ import annotations

import datetime
import math

import numpy as np

from .errors import BackpropError, brief, shape_str

MAX_NAME = 200          # characters; longer names are refused (drawings shorten long ones)
MAX_NDIM = 32           # axes of a value: numpy 1's limit, so a trace file reads everywhere


def _refuse(what: str, why: str) -> BackpropError:
    return BackpropError(f"{what}: {why}")


def numeric(x, what: str, allow_empty: bool = False) -> np.ndarray:
    """x as a read-only float array (our own copy), or a BackpropError naming ``what``."""
    if type(x) is np.ndarray and x.dtype.kind == "f":          # the common case, fast
        arr = np.array(x, dtype=float)
    else:
        arr = _convert(x, what)
    if arr.size == 0 and not allow_empty:
        raise _refuse(what, f"it is empty (shape {shape_str(arr)}); give at least one number")
    if arr.ndim > MAX_NDIM:
        raise _refuse(what, f"it has {arr.ndim} axes; values here have at most {MAX_NDIM}")
    s = np.vdot(arr, arr) if arr.size else 0.0
    if not math.isfinite(s) and not np.isfinite(arr).all():
        bad = arr.ravel()[~np.isfinite(arr.ravel())][:5]
        raise _refuse(what, f"it contains NaN or inf: {bad}")
    arr.flags.writeable = False
    return arr


def _convert(x, what: str) -> np.ndarray:
    if x is None:
        raise _refuse(what, "no value (None); give a number, a list or an array of numbers")
    if isinstance(x, np.ma.MaskedArray):
        raise _refuse(what, "a masked array: its mask would be dropped; fill or remove the "
                            "masked entries first (x.filled(value) or x.compressed())")
    if isinstance(x, (str, bytes)):
        raise _refuse(what, f"text {str(x)[:40]!r} is not a number; give numbers, e.g. [1.0, 2.0]")
    try:
        raw = np.asarray(x)
    except (ValueError, TypeError) as e:          # ragged lists and the like
        raise _refuse(what, f"not an array of numbers ({e})") from None
    kind = raw.dtype.kind
    if kind == "O":                 # a list of mixed things: the kind of the first that is not
        kind = next((k for k in map(_kind, raw.ravel()) if k != "f"), "f")    # a real number
    if kind == "c":
        raise _refuse(what, "complex numbers: backprop here is over real numbers (the imaginary "
                            "part would be dropped)")
    if kind in "USV":
        raise _refuse(what, "text is not a number; give numbers, e.g. [1.0, 2.0]")
    if kind in "mM":
        # numpy would read a date as the days since 1970 (2020-01-01 as 18262.0)
        shown = raw.dtype if raw.dtype.kind in "mM" else "in a list"
        raise _refuse(what, f"dates and times ({shown}) are not numbers here; give numbers, e.g. "
                            f"the days as x.astype('int64') if that is what you mean")
    try:
        return np.array(raw, dtype=float)
    except OverflowError:
        raise _refuse(what, "a number too large for a float (above about 1.8e308)") from None
    except (ValueError, TypeError) as e:
        raise _refuse(what, f"not an array of numbers ({str(e)[:80]})") from None


def _kind(e) -> str:
    """The dtype kind an entry of an object array stands for: "U" text, "c" complex, "M" a date
    or a time, "f" anything else (float() decides)."""
    if isinstance(e, (str, bytes)):
        return "U"
    if isinstance(e, (complex, np.complexfloating)):
        return "c"
    if isinstance(e, (np.datetime64, np.timedelta64, datetime.date, datetime.timedelta)):
        return "M"
    return "f"


def whole(n, what: str, low: int = 0) -> int:
    """A whole number ≥ low (not a bool, not 1.5; typed text such as "7" is read), or a
    BackpropError."""
    if isinstance(n, str):
        try:
            n = int(n.strip())
        except ValueError:
            raise _refuse(what, f"give a whole number ≥ {low}; got {brief(n, 40)}") from None
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < low:
        raise _refuse(what, f"give a whole number ≥ {low}; got {brief(n, 40)}")
    return int(n)


def name(text, what: str) -> str:
    """A name a user gives (a module, a parameter, an input): printable and not too long."""
    if not isinstance(text, str) or not text.strip():
        raise _refuse(what, f"a name is non-empty text; got {brief(text, 40)}")
    if len(text) > MAX_NAME:
        raise _refuse(what, f"a name of {len(text)} characters is longer than the {MAX_NAME} "
                            f"allowed: {brief(text, 30)}")
    bad = [c for c in text if not c.isprintable() or 0xD800 <= ord(c) <= 0xDFFF]
    if bad:
        raise _refuse(what, f"the name {text.encode('utf-8', 'backslashreplace').decode()[:60]!r} "
                            f"has characters that cannot be shown "
                            f"({', '.join(repr(c) for c in list(dict.fromkeys(bad))[:5])}): "
                            f"control characters, line breaks and lone surrogates are refused")
    return text


def shown(text) -> str:
    """A module's symbol (a class's ``label``) as it can be drawn: as written, but a character
    that cannot be shown (a control character, a line break, a lone surrogate; XML forbids most
    of them even escaped) becomes its escape, \\x1b, and a text longer than MAX_NAME is cut."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable() and len(text) <= MAX_NAME:         # the usual case: nothing to do
        return text
    text = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                   else c.encode("unicode_escape").decode("ascii") for c in text[:MAX_NAME])
    return text if len(text) <= MAX_NAME else text[:MAX_NAME - 1] + "…"
