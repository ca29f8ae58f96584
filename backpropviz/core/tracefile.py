"""The trace file (format ``backpropviz.trace/2``): a ``Trace`` written as standard JSON, data only
(names, rule kinds, numbers; never text the program formats), and read back validated completely,
in one pass over the file, with one clear error and nothing half-loaded."""
from __future__ import annotations

import json
import math

import numpy as np

from . import rules as R
from .errors import BackpropError
from .jsonfile import (MAX_NUMBERS, Bad, array, checked_load, finite_number, list_of, need, obj,
                       read_json, string)
from .checks import MAX_NDIM
from .keys import Key
from .modules import REGISTRY, Index, index_from_consts
from .trace import ModuleInfo, NodeInfo, Trace, base_label, make_spec, rule_for

FORMAT = "backpropviz.trace/2"


def to_dict(trace: Trace) -> dict:
    """The trace as plain data: nodes, modules, step specs, the given values and every output."""
    return {
        "format": FORMAT,
        "nodes": [[n.name, n.kind, n.module, n.display]
                  + ([] if n.part_of is None else [[n.part_of[0], n.part_of[1],
                                                    list(n.part_of[2])]])
                  for n in trace.nodes],
        "modules": [{"name": m.name, "op": m.op, "inputs": list(m.inputs),
                     "params": list(m.params), "output": m.output,
                     "given_name": m.given_name, "consts": [list(c) for c in m.consts]}
                    for m in trace.modules],
        "steps": [{"phase": s.phase, "kind": s.kind, "module": s.module, "which": s.which,
                   "writes": s.writes.to_json(),
                   "subs": [[sym, k.to_json()] for sym, k in s.subs]} for s in trace.specs],
        "given": {k: _arr_json(v) for k, v in trace.given.items()},
        "out": [_arr_json(v) for v in trace.outputs],
    }


def to_json(trace: Trace) -> str:
    # standard JSON: NaN and ±inf are written as strings, and read back exactly
    return json.dumps(to_dict(trace), ensure_ascii=False, allow_nan=False)


def _num_json(x: float):
    return x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity"))


def _arr_json(x) -> dict:
    x = np.asarray(x, dtype=float)
    return {"shape": list(x.shape), "data": [_num_json(float(e)) for e in x.ravel()]}


# --- reading a trace file: validated completely, one clear error, nothing half-loaded ----------

MAX_CHARS = 50_000_000          # a trace file larger than this is refused before parsing
KINDS = ("input", "param", "label", "const", "value", "loss")
STEP_KINDS = ("F", "seed", "B1", "B2", "acc")


def _key(x, where, names, modules):
    list_of(x, where, 4)
    node, grad, user, n = x
    need(isinstance(node, str) and node in names, where, f"no node named {str(node)[:40]!r}")
    need(type(grad) is bool, where, "the gradient flag must be true or false")
    need(user is None or (grad and isinstance(user, str) and user in modules), where,
          f"unknown user {str(user)[:40]!r}")
    need(type(n) is int and 0 <= n <= 1000 and (user is not None or n == 0), where,
          "a contribution count is a whole number (0 without a user)")
    return Key(node, grad, user, n)


def _part_of(x, where):
    """[module or null, node, [i, j]]: what a scalar circuit's node belongs to."""
    list_of(x, where + ".part_of", 3)
    index = list_of(x[2], where + ".part_of")
    need(len(index) <= MAX_NDIM and all(type(i) is int and 0 <= i <= MAX_NUMBERS for i in index),
          where, f"an entry's index is at most {MAX_NDIM} whole numbers ≥ 0")
    return (string(x[0], where, True), string(x[1], where), tuple(index))


def trace_from_dict(d) -> Trace:
    return checked_load(_load, d, "trace")


def trace_from_json(text) -> Trace:
    return trace_from_dict(read_json(text, "trace", MAX_CHARS))


