"""Worker-side state of a gate run: the per-test time budget and the statistics stream.

`python -m reference` starts pytest(-xdist) with these environment variables:

- `PYGRAD_CHECK_DIR`: a fresh temporary directory. Each pytest process appends JSON lines to
  its own file `<worker id>.jsonl` there (no file is shared between processes): a
  `collected` line, `tick` lines with the examples run so far (live progress), and one
  `test` line per finished test with its per-op statistics and failures.
- `PYGRAD_CHECK_DEADLINE`: wall-clock time (epoch seconds) at which drawing must stop.
  Each test gets a fair share of the time left (`begin`), and `check_budget`, called in
  every example once its data is drawn, ends the test with a "budget spent" skip -- which
  the plugin turns into a pass -- once its share is used, unless the test has failed
  (hypothesis is then shrinking and must finish). It must come after the draws: an example
  that stops drawing early looks to hypothesis like a flaky strategy.
- `PYGRAD_CHECK_SEED`, `PYGRAD_CHECK_ONLY`: the seed (for the reproducers' header) and the
  ops of `--only`.

Outside a gate run (a plain `pytest`), nothing is written and there is no budget.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field

ENV_DIR = "PYGRAD_CHECK_DIR"
ENV_DEADLINE = "PYGRAD_CHECK_DEADLINE"
ENV_SEED = "PYGRAD_CHECK_SEED"
ENV_ONLY = "PYGRAD_CHECK_ONLY"
BUDGET_SPENT = "pygrad-check: time budget spent"
TICK_SECONDS = 0.5
SHRINK_MIN, SHRINK_GRACE = 10.0, 10.0   # seconds of shrinking a gate run allows (see _cap_shrinking)


@dataclass
class TestStats:
    nodeid: str
    op: str | None
    deadline: float
    examples: int = 0
    attempts: int = 0
    invalid: int = 0
    failed: bool = False
    per_op: dict = field(default_factory=dict)      # op -> [examples, max torch, max fd]
    features: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)


_current: TestStats | None = None
_done = 0
_total = 0
_stream = None
_last_tick = 0.0
_unticked = 0


def gate_mode() -> bool:
    return bool(os.environ.get(ENV_DIR))


def only_ops() -> list:
    return [o for o in os.environ.get(ENV_ONLY, "").split(",") if o]


def _write(record: dict) -> None:
    global _stream
    if not gate_mode():
        return
    if _stream is None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        _stream = open(os.path.join(os.environ[ENV_DIR], f"{worker}.jsonl"), "a", encoding="utf-8")
    _stream.write(json.dumps(record) + "\n")
    _stream.flush()


def collected(n: int) -> None:
    global _total
    _total = n
    _write({"kind": "collected", "tests": n})


def begin(nodeid: str, op: str | None) -> None:
    """Start a test: its deadline is a fair share of the time left."""
    global _current
    now = time.time()
    deadline = math.inf
    if os.environ.get(ENV_DEADLINE):
        end = float(os.environ[ENV_DEADLINE])
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        mine = max(1, math.ceil(_total / workers) - _done)
        deadline = now + max(0.0, (end - now) / mine)
    _current = TestStats(nodeid, op, deadline)


def current() -> TestStats | None:
    return _current


def current_test() -> str:
    return _current.nodeid if _current else ""


def check_budget() -> None:
    """Stop the current test (as a budget skip) once its time share is used."""
    import pytest
    t = _current
    if t is None or t.failed:
        return
    t.attempts += 1
    if t.attempts > 1 and time.time() > t.deadline:
        pytest.skip(BUDGET_SPENT)


@contextlib.contextmanager
def example():
    """Around one example: remember a failure (so shrinking is never cut short)."""
    from hypothesis.errors import HypothesisException
    try:
        yield
    except Exception as exc:
        if _current is not None and not isinstance(exc, HypothesisException):
            if not _current.failed:
                _cap_shrinking()
            _current.failed = True
        raise


def _cap_shrinking() -> None:
    """In a gate run, let hypothesis shrink a failure until SHRINK_GRACE seconds after the
    drawing deadline (at least SHRINK_MIN seconds) instead of its own 300 s, so a failing
    run still ends close to its budget. The reproducer may then be a little less minimal.
    (This sets hypothesis' internal cap, read when shrinking starts; without it, nothing.)"""
    if not os.environ.get(ENV_DEADLINE):
        return
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # pragma: no cover - hypothesis reorganised its internals
        return
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        end = float(os.environ[ENV_DEADLINE])
        engine.MAX_SHRINKING_SECONDS = max(SHRINK_MIN, end + SHRINK_GRACE - time.time())


def record(err_torch: float, err_fd, per_op: dict, ops, features=()) -> None:
    """One checked example: `per_op` maps op -> worst torch ratio; `err_fd` is the
    example's FD ratio (None when no FD comparison ran), counted for each op in `ops`."""
    global _last_tick, _unticked
    t = _current
    if t is None:
        return
    t.examples += 1
    t.features.update(features)
    for op in set(ops):
        row = t.per_op.setdefault(op, [0, 0.0, None])
        row[0] += 1
        row[1] = max(row[1], per_op.get(op, err_torch if len(set(ops)) == 1 else 0.0))
        if err_fd is not None:
            row[2] = err_fd if row[2] is None else max(row[2], err_fd)
    _unticked += 1
    now = time.time()
    if now - _last_tick > TICK_SECONDS:
        _write({"kind": "tick", "examples": _unticked})
        _last_tick, _unticked = now, 0


def invalid() -> None:
    if _current is not None:
        _current.invalid += 1


def add_failure(failure: dict) -> None:
    if _current is not None:
        _current.failures.append(failure)


def end(outcome: str) -> None:
    global _current, _done, _unticked
    t = _current
    if t is None:
        return
    if _unticked:
        _write({"kind": "tick", "examples": _unticked})
        _unticked = 0
    _write({"kind": "test", "test": t.nodeid, "op": t.op, "outcome": outcome,
            "examples": t.examples, "invalid": t.invalid, "per_op": t.per_op,
            "features": dict(t.features), "failures": t.failures})
    _done += 1
    _current = None
