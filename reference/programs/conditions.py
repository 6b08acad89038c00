"""Which bug-prone conditions a program reaches: the coverage labels of the report.

Conditions are data in the registry (each entry's `conditions` are predicates on a `Use`
of the op; the engine row's on an `EngineUse` of the whole program); this module only
assembles the uses of a program and asks. Every use gives its own set (one node's
conditions, the program's graph and schedule): the pairs of conditions an example reached
are the pairs inside one set.
"""
from __future__ import annotations

import numpy as np

from reference.programs.graph import Node, Program
from reference.programs.interpreters import run_numpy
from reference.registry import ENGINE_ROW, Use
from reference.registry.engine_row import ENGINE_CONDITIONS, EngineUse


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


def engine_use(prog: Program, check: str = "torch", passes: int = 1) -> EngineUse:
    """The program as the engine row's predicates see it, checked by `check` in `passes`
    backward passes."""
    return EngineUse(tuple((n.name, tuple(n.operands)) for n in prog.body_nodes()),
                     frozenset(i.role for i in prog.inputs), check, passes)


def engine_conditions(use: EngineUse) -> frozenset:
    return frozenset(c.name for c in ENGINE_CONDITIONS if c.reached(use))


def program_condition_sets(prog: Program, values: dict | None = None, check: str = "torch",
                           passes: int = 1) -> list:
    """[(row, conditions)] of every use in `prog`: each body node, then the engine row's use
    (the graph, `check` and `passes`). `values`: inputs (the rest is computed) or every
    node's values."""
    if values is not None and any(n.name not in values for n in prog.nodes):
        values = run_numpy(prog, values)
    return [(n.spec.row, node_conditions(prog, n, values)) for n in prog.body_nodes()] + [
        (ENGINE_ROW, engine_conditions(engine_use(prog, check, passes)))]


def by_row(sets) -> dict:
    """row -> the conditions any of its uses reached (every row with a use is a key)."""
    out: dict = {}
    for row, conditions in sets:
        out.setdefault(row, set()).update(conditions)
    return out


def program_conditions(prog: Program, values: dict | None = None) -> dict:
    """row -> conditions reached by the body nodes of `prog` (and the engine row's graph
    conditions)."""
    return by_row(program_condition_sets(prog, values))
