"""Which bug-prone conditions an example reaches: the coverage labels of the report.

Conditions are data in the registry (each entry's `conditions` are predicates on a `Use`
of the op); this module only assembles the uses of an example and asks. A failure's
signature is (row, check kind, the blamed use's conditions less the row's baseline -- those
its plain first coverage sample already reaches), so one bug seen under incidental
conditions is still one finding.
"""
from __future__ import annotations

import functools

import numpy as np

from reference.program import Node, Program, run_numpy
from reference.registry import ENGINE_ROW, LOSS_OPS, OPS, Use


def use_of(prog: Program, node: Node, values: dict | None) -> Use:
    """The `Use` of `node`: operand shapes and dtypes, arguments, and operand values when
    `values` (name -> array, every node) is given."""
    spec = node.spec
    return Use(shapes=tuple(prog.shape(o) for o in node.operands),
               dtypes=tuple(prog.dtype(o) for o in node.operands),
               args=spec.all_args(node.args),
               values=None if values is None else tuple(np.asarray(values[o]) for o in node.operands),
               same_operand=len(node.operands) == 2 and node.operands[0] == node.operands[1],
               roles=tuple(prog.input(o).role if prog.is_input(o) else "node" for o in node.operands))


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


@functools.lru_cache(maxsize=None)
def baseline(row: str) -> frozenset:
    """The conditions the row's plain (first) coverage sample reaches."""
    from reference.coverage import sample_case
    for spec in list(OPS.values()) + list(LOSS_OPS.values()):
        if spec.row == row and spec.all_samples():
            case = sample_case(spec, 0)
            return frozenset(case.conditions().get(row, ()))
    return frozenset()


def signature(row: str | None, check: str, conditions) -> tuple:
    """What tells two failures apart: row, check kind, conditions beyond the row's baseline."""
    return (row or ENGINE_ROW, check, frozenset(conditions) - baseline(row or ENGINE_ROW))


def explains(known: tuple, found: tuple) -> bool:
    """A known finding explains a new failure of the same row and check kind whose
    conditions include the known one's: both are most likely the same bug."""
    return known[:2] == found[:2] and known[2] <= found[2]
