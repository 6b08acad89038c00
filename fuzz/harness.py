"""The one helper every fuzz test uses: check a drawn case, report it, steer hypothesis."""
from __future__ import annotations

from hypothesis import note, reject, target

from reference import session
from reference.check import InvalidExample, check_program
from reference.programs import program_code


def judged(check):
    """`check()` as one example of the current test, its result returned; an example the
    oracles cannot judge (InvalidExample) is counted as invalid and rejected."""
    with session.example():
        try:
            return check()
        except InvalidExample as e:
            note(f"invalid example: {e}")
    session.invalid()
    reject()


def run_case(case, op: str | None = None, fd: bool = False, require_fd: bool = False,
             passes: int = 1):
    """Check `case` against torch (and finite differences when `fd`), record its statistics
    for the gate, and return the Outcome. Examples the oracles cannot judge are rejected;
    with `require_fd`, so are examples where FD could not run (the strategy should have
    kept them away from kinks)."""
    session.check_budget()  # after every draw: stopping earlier would look flaky to hypothesis
    note(f"program (noise seed {case.seed}):\n{program_code(case.program, case.values)}")
    out = judged(lambda: check_program(case.program, case.values, case.seed, fd=fd, passes=passes))
    if require_fd and out.err_fd is None:
        note(f"finite differences skipped: {out.fd_skipped}")
        session.invalid()
        reject()
    ops = [op] if op else case.program.ops()
    session.record(out.err_torch, out.err_fd, out.per_op, ops, case.features)
    target(min(out.err_torch, 1e6), label="error/tolerance against torch")
    if out.err_fd is not None:
        target(min(out.err_fd, 1e6), label="error/tolerance against finite differences")
    return out


def run_check(check, case, row: str):
    """Run an invariant check (`reference.invariants`) on `case`, record it under the
    report row `row` (e.g. "module", "optim:Adam") and steer hypothesis toward large errors.
    Examples the oracles cannot judge are rejected."""
    session.check_budget()
    note(f"{case!r}")
    worst = judged(lambda: check(case))
    session.record(worst, None, {row: worst}, [row], case.features)
    target(min(worst, 1e6), label="error/tolerance against torch")
    return worst


def run_stop(case, stop: str):
    """`check_stop` on a program case with node `stop` marked learnable=False."""
    from reference.invariants import check_stop
    session.check_budget()
    note(f"program (noise seed {case.seed}):\n{program_code(case.program, case.values)}")
    out = judged(lambda: check_stop(case.program, case.values, case.seed, stop))
    session.record(out.err_torch, None, out.per_op, case.program.ops(),
                   case.features | {"learnable=False node"})
    target(min(out.err_torch, 1e6), label="error/tolerance against torch")
    return out
