"""The errors of the checks of users' own code (`reference.gradcheck`, `reference.check_module`)."""
from __future__ import annotations

import math


class GradcheckError(AssertionError):
    """A check of a user's function or Module failed. `input` names the array (e.g.
    "input 1 ('b', float64, shape (3,))" or "weight dense1.W"), `index` the entry."""

    def __init__(self, message: str, input: str | None = None, index: tuple | None = None):
        super().__init__(message)
        self.input, self.index = input, index


class GradientMismatch(GradcheckError):
    """pygrad's gradient disagrees with finite differences (or with `torch_fn`'s):
    `got` is pygrad's value, `want` the reference's, `tolerance` the bound exceeded."""

    def __init__(self, message, input=None, index=None, got=math.nan, want=math.nan, tolerance=math.nan):
        super().__init__(message, input, index)
        self.got, self.want, self.tolerance = got, want, tolerance


class ValueMismatch(GradientMismatch):
    """The function's value disagrees with `torch_fn`'s."""


class KinkError(GradcheckError):
    """Finite differences cannot judge the gradient here: an input sits at or near a kink
    (the left and right differences disagree), a domain edge, or a point where the function
    is not smooth at the finite-difference scale. Move the input, or compare with PyTorch
    only (`gradcheck(..., torch_fn=..., fd=False)`)."""


class ModuleCheckError(GradcheckError):
    """A Module breaks one of the suite's Module properties (batched = per-sample, original
    weights untouched, weights never resized, copy semantics of a step and of model_reset)."""
