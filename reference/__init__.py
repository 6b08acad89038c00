"""The reference suite: checks pygrad's values and gradients against PyTorch and finite differences.

For users' own code (`reference.usercheck`, imported on first use: `import reference` loads
neither torch, hypothesis nor pygrad, and neither does reaching `reference.gradcheck` or
`reference.check_module`):

- `reference.gradcheck(fn, *inputs, torch_fn=None, fd=True, seed=0, coordinates=64)`: the
  gradients of a function of pygrad Tensors against finite differences (and PyTorch);
- `reference.check_module(model, **example_inputs, loss=None)`: a Module under the suite's
  Module properties;
- `reference.strategies`: hypothesis strategies for tensors, broadcastable operands, batches;
- the errors they raise: `GradcheckError` and its kinds `GradientMismatch`, `ValueMismatch`,
  `KinkError`, `ModuleCheckError`;
- `reference.usercheck.fixtures` (a pytest entry point): the `gradcheck` and `check_module`
  fixtures and the `dev`/`ci`/`thorough` hypothesis profiles.
"""
import importlib

_PUBLIC = ("gradcheck", "check_module", "GradcheckError", "GradientMismatch", "ValueMismatch", "KinkError",
           "ModuleCheckError")

__all__ = sorted(_PUBLIC) + ["strategies"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module("reference.usercheck"), name)
    if name == "strategies":
        return importlib.import_module("reference.strategies")
    raise AttributeError(f"module 'reference' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
