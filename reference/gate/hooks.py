"""pytest plugin of a gate run (`python -m reference` passes `-p reference.gate.hooks`).

In the workers:
- `--only` (env PYGRAD_CHECK_ONLY) keeps the tests whose rows it names; the coverage pass
  runs first, then the pair samples, then the random properties; each test's rows, and each
  row's feasible pairs of conditions, go to `runstate.session` (time shares, the report);
- every test opens and closes its statistics in `runstate.session`; a pair-sample or random
  test whose share is already spent is skipped at once, and the "budget spent" skip becomes
  a pass;
- a test that failed for any other reason than its recorded findings is an internal error
  of the suite (exit status 2, never 1);
- pytest-timeout, when installed, guards each test (thread method) against a hang the
  per-example limit cannot interrupt: the worker dies and the controller reports it.
In the controller (xdist): a worker that died while running an example (a crash, or that
guard) is a finding about that example, read from the worker's in-flight record.
"""
from __future__ import annotations

import os
import sys
import traceback

import pytest

from reference.runstate import session as state
from reference.runstate.streams import Writer

COVERAGE_TEST = "test_coverage"
PAIRS_TEST = "test_pairs"
KINDS = {COVERAGE_TEST: "coverage", PAIRS_TEST: "pairs"}


def _params(item) -> dict:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def item_rows(item) -> list:
    rows = getattr(getattr(item, "function", None), "pygrad_rows", None)
    if rows is None:
        return []
    return list(rows(**{k: v for k, v in _params(item).items()}))


def item_kind(item) -> str:
    """"coverage", "pairs" (deterministic samples) or "random" (a hypothesis property)."""
    return KINDS.get(item.originalname, "random")


def _is_optimizer(item) -> bool:
    from reference.registry import OPTIMIZERS
    return bool(set(item_rows(item)) & {spec.row for spec in OPTIMIZERS.values()})


def _order(item) -> tuple:
    """The coverage pass, then the pair samples, each led by the optimizers (torch.optim's
    first step imports torch._dynamo, ~1.5 s: started early, a worker that has paid it takes
    the next ones), then the random properties."""
    kind = item_kind(item)
    return (("coverage", "pairs", "random").index(kind), not (kind != "random" and _is_optimizer(item)))


def pytest_configure(config):
    from reference import profiles
    if not profiles.in_xdist_controller(config):   # hypothesis and torch stay out of the controller
        profiles.load()


def _only_rows() -> set | None:
    only = [o for o in os.environ.get(state.ENV_ONLY, "").split(",") if o]
    if not only:
        return None
    from reference.registry import spec_of
    rows = set()
    for name in only:
        try:
            rows.add(spec_of(name).row)
        except KeyError:
            rows.add(name)
    return rows


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    only = _only_rows()
    keep = [i for i in items if only is None or set(item_rows(i)) & only]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    keep.sort(key=_order)
    items[:] = keep
    limit = float(os.environ.get("PYGRAD_CHECK_TEST_TIMEOUT", "0") or 0)
    if limit and config.pluginmanager.hasplugin("timeout"):
        for item in items:
            item.add_marker(pytest.mark.timeout(limit, method="thread"))
    from reference.registry import row_conditions, row_pairs, rows
    conditions = {row: list(row_conditions(row)) for row in rows()}
    table = [[row, conditions[row]] for row in rows() if only is None or row in only]
    pairs = {row: row_pairs(row) for row in rows() if len(conditions[row]) >= 2}
    state.collected(len(items), {i.nodeid: item_rows(i) for i in items if item_kind(i) == "random"},
                    sum(item_kind(i) == "coverage" for i in items), table, conditions,
                    {i.nodeid: item_rows(i) for i in items if item_kind(i) == "pairs"},
                    {row: [list(q) for q in p.feasible] for row, p in pairs.items()},
                    {row: [list(q) for q in p.infeasible] for row, p in pairs.items() if p.infeasible})


def pytest_sessionstart(session):
    """Pay torch's first-call costs before the first test's share starts (in the processes
    that run tests: never in xdist's controller, which must not import torch). pygrad itself
    is left alone: a broken pygrad is for the tests to find, under their time limits."""
    from reference import profiles
    if not state.gate_mode() or profiles.in_xdist_controller(session.config):
        return
    import torch
    x = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    (x.tanh() @ x.T).sum().backward()


def pytest_runtest_setup(item):
    state.begin(item.nodeid, item_kind(item))
    if item_kind(item) != "coverage" and state.time_left() <= 0:
        pytest.skip(state.BUDGET_SPENT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.excinfo is None or not state.gate_mode():
        return
    exc = call.excinfo.value
    if call.when == "call" and rep.skipped and isinstance(exc, pytest.skip.Exception) \
            and state.BUDGET_SPENT in str(exc):
        rep.outcome, rep.longrepr = "passed", None
        return
    if rep.failed and call.when == "call":
        from reference.harness import FindingsRecorded
        if not isinstance(exc, FindingsRecorded):
            frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[-4:])
            state.internal_error(item.nodeid, f"{type(exc).__name__}: {exc}\n" + "".join(frames))


def pytest_runtest_logreport(report):
    if report.when == "teardown" and state.current() is not None:
        state.end("failed" if state.current().findings else "passed")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A gate's xdist worker leaves at once when its session is over. xdist already has its
    results (the worker sends them at session finish, before this hook), the statistics
    streams are flushed record by record, and a worker never writes a hypothesis database;
    what is skipped is the interpreter's teardown of torch, which takes 0.5-1.5 s."""
    if state.gate_mode() and hasattr(config, "workeroutput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# ---------------------------------------------------------------------------- controller
_controller_stream: Writer | None = None


def pytest_handlecrashitem(crashitem, report, sched):
    """A worker died while running `crashitem`: a finding about the example it was running."""
    global _controller_stream
    if not state.gate_mode():
        return
    worker = report.node.gateway.id
    flight = state.read_inflight(worker) or {}
    rows = flight.get("rows") or ["engine"]
    node = flight.get("node") or "an unknown point"
    from reference.programs.printer import regression_test
    repro = regression_test("error", "worker_crash", flight["body"] + ["# under the gate the process running this "
                            f"died (at {node})"], definitions=flight.get("definitions", "")) \
        if flight.get("body") else None
    if _controller_stream is None:
        _controller_stream = Writer(os.environ[state.ENV_DIR], "controller")
    _controller_stream.write({
        "kind": "finding", "test": crashitem, "row": rows[0], "check": "error", "what": "a worker crash", "signature": [],
        "message": f"the worker process died while running an example (at {node}): pygrad crashed it, or it "
                   f"hung where the per-example limit could not interrupt it", "where": node,
        "reproducer": repro, "conditions": [], "shrunk": False, "t": state.elapsed(), "fatal_rows": [r for r in rows if r != "engine"]})
