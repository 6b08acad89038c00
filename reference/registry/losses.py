"""The loss table: pygrad's loss classes as registry entries, and the losses a random
Module may end in.

`LOSS_OPS` holds an `OpSpec` per loss class (operands: prediction, target): PyTorch's own
loss function is the twin, the NumPy forward serves finite differences, and the rule lists
the loss's options and conditions (CCELoss's `mask=True` with ignored rows, BCELoss at
predictions of exactly 0 and 1). They are checked alone (their report rows are
`loss:<class>`) and at the end of Modules.

`MODULE_LOSSES` are the ends a random Module may have: the loss classes with their options,
and the squared errors written with ops. Each entry states the shape its prediction needs,
how to draw a target, the pygrad code, and the forward as registry ops (the oracle).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from reference.registry.op_models import exp_inside_overflow
from reference.registry import makers
from reference.registry.rules import F32, FLOAT32, Rule
from reference.registry.spec import Condition, ErrorInput, Infeasible, OpSpec, Plan, Sample
from reference.value_strategies import simplex_rows

LOG_FLOOR = -100.0


# ---------------------------------------------------------------------------- CCELoss
def kept_rows(target: np.ndarray) -> np.ndarray:
    """CCELoss(mask=True)'s rows that count, (B, n): a row whose target is class 0 (its
    first entry is its largest) is ignored, except the first such row of its sequence."""
    end = np.argmax(np.asarray(target), axis=-1) == 0
    first_end = end & (np.cumsum(end, axis=1) == 1)
    return ~end | first_end


def _cce_kinks(operands, args):
    """mask=True: which rows count jumps where a target row's first entry ties with its
    largest other entry (a tie is class 0: every implementation takes argmax's first index)."""
    target = np.asarray(operands[1])
    if not args["mask"] or target.shape[-1] < 2:
        return []
    gap = target[..., 0] - np.max(target[..., 1:], axis=-1)
    return [(gap, gap == 0)]


def _cce_rows(target, mask):
    b, n, _ = np.shape(target)
    keep = kept_rows(target) if mask else np.ones((b, n), dtype=bool)
    return keep, max(int(keep.sum()), 1)


def torch_cce(pred, target, mask=False):
    b, n, w = pred.shape
    keep, rows = _cce_rows(target.detach().numpy(), mask)
    per_row = F.cross_entropy(pred.reshape(-1, w), target.reshape(-1, w), reduction="none")
    return (per_row * torch.from_numpy(keep.reshape(-1).astype(np.float64))).sum() / rows


def numpy_cce(pred, target, mask=False):
    keep, rows = _cce_rows(target, mask)
    s = pred - pred.max(axis=-1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return -np.sum(target * log_p * keep[..., None]) / rows


def _cce_out_abs(operands, out, args):
    pred, target = operands
    w = pred.shape[-1]
    s = np.abs(pred - pred.max(axis=-1, keepdims=True))
    _, rows = _cce_rows(target, args["mask"])
    return np.sum(np.abs(target) * (s + np.log(w) + w + 4)) / rows + (pred.size + 4) * abs(float(out))


def _cce_bwd_abs(operands, out, g, args):
    pred, target = operands
    w = pred.shape[-1]
    _, rows = _cce_rows(target, args["mask"])
    p = np.exp(pred - pred.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    mass = np.sum(np.abs(target), axis=-1, keepdims=True)
    gp = (w + 4) * (np.abs(target) + p * mass) * abs(float(g)) / rows
    gt = (np.abs(np.log(np.maximum(p, 1e-300))) + w + 4) * abs(float(g)) / rows
    return [gp, gt]


def _ignored(use) -> bool:
    return bool(use.args.get("mask")) and use.values is not None and not np.all(kept_rows(use.values[1]))


def _one_hot(rng, shape, classes=None):
    cls = rng.integers(0, shape[-1], size=shape[:-1]) if classes is None else np.asarray(classes)
    out = np.zeros(shape)
    np.put_along_axis(out, cls[..., None], 1.0, axis=-1)
    return out


@dataclass(frozen=True)
class CrossEntropyValues:
    """Values of a CCELoss sample (a `Sample.make` that follows its shapes): logits in
    [-2, 2] and a target of one-hot rows of `classes` ((B, n) nested tuples; random if None),
    `padded` (each sequence one class-0 row to end it, then class-0 padding: ignored rows
    under mask=True), `soft` (probability rows; with classes or padding, 0.6 of the class's
    one-hot row plus 0.4 of a random probability row, so the class stays the largest)."""

    shape: tuple = (2, 3, 4)
    classes: tuple | None = None
    soft: bool = False
    padded: bool = False

    def __call__(self, rng) -> tuple:
        b, n, w = self.shape
        classes = self.classes
        if self.padded:
            classes = tuple((1 + k % (w - 1),) + (0,) * (n - 1) for k in range(b))
        target = None if self.soft and classes is None else _one_hot(rng, self.shape, classes)
        if self.soft:
            rows = simplex_rows(rng.uniform(0.1, 1, self.shape))
            target = rows if target is None else 0.6 * target + 0.4 * rows
        return rng.uniform(-2, 2, self.shape), target

    def for_shapes(self, shapes) -> "CrossEntropyValues":
        shape = tuple(shapes[0])
        if len(shape) != 3 or shapes[1] != shape:
            raise Infeasible("CCELoss needs logits and a target of one shape (B, n, w)")
        keep = self.classes if self.classes is not None and np.shape(self.classes) == shape[:2] else None
        return replace(self, shape=shape, classes=keep)


def _at_least_rows(sample, n: int):
    """Maker: n rows per sample (at least)."""
    b, rows, w = sample.shapes[0]
    return makers.reshaped(sample, ((b, max(rows, n), w),) * 2)


def _cce_values(**kw):
    """Maker: the CCELoss values' options changed."""
    def make(sample):
        return replace(sample, make=replace(sample.make, **kw))
    return make


class CrossEntropyRule(Rule):
    """Logits (B, n, w) and a target of the same shape: one-hot rows or probabilities."""

    name = "cce"
    conditions = (
        FLOAT32,
        Condition("n > 1 rows per sample", lambda u: u.shapes[0][1] > 1, lambda s: _at_least_rows(s, 2)),
        Condition("probability targets", lambda u: u.values is not None and np.any((u.values[1] > 0)
                                                                                   & (u.values[1] < 1)),
                  _cce_values(soft=True)),
        Condition("mask=True", lambda u: bool(u.args.get("mask")), makers.args(mask=True)),
        Condition("mask=True with ignored rows", _ignored,
                  lambda s: makers.args(mask=True)(_cce_values(padded=True, classes=None)(_at_least_rows(s, 3)))))

    def samples(self, spec):
        padded = ((2, 0, 0), (1, 3, 0))      # class 0 ends each sequence; later 0-rows are padding
        values = CrossEntropyValues()
        return [Sample(((2, 1, 4), (2, 1, 4)), make=CrossEntropyValues((2, 1, 4)), constant=(1,)),
                Sample(((2, 3, 4), (2, 3, 4)), make=values, constant=(1,)),
                Sample(((2, 3, 4), (2, 3, 4)), make=replace(values, soft=True), constant=(1,)),
                Sample(((2, 3, 4), (2, 3, 4)), {"mask": True}, make=replace(values, classes=padded), constant=(1,)),
                Sample(((2, 3, 4), (2, 3, 4)), {"mask": True}, make=replace(values, classes=((1, 2, 3), (3, 1, 2))),
                       constant=(1,)),
                Sample(((2, 3, 4), (2, 3, 4)), make=replace(values, soft=True)),
                Sample(((2, 3, 4), (2, 3, 4)), {"mask": True}, dtypes=F32 * 2, make=replace(values, classes=padded),
                       constant=(1,))]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3, 4), (2, 3, 5)), match="CCELoss"), ErrorInput(((2, 4), (2, 4)), match="CCELoss")]

    def anchors(self, spec, fd):
        return st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4))

    def fits_shape(self, shape):
        return False   # not in random programs

    def plan(self, spec, shape, sign, fd, dtype):
        return st.booleans().map(lambda m: _plan({"mask": True} if m else {}, shape))


