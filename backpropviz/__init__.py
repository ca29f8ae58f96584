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
from .presentation import present

__version__ = "0.2.0"

# Heavy parts load on first use: importing backpropviz must stay cheap.
_LAZY = {"render": ".draw", "show": ".draw", "Renderer": ".draw", "Layout": ".draw",
         "EngineMissing": ".draw", "Stepper": ".widgets", "StepperModel": ".stepper",
         "step_text": ".presentation", "trace_text": ".presentation", "Question": ".quiz"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'backpropviz' has no attribute {name!r}")
