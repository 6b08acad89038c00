"""Checking your own code: the public checking API in one place.

- `gradcheck` (`usercheck.functions`): the gradients of a function of pygrad Tensors
  against finite differences in float64 (and PyTorch, given a twin);
- `check_module` (`usercheck.modules`): a Module under the suite's Module properties;
- their errors (`usercheck.errors`): `GradcheckError` and its kinds `GradientMismatch`,
  `ValueMismatch`, `KinkError`, `ModuleCheckError`;
- the finite differences they share with the suite's oracles (`usercheck.stencil`), the
  black-box point check (`usercheck.point`) and its noise model (`usercheck.noise`);
- the pytest plugin (`usercheck.fixtures`, an entry point): the `gradcheck` and
  `check_module` fixtures and the hypothesis profiles.

This package depends on `reference.numerics` (and the plugin on `reference.profiles`) only:
importing it imports NumPy, not torch, hypothesis or pygrad (the checks import pygrad, and
torch only for a `torch_fn`, when they run).
"""
from reference.usercheck.errors import GradcheckError, GradientMismatch, KinkError, ModuleCheckError, ValueMismatch
from reference.usercheck.functions import gradcheck
from reference.usercheck.modules import check_module

__all__ = ["gradcheck", "check_module", "GradcheckError", "GradientMismatch", "ValueMismatch", "KinkError",
           "ModuleCheckError"]
