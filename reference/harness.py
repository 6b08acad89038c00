"""The one helper every property test uses: judge an example, keep searching after a finding.

- `attempt(case)` runs one case under the per-example time limit and says what happened:
  passed (with its `Outcome`), invalid (the oracles cannot judge it), failed (a `Mismatch`,
  carrying every distinct failure of the example: `Mismatch.all()`) or timed out (pygrad
  did not return: a finding, the row set aside from then on). An exception that pygrad
  raised where no check expected one is a failure too (`error`), never a crash of the suite.
- `run_samples(cases)` is the coverage pass of one row (and, `timed`, its pair samples, until
  the test's time share is spent): every case runs, each failure whose signature no earlier
  finding explains is recorded at once (all of an example's, and no shrinking: the samples
  are small by construction), and the test fails at the end if any was found.
- `run_property(strategy)` is a random property: hypothesis draws and shrinks. Of one
  example's failures that no known finding explains, the first is raised for hypothesis to
  shrink and the others are recorded at once. In a gate run a finding does not end the
  test: it is recorded with its shrunk reproducer, set aside, and hypothesis resumes (with
  the next seed) to look for failures with other signatures, until the test's time share is
  spent. Failures a known finding explains are rejected, so the shrinker never walks back
  into a known bug.
- `prop(rows, checks)` labels a property test for the gate's budget and `--list`.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from hypothesis import HealthCheck, given, note, reject, seed, settings, target
from hypothesis.errors import FailedHealthCheck, Flaky, HypothesisException, Unsatisfiable

from reference.checks import Mismatch, pygrad_raiser, raised_in
from reference.findings import explains, signature_of
from reference.oracles.oracle import InvalidExample
from reference.programs import mermaid, printer
from reference.programs.interpreters import Progress
from reference.registry import ENGINE_ROW
from reference.runstate import session

MAX_ROUNDS = 6          # searches per random test after findings (gate runs)
SHRINK_GRACE = 8.0      # seconds of shrinking a gate run allows past its drawing deadline


class ExampleTimeout(BaseException):
    """An example ran past its time limit (a BaseException: pygrad's `except Exception`
    must not swallow it)."""


class FindingsRecorded(AssertionError):
    """The test found failures; they are already in the gate's stream."""


def prop(rows, checks: tuple):
    """Label a property test: `rows(**params)` -> the report rows its examples count in
    (for the gate's time shares); `checks`: the check kinds its findings carry."""
    def label(fn):
        fn.pygrad_rows, fn.pygrad_checks = rows, tuple(checks)
        return fn
    return label


