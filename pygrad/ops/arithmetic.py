"""Binary arithmetic with NumPy broadcasting: + - * / ** and unary -, with reflected forms.

Gradients of broadcast operands are summed back to the operand's shape (`unbroadcast`);
constant operands (anything that is not a Tensor) get no gradient work at all."""
from __future__ import annotations

import numpy as np

from pygrad.ops._core import broadcast_error, operand, result, tensor_method, unbroadcast
from pygrad.tensor import Tensor


def _forward(op, ufunc, a, b):
    """Wrap both operands and apply `ufunc`; returns (a, av, a_needs, b, bv, b_needs, value)."""
    a_needs, b_needs = isinstance(a, Tensor), isinstance(b, Tensor)
    a, av = operand(a, op)
    b, bv = operand(b, op)
    try:
        value = ufunc(av, bv)
    except ValueError:
        raise broadcast_error(op, av, bv) from None
    return a, av, a_needs, b, bv, b_needs, value


@tensor_method("__add__", "__radd__")
def add(a, b) -> Tensor:
    """a + b."""
    a, av, na, b, bv, nb, value = _forward("add", np.add, a, b)

    def backward(g):
        if na:
            a._add_grad(unbroadcast(g, av))
        if nb:
            b._add_grad(unbroadcast(g, bv))
    return result(value, (a, b), backward)


@tensor_method("__sub__")
def sub(a, b) -> Tensor:
    """a - b."""
    a, av, na, b, bv, nb, value = _forward("sub", np.subtract, a, b)

    def backward(g):
        if na:
            a._add_grad(unbroadcast(g, av))
        if nb:
            b._add_grad(unbroadcast(-g, bv))
    return result(value, (a, b), backward)


@tensor_method("__rsub__")
def rsub(a, b) -> Tensor:
    """b - a (Python's reflected form of `-`)."""
    return sub(b, a)


@tensor_method("__mul__", "__rmul__")
def mul(a, b) -> Tensor:
    """a * b."""
    a, av, na, b, bv, nb, value = _forward("mul", np.multiply, a, b)

    def backward(g):
        if na:
            a._add_grad(unbroadcast(g * bv, av))
        if nb:
            b._add_grad(unbroadcast(g * av, bv))
    return result(value, (a, b), backward)


@tensor_method("__truediv__")
def div(a, b) -> Tensor:
    """a / b."""
    a, av, na, b, bv, nb, value = _forward("div", np.true_divide, a, b)

    def backward(g):
        if na:
            a._add_grad(unbroadcast(g / bv, av))
        if nb:
            # -g a / b**2 as -g (a / b) / b: b**2 would overflow (underflow) where the
            # gradient is an ordinary number
            b._add_grad(unbroadcast(-g * value / bv, bv))
    return result(value, (a, b), backward)


@tensor_method("__rtruediv__")
def rdiv(a, b) -> Tensor:
    """b / a (Python's reflected form of `/`)."""
    return div(b, a)


@tensor_method("__pow__")
def pow(a, b) -> Tensor:  # noqa: A001 - the op's name
    """a ** b; b a real scalar, an array or a Tensor (broadcast with a).

    Derivatives follow torch at the edges: d/da is 0 wherever b == 0 (also at a == 0), and
    d/db is 0 wherever a == 0 and b >= 0."""
    a, av, na, b, bv, nb, value = _forward("pow", np.power, a, b)

    if not nb and np.ndim(bv) == 0:
        # a Python number stays one (NumPy computes with it in a's dtype, as torch does); a
        # NumPy 0-D exponent joins the result's dtype first, so a float32 exponent's p - 1 is
        # not rounded to float32 on the way to a float64 base's gradient
        p = bv if type(bv) in (int, float) else value.dtype.type(bv)

        def backward(g):
            if na:
                if p == 0:
                    a._add_grad(np.zeros_like(av))
                elif p == 2:
                    a._add_grad(unbroadcast(g * (2.0 * av), av))
                else:
                    a._add_grad(unbroadcast(g * (p * av ** (p - 1)), av))
        return result(value, (a, b), backward)

    def backward(g):
        # Both derivatives in the result's dtype: a float32 operand must not cost the other
        # (float64) operand's gradient its accuracy (b - 1 and log(a) rounded to float32).
        aw, bw = np.asarray(av, dtype=value.dtype), np.asarray(bv, dtype=value.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            if na:
                da = np.where(bw == 0, 0.0, bw * np.power(aw, bw - 1))
                a._add_grad(unbroadcast(g * da, av))
            if nb:
                db = np.where((aw == 0) & (bw >= 0), 0.0, value * np.log(aw))
                b._add_grad(unbroadcast(g * db, bv))
    return result(value, (a, b), backward)


@tensor_method("__rpow__")
def rpow(a, b) -> Tensor:
    """b ** a (Python's reflected form of `**`, e.g. `2 ** x`)."""
    return pow(b, a)


@tensor_method("__neg__")
def neg(a: Tensor) -> Tensor:
    """-a."""
    av = a._value

    def backward(g):
        a._add_grad(-g)
    return result(-av, (a,), backward)
