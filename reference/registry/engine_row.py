"""The engine row's table: its conditions (with their makers), and its coverage samples as data.

The engine's samples are small graphs of registry ops over three inputs (a weight, an input,
a constant), each run under a check: "torch" (values and gradients, and finite differences
with `fd`; `passes` backward(reset_grad=False) passes), "twice", "structure", "stop" (a
node marked learnable=False) -- or the graph "deep" (`checks.engine.check_deep_graph`, a
chain of 10 000 ops). The coverage pass (`reference.coverage`) builds the programs and draws
their values from `values_seed`; `seed` seeds the oracle's perturbations.

The conditions' predicates read an `EngineUse` (a program's graph and how it is checked);
their makers change an `EngineSample`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from reference.registry.makers import excludes
from reference.registry.spec import Condition

ENGINE_ROW = "engine"
DEEP_OPS = 10_000


@dataclass(frozen=True)
class EngineUse:
    """A program as the engine row's predicates see it: its body nodes ((name, operands) in
    execution order), the roles of its inputs, the check it runs under and the number of
    backward passes."""

    body: tuple
    roles: frozenset
    check: str = "torch"
    passes: int = 1


def _fan_out(u: EngineUse) -> bool:
    uses: dict = {}
    for _, operands in u.body:
        for o in set(operands):
            uses[o] = uses.get(o, 0) + 1
    return any(c > 1 for c in uses.values())


def _sinks(u: EngineUse) -> int:
    consumed = {o for _, operands in u.body for o in operands}
    return sum(name not in consumed for name, _ in u.body)


def _chain(u: EngineUse) -> bool:
    b = u.body
    return len(b) >= 3 and all(b[k][0] in b[k + 1][1] for k in range(len(b) - 1))


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
"""Graph name -> its nodes (name, op, operands, arguments), in execution order; "deep" is
the deep chain of `checks.engine`."""

SHAPES = {"fan-out": ("fan-out", "chain of ops"), "sinks": ("fan-out", "several sinks"), "chain": ("chain of ops",),
          "deep": ("fan-out", "chain of ops")}
"""Graph name -> the graph conditions it was drawn for (what its makers choose by; the
predicates judge)."""


@dataclass(frozen=True)
class EngineSample:
    graph: str
    values_seed: int
    seed: int
    check: str = "torch"
    fd: bool = False
    passes: int = 1
    stop: str | None = None


def _graph_with(condition: str):
    """Maker: the graph drawn for `condition` that keeps most of the draft's graph
    conditions (the first such, in table order)."""
    def make(s: EngineSample) -> EngineSample:
        if condition in SHAPES[s.graph]:
            return s
        keep = set(SHAPES[s.graph])
        graph = max((g for g in GRAPHS if condition in SHAPES[g]), key=lambda g: len(keep & set(SHAPES[g])))
        return replace(s, graph=graph, check=s.check if s.graph != "deep" else "torch")
    return make


def _checked(check: str, passes: int = 1, stop: str | None = None):
    """Maker: the draft's graph run under `check` (a deep draft gets the first graph)."""
    def make(s: EngineSample) -> EngineSample:
        graph = s.graph if s.graph in GRAPHS else next(iter(GRAPHS))
        return replace(s, graph=graph, check=check, passes=passes, stop=stop, fd=s.fd and check == "torch"
                       and passes == 1)   # finite differences check one pass's gradient
    return make


ENGINE_CONDITIONS = (
    Condition("fan-out", _fan_out, _graph_with("fan-out")),
    Condition("several sinks", lambda u: _sinks(u) > 1, _graph_with("several sinks")),
    Condition("chain of ops", _chain, _graph_with("chain of ops")),
    Condition("weights and inputs", lambda u: {"weight", "input"} <= u.roles, lambda s: s),
    Condition("reset_grad=False", lambda u: u.passes > 1, _checked("torch", passes=2), group="check"),
    Condition("backward twice", lambda u: u.check == "twice", _checked("twice"), group="check"),
    Condition("create_graph order", lambda u: u.check == "structure", _checked("structure"), group="check"),
    Condition("learnable=False node", lambda u: u.check == "stop", _checked("stop", stop="v0"), group="check"),
    Condition("deep graph (10 000 ops)", lambda u: u.check == "deep" and len(u.body) >= DEEP_OPS,
              lambda s: replace(s, graph="deep", check="deep", passes=1, stop=None, fd=False), group="check"))
"""Conditions of the `engine` row: graph shapes and backward schedules (one check per
example: the group "check")."""

ENGINE_INFEASIBLE = {
    **excludes("chain of ops", ["several sinks"], "in a chain every node but the last feeds the next: one sink"),
    **excludes("deep graph (10 000 ops)", ["several sinks"], "the deep graph is one chain: one sink"),
}

ENGINE_SAMPLES = (
    EngineSample("fan-out", 1, 11, fd=True), EngineSample("sinks", 2, 12, fd=True),
    EngineSample("chain", 3, 13, fd=True),
    EngineSample("fan-out", 1, 14, passes=2), EngineSample("fan-out", 1, 15, passes=3),
    EngineSample("fan-out", 1, 16, check="twice"), EngineSample("fan-out", 1, 17, check="structure"),
    EngineSample("fan-out", 1, 18, check="stop", stop="v0"), EngineSample("fan-out", 1, 19, check="stop", stop="v2"),
    EngineSample("sinks", 5, 20, check="structure"), EngineSample("deep", 0, 0, check="deep"),
)
"""The engine row's samples, the deep graph last (`checks.engine.check_deep_graph`)."""