@contextmanager
def time_limit(seconds: float):
    """Raise ExampleTimeout in the main thread after `seconds` (no limit elsewhere)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise ExampleTimeout(f"the example ran for more than {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def attempt(case, test: str = "") -> tuple:
    """("passed", Outcome) | ("invalid", reason) | ("failed", Mismatch) | ("timeout", Mismatch)."""
    session.set_inflight(test, case.script(), [case.row] + sorted(case.rows() - {case.row}))
    getattr(case, "prepare", lambda: None)()    # first-use costs of the oracle, outside the limit
    Progress.listener = session.set_node
    limit = session.example_timeout()
    try:
        with time_limit(limit):
            return "passed", case.run()
    except InvalidExample as e:
        return "invalid", str(e)
    except Mismatch as m:
        return "failed", m
    except ExampleTimeout:
        return "timeout", hang(case, limit)
    except Exception as exc:  # noqa: BLE001 - pygrad's exception is a finding; the suite's own re-raised
        m = raised_by_pygrad(case, exc)
        if m is None:
            raise
        return "failed", m
    finally:
        Progress.listener = None


def raised_by_pygrad(case, exc: BaseException) -> Mismatch | None:
    """An `error` finding when pygrad's code raised `exc` where no check expected it
    (`checks.pygrad_raiser`); None when the suite itself raised (an internal error)."""
    function = pygrad_raiser(exc)
    if function is None:
        return None
    definitions, body = case.script()
    return Mismatch("error", case.row, f"pygrad raised {type(exc).__name__}: {exc} (in {function})",
                    f"pygrad's {function}", printer.regression_test("error", case.row.replace(":", "_"), body,
                                                                    definitions=definitions),
                    what=raised_in(f"pygrad's {function}", exc))


def hang(case, limit: float) -> Mismatch:
    """The finding of an example that did not return: blamed on the node it had reached -- for
    a Module or a training run, on the node its program of registry ops hangs at when replayed
    (briefly) -- else on the case's row. Its reproducer is the example's own code."""
    node, program, values = Progress.node or "", getattr(case, "program", None), getattr(case, "values", None)
    if program is None and hasattr(case, "blame_program"):
        program, values, node = _replay_for_blame(case, min(limit, 3.0))
    if program is not None and node == "backward":
        node = _hanging_rule(program, values, min(limit, 3.0) / 4) or node
    if program is not None and node in program.names and not program.is_input(node):
        row, where, step = program.node(node).spec.row, printer.describe(program, node), program.node(node).op
    else:
        row, where, step = case.row, node or "the example", node or "the example"
    definitions, body = case.script()
    body = body + [f"# under the gate this did not return within {limit:g} s (at {where})"]
    return Mismatch("error", row, f"pygrad did not return within {limit:g} s (it hangs, or is far too slow) "
                    f"at {where}", where, printer.regression_test("error", row.replace(":", "_"), body,
                                                                  definitions=definitions),
                    what=f"a hang in {step}", graph=mermaid.flowchart(program, node) if program is not None else None)


def _replay_for_blame(case, seconds: float) -> tuple:
    """(program, values, node it hangs at) of a Module or training case, or (None, None, "")."""
    try:
        program, values = case.blame_program()
    except Exception:  # noqa: BLE001 - the model cannot even be built: no node to name
        return None, None, ""
    if _hangs(program, values, seconds):
        return program, values, Progress.node or ""
    return None, None, ""


def _hangs(program, values, seconds: float) -> bool:
    """Does running `program` forward and backward take longer than `seconds`? (An
    exception is not a hang.)"""
    from reference.programs.interpreters import backward_pygrad, run_pygrad
    Progress.node = None
    try:
        with time_limit(seconds):
            backward_pygrad(run_pygrad(program, values), program.root)
    except ExampleTimeout:
        return True
    except Exception:  # noqa: BLE001 - it raised rather than hung
        pass
    return False


def _hanging_rule(program, values, seconds: float) -> str | None:
    """The node whose backward rule hangs: each node replayed alone, from the root down, on
    the operands' values of a forward run and a ones cotangent."""
    import numpy as np

    from reference.programs.graph import Input, Node, with_loss
    from reference.programs.interpreters import run_pygrad
    try:
        env = run_pygrad(program, values)
    except Exception:  # noqa: BLE001
        return None
    for c in reversed(program.body_nodes()):
        names = list(dict.fromkeys(c.operands))
        inputs = [Input(o, program.shape(o), program.dtype(o)) for o in names]
        mini, cots = with_loss(inputs, [Node(c.name, c.op, c.operands, c.args)])
        vals = {o: np.array(getattr(env[o], "value", env[o])) for o in names}
        vals[cots[0]] = np.ones(program.shape(c.name), dtype=program.dtype(c.name))
        if _hangs(mini, vals, seconds):
            return c.name
    return None


def _record_finding(m: Mismatch, test: str, shrunk: bool, fatal_rows=()) -> tuple:
    sig = signature_of(m)
    session.finding({"test": test, "message": m.message, "where": m.where, "reproducer": _stamp(m.reproducer, test),
                     "conditions": sorted(m.conditions), "shrunk": shrunk, "graph": m.graph}, sig, fatal_rows)
    return sig


def _stamp(reproducer: str | None, test: str) -> str | None:
    """Name the test that found it (and the seed to replay) in the reproducer's docstring."""
    import os
    if reproducer is None:
        return None
    seed_ = os.environ.get(session.ENV_SEED)
    line = f"\nFound by {test}" + (f" (pygrad-check --seed {seed_})" if seed_ else "") + "."
    head, sep, rest = reproducer.partition('check).')
    return head + sep + line + rest if sep else reproducer


def _fatal(case) -> set:
    """The rows set aside after a hang: every row of the example but the engine's."""
    return case.rows() - {ENGINE_ROW}


def _explained(sig: tuple, extra=()) -> bool:
    return any(explains(k, sig) for k in list(session.known()) + list(extra))


def _unexplained(m: Mismatch) -> list:
    """The failures of an example (`m.all()`) that neither a known finding nor an earlier
    failure of the same example explains."""
    out, sigs = [], []
    for f in m.all():
        sig = signature_of(f)
        if not _explained(sig, sigs):
            out.append(f)
        sigs.append(sig)
    return out


