"""Activation layers: callable objects wrapping the elementwise Tensor ops."""
from __future__ import annotations

from pygrad.basics import check_tensor
from pygrad.tensor import Tensor


class ReLU:
    """max(x, 0); the derivative at 0 is 0, as in torch."""

    def __call__(self, x: Tensor) -> Tensor:
        return check_tensor(x, "ReLU").relu()

    def __repr__(self) -> str:
        return "ReLU()"


class Tanh:
    """Hyperbolic tangent."""

    def __call__(self, x: Tensor) -> Tensor:
        return check_tensor(x, "Tanh").tanh()

    def __repr__(self) -> str:
        return "Tanh()"


class Sigmoid:
    """1 / (1 + exp(-x)), numerically stable."""

    def __call__(self, x: Tensor) -> Tensor:
        return check_tensor(x, "Sigmoid").sigmoid()

    def __repr__(self) -> str:
        return "Sigmoid()"
