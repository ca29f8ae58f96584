"""backpropviz: backpropagation made visible, in the notation of the lecture notes (§7.4).

The core (modules, graph, trace, gradcheck) imports numpy only. The renderer (graphviz) and the
widgets (ipywidgets, matplotlib) are imported the first time they are used.
"""
from .errors import BackpropError
from .modules import (MM, Activation, Add, Cos, CrossEntropyLoss, Div, Exp, Identity, Log,
                      LogisticLoss, Loss, MatMul, Module, Mul, Op, Power, ReLU, Sigmoid, Sin,
                      SquaredLoss, Sub, Sum, Tanh)
from .graph import Program, Sequential, Var, mlp, trace
from .trace import ModuleInfo, NodeInfo, Step, StepSpec, Trace
from .check import GradcheckReport, gradcheck, numerical_grad

__version__ = "0.1.0"

# Heavy parts load on first use: importing backpropviz must stay cheap.
_LAZY = {"render": ".draw", "show": ".draw", "Renderer": ".draw", "Layout": ".draw",
         "EngineMissing": ".draw", "Stepper": ".widgets", "StepperModel": ".stepper", "step_text": ".text", "trace_text": ".text"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'backpropviz' has no attribute {name!r}")