def _load(d) -> Trace:
    obj(d, ("format", "nodes", "modules", "steps", "given", "out"), "the file")
    need(d["format"] == FORMAT, "format",
          f"this is {str(d['format'])[:40]!r}; this version of backpropviz reads {FORMAT!r}")
    nodes = []
    for i, n in enumerate(list_of(d["nodes"], "nodes")):
        w = f"nodes[{i}]"
        list_of(n, w, 5 if isinstance(n, list) and len(n) == 5 else 4)
        need(n[1] in KINDS, w, f"kind must be one of {KINDS}")
        nodes.append(NodeInfo(string(n[0], w), n[1], string(n[2], w, True), string(n[3], w, True),
                              _part_of(n[4], w) if len(n) == 5 else None))
    names = {n.name for n in nodes}
    need(len(names) == len(nodes), "nodes", "node names must be unique")

    modules = []
    for i, m in enumerate(list_of(d["modules"], "modules")):
        w = f"modules[{i}]"
        obj(m, ("name", "op", "inputs", "params", "output", "given_name", "consts"), w)
        ins = tuple(list_of(m["inputs"], w + ".inputs"))
        params = tuple(list_of(m["params"], w + ".params"))
        need(all(isinstance(x, str) and x in names for x in ins + params + (m["output"],)), w,
              "refers to unknown nodes")
        consts = []
        for c in list_of(m["consts"], w + ".consts"):
            need(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                  and finite_number(c[1]), w, "consts are [name, finite number] pairs")
            consts.append((c[0], float(c[1])))
        op = string(m["op"], w)
        cls = REGISTRY.get(op)
        try:            # the constants must describe the module (an Index's positions), used or not
            symbol = base_label(cls, op, consts)
            shape = index_from_consts(dict(consts))[0] if cls and issubclass(cls, Index) else None
        except BackpropError as e:
            raise Bad(f"{w} ({op}): {e}") from None
        # an index of an input larger than a file can hold would be made again (expand) in full
        need(shape is None or math.prod(shape) <= MAX_NUMBERS, w,
              f"an index into a value of shape {list(shape or ())[:8]}, more than the "
              f"{MAX_NUMBERS} numbers a file holds")
        modules.append(ModuleInfo(string(m["name"], w), op, ins, params, m["output"],
                                  string(m["given_name"], w, True), tuple(consts), symbol))
    by_name = {m.name: m for m in modules}
    consts_of = {m.name: dict(m.consts) for m in modules}    # once per module: linear in the file
    need(len(by_name) == len(modules), "modules", "module names must be unique")

    budget = [MAX_NUMBERS]
    given_raw = d["given"]
    need(isinstance(given_raw, dict), "given", "expected an object")
    given = {}
    for k, x in given_raw.items():
        need(k in names, "given", f"no node named {str(k)[:40]!r}")
        given[k] = array(x, f"given[{k!r}]", budget, MAX_NDIM)

    specs, known = [], {Key(n) for n in given}
    for i, s in enumerate(list_of(d["steps"], "steps")):
        w = f"steps[{i}] (step {i + 1})"
        obj(s, ("phase", "kind", "module", "which", "writes", "subs"), w)
        need(s["kind"] in STEP_KINDS and s["phase"] == ("forward" if s["kind"] == "F"
                                                         else "backward"), w,
              "unknown rule kind or phase")
        need(s["module"] is None or (isinstance(s["module"], str) and s["module"] in by_name), w,
              "unknown module")
        need(s["which"] is None or type(s["which"]) in (int, str), w, "bad 'which'")
        mod = by_name.get(s["module"])
        kind, which = s["kind"], s["which"]
        need((mod is None) == (kind in ("seed", "acc")), w, "a module's rule names its module; "
              "the start and the sums name none")
        need(which is None if kind in ("F", "seed", "acc") else
              (type(which) is int and 0 <= which < len(mod.inputs)) if kind == "B1" else
              (isinstance(which, str) and mod.cls is not None and which in mod.cls.param_names),
              w, f"'which' does not fit a {kind} step: {str(which)[:20]!r}")
        writes = _key(s["writes"], w + ".writes", names, by_name)
        need(writes not in known, w, f"{writes} is written twice")
        subs = []
        for j, p in enumerate(list_of(s["subs"], w + ".subs")):
            need(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                  and p[0].isidentifier(), w, "subs are [symbol, key] pairs")
            k = _key(p[1], f"{w}.subs[{j}]", names, by_name)
            need(k in known, w, f"reads {k}, which is not known before this step")
            subs.append((p[0], k))
        try:
            rule = rule_for(s["kind"], mod.op if mod else None, s["which"])
        except BackpropError as e:
            raise Bad(f"{w}: {e}") from None
        consts = consts_of[mod.name] if mod else {"n": len(subs)}
        e = rule.expression(R.Context({}, consts))
        missing = set(e.symbols() if e is not None else ()) - {s for s, _ in subs} - {"B"}
        need(not missing, w, f"the rule needs {sorted(missing)}, which the step does not bind")
        specs.append(make_spec(s["phase"], s["kind"], s["module"], s["which"], writes,
                               tuple(subs), rule, consts))
        known.add(writes)

    # J = u[k] is what the last forward step writes (Trace.loss): there is one, before the
    # backward pass, as a run records it
    nf = sum(1 for s in specs if s.phase == "forward")
    need(nf > 0, "steps", "a trace has at least one forward step (F), whose last one writes "
                          "J; this file has none")
    need(all(s.phase == "forward" for s in specs[:nf]), "steps",
          "the forward steps (F) come first, then the backward pass (§7.4.2)")
    out = list_of(d["out"], "out", len(specs))
    values = [array(x, f"out[{i}]", budget, MAX_NDIM) for i, x in enumerate(out)]
    J = values[nf - 1]
    need(J.size == 1, f"out[{nf - 1}]", f"J = {specs[nf - 1].writes} must be a single number "
                                        f"(backprop needs a scalar J, §7.4.1); it has shape "
                                        f"{list(J.shape)[:8]}")
    shape_of = {k: x.shape for k, x in given.items()}
    shape_of.update((s.writes.node, x.shape) for s, x in zip(specs[:nf], values))
    for s, x in zip(specs, values):
        if s.writes.grad and s.writes.node in shape_of:
            need(x.shape == shape_of[s.writes.node], f"out for {s.writes}",
                  f"a gradient has the shape of its node {shape_of[s.writes.node]}")
    return Trace(tuple(nodes), tuple(modules), tuple(specs), given, values)
