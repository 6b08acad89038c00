"""pytest plugin of the reference suite (loaded by the root conftest.py).

- `--only` (env `PYGRAD_CHECK_ONLY`): deselects the op tests of other ops (and the rows
  `module`, `optim:<kind>` not named; the program tests when only such rows are named);
- opens and closes each test's statistics in `reference.session`;
- turns the "budget spent" skip of a gate run into a pass;
- turns a failing test's exception into failure records: a `Mismatch` (possibly inside a
  hypothesis exception group) is a finding, and so is a property test's plain failed
  `assert` (check `invariant`, no reproducer); anything else is an internal error of the
  suite, which the gate reports with exit status 2, never 1.
"""
from __future__ import annotations

import os
import traceback

import pytest

from reference import session
from reference.check import Mismatch
from reference.registry import OPS


def _op_param(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("op") if callspec is not None else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    only = session.only_ops()
    if only:
        # Tests with an `op` parameter (a registry op, or a row such as "module") run when
        # selected; the others (random programs, the engine) when a registry op is selected,
        # and their programs are built from the selected ops.
        programs = any(o in OPS for o in only)

        def selected(item):
            op = _op_param(item)
            return op in only if op is not None else programs
        keep = [i for i in items if selected(i)]
        dropped = [i for i in items if not selected(i)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    session.collected(len(items))


def pytest_sessionstart():
    """In a gate run, pay torch's and pygrad's first-call costs (about half a second) before
    the first test's time share starts rather than out of it."""
    if not session.gate_mode():
        return
    import numpy as np
    from reference.check import check_program
    from reference.programs import Input, Node, with_loss
    prog, _ = with_loss("float64", [Input("x0", (2, 3)), Input("x1", (3,))],
                        [Node("v2", "mul", ("x0", "x1")), Node("v3", "tanh", ("v2",))])
    vals = {i.name: np.linspace(0.5, 1.5, int(np.prod(i.shape))).reshape(i.shape) for i in prog.inputs}
    try:
        check_program(prog, vals, seed=0)
    except Exception:  # noqa: BLE001 - a broken pygrad is for the tests to find and report
        pass


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
    if found:
        return
    leaf = _first_leaf(exc)
    if isinstance(leaf, AssertionError):
        # A property test's plain assert failed: a finding, without a reproducer.
        session.add_failure({"test": item.nodeid, "op": _op_param(item), "check": "invariant",
                             "message": _describe(leaf), "reproducer": None, "internal": False})
    else:
        session.add_failure({"test": item.nodeid, "op": _op_param(item), "check": "error",
                             "message": f"internal error of the reference suite: {_describe(leaf)}",
                             "reproducer": None, "internal": True})


def _first_leaf(exc):
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc) -> str:
    """`Type: message` and the innermost frames (hypothesis' notes left out)."""
    frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[-3:])
    return f"{type(exc).__name__}: {exc}\n" + "".join(frames)


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
