"""Losses: callable objects that reduce a prediction and a target to a scalar Tensor.

`pred` must be a Tensor; `target` may be a Tensor (it gets a gradient too, like in torch)
or anything array-like (a constant).
"""
from __future__ import annotations

import numpy as np

from pygrad.basics import check_tensor
from pygrad.tensor import Tensor, as_real_array

_LOG_FLOOR = -100.0   # torch clamps BCE's logs here so log(0) stays finite
_BCE_EPS = 1e-12      # torch's floor on p * (1 - p) in BCE's gradient


def _target(target, pred: Tensor, who: str):
    """(target as given or as an array of pred's dtype, its value), shape-checked."""
    if isinstance(target, Tensor):
        tv = target.value
    else:
        target = tv = as_real_array(target, f"{who}: target").astype(pred.dtype, copy=False)
    if tv.shape != pred.shape:
        raise ValueError(f"{who}: pred and target must have the same shape, got {pred.shape} and {tv.shape}")
    return target, tv


class BCELoss:
    """Binary cross-entropy: -(1/B) * sum(target*log(pred) + (1-target)*log(1-pred)) over all
    elements, B = pred.shape[0].

    Follows torch.nn.BCELoss exactly, also where it is not the derivative of its own value:
    the logs are clamped at -100, the gradient w.r.t. pred is
    (pred - target) / max(pred * (1 - pred), 1e-12) (so it is finite at pred = 0 and 1), and
    the gradient w.r.t. target is log(1 - pred) - log(pred). The loss is therefore written
    as its value plus a term that is zero in value and carries exactly that gradient."""

    def __call__(self, pred: Tensor, target) -> Tensor:
        check_tensor(pred, "BCELoss", "pred")
        target, tv = _target(target, pred, "BCELoss")
        if pred.ndim == 0 or pred.size == 0:
            raise ValueError(f"BCELoss: pred needs a non-empty batch dimension, got shape {pred.shape}")
        pv = pred.value
        if not np.all((pv >= 0) & (pv <= 1)):
            raise ValueError(f"BCELoss: pred must lie in [0, 1], got values in "
                             f"[{np.min(pv)}, {np.max(pv)}] (pred shape {pred.shape})")
        # in the promoted dtype, as NumPy would: a float32 pred must not cost a float64
        # target's loss its accuracy
        dt = np.result_type(pv, tv)
        pw, tv = pv.astype(dt, copy=False), tv.astype(dt, copy=False)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.log(pw), np.log1p(-pw)
        value = -(tv * np.maximum(log_p, _LOG_FLOOR) + (1 - tv) * np.maximum(log_q, _LOG_FLOOR))
        grad_pred = (pw - tv) / np.maximum((1 - pw) * pw, _BCE_EPS)
        elems = (pred - pv) * grad_pred + value
        if isinstance(target, Tensor):   # learnable=False too: it receives its gradient
            grad_target = log_q - log_p
            # torch's is +-inf where pred is exactly 0 or 1; a zero-valued term cannot carry an
            # infinite gradient, so those entries get the clamped loss's derivative (+-100).
            infinite = ~np.isfinite(grad_target)
            grad_target[infinite] = (np.maximum(log_q, _LOG_FLOOR) - np.maximum(log_p, _LOG_FLOOR))[infinite]
            elems = elems + (target - tv) * grad_target
        return elems.sum() * (1.0 / pred.shape[0])

    def __repr__(self) -> str:
        return "BCELoss()"


class CCELoss:
    """Categorical cross-entropy on logits: -(1/rows) * sum(target * softmax_log(pred)).

    pred (B, n, w) logits and target (B, n, w) one-hot rows or probabilities; the rows are
    flattened to (B*n, 1, w) when n > 1, and rows = B*n (= torch.nn.CrossEntropyLoss with
    probability targets on pred.reshape(-1, w)).

    mask=True: along each sequence (axis 1), rows whose target is class 0 (end/padding: the
    target's largest entry is its first) are ignored, except the first such row; the
    divisor is then the number of rows counted."""

    def __call__(self, pred: Tensor, target, mask: bool = False) -> Tensor:
        check_tensor(pred, "CCELoss", "pred")
        target, tv = _target(target, pred, "CCELoss")
        if pred.ndim != 3 or pred.size == 0:
            raise ValueError(f"CCELoss: pred must be non-empty logits of shape (B, n, w), got {pred.shape}")
        batch, n, width = pred.shape
        rows = batch * n
        if mask:
            is_end = np.argmax(tv, axis=-1) == 0                          # (B, n)
            keep = ~is_end | (is_end & (np.cumsum(is_end, axis=1) == 1))
            target = target * keep[..., None].astype(pred.dtype)
            rows = int(keep.sum())
        if n > 1:
            pred = pred.reshape(batch * n, 1, width)
            target = target.reshape(batch * n, 1, width)
        return (target * pred.softmax_log(axis=-1)).sum() * (-1.0 / rows)

    def __repr__(self) -> str:
        return "CCELoss()"
