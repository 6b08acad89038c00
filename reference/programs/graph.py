"""Programs: a DAG of registry ops over named inputs (the interpreters are in
`reference.programs.interpreters`, the torch one in `reference.oracles.torch_run`).

A `Program` is plain data: inputs (name, shape, dtype, role), op nodes (name, op, operand
names, arguments, role) in execution order, and the name of the scalar root. Values live
outside it, in a dict from input name to ndarray, so strategies draw structure first and
values last. Roles are data: an input is an `input` (leaf=True), a `weight` (leaf=False), a
`constant` (a Tensor with learnable=False) or an `array` (a plain ndarray operand, not a
Tensor: `x - c`, `x @ c`); a node belongs to the `body` (what was drawn) or the `loss`.

Every program ends in a loss built from ordinary nodes: each sink `s` (a body node nobody
consumes) is multiplied by a constant cotangent input and summed, and the sums are added.
A random cotangent matters: with a ones cotangent the gradient of softmax is exactly 0 and
a transposed rule can go unseen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np

from reference.registry import spec_of


@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple
    dtype: str = "float64"
    role: str = "input"
    domain: str = "real"        # what the values were drawn from (see reference.value_strategies)
    layout: str = ""            # memory layout of pygrad's operand, "" = C-contiguous (registry regimes)

    @property
    def leaf(self) -> bool:
        return self.role != "weight"

    @property
    def learnable(self) -> bool:
        return self.role not in ("constant", "array")


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    operands: tuple
    args: Mapping = field(default_factory=dict)
    role: str = "body"

    @property
    def spec(self):
        return spec_of(self.op)


@dataclass(frozen=True, eq=False)
class Program:
    inputs: tuple
    nodes: tuple
    root: str

    @cached_property
    def _by_name(self) -> dict:
        return {**{i.name: i for i in self.inputs}, **{n.name: n for n in self.nodes}}

    def input(self, name: str) -> Input:
        return self._by_name[name]

    def node(self, name: str) -> Node:
        return self._by_name[name]

    def is_input(self, name: str) -> bool:
        return isinstance(self._by_name.get(name), Input)

    @property
    def names(self) -> list:
        return [i.name for i in self.inputs] + [n.name for n in self.nodes]

    def consumers(self, name: str) -> list:
        return [n for n in self.nodes if name in n.operands]

    def body_nodes(self) -> list:
        return [n for n in self.nodes if n.role == "body"]

    def ops(self) -> list:
        return [n.op for n in self.body_nodes()]

    def learnable_inputs(self) -> list:
        return [i for i in self.inputs if i.learnable]

    @cached_property
    def graded(self) -> list:
        """The names whose gradients are compared: the learnable inputs and every node that
        depends on one (a constant's received gradient is no property of the ops)."""
        live = {i.name for i in self.learnable_inputs()}
        for n in self.nodes:
            if any(o in live for o in n.operands):
                live.add(n.name)
        return [name for name in self.names if name in live]

    @cached_property
    def layout(self) -> dict:
        """name -> (shape, dtype) of every input and node (NumPy's shape and promotion rules)."""
        out = {i.name: (tuple(i.shape), i.dtype) for i in self.inputs}
        for n in self.nodes:
            out[n.name] = node_layout(n, [out[o] for o in n.operands])
        return out

    def shape(self, name: str) -> tuple:
        return self.layout[name][0]

    def dtype(self, name: str) -> str:
        return self.layout[name][1]

    @property
    def dtypes(self) -> set:
        return {d for _, d in self.layout.values()}


def node_layout(node: Node, operands: list) -> tuple:
    """(shape, dtype) of `node` applied to operands of (shape, dtype): the NumPy forward on
    ones for the shape; NumPy's promotion over the operands and any float array argument
    (Python scalars never upcast: NEP 50) for the dtype."""
    spec = node.spec
    args = spec.all_args(node.args)
    with np.errstate(all="ignore"):
        shape = np.shape(spec.numpy(*[np.ones(s) for s, _ in operands], **args))
    floats = [a.dtype for a in args.values() if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return tuple(shape), np.result_type(*[d for _, d in operands], *floats).name


def with_loss(inputs: list, nodes: list) -> tuple:
    """Append the loss to a program body: for every sink s, a constant cotangent input `w<k>`
    of s's shape and dtype, and nodes `s * w<k>` and `.sum()`; the sums are added. Returns
    (Program, names of the cotangents)."""
    body = Program(tuple(inputs), tuple(nodes), root="")
    used = {o for n in nodes for o in n.operands}
    sinks = [n.name for n in nodes if n.name not in used] or [inputs[-1].name]
    inputs, nodes, cots, sums = list(inputs), list(nodes), [], []
    for k, s in enumerate(sinks):
        shape, dtype = body.layout[s]
        w = Input(f"w{k}", shape, dtype, role="constant")
        inputs.append(w)
        cots.append(w.name)
        nodes.append(Node(f"L{2 * k}", "mul", (s, w.name), role="loss"))
        nodes.append(Node(f"L{2 * k + 1}", "sum", (f"L{2 * k}",), role="loss"))
        sums.append(f"L{2 * k + 1}")
    total = sums[0]
    for j, s in enumerate(sums[1:]):
        nodes.append(Node(f"L{2 * len(sinks) + j}", "add", (total, s), role="loss"))
        total = nodes[-1].name
    return Program(tuple(inputs), tuple(nodes), root=total), cots


def single_op(op: str, shapes, args=None, dtypes=None, roles=None, domains=None, same_operand=False,
              layouts=()) -> tuple:
    """(Program, cotangents): one op applied to fresh inputs x0, x1 (or x0 twice), pygrad's
    operands in `layouts` ("" = C-contiguous)."""
    n = 1 if same_operand else len(shapes)
    dtypes = dtypes or ("float64",) * n
    roles = roles or ("input",) * n
    domains = domains or ("real",) * n
    layouts = tuple(layouts) + ("",) * (n - len(layouts))
    inputs = [Input(f"x{i}", tuple(shapes[i]), dtypes[i], roles[i], domains[i], layouts[i]) for i in range(n)]
    operands = ("x0", "x0") if same_operand else tuple(i.name for i in inputs)
    return with_loss(inputs, [Node(f"v{n}", op, operands, dict(args or {}))])
