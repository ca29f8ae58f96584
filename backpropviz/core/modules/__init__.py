"""Modules M_i with hand-written forward and backward functions, in the notes' notation (7.4.3).

Each rule is written beside its code with ``@rule(kind, tag, expression)``: ``forward`` computes
u = M(z) (F); ``backward(z, v)`` is the backward function B[M, z](v) of (7.57), the gradient with
respect to the input given v = ∂J/∂u (B1); a module with parameters θ has one method per
parameter, ``grad_W(z, v)`` = B[M, W](v) (B2). The expressions give the text, the TeX and the
numeric check of each rule (see rules.py and expr.py).

**Your own module** (the contract): subclass ``Module``; name the parameters in ``param_names``
and keep them as attributes of those names (the engine reads them there, and gradcheck swaps
them); write ``forward`` and ``backward``, and for each parameter p either a method ``grad_p``
or one ``param_grads(z, v)`` returning a dict. Decorate them with ``@rule`` to give the tag and
the expression that the graph, the text and the Stepper show; undecorated methods are shown as
B[M, z](v). See the README for a worked example (an affine a ⊙ z + c).

A single example is a vector z ∈ R^n. A batch of B examples is a matrix with one example per
*column*, z ∈ R^{n×B}, so that MM is still Wz + b and (7.63)/(7.65) read the same; losses then
average over the batch, J = (1/B) Σ_j ℓ(t^(j), y^(j)).
"""
from .base import REGISTRY, Module, batch_size, frozen
from .layers import ACTIVATIONS, MM, Activation, Identity, ReLU, Sigmoid, Tanh
from .losses import LOSSES, CrossEntropyLoss, Loss, LogisticLoss, SquaredLoss
from .ops import (Add, BinaryOp, Cos, Div, Exp, Log, MatMul, Mul, Op, Power, Sin, Sub, Sum, binary,
                  elementwise)
from .index import Index, index_from_consts, index_text
from .routing import Entry, Stack



def is_builtin(cls) -> bool:
    """A module class of backpropviz's own (not a learner's subclass defined elsewhere)."""
    return cls.__module__.startswith(__name__ + ".")


__all__ = ["REGISTRY", "Module", "batch_size", "frozen", "ACTIVATIONS", "MM", "Activation",
           "Identity", "ReLU", "Sigmoid", "Tanh", "LOSSES", "CrossEntropyLoss", "Loss",
           "LogisticLoss", "SquaredLoss", "Add", "BinaryOp", "Cos", "Div", "Exp", "Log", "MatMul",
           "Mul", "Op", "Power", "Sin", "Sub", "Sum", "binary", "elementwise", "Index",
           "index_from_consts", "index_text", "Entry", "Stack", "is_builtin"]
