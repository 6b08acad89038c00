"""Findings and what tells them apart.

A failure's signature is (row, check kind, the blamed use's conditions less the row's
baseline -- those its plain first coverage sample already reaches), so one bug seen under
incidental conditions is still one finding; a known finding `explains` a new failure of the
same row and check kind whose conditions include its own.
"""
from __future__ import annotations

import functools

from reference.coverage import sample_case
from reference.registry import ENGINE_ROW, LOSS_OPS, OPS


@functools.lru_cache(maxsize=None)
def baseline(row: str) -> frozenset:
    """The conditions the row's plain (first) coverage sample reaches."""
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
