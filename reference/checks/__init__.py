"""The checks: each runs pygrad the way a user does on one example, compares it with the
oracles and raises `Mismatch` on a disagreement (or `InvalidExample` when the oracles cannot
judge).

- `program`: ops and programs -- every value and gradient against torch, the gradient
  against finite differences, a failure blamed on the first wrong node;
- `engine`: backward twice, `backward(reset_grad=False)` schedules, `create_graph`
  structure, `learnable=False`, a deep graph;
- `module`: Module calls; `training`: optimizer trajectories; `layers`: a layer alone.

A `Mismatch` carries what the report needs: the check kind (`value`, `grad`, `fd`,
`invariant`, `structure`, `error`), the report row it is blamed on, `what` went wrong (for an
`error` the exception type and the op or engine step that raised; for a value or gradient the
op of the first wrong node; for an invariant or structure check its name), the conditions of
the blamed use, the first wrong node (and the program around it, as a Mermaid graph) and a
ready-to-paste reproducer.

A check runs in `Parts`: a mismatch ends its part, not the check, so one example reports
every distinct failure -- the first raised, the others in its `also`. A part whose result
follows from a failed one (a gradient downstream of a wrong value, finite differences of a
gradient already wrong against torch) is not run: its failure would not be distinct.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from reference.runstate.session import max_is_bound
from reference.oracles.oracle import InvalidExample  # noqa: F401 - re-exported for the checks' users

CHECK_KINDS = ("value", "grad", "fd", "invariant", "structure", "error")


class Mismatch(AssertionError):
    """pygrad disagrees with an oracle. `also`: further distinct failures of the same
    example (see `Parts`)."""

    def __init__(self, check: str, row: str, message: str, where: str, reproducer: str | None,
                 conditions=frozenset(), what: str = "", graph: str | None = None):
        super().__init__(message)
        if check not in CHECK_KINDS:
            raise ValueError(f"Mismatch: unknown check kind {check!r}")
        self.check, self.row, self.message = check, row, message
        self.where, self.reproducer = where, reproducer
        self.conditions = frozenset(conditions)
        self.what = what or row
        self.graph = graph          # Mermaid flowchart of the failing program, its first wrong node marked
        self.also: list = []

    def all(self) -> list:
        """This failure and the further ones of its example."""
        return [self] + list(self.also)

    def __str__(self):
        text = f"[{self.check}] {self.message}\nfirst wrong node: {self.where}"
        if self.reproducer:
            text += "\n\nregression test:\n" + self.reproducer
        for m in self.also:
            text += f"\n\nalso [{m.check}] {m.message}"
        return text


def raised_in(what: str, exc: BaseException) -> str:
    """The `what` of an error: the exception type and where it was raised."""
    return f"{type(exc).__name__} in {what}"


def pygrad_raiser(exc: BaseException) -> str | None:
    """The function of pygrad that raised `exc` (its qualified name), when pygrad raised it:
    the deepest frame of pygrad's or this suite's code in the traceback is pygrad's. None when
    the suite's own code raised it (or pygrad is not imported)."""
    import os
    import sys
    pygrad = sys.modules.get("pygrad")
    if pygrad is None or not getattr(pygrad, "__file__", None):
        return None
    homes = {"pygrad": os.path.dirname(os.path.abspath(pygrad.__file__)),
             "reference": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    owner, function = None, ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        for name, home in homes.items():
            if path.startswith(home + os.sep):
                owner, function = name, getattr(code, "co_qualname", code.co_name).split(".<locals>")[0]
        tb = tb.tb_next
    return function if owner == "pygrad" else None


class Part:
    """One part run by `Parts.part()`: `failed` once it has ended on a failure (or, after an
    earlier one, on an example the oracles cannot judge) -- what follows from it is not
    judged."""

    failed = False


class Parts:
    """The parts of one check. `with parts.part() as p:` runs one; a Mismatch raised inside
    ends that part only and is kept (`p.failed`); `settle(result)` raises the first kept (the
    others in its `also`) or returns `result`. A part the oracles cannot judge
    (`InvalidExample`) after a failure was kept ends without making the example invalid:
    what was found stands."""

    def __init__(self):
        self.found: list = []

    @contextmanager
    def part(self):
        p = Part()
        try:
            yield p
        except Mismatch as m:
            p.failed = True
            self.add(m)
        except InvalidExample:
            if self.ok:
                raise
            p.failed = True

    def add(self, m: Mismatch) -> None:
        self.found.extend(m.all())
        m.also = []

    @property
    def ok(self) -> bool:
        return not self.found

    def settle(self, result=None):
        if self.found:
            first = self.found[0]
            first.also = self.found[1:]
            raise first
        return result


@dataclass
class Outcome:
    """What a passing check measured: the worst error/tolerance ratio against torch and
    against finite differences (None: FD did not run), per report row. A ratio taken against
    a lower bound of the tolerance -- the full one was not needed -- is an upper bound, not a
    measurement: `bound_rows` (row -> True) and `fd_bound` say which are."""

    err_torch: float = 0.0
    err_fd: float | None = None
    per_row: dict = field(default_factory=dict)
    fd_skipped: str = ""
    bound_rows: dict = field(default_factory=dict)
    fd_bound: bool = False

    def note(self, row: str | None, r: float, bound: bool = False) -> None:
        r = min(float(r), 1e6)
        self.err_torch = max(self.err_torch, r)
        if row is not None:
            old = self.per_row.get(row, 0.0)
            self.bound_rows[row] = max_is_bound(old, self.bound_rows.get(row, False), r, bound)
            self.per_row[row] = max(old, r)
