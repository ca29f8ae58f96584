"""backpropviz: backpropagation made visible, in the notation of the lecture notes (§7.4).

The package is layered (ARCHITECTURE.md): ``core`` (modules, rules, programs, traces, gradcheck;
numpy only), ``theory`` (the scalar circuit, the cost of backprop), ``display`` (text, the
presentation of a step, drawings), ``teach`` (the Stepper's model, hints, questions, exercises),
``lab`` (data sets, training, lab files) and ``widgets`` (the Stepper and the training lab).
Everything a lesson uses is here, as ``bpv.<name>``; the heavy layers load on first use, so
importing backpropviz stays cheap.

Steps are numbered as a learner reads them: step 0 is before any step, step k is after the k-th
rule; ``trace.steps[k - 1]`` is step k.
"""
from .core.errors import BackpropError
from .core.keys import Key
from .core.modules import (MM, Activation, Add, Cos, CrossEntropyLoss, Div, Exp, Identity, Log,
                           LogisticLoss, Loss, MatMul, Module, Mul, Op, Power, ReLU, Sigmoid, Sin,
                           SquaredLoss, Sub, Sum, Tanh)
from .core.rules import Rule, Slip, rule
from .core.program import Program
from .core.networks import Sequential, mlp
from .core.trace import ModuleInfo, NodeInfo, Step, StepSpec, Trace
from .core.tracing import Var, trace
from .core.gradcheck import GradcheckReport, gradcheck, numerical_grad
from .display.presentation import present

__version__ = "0.2.0"

# name → (module, attribute or None for the module itself), imported on first use
_LAZY = {"render": (".display.draw", "render"), "show": (".display.draw", "show"),
         "Renderer": (".display.draw", "Renderer"), "Layout": (".display.draw", "Layout"),
         "EngineMissing": (".display.draw", "EngineMissing"),
         "step_text": (".display.presentation", "step_text"),
         "trace_text": (".display.presentation", "trace_text"),
         "algorithm3_line": (".display.presentation", "algorithm3_line"),
         "algorithm3_names": (".display.notation", "algorithm3_names"),
         "circuit": (".theory.circuit", "circuit"), "cost": (".theory.cost", None),
         "Stepper": (".widgets.stepper", "Stepper"), "StepperModel": (".teach.stepper", "StepperModel"),
         "Question": (".teach.quiz", "Question"), "exit_questions": (".teach.exits", "exit_questions"),
         "CheckReport": (".teach.exercise", "CheckReport"),
         "TeacherView": (".widgets.teacher", "TeacherView"), "ClassStore": (".live.store", "ClassStore"),
         "TrainingLab": (".widgets.trainlab", "TrainingLab"), "Training": (".lab.train", "Training"),
         "datasets": (".lab.datasets", None), "labfile": (".lab.labfile", None),
         # modules a rule's author or a lesson reads from: bpv.expr.Sym, bpv.text.shape_text
         "expr": (".core.expr", None), "keys": (".core.keys", None), "text": (".display.text", None)}


def check(module, **options):
    """check(module, *, seed=0, cases=3, batch=4, shape=None, rtol=1e-5, atol=1e-6, eps=1e-6,
    network=True) -> CheckReport: a learner's backward functions (B1) and (B2) against central
    differences of its forward, on seeded random single examples and batches
    (backpropviz.teach.exercise.check, loaded on the first call)."""
    from .teach.exercise import check as run
    return run(module, **options)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        where, attr = _LAZY[name]
        module = importlib.import_module(where, __name__)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'backpropviz' has no attribute {name!r}")
