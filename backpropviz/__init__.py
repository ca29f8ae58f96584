"""backpropviz: backpropagation made visible, in the notation of the lecture notes (§7.4).

The core (modules, rules, programs, traces, gradcheck) imports numpy only. The renderer
(graphviz) and the widgets (ipywidgets) are imported the first time they are used.

Steps are numbered as a learner reads them: step 0 is before any step, step k is after the k-th
rule; ``trace.steps[k - 1]`` is step k.
"""
from .errors import BackpropError
from .keys import Key
from .modules import (MM, Activation, Add, Cos, CrossEntropyLoss, Div, Exp, Identity, Log,
                      LogisticLoss, Loss, MatMul, Module, Mul, Op, Power, ReLU, Sigmoid, Sin,
                      SquaredLoss, Sub, Sum, Tanh)
from .rules import Rule, Slip, rule
from .program import Program
from .networks import Sequential, mlp
from .record import ModuleInfo, NodeInfo, Step, StepSpec, Trace
from . import trace          # a callable module: bpv.trace(f, x) traces f
from .trace import Var
from .check import GradcheckReport, gradcheck, numerical_grad
from . import check          # a callable module: bpv.check(MySigmoid) checks a learner's module
from .presentation import present

__version__ = "0.2.0"

# Heavy parts load on first use: importing backpropviz must stay cheap.
_LAZY = {"render": ".draw", "show": ".draw", "Renderer": ".draw", "Layout": ".draw",
         "EngineMissing": ".draw", "Stepper": ".widgets", "StepperModel": ".stepper",
         "step_text": ".presentation", "trace_text": ".presentation", "Question": ".quiz",
         "CheckReport": ".exercise", "TrainingLab": ".trainlab", "Training": ".train",
         "datasets": ".datasets", "labfile": ".labfile",
         "circuit": ".circuit"}   # a callable module: bpv.circuit(trace) is the scalar circuit


class _CallableCheck(type(check)):
    """``bpv.check`` is two things, as ``bpv.trace`` is: the module check.py (``gradcheck``,
    ``numerical_grad``; ``import backpropviz.check as C`` still gives it) and, called, the check
    of a learner's backward functions, ``bpv.check(MySigmoid)`` (exercise.py, loaded on the
    first call so that importing backpropviz stays cheap)."""

    def __call__(self, module, **options):
        """check(module, *, seed=0, cases=3, batch=4, shape=None, rtol=1e-5, atol=1e-6,
        eps=1e-6, network=True) -> CheckReport: the module's backward functions (B1) and (B2)
        against central differences of its forward, on seeded random single examples and
        batches; see backpropviz.exercise.check."""
        from .exercise import check as run
        return run(module, **options)


check.__class__ = _CallableCheck


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name], __name__)
        return module if module.__name__.endswith("." + name) else getattr(module, name)
    raise AttributeError(f"module 'backpropviz' has no attribute {name!r}")