# ---------------------------------------------------------------------------- coverage pass
def run_samples(cases, test: str, timed: bool = False) -> int:
    """Run every case (see the module docstring) -- with `timed`, while the test's time share
    lasts; returns the number of findings."""
    found = []
    for case in cases:
        if timed and session.time_left() <= 0:
            break
        if case.rows() & session.fatal_rows():
            session.set_aside()
            continue
        status, value = attempt(case, test)
        if status == "passed":
            session.record(case.condition_sets(), value)
        elif status == "invalid":
            session.invalid()
        elif status == "timeout":
            if _explained(signature_of(value), found) or case.rows() & session.fatal_rows():
                session.set_aside()
                continue
            found.append(_record_finding(value, test, shrunk=False, fatal_rows=_fatal(case)))
        else:
            new = [f for f in _unexplained(value) if not _explained(signature_of(f), found)]
            if not new:
                session.set_aside()
            found.extend(_record_finding(f, test, shrunk=False) for f in new)
    if found:
        raise FindingsRecorded(f"{len(found)} finding(s) in {test}: {[s[:2] for s in found]}")
    return 0


# ---------------------------------------------------------------------------- random properties
def example(case, test: str):
    """The body of a random property: one drawn case, judged."""
    session.check_budget()   # after every draw: stopping earlier would look flaky to hypothesis
    if case.rows() & session.fatal_rows():
        session.set_aside()
        reject()
    note(repr(case))
    status, value = attempt(case, test)
    if status == "invalid":
        note(f"invalid example: {value}")
        session.invalid()
        reject()
    if status == "timeout":
        if not case.rows() & session.fatal_rows():   # another example of it hung meanwhile
            _record_finding(value, test, shrunk=False, fatal_rows=_fatal(case))
        reject()
    if status == "failed":
        new = _unexplained(value)
        if not new:
            session.set_aside()
            reject()
        for other in new[1:]:        # recorded now; the first is shrunk by hypothesis
            _record_finding(other, test, shrunk=False)
        new[0].also = []
        raise new[0]
    if getattr(case, "require_fd", False) and value.err_fd is None:
        note(f"finite differences skipped: {value.fd_skipped}")   # the strategy should have kept off kinks
        session.invalid()
        reject()
    session.record(case.condition_sets(), value)
    target(min(value.err_torch, 1e6), label="error/tolerance against torch")
    if value.err_fd is not None:
        target(min(value.err_fd, 1e6), label="error/tolerance against finite differences")
    return value


def _mismatch_in(exc) -> Mismatch | None:
    if isinstance(exc, Mismatch):
        return exc
    for inner in getattr(exc, "exceptions", ()) or ():
        m = _mismatch_in(inner)
        if m is not None:
            return m
    return None


def _cap_shrinking() -> None:
    """In a gate run, let hypothesis shrink a failure until SHRINK_GRACE seconds past the
    drawing deadline (at least 5 s) instead of its own 300 s, so a failing run still ends
    close to its budget. (This sets hypothesis' internal cap; without it, nothing.)"""
    import os
    deadline = os.environ.get(session.ENV_DEADLINE)
    if not deadline or session.fixed_examples() is not None:
        return
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # pragma: no cover - hypothesis reorganised its internals
        return
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = max(5.0, float(deadline) + SHRINK_GRACE - time.time())


def run_property(strategy, test: str) -> None:
    """A random property over `strategy` (see the module docstring)."""
    def body(case):
        example(case, test)
    if not session.gate_mode():
        given(strategy)(body)()
        return
    examples = session.fixed_examples()
    fixed = {} if examples is None else {"max_examples": examples, "suppress_health_check": list(HealthCheck)}
    first = settings(**fixed)(given(strategy)(body)) if fixed else given(strategy)(body)
    if session.hypothesis_seed() is not None:
        first = seed(session.hypothesis_seed())(first)
    later = settings(derandomize=False, **fixed)(given(strategy)(body))   # each later round: its own seed
    found = []
    for rounds in range(MAX_ROUNDS):
        _cap_shrinking()
        try:
            (seed(1000003 * rounds + 7)(later) if rounds else first)()
        except Exception as exc:  # noqa: BLE001 - sorted below
            import pytest
            if isinstance(exc, pytest.skip.Exception):
                break
            m = _mismatch_in(exc)
            if m is None:
                if isinstance(exc, (Unsatisfiable, FailedHealthCheck)):
                    break   # everything left is set aside: this test's space is exhausted
                if isinstance(exc, Flaky):
                    continue
                if isinstance(exc, HypothesisException):
                    raise
                raise
            sig = signature_of(m)
            if not _explained(sig):
                found.append(_record_finding(m, test, shrunk=True))
            if session.time_left() <= 0:
                break
            continue
        break
    if found:
        raise FindingsRecorded(f"{len(found)} finding(s) in {test}: {[s[:2] for s in found]}")
