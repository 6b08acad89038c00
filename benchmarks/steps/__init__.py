"""Each framework's steps, one module per framework, so that a child interpreter imports only
its own framework: pygrad is never timed in a process where torch has run.

`builders(framework)` -> {workload id: builder(**params) -> Bench}."""
from __future__ import annotations

from typing import Callable


def builders(framework: str) -> dict[str, Callable]:
    if framework == "pygrad":
        from benchmarks.steps import pygrad_steps as module
    elif framework == "numpy":
        from benchmarks.steps import numpy_steps as module
    elif framework == "torch":
        from benchmarks.steps import torch_steps as module
    elif framework == "autograd":
        from benchmarks.steps import autograd_steps as module
    else:
        raise ValueError(f"unknown framework {framework!r}")
    return module.BUILDERS
