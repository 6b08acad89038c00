"""The engine row's table: its conditions, and its coverage samples as data.

The engine's samples are small graphs of registry ops over three inputs (a weight, an input,
a constant), each run under a check: "torch" (values and gradients, and finite differences
with `fd`; `passes` backward(reset_grad=False) passes), "twice", "structure", or "stop" (a
node marked learnable=False). The coverage pass (`reference.coverage`) builds the programs
and draws their values from `values_seed`; `seed` seeds the oracle's perturbations.
"""
from __future__ import annotations

from dataclasses import dataclass

ENGINE_ROW = "engine"

ENGINE_CONDITIONS = ("fan-out", "several sinks", "chain of ops", "weights and inputs", "reset_grad=False",
                     "backward twice", "create_graph order", "learnable=False node", "deep graph (10 000 ops)")
"""Conditions of the `engine` row: graph shapes and backward schedules."""

ENGINE_SURFACE = {
    "torch": ("Tensor", "Tensor.backward", "Tensor.value", "Tensor.grad"),
    "passes": ("Tensor.backward", "Tensor.grad"),
    "twice": ("Tensor.backward", "Tensor.grad"),
    "structure": ("Tensor.create_graph", "Tensor.leaf"),
    "stop": ("Tensor.learnable", "Tensor.topo"),
    "deep graph": ("Tensor", "Tensor.backward", "Tensor.topo"),
}
"""What the engine's checks call, per check kind of its samples (`registry.surface`)."""

ENGINE_INPUTS = (("x0", (2, 3), "weight"), ("x1", (3,), "input"), ("c", (2, 3), "constant"))
"""(name, shape, role) of the graphs' inputs."""

GRAPHS = {
    "fan-out": (("v0", "tanh", ("x0",), {}), ("v1", "mul", ("v0", "x1"), {}), ("v2", "add", ("v0", "v1"), {}),
                ("v3", "mul", ("v2", "c"), {})),
    "sinks": (("v0", "exp", ("x0",), {}), ("v1", "sum", ("x0",), {"axis": 0}), ("v2", "mul", ("v1", "x1"), {})),
    "chain": (("v0", "tanh", ("x0",), {}), ("v1", "rmul", ("v0",), {"const": 2.0}), ("v2", "sum", ("v1",), {"axis": 1}),
              ("v3", "exp", ("v2",), {})),
}
"""Graph name -> its nodes (name, op, operands, arguments), in execution order."""


@dataclass(frozen=True)
class EngineSample:
    graph: str
    values_seed: int
    seed: int
    check: str = "torch"
    fd: bool = False
    passes: int = 1
    stop: str | None = None


ENGINE_SAMPLES = (
    EngineSample("fan-out", 1, 11, fd=True), EngineSample("sinks", 2, 12, fd=True),
    EngineSample("chain", 3, 13, fd=True),
    EngineSample("fan-out", 1, 14, passes=2), EngineSample("fan-out", 1, 15, passes=3),
    EngineSample("fan-out", 1, 16, check="twice"), EngineSample("fan-out", 1, 17, check="structure"),
    EngineSample("fan-out", 1, 18, check="stop", stop="v0"), EngineSample("fan-out", 1, 19, check="stop", stop="v2"),
    EngineSample("sinks", 5, 20, check="structure"),
)
"""The engine row's samples (a deep graph follows them: `checks.engine.check_deep_graph`)."""
