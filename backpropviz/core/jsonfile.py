"""Reading a JSON file from elsewhere (a trace file, a lab file) as data: its text is size-capped and
parsed as standard JSON, every field is checked where it is read (``need``, ``obj``, ``list_of``,
``string``, ``array``), and any failure becomes one BackpropError that names the field, with
nothing half-loaded (``checked_load``). Nothing in a file is ever formatted or evaluated."""
from __future__ import annotations

import json
import math

import numpy as np

from .errors import BackpropError

MAX_NUMBERS = 5_000_000         # numbers in all arrays of one file together
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Bad(Exception):
    """A field of a file from elsewhere is not what it must be (becomes one BackpropError)."""


def need(cond, where, what):
    if not cond:
        raise Bad(f"{where}: {what}")


def string(x, where, none=False):
    need(isinstance(x, str) or (none and x is None), where,
          "expected a string" + (" or null" if none else "") + f", got {type(x).__name__}")
    if isinstance(x, str):
        need(0 < len(x) <= 200 and x.isprintable(), where,
              "a name must be 1 to 200 printable characters")
    return x


def obj(x, keys, where):
    need(isinstance(x, dict), where, f"expected an object, got {type(x).__name__}")
    if set(x) != set(keys):
        missing = [k for k in keys if k not in x]
        extra = [k for k in x if k not in keys]
        raise Bad(f"{where}: expected the fields {sorted(keys)}; "
                  + "; ".join(f"{what} {_few(ks)}" for what, ks in
                              (("missing", missing), ("not expected", extra)) if ks))
    return x


def _few(keys, most: int = 5) -> str:
    """At most ``most`` field names of a file (each cut to 40 characters), with how many."""
    shown = ", ".join(repr(str(k)[:40]) for k in keys[:most])
    return (f"{len(keys)} fields: {shown}, …" if len(keys) > most else shown)


def list_of(x, where, n=None):
    need(isinstance(x, list), where, f"expected a list, got {type(x).__name__}")
    need(n is None or len(x) == n, where, f"expected {n} entries, got {len(x)}")
    return x


def finite_number(e) -> bool:
    """A JSON number that is a finite float (an int too large for a float is not)."""
    return type(e) is float and math.isfinite(e) or type(e) is int and abs(e) <= 1e308


def array(x, where, budget, max_ndim: int = 2):
    """An array {"shape": […], "data": […]} of at most ``max_ndim`` axes (a lab file's are
    matrices; a trace file's values have as many as tracing allows, ``checks.MAX_NDIM``)."""
    obj(x, ("shape", "data"), where)
    shape, data = list_of(x["shape"], where + ".shape"), list_of(x["data"], where + ".data")
    need(len(shape) <= max_ndim and all(type(n) is int and 0 <= n <= MAX_NUMBERS for n in shape),
          where, f"a shape is at most {max_ndim} sizes, each a whole number ≥ 0; got "
                 f"{str(shape)[:60]}")
    need(math.prod(shape) == len(data), where,
          f"shape {shape} needs {math.prod(shape)} numbers; the file has {len(data)}")
    budget[0] -= len(data)
    need(budget[0] >= 0, where, f"more than {MAX_NUMBERS} numbers in the file")
    vals = []
    for e in data:
        if finite_number(e):
            vals.append(float(e))
        elif isinstance(e, str) and e in _SPECIAL:
            vals.append(_SPECIAL[e])
        else:
            raise Bad(f"{where}: entries are finite numbers or \"NaN\", \"Infinity\", "
                       f"\"-Infinity\"; got {str(e)[:20]!r}")
    a = np.array(vals, dtype=float).reshape(shape)
    a.flags.writeable = False
    return a


def checked_load(load, d, what: str):
    """``load(d)``, a validating reader of data from elsewhere: any failure becomes one
    BackpropError "not a valid backpropviz {what}: …", and nothing is half-loaded."""
    try:
        return load(d)
    except (Bad, BackpropError) as e:
        raise BackpropError(f"not a valid backpropviz {what}: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError,
            OverflowError) as e:
        # a case the checks did not foresee: still one clear error, nothing loaded
        raise BackpropError(f"not a valid backpropviz {what}: malformed data "
                            f"({type(e).__name__}: {str(e)[:80]})") from None


def read_json(text, what: str, max_chars: int):
    """A file's text (str or bytes) as standard JSON (no NaN/Infinity literals), at most
    ``max_chars`` characters; else one BackpropError naming ``what``."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise BackpropError(f"a {what} is text; got {type(text).__name__}")
    if len(text) > max_chars:
        raise BackpropError(f"not a valid backpropviz {what}: {len(text)} characters, more than "
                            f"the {max_chars} allowed")
    try:
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)),
                          object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as e:
        raise BackpropError(f"not a valid backpropviz {what}: not standard JSON "
                            f"({str(e)[:80]})") from None


def _no_duplicate_keys(pairs):
    """A JSON object as a dict; a key given twice is refused (which one would count?)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen, dup = set(), None
        for k, _ in pairs:
            if k in seen:
                dup = k
                break
            seen.add(k)
        raise ValueError(f"the key {str(dup)[:40]!r} is given twice in one object")
    return d
