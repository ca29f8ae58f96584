"""The rule table: each rule's expression (the text and TeX a learner reads) computes what the
module's hand-written code computes, on random inputs; its text and TeX render."""
import pathlib
import re

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core import expr as E
from backpropviz.core import modules as M
from backpropviz.core.rules import Context

RNG = np.random.default_rng(20261128)


def _inputs(cls, batch):
    """Random inputs for a module class, and the module: (module, {symbol: value})."""
    n = 3
    z = RNG.normal(size=(n, batch) if batch else n)
    if cls is M.MM:
        mod = M.MM(RNG.normal(size=(2, n)), RNG.normal(size=2))
        return mod, {"z": z}
    if issubclass(cls, M.Loss):
        t = RNG.normal(size=(n, batch) if batch else n)
        if cls is M.LogisticLoss:
            y = (RNG.random(t.shape) < 0.5).astype(float)
        elif cls is M.CrossEntropyLoss:
            y = np.eye(n)[:, RNG.integers(0, n, size=batch)] if batch else np.eye(n)[1]
        else:
            y = RNG.normal(size=t.shape)
        return cls(), {"t": t, "y": y}
    if cls is M.Power:
        return M.Power(3), {"z": np.abs(z) + 0.5}
    if cls is M.Log:
        return cls(), {"z": np.abs(z) + 0.5}
    if cls is M.MatMul:
        return cls(), {"a": RNG.normal(size=(2, n)), "b": z}
    if issubclass(cls, M.BinaryOp):
        return cls(), {"a": z, "b": np.abs(RNG.normal(size=z.shape)) + 0.5}
    return cls(), {"z": z}


CLASSES = [c for c in M.REGISTRY.values() if c.rules and M.is_builtin(c)
           and not c.__name__.startswith("_")
           and c not in (M.Activation, M.Loss, M.Op, M.BinaryOp)]


def _cases():
    for cls in CLASSES:
        for batch in ((0, 4) if cls.batched else (0,)):
            for (kind, which), rule in cls.rules.items():
                yield pytest.param(cls, batch, kind, which,
                                   id=f"{cls.__name__}-{kind}-{which}-{'batch' if batch else 'one'}")


def _evaluate(mod, kind, which, vals):
    """(code's value, the expression's value, the expression) for one rule."""
    args = [vals[s] for s in mod.inputs]
    out = mod.function("F")(*args)
    if kind == "F":
        code = out
    else:
        v = RNG.normal(size=np.shape(out)) if np.ndim(out) else np.asarray(1.0)
        vals = {**vals, "v": v}
        code = mod.function(kind, which)(*args, v)
    env = {s: E.columns(x) for s, x in vals.items()}
    env.update({p: E.columns(x) for p, x in mod.params.items()})
    first = vals[mod.inputs[0]]
    batch = first.shape[1] if mod.batched and np.ndim(first) == 2 else None
    env["B"] = batch
    ctx = Context({s: np.ndim(x) for s, x in {**vals, **mod.params}.items()}, mod.consts, batch)
    e = mod.rule(kind, which).expression(ctx)
    return np.asarray(code, float), np.asarray(e.eval(env), float), e


@pytest.mark.parametrize("cls,batch,kind,which", list(_cases()))
def test_rule_expression_computes_what_the_code_computes(cls, batch, kind, which):
    mod, vals = _inputs(cls, batch)
    code, shown, e = _evaluate(mod, kind, which, vals)
    assert shown.size == code.size, (e.render(E.Format(False, False, lambda n, a=None: n)), shown.shape, code.shape)
    np.testing.assert_allclose(shown.reshape(code.shape), code, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,batch,kind,which", list(_cases()))
def test_rule_text_and_tex_render(cls, batch, kind, which):
    mod, vals = _inputs(cls, batch)
    _, _, e = _evaluate(mod, kind, which, vals)
    text = e.render(E.Format(False, False, lambda n, a=None: n, lambda n: 1))
    tex = e.render(E.Format(True, False, lambda n, a=None: n, lambda n: 1))
    assert text and tex and "{" not in text
    assert tex.count("{") == tex.count("}")
    assert set(e.symbols()) <= set(mod.inputs) | set(mod.param_names) | {"v", "B"}


def test_a_wrong_expression_is_caught():
    """The check can fail: a module whose rule text says 2 Wᵀ v while its code computes Wᵀ v is
    found by the same evaluation the rule-table test uses."""
    from backpropviz.core.rules import rule

    class WrongText(M.MM):
        @rule("B1", "(7.63)", (E.W.T @ E.v) * 2)
        def backward(self, z, v):
            return self.W.T @ v

    mod, vals = _inputs(M.MM, 0)
    wrong = WrongText(mod.W, mod.b)
    code, shown, _ = _evaluate(wrong, "B1", 0, vals)
    assert not np.allclose(shown.reshape(code.shape), code)
    code, shown, _ = _evaluate(mod, "B1", 0, vals)          # the real MM agrees
    np.testing.assert_allclose(shown.reshape(code.shape), code)


def test_every_tag_of_the_module_rules_is_one_of_the_notes():
    tags = {r.tag for c in CLASSES for r in c.rules.values()}
    assert tags <= {"(F)", "(7.58)", "(7.63)", "(7.65)", "(7.66)", "(7.69)", "(7.70)", "(7.71)",
                    "(§7.4.3)"}


def test_key_strings_are_built_in_one_file():
    """No file but keys.py glues together gradient-key text ('∂J/∂' + name, ' via ')."""
    pkg = pathlib.Path(bpv.__file__).parent
    for f in pkg.rglob("*.py"):
        if f.name == "keys.py":
            continue
        src = f.read_text()
        assert not re.search(r"""["']dJ/d|["']∂J/∂["']\s*\+|["'] via ["']""", src), f.name