def _plan(args, shape):
    return Plan(args, others=(shape,))


# ---------------------------------------------------------------------------- BCELoss
def torch_bce(pred, target):
    return F.binary_cross_entropy(pred, target, reduction="sum") / pred.shape[0]


def numpy_bce(pred, target):
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(pred), LOG_FLOOR), np.maximum(np.log1p(-pred), LOG_FLOOR)
    return -np.sum(target * log_p + (1 - target) * log_q) / pred.shape[0]


def _bce_out_abs(operands, out, args):
    return (operands[0].size + 6) * abs(float(out))


def _bce_bwd_abs(operands, out, g, args):
    p, t = operands
    b = p.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        gp = np.abs(p - t) / np.maximum(p * (1 - p), 1e-12)
        gt = np.abs(np.maximum(np.log1p(-p), LOG_FLOOR)) + np.abs(np.maximum(np.log(p), LOG_FLOOR))
    return [8 * gp * abs(float(g)) / b, 8 * gt * abs(float(g)) / b]


def _bce_kinks(operands, args):
    """The clamp of the gradient's denominator p (1 - p) at 1e-12, and the interval's ends."""
    p = operands[0]
    return [(p * (1 - p) - 1e-12, np.zeros(p.shape, dtype=bool))]


@dataclass(frozen=True)
class BinaryCrossEntropyValues:
    """Values of a BCELoss sample (a `Sample.make` that follows its shapes): predictions in
    [0.05, 0.95] and targets in [0, 1]; `hard`: targets exactly 0 or 1; `ends`: predictions
    of exactly 0 and 1 at every other entry (the target equal there, as torch requires for a
    finite loss)."""

    shape: tuple = (2, 3)
    hard: bool = False
    ends: bool = False

    def __call__(self, rng) -> tuple:
        target = rng.integers(0, 2, self.shape).astype(float) if self.hard else rng.uniform(0, 1, self.shape)
        p = rng.uniform(0.05, 0.95, self.shape)
        if self.ends:
            flat = p.reshape(-1)
            flat[::2] = np.arange(flat[::2].size) % 2
            target = np.where((p == 0) | (p == 1), p, target)
        return p, target

    def for_shapes(self, shapes) -> "BinaryCrossEntropyValues":
        if len(shapes[0]) < 1 or shapes[1] != shapes[0]:
            raise Infeasible("BCELoss needs a prediction and a target of one shape (B, ...)")
        return replace(self, shape=tuple(shapes[0]))


