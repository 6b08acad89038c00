"""pytest plugin of the reference suite (loaded by the root conftest.py).

- `--only` (env `PYGRAD_CHECK_ONLY`): deselects the op tests of other ops;
- opens and closes each test's statistics in `reference.session`;
- turns the "budget spent" skip of a gate run into a pass;
- turns a failing test's exception into failure records: a `Mismatch` (possibly inside a
  hypothesis exception group) is a finding; anything else is an internal error of the
  suite, which the gate reports with exit status 2, never 1.
"""
from __future__ import annotations

import os
import traceback

import pytest

from reference import session
from reference.check import Mismatch


def _op_param(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("op") if callspec is not None else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    only = session.only_ops()
    if only:
        keep = [i for i in items if _op_param(i) in (None, *only)]
        dropped = [i for i in items if _op_param(i) not in (None, *only)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    session.collected(len(items))


def pytest_runtest_setup(item):
    session.begin(item.nodeid, _op_param(item))


def mismatches(exc) -> list:
    if isinstance(exc, Mismatch):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in mismatches(e)]
    return []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when != "call" or call.excinfo is None:
        return
    exc = call.excinfo.value
    if rep.skipped and isinstance(exc, pytest.skip.Exception) and session.BUDGET_SPENT in str(exc):
        rep.outcome, rep.longrepr = "passed", None
        return
    if not rep.failed:
        return
    found = mismatches(exc)
    for m in found:
        session.add_failure({"test": item.nodeid, "op": m.op, "check": m.check,
                             "message": f"{m.message}\nfirst wrong node: {m.first_wrong}",
                             "reproducer": _stamp(m.reproducer, item.nodeid), "internal": False})
    if not found:
        text = "".join(traceback.format_exception(exc)[-6:])
        session.add_failure({"test": item.nodeid, "op": _op_param(item), "check": "error",
                             "message": f"internal error of the reference suite: {text}",
                             "reproducer": None, "internal": True})


def _stamp(reproducer: str | None, nodeid: str) -> str | None:
    """Name the test that found it (and the seed to replay) in the reproducer's docstring."""
    if reproducer is None:
        return None
    seed = os.environ.get(session.ENV_SEED)
    line = f"\n\nFound by {nodeid}" + (f" (python -m reference --seed {seed})" if seed else "") + "."
    head, sep, rest = reproducer.partition(' check).')
    return head + sep + line + rest if sep else reproducer


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        session.end("failed" if session.current() and session.current().failures else "passed")
