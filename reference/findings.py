"""Findings and what tells them apart.

A failure's signature is (row, check kind, what went wrong, the blamed use's conditions less
the row's baseline -- those its plain first coverage sample already reaches). `what` is, for
an `error`, the exception type and the op or engine step that raised; for a value, gradient
or finite-difference failure, the op of the first wrong node; for an invariant or structure
check, its name (`reference.checks.Mismatch`). So one bug seen under incidental conditions
is still one finding, and two bugs of one row and check kind that go wrong differently are
two. A known finding `explains` a new failure with the same row, check kind and `what`
whose conditions include its own: a finding without conditions explains only failures with
its own signature's first three parts, never a different exception of the same row.
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


def signature(row: str | None, check: str, what: str, conditions) -> tuple:
    """What tells two failures apart: row, check kind, what went wrong, conditions beyond
    the row's baseline."""
    row = row or ENGINE_ROW
    return (row, check, what or row, frozenset(conditions) - baseline(row))


def signature_of(m) -> tuple:
    """The signature of a `Mismatch`."""
    return signature(m.row, m.check, m.what, m.conditions)


def explains(known: tuple, found: tuple) -> bool:
    """A known finding explains a new failure of the same row, check kind and `what` whose
    conditions include the known one's: both are most likely the same bug."""
    return known[:3] == found[:3] and known[3] <= found[3]
