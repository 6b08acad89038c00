"""Matrix product with np.matmul semantics: 1-D operands and broadcast batch dimensions."""
from __future__ import annotations

import math

import numpy as np

from pygrad.ops._core import operand, result, tensor_method, unbroadcast
from pygrad.tensor import Tensor


def _check(av: np.ndarray, bv: np.ndarray, op: str) -> None:
    if av.ndim == 0 or bv.ndim == 0:
        raise ValueError(f"{op}: operands must be at least 1-D, got shapes {av.shape} and {bv.shape}")
    k_a, k_b = av.shape[-1], bv.shape[-2] if bv.ndim > 1 else bv.shape[0]
    if k_a != k_b:
        raise ValueError(f"{op}: shapes {av.shape} and {bv.shape} are not aligned "
                         f"({k_a} columns on the left, {k_b} rows on the right)")
    # batch dimensions broadcast when, aligned from the right, each pair is equal or has a 1
    for m, n in zip(reversed(av.shape[:-2]), reversed(bv.shape[:-2])):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"{op}: batch dimensions of shapes {av.shape} and {bv.shape} "
                             "cannot be broadcast together")


def _rows(x: np.ndarray) -> np.ndarray:
    """x as a 2-D matrix of its stacked rows (explicit sizes: `-1` is ambiguous when a
    dimension is 0)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _mm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """np.matmul for x, y of ndim >= 2; when x is batched, y has no real batch (its batch
    dims are all 1) and x at least as many dims, one GEMM over x's stacked rows replaces
    np.matmul's loop of small products."""
    if x.ndim > 2 and x.ndim >= y.ndim and math.prod(y.shape[:-2]) == 1:
        k, n = y.shape[-2:]
        return (_rows(x) @ y.reshape(k, n)).reshape(x.shape[:-1] + (n,))
    return np.matmul(x, y)


@tensor_method("__matmul__")
def matmul(a, b) -> Tensor:
    """a @ b (np.matmul). Gradients are summed over broadcast batch dimensions."""
    na, nb = isinstance(a, Tensor), isinstance(b, Tensor)
    a, av = operand(a, "matmul")
    b, bv = operand(b, "matmul")
    av, bv = np.asarray(av), np.asarray(bv)
    _check(av, bv, "matmul")
    # Work with 2-D-or-more views; 1-D operands get the axis np.matmul adds and removes.
    a2 = av if av.ndim > 1 else av[None, :]
    b2 = bv if bv.ndim > 1 else bv[:, None]
    value2 = _mm(a2, b2)
    value = value2
    if av.ndim == 1:
        value = value[..., 0, :]
    if bv.ndim == 1:
        value = value[..., 0]
    shape2 = value2.shape

    def backward(g):
        g = g.reshape(shape2)
        if na:
            ga = _mm(g, b2.swapaxes(-1, -2))
            a._add_grad(unbroadcast(ga, a2).reshape(av.shape))
        if nb:
            if math.prod(b2.shape[:-2]) == 1 and a2.ndim >= b2.ndim:
                # b is shared by every batch entry: one GEMM sums over the batch.
                gb = (_rows(a2).T @ _rows(g)).reshape(b2.shape)
            else:
                gb = np.matmul(a2.swapaxes(-1, -2), g)
            b._add_grad(unbroadcast(gb, b2).reshape(bv.shape))
    return result(value, (a, b), backward)


@tensor_method("__rmatmul__")
def rmatmul(a, b) -> Tensor:
    """b @ a (Python's reflected form of `@`, e.g. `ndarray @ Tensor`)."""
    return matmul(b, a)
