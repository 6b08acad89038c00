"""Pairs of a row's conditions: which are feasible, which are not and why.

A pair is two conditions of one row of different groups (conditions of one group are
exclusive levels of one factor). A row declares the pairs that cannot hold in one use, with
the reason, next to its conditions (`OpSpec.infeasible` and its rule's `infeasible`,
`LayerSpec.infeasible`, `OptimizerSpec.infeasible`, `MODULE_INFEASIBLE`, `ENGINE_INFEASIBLE`,
`TENSOR_INFEASIBLE`);
the feasible pairs are all the others. The covering builder (`reference.covering`) makes
coverage drafts that reach every feasible pair; a unit test checks that none of the declared
ones is reachable by the makers.
"""
from __future__ import annotations

from dataclasses import dataclass

from reference.registry.engine_row import ENGINE_CONDITIONS, ENGINE_INFEASIBLE, ENGINE_ROW
from reference.registry.layers import LAYERS
from reference.registry.losses import LOSS_OPS
from reference.registry.module_row import MODULE_CONDITIONS, MODULE_INFEASIBLE, MODULE_ROW
from reference.registry.ops import OPS
from reference.registry.optimizers import OPTIMIZERS
from reference.registry.tensor_row import TENSOR_CONDITIONS, TENSOR_INFEASIBLE, TENSOR_ROW


def _declared(row: str) -> tuple:
    """(conditions, {pair: reason}) as the row's entry states them."""
    for spec in list(OPS.values()) + list(LOSS_OPS.values()):
        if spec.row == row:
            return spec.all_conditions(), spec.all_infeasible()
    for spec in list(LAYERS.values()) + list(OPTIMIZERS.values()):
        if spec.row == row:
            return spec.conditions, dict(spec.infeasible)
    return {MODULE_ROW: (MODULE_CONDITIONS, MODULE_INFEASIBLE), ENGINE_ROW: (ENGINE_CONDITIONS, ENGINE_INFEASIBLE),
            TENSOR_ROW: (TENSOR_CONDITIONS, TENSOR_INFEASIBLE)}.get(row, ((), {}))


def row_condition_specs(row: str) -> tuple:
    """The row's `Condition`s, in report order (a name stated twice counts once: the first)."""
    first: dict = {}
    for c in _declared(row)[0]:
        first.setdefault(c.name, c)
    return tuple(first.values())


def row_infeasible(row: str) -> dict:
    """{frozenset pair of condition names: reason}: the row's declared infeasible pairs."""
    return dict(_declared(row)[1])


@dataclass(frozen=True)
class RowPairs:
    """The pairs of one row's conditions (each pair a tuple in the row's condition order):
    `feasible`, `same_group` (never a pair), `infeasible` ({pair: reason}, declared)."""

    conditions: tuple
    feasible: tuple
    same_group: tuple
    infeasible: dict

    @property
    def total(self) -> int:
        return len(self.feasible) + len(self.same_group) + len(self.infeasible)


def row_pairs(row: str) -> RowPairs:
    """See `RowPairs`. A declaration naming a condition the row does not have is an error
    (a renamed condition must not leave a stale declaration behind)."""
    specs = row_condition_specs(row)
    names = tuple(c.name for c in specs)
    declared = row_infeasible(row)
    unknown = {n for pair in declared for n in pair} - set(names)
    if unknown:
        raise ValueError(f"row {row!r} declares infeasible pairs of conditions it does not have: {sorted(unknown)}")
    feasible, same, infeasible = [], [], {}
    for i, a in enumerate(specs):
        for b in specs[i + 1:]:
            pair = (a.name, b.name)
            if a.group and a.group == b.group:
                same.append(pair)
            elif frozenset(pair) in declared:
                infeasible[pair] = declared[frozenset(pair)]
            else:
                feasible.append(pair)
    return RowPairs(names, tuple(feasible), tuple(same), infeasible)


def pairs_of(names, order: dict) -> set:
    """The pairs (tuples in `order`: name -> position) inside one set of reached conditions."""
    ranked = sorted((n for n in names if n in order), key=order.__getitem__)
    return {(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1:]}
