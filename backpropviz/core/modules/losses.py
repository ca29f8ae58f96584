"""Losses: modules with a label y whose output is J; averaged over a batch (7.70), (7.71), (§7.4.3)."""
from __future__ import annotations


import numpy as np

from .. import expr as E
from .. import rules as R
from ..errors import BackpropError, shape_str
from ..expr import t, v, y
from ..rules import rule
from ..numerics import sigmoid, softmax
from .base import Module, batch_size

# --- losses: modules with a label y; J = u[k] -----------------------------------------------------

def _mean(e):
    """The loss and its gradient for a batch carry 1/B (J is the mean over the examples)."""
    return lambda c: E.per_example(e) if c.batch else e


class Loss(Module):
    """A loss ℓ(t, y) as the last module M_k; backward(t, y, v=1) = ∂J/∂t."""

    inputs = ("t", "y")
    batched = True

    @property
    def arity(self) -> int:
        return 1        # t is differentiable; the label y is not

    def check_label(self, t, y, where) -> np.ndarray:
        return y

    def _label(self, t, y):
        """A label as the rules use it; called directly, a loss accepts what backprop accepts
        (a class index, a flat label) and says so if it cannot."""
        if np.shape(y) == np.shape(t):
            return y
        return self.check_label(np.asarray(t), np.asarray(y, dtype=float), self.label)

    def __call__(self, t, y=None):
        if getattr(y, "_bpv_apply", None) is not None:
            # the rules treat y as data: ∂J/∂y would be silently dropped, so refuse it
            raise BackpropError(
                f"{type(self).__name__}(t, y): the label y is a traced value ({y.name}), but a "
                f"loss's label is data and gets no gradient, so ∂J/∂{y.name} would be wrong. "
                f"Give y as numbers, or write the loss with ops so every input gets its "
                f"gradient, e.g. 0.5 * ((t - y) ** 2).sum() for the squared loss")
        if getattr(t, "_bpv_apply", None) is not None:
            return t._bpv_apply(self, (t, y))
        t = np.asarray(t, dtype=float)
        return self.forward(t, self.check_label(t, np.asarray(y, dtype=float), self.label))


def _label_shape(t, y, where, what="output t"):
    """One rule: y has the output's shape (one example per column); a single example's label
    may be given flat (y = 1 for a one-entry t), and a batch with one output per example may
    give one number per example."""
    if y.shape == t.shape:
        return y
    if (t.ndim <= 1 and y.size == t.size) or (t.ndim == 2 and t.shape[0] == 1 and y.ndim <= 1
                                               and y.size == t.shape[1]):
        return y.reshape(t.shape)
    hint = (f" (a batch has one example per column: y must be {shape_str(t)} too)"
            if t.ndim == 2 else "")
    raise BackpropError(f"{where}: the label y has shape {shape_str(y)} but the {what} has "
                        f"shape {shape_str(t)}{hint}")


class SquaredLoss(Loss):
    """ℓ_sq(t, y) = ½‖t − y‖²; B[ℓ_sq, t](v) = (t − y) v (§7.4.3)."""

    label = "ℓ_sq"

    def check_label(self, t, y, where):
        return _label_shape(t, y, where)

    @rule("F", "(F)", _mean(E.half_sq_norm(t - y)))
    def forward(self, t, y):
        y = self._label(t, y)
        d = t - y
        return np.asarray(0.5 * np.vdot(d, d) / batch_size(t))

    @rule("B1", "(§7.4.3)", _mean(E.times(t - y, v)), slips=(R.FORGOT_MEAN,))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        scale = float(v) / batch_size(t)   # v = ∂J/∂J, one number
        return t - y if scale == 1.0 else (t - y) * scale


def _binary_labels(t, y, where):
    y = _label_shape(t, y, where, "logit t")
    # y(y − 1) is 0 exactly when y is 0 or 1 (NaN and inf give non-zero)
    ok = (float(y.flat[0]) in (0.0, 1.0)) if y.size == 1 else not np.count_nonzero(y * (y - 1.0))
    if not ok:
        bad = y[(y != 0) & (y != 1)] if y.size > 1 else y.ravel()
        raise BackpropError(f"{where}: logistic-loss labels must be 0 or 1; got {bad.ravel()[:5]}")
    return y


class LogisticLoss(Loss):
    """ℓ_logistic(t, y) = log(1 + e^t) − y t; B[ℓ_logistic, t](v) = (σ(t) − y) v (7.70)."""

    label = "ℓ_logistic"

    def check_label(self, t, y, where):
        return _binary_labels(t, y, where)

    @rule("F", "(F)", _mean(E.total(E.log(1 + E.exp(t)) - y * t)))
    def forward(self, t, y):
        y = self._label(t, y)
        # log(1+e^t) = logaddexp(0, t): no overflow for large t, no log(0) for very negative t.
        return np.asarray((np.logaddexp(0.0, t) - y * t).sum() / batch_size(t))

    @rule("B1", "(7.70)", _mean(E.times(E.sigma(t) - y, v)),
          slips=(R.FORGOT_SQUASH, R.FORGOT_MEAN))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        g = sigmoid(t) - y
        scale = float(v) / batch_size(t)   # v = ∂J/∂J, one number
        return g if scale == 1.0 else g * scale


class CrossEntropyLoss(Loss):
    """ℓ_ce(t, y) = −log softmax(t)_y on logits t; B[ℓ_ce, t](v) = (softmax(t) − y) v (7.71).

    y is one-hot (same shape as t) or a class index (an int, or one per column of a batch).
    """

    label = "ℓ_ce"

    def check_label(self, t, y, where):
        k = t.shape[0]
        if y.shape == t.shape:
            if (((y == 0) | (y == 1)).all() and (y.sum(axis=0) == 1).all()):
                return y
            raise BackpropError(f"{where}: cross-entropy labels of shape {shape_str(y)} must be "
                                f"one-hot (0/1 entries, exactly one 1 per example)")
        n = batch_size(t)
        idx = y.ravel()
        if idx.size == n and np.all(idx == np.round(idx)) and np.all((idx >= 0) & (idx < k)):
            onehot = (np.arange(k)[:, None] == idx.astype(int)[None, :]).astype(float)
            return onehot[:, 0] if t.ndim == 1 else onehot
        bad = idx[(idx != np.round(idx)) | (idx < 0) | (idx >= k)] if idx.size == n else idx
        raise BackpropError(
            f"{where}: cross-entropy labels must be one-hot with the logits' shape {shape_str(t)} "
            f"or class indices in 0..{k - 1} (one per example); got {bad[:5]} "
            f"(labels of shape {shape_str(y)})")

    @rule("F", "(F)", _mean(-E.total(y * E.log(E.softmax(t)))))
    def forward(self, t, y):
        y = self._label(t, y)
        m = t.max(axis=0)
        lse = m + np.log(np.exp(t - m).sum(axis=0))
        return np.asarray((lse - (y * t).sum(axis=0)).sum() / batch_size(t))

    @rule("B1", "(7.71)", _mean(E.times(E.softmax(t) - y, v)),
          slips=(R.FORGOT_SQUASH, R.FORGOT_MEAN))
    def backward(self, t, y, v=1.0):
        y = self._label(t, y)
        scale = float(v) / batch_size(t)   # v = ∂J/∂J, one number
        return softmax(t) - y if scale == 1.0 else (softmax(t) - y) * scale


LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss, "cross_entropy": CrossEntropyLoss}