class BinaryCrossEntropyRule(Rule):
    """Predictions in [0, 1] and targets in [0, 1] of the same shape (B, ...)."""

    name = "bce"
    min_dims = 1
    conditions = (
        FLOAT32,
        Condition("1-D prediction", lambda u: u.ndims[0] == 1,
                  lambda s: makers.reshaped(s, ((math.prod(s.shapes[0]),),) * 2)),
        Condition("prediction exactly 0 or 1", lambda u: u.values is not None
                  and bool(np.any((u.values[0] == 0) | (u.values[0] == 1))),
                  lambda s: replace(s, values="kinks", make=replace(s.make, ends=True))),
        Condition("target exactly 0 or 1", lambda u: u.values is not None
                  and bool(np.any((u.values[1] == 0) | (u.values[1] == 1))),
                  lambda s: replace(s, make=replace(s.make, hard=True))))

    def samples(self, spec):
        values = BinaryCrossEntropyValues()
        ends = replace(values, ends=True)
        return [Sample(((2, 3), (2, 3)), make=values, constant=(1,)),
                Sample(((4,), (4,)), make=BinaryCrossEntropyValues((4,)), constant=(1,)),
                Sample(((2, 3), (2, 3)), make=replace(values, hard=True), constant=(1,)),
                Sample(((2, 3), (2, 3)), make=values),
                Sample(((2, 3), (2, 3)), values="kinks", make=ends, constant=(1,)),
                Sample(((2, 3), (2, 3)), dtypes=F32 * 2, make=values, constant=(1,)),
                Sample(((2, 3), (2, 3)), dtypes=F32 * 2, values="kinks", make=ends, constant=(1,))]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3), (2, 4)), match="BCELoss"),
                ErrorInput(((2, 3), (2, 3)), match="BCELoss",
                           make=lambda rng: (np.full((2, 3), 1.5), np.zeros((2, 3))))]

    def fits_shape(self, shape):
        return False   # not in random programs

    def plan(self, spec, shape, sign, fd, dtype):
        return st.builds(lambda: _plan({}, shape))


