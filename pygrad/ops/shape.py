"""Ops that move or select entries without arithmetic: reshape, transpose, T, indexing,
mask_idcs."""
from __future__ import annotations

import numpy as np

from pygrad.ops._core import result, tensor_method
from pygrad.tensor import Tensor


def _shape_arg(args, op: str) -> tuple:
    """Accept `f((2, 3))`, `f([2, 3])` or `f(2, 3)` like NumPy's methods."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: expected ints, got {args!r}")
    return tuple(int(a) for a in args)


@tensor_method("reshape")
def reshape(x: Tensor, *shape) -> Tensor:
    """np.reshape; one dimension may be -1. Accepts a tuple or separate ints."""
    xv = x._value
    new_shape = _shape_arg(shape, "reshape")
    try:
        value = xv.reshape(new_shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {xv.shape} "
                         f"(size {xv.size}) into shape {new_shape}") from None

    def backward(g):
        x._add_grad(g.reshape(xv.shape))
    return result(value, (x,), backward)


@tensor_method("transpose")
def transpose(x: Tensor, *axes) -> Tensor:
    """np.transpose; no axes reverses all of them. Accepts a tuple or separate ints."""
    xv = x._value
    if not axes or (len(axes) == 1 and axes[0] is None):
        perm = tuple(range(xv.ndim))[::-1]
    else:
        perm = _shape_arg(axes, "transpose")
        nd = xv.ndim
        if len(perm) != nd or not all(-nd <= a < nd for a in perm) or len({a % nd for a in perm}) != nd:
            raise ValueError(f"transpose: axes {perm} are not a permutation of the axes of shape {xv.shape}")
        perm = tuple(a % xv.ndim for a in perm)
    inverse = tuple(np.argsort(perm))

    def backward(g):
        x._add_grad(g.transpose(inverse))
    return result(xv.transpose(perm), (x,), backward)


def _T(x: Tensor) -> Tensor:
    """Swap the last two axes (torch's `.mT`); 0-D and 1-D tensors are returned as is."""
    xv = x._value
    if xv.ndim < 2:
        return x

    def backward(g):
        x._add_grad(g.swapaxes(-1, -2))
    return result(xv.swapaxes(-1, -2), (x,), backward)


Tensor.T = property(_T)


def _index(idx):
    """A NumPy index from `idx`, with Tensors inside replaced by integer arrays."""
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    if isinstance(idx, Tensor):
        v = idx._value
        if not np.all(v == np.round(v)):
            raise TypeError(f"getitem: a Tensor index must hold whole numbers, got {v!r}")
        return v.astype(np.intp)
    return idx


def _is_basic(idx) -> bool:
    """True for indices made only of ints, slices, None and Ellipsis (no repeated entries)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               and not isinstance(i, (bool, np.bool_)) for i in items)


@tensor_method("__getitem__")
def getitem(x: Tensor, idx) -> Tensor:
    """x[idx] with NumPy basic or advanced indexing; repeated indices accumulate gradient."""
    xv = x._value
    idx = _index(idx)
    try:
        value = xv[idx]
    except IndexError as exc:
        raise IndexError(f"getitem: index {idx!r} is invalid for a tensor of shape {xv.shape}: {exc}") from None
    basic = _is_basic(idx)

    def backward(g):
        gx = np.zeros_like(xv)
        if basic:
            gx[idx] = g
        else:
            np.add.at(gx, idx, g)
        x._add_grad(gx)
    return result(value, (x,), backward)


@tensor_method("mask_idcs")
def mask_idcs(x: Tensor, idcs, value: float = 0.0) -> Tensor:
    """A copy of x with `value` written at `idcs` (any NumPy index, e.g. a tuple of index
    arrays); the gradient at the written positions is 0."""
    xv = x._value
    out = xv.copy()
    try:
        out[idcs] = value
    except IndexError as exc:
        raise ValueError(f"mask_idcs: indices are out of range for a tensor of shape {xv.shape}: {exc}") from None

    def backward(g):
        gx = np.array(g)  # a copy; g may be a NumPy scalar when x is 0-D
        gx[idcs] = 0
        x._add_grad(gx)
    return result(out, (x,), backward)
