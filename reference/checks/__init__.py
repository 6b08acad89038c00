"""The checks: each runs pygrad the way a user does on one example, compares it with the
oracles and raises `Mismatch` on a disagreement (or `InvalidExample` when the oracles cannot
judge).

- `program`: ops and programs -- every value and gradient against torch, the gradient
  against finite differences, a failure blamed on the first wrong node;
- `engine`: backward twice, `backward(reset_grad=False)` schedules, `create_graph`
  structure, `learnable=False`, a deep graph;
- `module`: Module calls; `training`: optimizer trajectories; `layers`: a layer alone.

A `Mismatch` carries what the report needs: the check kind (`value`, `grad`, `fd`,
`invariant`, `structure`, `error`), the report row it is blamed on, the conditions of the
blamed use (its signature), the first wrong node and a ready-to-paste reproducer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from reference.oracles.oracle import InvalidExample  # noqa: F401 - re-exported for the checks' users

CHECK_KINDS = ("value", "grad", "fd", "invariant", "structure", "error")


class Mismatch(AssertionError):
    """pygrad disagrees with an oracle."""

    def __init__(self, check: str, row: str, message: str, where: str, reproducer: str | None,
                 conditions=frozenset()):
        super().__init__(message)
        if check not in CHECK_KINDS:
            raise ValueError(f"Mismatch: unknown check kind {check!r}")
        self.check, self.row, self.message = check, row, message
        self.where, self.reproducer = where, reproducer
        self.conditions = frozenset(conditions)

    def __str__(self):
        text = f"[{self.check}] {self.message}\nfirst wrong node: {self.where}"
        if self.reproducer:
            text += "\n\nregression test:\n" + self.reproducer
        return text


@dataclass
class Outcome:
    """What a passing check measured: the worst error/tolerance ratio against torch and
    against finite differences (None: FD did not run), per report row."""

    err_torch: float = 0.0
    err_fd: float | None = None
    per_row: dict = field(default_factory=dict)
    fd_skipped: str = ""

    def note(self, row: str | None, r: float) -> None:
        r = min(float(r), 1e6)
        self.err_torch = max(self.err_torch, r)
        if row is not None:
            self.per_row[row] = max(self.per_row.get(row, 0.0), r)