CCE = OpSpec(name="CCELoss", arity=2, code="CCELoss()({0}, {1}{targs})", torch=torch_cce, numpy=numpy_cce,
             rule=CrossEntropyRule(), kwargs=("mask",), defaults={"mask": False},
             domain=lambda args: ("real", "simplex"), kinks=_cce_kinks, out_abs=_cce_out_abs, bwd_abs=_cce_bwd_abs,
             computes_in=lambda dtypes: dtypes[0], overflow=exp_inside_overflow, offset=True,
             in_programs=False, array_operands=False, row="loss:CCELoss",
             notes="logits (B, n, w); one-hot or probability targets; mask=True ignores padding rows")
BCE = OpSpec(name="BCELoss", arity=2, code="BCELoss()({0}, {1})", torch=torch_bce, numpy=numpy_bce,
             rule=BinaryCrossEntropyRule(), domain=lambda args: ("unit", "unit"), kinks=_bce_kinks,
             out_abs=_bce_out_abs, bwd_abs=_bce_bwd_abs, in_programs=False, array_operands=False,
             row="loss:BCELoss",
             notes="predictions in [0, 1]; logs clamped at -100 and gradient as torch.nn.BCELoss")

LOSS_OPS = {spec.name: spec for spec in (CCE, BCE)}


# ---------------------------------------------------------------------------- Module losses
@dataclass(frozen=True)
class ModuleLoss:
    """How a random Module may end.

    `code`: the pygrad loss of `(y_pred, y_true)`; `target(rng, shape)`: a target for a
    batch; either `op` and `args` (a loss class of `LOSS_OPS`, whose node ends the Module's
    program) or `forward(node, out, y)` (the loss as registry nodes: `node(op, operands,
    **args)` adds one); `logits`: the prediction must have the per-sample shape (n, w) (a
    Flatten is appended otherwise); `probabilities`: the last layer must be a Sigmoid or
    Softmax (a Sigmoid is appended otherwise); `reduction`: "sum" or "mean" over the batch's
    samples (or entries), None when its divisor depends on the values (a masked loss counts
    the rows it keeps) -- what `step_single` accumulation over equal chunks must divide by."""

    name: str
    code: str
    target: Callable
    forward: Callable | None = None
    op: str | None = None
    args: tuple = ()
    logits: bool = False
    probabilities: bool = False
    reduction: str | None = "mean"

    @property
    def row(self) -> str | None:
        return LOSS_OPS[self.op].row if self.op else None

    def add(self, node, out: str, y: str) -> str:
        """The loss's nodes in the Module's program; returns the root."""
        if self.forward is not None:
            return self.forward(node, out, y)
        return node(self.op, (out, y), **dict(self.args))


def _squared(reduce):
    def forward(node, out, y):
        sq = node("pow", (node("sub", (out, y)),), p=2.0)
        return node(reduce, (sq,), **({"axis": None, "keepdims": False} if reduce == "mean" else {}))
    return forward


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _classes(rng, shape, padded=False):
    """One-hot rows; `padded`: each sequence ends in class-0 rows (end, then padding)."""
    target = _one_hot(rng, shape)
    if padded and shape[1] > 1:
        stop = rng.integers(1, shape[1], size=shape[0])
        for b, k in enumerate(stop):
            target[b, k:] = 0.0
            target[b, k:, 0] = 1.0
    return target


MODULE_LOSSES = {loss.name: loss for loss in (
    ModuleLoss("sse", "((y_pred - y_true) ** 2).sum()", _normal, forward=_squared("sum"), reduction="sum"),
    ModuleLoss("mse", "((y_pred - y_true) ** 2).mean(axis=None, keepdims=False)", _normal, forward=_squared("mean")),
    ModuleLoss("cce", "CCELoss()(y_pred, y_true)", _classes, op="CCELoss", logits=True),
    ModuleLoss("cce_mask", "CCELoss()(y_pred, y_true, mask=True)", lambda rng, shape: _classes(rng, shape, True),
               op="CCELoss", args=(("mask", True),), logits=True, reduction=None),
    ModuleLoss("bce", "BCELoss()(y_pred, y_true)", lambda rng, shape: rng.uniform(0.0, 1.0, shape), op="BCELoss",
               probabilities=True),
)}
