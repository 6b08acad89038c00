"""Elementwise functions of one tensor, any shape: relu, tanh, sigmoid, exp, log."""
from __future__ import annotations

import numpy as np

from pygrad.ops._core import result, tensor_method
from pygrad.tensor import Tensor


@tensor_method("relu")
def relu(x: Tensor) -> Tensor:
    """max(x, 0); the derivative at 0 is 0, as in torch."""
    xv = x._value

    def backward(g):
        x._add_grad(g * (xv > 0))
    return result(np.maximum(xv, 0), (x,), backward)


@tensor_method("tanh")
def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent; derivative 1 - tanh(x)**2."""
    y = np.tanh(x._value)

    def backward(g):
        x._add_grad(g * (1 - y * y))
    return result(y, (x,), backward)


@tensor_method("sigmoid")
def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow for large |x|; derivative y (1 - y)."""
    xv = x._value
    e = np.exp(-np.abs(xv))
    y = np.where(xv >= 0, 1 / (1 + e), e / (1 + e))

    def backward(g):
        x._add_grad(g * (y * (1 - y)))
    return result(y, (x,), backward)


@tensor_method("exp")
def exp(x: Tensor) -> Tensor:
    """e ** x."""
    y = np.exp(x._value)

    def backward(g):
        x._add_grad(g * y)
    return result(y, (x,), backward)


@tensor_method("log")
def log(x: Tensor) -> Tensor:
    """Natural logarithm; NumPy's nan/-inf outside the domain."""
    xv = x._value

    def backward(g):
        x._add_grad(g / xv)
    return result(np.log(xv), (x,), backward)
