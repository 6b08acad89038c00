"""Which bug-prone conditions a program reaches: the coverage labels of the report.

Conditions are data in the registry (each entry's `conditions` are predicates on a `Use`
of the op); this module only assembles the uses of a program's nodes and asks.
"""
from __future__ import annotations

import numpy as np

from reference.programs.graph import Node, Program
from reference.programs.interpreters import run_numpy
from reference.registry import ENGINE_ROW, Use


def use_of(prog: Program, node: Node, values: dict | None) -> Use:
    """The `Use` of `node`: operand shapes and dtypes, arguments, and operand values when
    `values` (name -> array, every node) is given."""
    spec = node.spec
    return Use(shapes=tuple(prog.shape(o) for o in node.operands),
               dtypes=tuple(prog.dtype(o) for o in node.operands),
               args=spec.all_args(node.args),
               values=None if values is None else tuple(np.asarray(values[o]) for o in node.operands),
               same_operand=len(node.operands) == 2 and node.operands[0] == node.operands[1],
               roles=tuple(prog.input(o).role if prog.is_input(o) else "node" for o in node.operands),
               layouts=tuple(prog.input(o).layout if prog.is_input(o) else "" for o in node.operands))


def node_conditions(prog: Program, node: Node, values: dict | None) -> frozenset:
    use = use_of(prog, node, values)
    return frozenset(c.name for c in node.spec.all_conditions() if c.reached(use))


def engine_conditions(prog: Program) -> set:
    body = prog.body_nodes()
    uses: dict = {}
    for n in body:
        for o in set(n.operands):
            uses[o] = uses.get(o, 0) + 1
    consumed = {o for n in body for o in n.operands}
    out = set()
    if any(c > 1 for c in uses.values()):
        out.add("fan-out")
    if sum(n.name not in consumed for n in body) > 1:
        out.add("several sinks")
    if len(body) >= 3 and all(body[k].name in body[k + 1].operands for k in range(len(body) - 1)):
        out.add("chain of ops")
    roles = {i.role for i in prog.inputs}
    if {"weight", "input"} <= roles:
        out.add("weights and inputs")
    return out


def program_conditions(prog: Program, values: dict | None = None) -> dict:
    """row -> conditions reached by the body nodes of `prog` (and the engine row's graph
    conditions). `values`: inputs (the rest is computed) or every node's values."""
    if values is not None and any(n.name not in values for n in prog.nodes):
        values = run_numpy(prog, values)
    out: dict = {}
    for n in prog.body_nodes():
        out.setdefault(n.spec.row, set()).update(node_conditions(prog, n, values))
    out.setdefault(ENGINE_ROW, set()).update(engine_conditions(prog))
    return out
