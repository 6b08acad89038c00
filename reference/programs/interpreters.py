"""The pygrad and NumPy interpreters of a `Program` (`reference.programs.graph`).

- `run_pygrad` / `backward_pygrad`: the program as a user runs it in pygrad (a raise is a
  `PygradRaised`, where the node that raised is named); `Progress` says which node runs;
- `run_numpy`: the float64 forward with the registry's NumPy references (and each op's
  kink coordinates), what finite differences evaluate.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from reference.programs.graph import Program


class PygradRaised(Exception):
    """pygrad raised while running a node (forward) or the backward pass."""

    def __init__(self, where: str, exc: BaseException):
        super().__init__(f"{where}: {type(exc).__name__}: {exc}")
        self.where, self.exc = where, exc


class Progress:
    """Where the pygrad interpreter is: read by the harness to name the node a hang or a
    crash reached. `listener(name)` is called before each node runs (and with "backward")."""

    listener = None
    node: str | None = None

    @classmethod
    def at(cls, name: str) -> None:
        cls.node = name
        if cls.listener is not None:
            cls.listener(name)


def make_inputs(prog: Program, values: Mapping) -> dict:
    """name -> the pygrad operand of every input: a Tensor, or a plain array (role `array`)."""
    from pygrad import Tensor
    return {i.name: np.asarray(values[i.name], dtype=i.dtype) if i.role == "array" else
            Tensor(values[i.name], label=i.name, dtype=i.dtype, learnable=i.learnable, leaf=i.leaf)
            for i in prog.inputs}


def run_pygrad(prog: Program, values: Mapping, inputs: dict | None = None) -> dict:
    """name -> Tensor for every input and node (forward only); `inputs`: the pygrad operands
    of the inputs to use (made from `values` when None)."""
    env = make_inputs(prog, values) if inputs is None else dict(inputs)
    for n in prog.nodes:
        Progress.at(n.name)
        try:
            env[n.name] = n.spec.call(*[env[o] for o in n.operands], **n.args)
        except Exception as exc:  # noqa: BLE001 - reported as a finding
            raise PygradRaised(n.name, exc) from exc
    return env


def backward_pygrad(env: dict, root: str, reset_grad: bool = True) -> None:
    Progress.at("backward")
    try:
        env[root].backward() if reset_grad else env[root].backward(reset_grad=False)
    except Exception as exc:  # noqa: BLE001
        raise PygradRaised("backward", exc) from exc


def run_numpy(prog: Program, values: Mapping, with_kinks: bool = False):
    """Float64 forward with the registry's NumPy references: name -> ndarray, and with
    `with_kinks` also node name -> the op's kinks."""
    env = {i.name: np.asarray(values[i.name], dtype=np.float64) for i in prog.inputs}
    kinks = {}
    with np.errstate(all="ignore"):
        for n in prog.nodes:
            spec, args = n.spec, n.spec.all_args(n.args)
            ops = [env[o] for o in n.operands]
            if with_kinks:
                kinks[n.name] = spec.kinks(ops, args)
            env[n.name] = np.asarray(spec.numpy(*ops, **args), dtype=np.float64)
    return (env, kinks) if with_kinks else env
