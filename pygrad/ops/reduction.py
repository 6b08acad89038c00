"""Reductions over axes: sum, mean, population std.

`axis` is None (all axes), an int (negative allowed) or a tuple of ints. Note the
defaults: `sum` reduces everything like NumPy, while `mean` and `std` keep the original
pygrad's defaults (last axis, keepdims=True)."""
from __future__ import annotations

import math

import numpy as np

from pygrad.ops._core import normalize_axes, result, tensor_method
from pygrad.tensor import Tensor


def _expand(g: np.ndarray, axes: tuple, keepdims: bool, shape: tuple) -> np.ndarray:
    """`g`, a reduction's output gradient, broadcast back to the input `shape` in a new array."""
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


@tensor_method("sum")
def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - the op's name
    """np.sum(x, axis, keepdims)."""
    xv = x._value
    axes = normalize_axes(axis, xv.ndim, "sum", xv.shape)

    def backward(g):
        x._add_grad(_expand(g, axes, keepdims, xv.shape))
    # np.add.reduce is np.sum for an ndarray, without np.sum's Python-level dispatch
    return result(np.add.reduce(xv, axis=axes, keepdims=keepdims), (x,), backward)


@tensor_method("mean")
def mean(x: Tensor, axis=-1, keepdims: bool = True) -> Tensor:
    """np.mean(x, axis, keepdims); defaults: last axis, keepdims=True."""
    xv = x._value
    axes = normalize_axes(axis, xv.ndim, "mean", xv.shape)
    count = math.prod(xv.shape[a] for a in axes)

    def backward(g):
        x._add_grad(_expand(g / count, axes, keepdims, xv.shape))
    return result(np.mean(xv, axis=axes, keepdims=keepdims), (x,), backward)


@tensor_method("std")
def std(x: Tensor, axis=-1, keepdims: bool = True) -> Tensor:
    """Population standard deviation (ddof=0) over `axis`; defaults: last axis, keepdims.

    Where the std is 0 (a constant row) the gradient is 0, as in torch. Below float64 the
    deviations are squared and summed in float64, as torch does: a float32 row of entries
    below ~1e-19 would otherwise lose its squares to underflow (std 0 for a non-constant row)."""
    xv = x._value
    axes = normalize_axes(axis, xv.ndim, "std", xv.shape)
    count = math.prod(xv.shape[a] for a in axes)
    wide = xv if xv.dtype.itemsize >= 8 else xv.astype(np.float64)
    centred = wide - np.mean(wide, axis=axes, keepdims=True)
    y = np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True))

    def backward(g):
        if not keepdims:
            g = np.expand_dims(g, axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            g_var = np.where(y == 0, 0.0, g / (2 * y))
        scale = 2.0 / count if count else 0.0  # an empty axis: x has no entries to receive any
        x._add_grad((scale * g_var * centred).astype(xv.dtype, copy=False))
    out = y.astype(xv.dtype, copy=False)
    value = out if keepdims else np.squeeze(out, axis=axes)
    return result(value, (x,), backward)
