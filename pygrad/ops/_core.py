"""Helpers shared by every op module: method installation, operand wrapping, the one
broadcast-reduction rule, and axis normalisation."""
from __future__ import annotations

import numbers

import numpy as np

from pygrad.tensor import Tensor, as_real_array

result = Tensor._result


def tensor_method(*names: str):
    """Install the decorated function on Tensor under each of `names`."""
    def install(fn):
        for name in names:
            setattr(Tensor, name, fn)
        return fn
    return install


def operand(x, op: str):
    """(tensor, raw value) for an operand of `op`.

    A Tensor is returned as is. Anything else becomes a constant Tensor for `_prev`, while the
    raw value keeps Python numbers as Python numbers so NumPy's NEP 50 promotion applies
    (a Python float does not upcast a float32 tensor)."""
    if isinstance(x, Tensor):
        return x, x._value
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        raw = x
    elif isinstance(x, numbers.Real) and not isinstance(x, np.ndarray):
        raw = x  # NumPy scalars keep their own dtype, as in NumPy
    else:
        raw = as_real_array(x, f"{op}: operand")
    return Tensor._constant(raw), raw


def unbroadcast(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Sum `g` over the dimensions that broadcasting added to `like`, cast to its dtype.

    The single broadcast-reduction rule: every op whose forward broadcasts an operand
    sends that operand's gradient through here."""
    shape = like.shape
    if g.shape != shape:
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
        if axes:
            g = g.sum(axis=axes)
        g = g.reshape(shape)
    if g.dtype != like.dtype:
        g = g.astype(like.dtype)
    return g


def normalize_axes(axis, ndim: int, op: str, shape: tuple) -> tuple:
    """`axis` (None, int or tuple of ints, negatives allowed) as a sorted tuple of
    non-negative axes, or ValueError naming `op` and `shape`."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {shape}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r} for shape {shape}")
    return tuple(sorted(out))


def broadcast_error(op: str, a, b) -> ValueError:
    return ValueError(f"{op}: shapes {np.shape(a)} and {np.shape(b)} cannot be broadcast together")
