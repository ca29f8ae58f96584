"""Reading a trace file: a file from elsewhere is data, validated completely before use.

Nothing in the file is formatted or evaluated: it holds names, rule kinds and numbers, and the
text of every rule comes from the rule table. Any problem gives one BackpropError naming where
it is; nothing is half-loaded.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .errors import BackpropError
from .keys import Key
from .record import FORMAT, ModuleInfo, NodeInfo, Trace, make_spec, rule_for

MAX_CHARS = 50_000_000          # a trace file larger than this is refused before parsing
MAX_NUMBERS = 5_000_000         # numbers in all arrays together
KINDS = ("input", "param", "label", "const", "value", "loss")
STEP_KINDS = ("F", "seed", "B1", "B2", "acc")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class _Bad(Exception):
    pass


def _need(cond, where, what):
    if not cond:
        raise _Bad(f"{where}: {what}")


def _str(x, where, none=False):
    _need(isinstance(x, str) or (none and x is None), where,
          "expected a string" + (" or null" if none else "") + f", got {type(x).__name__}")
    if isinstance(x, str):
        _need(0 < len(x) <= 200 and x.isprintable(), where,
              "a name must be 1 to 200 printable characters")
    return x


def _obj(x, keys, where):
    _need(isinstance(x, dict), where, f"expected an object, got {type(x).__name__}")
    _need(set(x) == set(keys), where, f"expected the fields {sorted(keys)}, got {sorted(x)}")
    return x


def _list(x, where, n=None):
    _need(isinstance(x, list), where, f"expected a list, got {type(x).__name__}")
    _need(n is None or len(x) == n, where, f"expected {n} entries, got {len(x)}")
    return x


def _array(x, where, budget):
    _obj(x, ("shape", "data"), where)
    shape, data = _list(x["shape"], where + ".shape"), _list(x["data"], where + ".data")
    _need(len(shape) <= 2 and all(type(n) is int and 0 <= n <= MAX_NUMBERS for n in shape),
          where, f"a shape is at most 2 sizes, each a whole number ≥ 0; got {shape}")
    _need(math.prod(shape) == len(data), where,
          f"shape {shape} needs {math.prod(shape)} numbers; the file has {len(data)}")
    budget[0] -= len(data)
    _need(budget[0] >= 0, where, f"more than {MAX_NUMBERS} numbers in the file")
    vals = []
    for e in data:
        if type(e) in (int, float) and math.isfinite(e):
            vals.append(float(e))
        elif isinstance(e, str) and e in _SPECIAL:
            vals.append(_SPECIAL[e])
        else:
            raise _Bad(f"{where}: entries are finite numbers or \"NaN\", \"Infinity\", "
                       f"\"-Infinity\"; got {str(e)[:20]!r}")
    a = np.array(vals, dtype=float).reshape(shape)
    a.flags.writeable = False
    return a


def _key(x, where, names, modules):
    _list(x, where, 4)
    node, grad, user, n = x
    _need(node in names, where, f"no node named {str(node)[:40]!r}")
    _need(type(grad) is bool, where, "the gradient flag must be true or false")
    _need(user is None or (grad and user in modules), where, f"unknown user {str(user)[:40]!r}")
    _need(type(n) is int and 0 <= n <= 1000 and (user is not None or n == 0), where,
          "a contribution count is a whole number (0 without a user)")
    return Key(node, grad, user, n)


def trace_from_dict(d) -> Trace:
    try:
        return _load(d)
    except _Bad as e:
        raise BackpropError(f"not a valid backpropviz trace: {e}") from None
    except BackpropError as e:
        raise BackpropError(f"not a valid backpropviz trace: {e}") from None


def trace_from_json(text) -> Trace:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise BackpropError(f"a trace file is text; got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise BackpropError(f"not a valid backpropviz trace: {len(text)} characters, more than "
                            f"the {MAX_CHARS} allowed")
    try:
        data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError) as e:
        raise BackpropError(f"not a valid backpropviz trace: not standard JSON "
                            f"({str(e)[:80]})") from None
    return trace_from_dict(data)


def _load(d) -> Trace:
    _obj(d, ("format", "nodes", "modules", "steps", "given", "out"), "the file")
    _need(d["format"] == FORMAT, "format",
          f"this is {str(d['format'])[:40]!r}; this version of backpropviz reads {FORMAT!r}")
    nodes = []
    for i, n in enumerate(_list(d["nodes"], "nodes")):
        w = f"nodes[{i}]"
        _list(n, w, 4)
        _need(n[1] in KINDS, w, f"kind must be one of {KINDS}")
        nodes.append(NodeInfo(_str(n[0], w), n[1], _str(n[2], w, True), _str(n[3], w, True)))
    names = {n.name for n in nodes}
    _need(len(names) == len(nodes), "nodes", "node names must be unique")

    modules = []
    for i, m in enumerate(_list(d["modules"], "modules")):
        w = f"modules[{i}]"
        _obj(m, ("name", "op", "inputs", "params", "output", "given_name", "consts"), w)
        ins = tuple(_list(m["inputs"], w + ".inputs"))
        params = tuple(_list(m["params"], w + ".params"))
        _need(all(x in names for x in ins + params + (m["output"],)), w, "refers to unknown nodes")
        consts = []
        for c in _list(m["consts"], w + ".consts"):
            _need(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                  and type(c[1]) in (int, float) and math.isfinite(c[1]), w,
                  "consts are [name, finite number] pairs")
            consts.append((c[0], float(c[1])))
        modules.append(ModuleInfo(_str(m["name"], w), _str(m["op"], w), ins, params,
                                  m["output"], _str(m["given_name"], w, True), tuple(consts)))
    by_name = {m.name: m for m in modules}
    _need(len(by_name) == len(modules), "modules", "module names must be unique")

    budget = [MAX_NUMBERS]
    given_raw = d["given"]
    _need(isinstance(given_raw, dict), "given", "expected an object")
    given = {}
    for k, x in given_raw.items():
        _need(k in names, "given", f"no node named {str(k)[:40]!r}")
        given[k] = _array(x, f"given[{k!r}]", budget)

    specs, known = [], {Key(n) for n in given}
    for i, s in enumerate(_list(d["steps"], "steps")):
        w = f"steps[{i}] (step {i + 1})"
        _obj(s, ("phase", "kind", "module", "which", "writes", "subs"), w)
        _need(s["kind"] in STEP_KINDS and s["phase"] == ("forward" if s["kind"] == "F"
                                                         else "backward"), w,
              "unknown rule kind or phase")
        _need(s["module"] is None or s["module"] in by_name, w, "unknown module")
        _need(s["which"] is None or type(s["which"]) in (int, str), w, "bad 'which'")
        mod = by_name.get(s["module"])
        writes = _key(s["writes"], w + ".writes", names, by_name)
        _need(writes not in known, w, f"{writes} is written twice")
        subs = []
        for j, p in enumerate(_list(s["subs"], w + ".subs")):
            _need(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                  and p[0].isidentifier(), w, "subs are [symbol, key] pairs")
            k = _key(p[1], f"{w}.subs[{j}]", names, by_name)
            _need(k in known, w, f"reads {k}, which is not known before this step")
            subs.append((p[0], k))
        try:
            rule = rule_for(s["kind"], mod.op if mod else None, s["which"])
        except BackpropError as e:
            raise _Bad(f"{w}: {e}") from None
        consts = dict(mod.consts) if mod else {"n": len(subs)}
        specs.append(make_spec(s["phase"], s["kind"], s["module"], s["which"], writes,
                               tuple(subs), rule, consts))
        known.add(writes)

    out = _list(d["out"], "out", len(specs))
    values = [_array(x, f"out[{i}]", budget) for i, x in enumerate(out)]
    for s, x in zip(specs, values):
        if s.writes.grad and s.writes.node in given:
            _need(x.shape == given[s.writes.node].shape, f"out for {s.writes}",
                  f"a gradient has the shape of its node {given[s.writes.node].shape}")
    return Trace(tuple(nodes), tuple(modules), tuple(specs), given, values)
