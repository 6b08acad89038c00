"""Layers: callable objects built only from Tensor operations.

Weights carry a leading batch dimension of 1 and are broadcast over the batch by the ops,
so they are never resized: whatever batch goes through, `W.value.shape` and `W.grad.shape`
stay as created. Layers keep no reference to their outputs, so copying a model copies its
weights and nothing else.
"""
from __future__ import annotations

import math

import numpy as np

from pygrad.constants import PRECISION
from pygrad.tensor import Tensor


def check_tensor(x, who: str, what: str = "input") -> Tensor:
    """`x` if it is a Tensor, else TypeError naming `who`."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: {what} must be a Tensor, got {type(x).__name__}")
    return x


def _check_dim(n, who: str, name: str) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise TypeError(f"{who}: {name} must be a positive int, got {n!r}")
    return int(n)


def _uniform(bound: float, shape: tuple, label: str, dtype) -> Tensor:
    """A weight Tensor drawn from U(-bound, bound) with np.random (seedable)."""
    return Tensor(np.random.uniform(-bound, bound, size=shape), label=label, dtype=dtype)


class Linear:
    """x @ W + B with W (1, i_dim, o_dim) and B (1, 1, o_dim), both drawn from
    U(-1/sqrt(i_dim), 1/sqrt(i_dim)). Input (batch, n, i_dim) -> (batch, n, o_dim)."""

    def __init__(self, i_dim: int, o_dim: int, bias: bool = True, label: str = "Linear",
                 dtype=PRECISION):
        self.i_dim = _check_dim(i_dim, "Linear", "i_dim")
        self.o_dim = _check_dim(o_dim, "Linear", "o_dim")
        self.label = label
        bound = 1.0 / math.sqrt(self.i_dim)
        self.W = _uniform(bound, (1, self.i_dim, self.o_dim), f"{label}.W", dtype)
        self.B = _uniform(bound, (1, 1, self.o_dim), f"{label}.B", dtype) if bias else None

    def __call__(self, x: Tensor) -> Tensor:
        check_tensor(x, "Linear")
        if x.ndim < 3 or x.shape[-1] != self.i_dim:
            raise ValueError(f"Linear: expected an input of shape (batch, n, {self.i_dim}), "
                             f"got {x.shape} (W is {self.W.shape})")
        out = x @ self.W
        return out + self.B if self.B is not None else out

    def __repr__(self) -> str:
        return f"Linear({self.i_dim}, {self.o_dim}, bias={self.B is not None}, label={self.label!r})"


class Conv2D:
    """kw.conv2D(x) + kb with kernel kw (1, o_dim, i_dim, kH, kW) and bias kb (1, o_dim, 1, 1),
    both drawn from U(-1/sqrt(i_dim*kH*kW), +...). Input (B, i_dim, H, W) ->
    (B, o_dim, oH, oW); `stride` and `padding` as in torch.nn.Conv2d."""

    def __init__(self, o_dim: int, i_dim: int, kH: int, kW: int, bias: bool = True,
                 label: str = "Conv2D", dtype=PRECISION, stride: int = 1, padding: int = 0):
        self.o_dim = _check_dim(o_dim, "Conv2D", "o_dim")
        self.i_dim = _check_dim(i_dim, "Conv2D", "i_dim")
        self.kH = _check_dim(kH, "Conv2D", "kH")
        self.kW = _check_dim(kW, "Conv2D", "kW")
        self.stride, self.padding, self.label = stride, padding, label
        bound = 1.0 / math.sqrt(self.i_dim * self.kH * self.kW)
        self.kw = _uniform(bound, (1, self.o_dim, self.i_dim, self.kH, self.kW), f"{label}.kw", dtype)
        self.kb = _uniform(bound, (1, self.o_dim, 1, 1), f"{label}.kb", dtype) if bias else None

    def __call__(self, x: Tensor) -> Tensor:
        check_tensor(x, "Conv2D")
        if x.ndim != 4 or x.shape[1] != self.i_dim:
            raise ValueError(f"Conv2D: expected an input of shape (batch, {self.i_dim}, H, W), "
                             f"got {x.shape} (kernel is {self.kw.shape})")
        out = self.kw.conv2D(x, stride=self.stride, padding=self.padding)
        return out + self.kb if self.kb is not None else out

    def __repr__(self) -> str:
        return (f"Conv2D({self.o_dim}, {self.i_dim}, {self.kH}, {self.kW}, bias={self.kb is not None}, "
                f"stride={self.stride}, padding={self.padding}, label={self.label!r})")


class Flatten:
    """(B, ...) -> (B, 1, prod(...))."""

    def __call__(self, x: Tensor) -> Tensor:
        check_tensor(x, "Flatten")
        if x.ndim < 1:
            raise ValueError(f"Flatten: needs a batch dimension, got shape {x.shape}")
        return x.reshape(x.shape[0], 1, -1)

    def __repr__(self) -> str:
        return "Flatten()"


class Softmax:
    """x.softmax(axis) (default: the last axis)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def __call__(self, x: Tensor) -> Tensor:
        return check_tensor(x, "Softmax").softmax(axis=self.axis)

    def __repr__(self) -> str:
        return f"Softmax(axis={self.axis})"


class Dropout:
    """When training, sets exactly int(x.size * rate) entries, chosen with np.random, to 0
    (their gradient is 0 too) and leaves the others unscaled; otherwise returns x."""

    def __init__(self, rate: float = 0.1):
        if not isinstance(rate, (int, float, np.floating)) or isinstance(rate, bool):
            raise TypeError(f"Dropout: rate must be a number in [0, 1], got {rate!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1], got {rate}")
        self.rate = float(rate)

    def __call__(self, x: Tensor, training: bool = True) -> Tensor:
        check_tensor(x, "Dropout")
        if not training:
            return x
        count = int(x.size * self.rate)
        flat = np.random.choice(x.size, size=count, replace=False)
        return x.mask_idcs(np.unravel_index(flat, x.shape))

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate})"


class AddNorm:
    """Residual add then layer normalisation over the last axis:
    y = x + skip; gain * (y - mean(y)) / sqrt(var(y) + epsilon) + bias (population variance)."""

    def __init__(self, gain: float = 1.0, bias: float = 0.0, epsilon: float = 1e-9):
        self.gain, self.bias, self.epsilon = float(gain), float(bias), float(epsilon)

    def __call__(self, x: Tensor, skip) -> Tensor:
        check_tensor(x, "AddNorm")
        if np.shape(skip) != x.shape:
            raise ValueError(f"AddNorm: x and skip must have the same shape, got {x.shape} and {np.shape(skip)}")
        y = x + skip
        centred = y - y.mean(axis=-1, keepdims=True)
        var = (centred * centred).mean(axis=-1, keepdims=True)
        return centred * ((var + self.epsilon) ** -0.5) * self.gain + self.bias

    def __repr__(self) -> str:
        return f"AddNorm(gain={self.gain}, bias={self.bias}, epsilon={self.epsilon})"
