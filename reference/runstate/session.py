"""Worker-side state of a gate run: time shares, statistics, findings, the in-flight example.

`python -m reference` starts pytest(-xdist) with these environment variables (outside a gate
run -- a plain `pytest` -- nothing is written and there is no budget):

- `PYGRAD_CHECK_DIR`: a fresh directory; each pytest process appends JSON lines to its own
  `<worker>.jsonl` (`runstate.streams`): `collected`, `start`, `tick` (examples so far), `finding`
  (as soon as one is found, shrunk), `test` (per-row statistics, conditions and pairs of
  conditions reached together in one use, of a test);
- `PYGRAD_CHECK_START` / `PYGRAD_CHECK_DEADLINE`: when the run started and when drawing must
  stop (epoch seconds). The coverage pass always runs in full; the pair samples (a test per
  coverage unit, in order) then run until one deadline, PAIR_SHARE of the time left when the
  first of them starts; each random test then gets a share of the time left that follows
  evidence (`share`): more for tests whose rows still have rarely reached conditions, and
  whose examples are cheap;
- `PYGRAD_CHECK_EXAMPLES`: a fixed number of examples per random test instead of time;
- `PYGRAD_CHECK_SEED`, `PYGRAD_CHECK_ONLY`, `PYGRAD_CHECK_SHARD` ("I/N"),
  `PYGRAD_CHECK_TIMEOUT` (seconds one example may take).

Findings are shared: a worker reads the others' `finding` records, so a failure explained
by a known finding (same row, check and `what`, a superset of its conditions;
`reference.findings`) is set aside instead of being reported again.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from reference.runstate.streams import Stream, Writer

ENV_DIR = "PYGRAD_CHECK_DIR"
ENV_START = "PYGRAD_CHECK_START"
ENV_DEADLINE = "PYGRAD_CHECK_DEADLINE"
ENV_EXAMPLES = "PYGRAD_CHECK_EXAMPLES"
ENV_SEED = "PYGRAD_CHECK_SEED"
ENV_ONLY = "PYGRAD_CHECK_ONLY"
ENV_SHARD = "PYGRAD_CHECK_SHARD"
ENV_TIMEOUT = "PYGRAD_CHECK_TIMEOUT"
BUDGET_SPENT = "pygrad-check: time budget spent"
TICK_SECONDS = 0.5
DEFAULT_TIMEOUT = 10.0
INFLIGHT_BYTES = 1 << 20
PAIR_SHARE = 0.8      # the share of the time left after the coverage pass the pair samples may take


def gate_mode() -> bool:
    return bool(os.environ.get(ENV_DIR))


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def elapsed() -> float:
    """Seconds since the gate started (since this process started outside a gate run)."""
    return time.time() - float(os.environ.get(ENV_START, _T0))


_T0 = time.time()


def fixed_examples() -> int | None:
    n = os.environ.get(ENV_EXAMPLES, "")
    return int(n) if n else None


def shard() -> tuple:
    """(I, N) of --shard I/N (1-based), (1, 1) when not sharded."""
    text = os.environ.get(ENV_SHARD, "") or "1/1"
    i, n = text.split("/")
    return int(i), int(n)


def hypothesis_seed() -> int | None:
    """The seed of each random test's first round: --seed, moved along for each --shard so
    shards draw different examples (None outside a gate run)."""
    text = os.environ.get(ENV_SEED, "")
    return int(text) + 1000003 * (shard()[0] - 1) if text else None


def example_timeout() -> float:
    return float(os.environ.get(ENV_TIMEOUT, "") or DEFAULT_TIMEOUT)


# ---------------------------------------------------------------------------- budget
def share(remaining: float, workers: int, weights: dict, waiting: set, me: str) -> float:
    """The seconds test `me` may draw: the workers' remaining time split over the tests not
    yet started (`waiting`, `me` included) in proportion to their weights, and never more
    than the wall time left."""
    total = sum(weights.get(t, 1.0) for t in waiting | {me})
    if remaining <= 0 or total <= 0:
        return 0.0
    return min(remaining, remaining * workers * weights.get(me, 1.0) / total)


def weight(rows: list, hits: dict, costs: dict) -> float:
    """How much a random test's time is worth: its rows' conditions still rarely reached
    (fewer than 3 examples), per second of its examples' typical cost; kept within 4x of
    the mean so that every test keeps some time."""
    needs = [c < 3 for row in rows for c in hits.get(row, {}).values()] or [True]
    need = 1.0 + 4.0 * sum(needs) / len(needs)
    seconds = [costs[r] for r in rows if r in costs] or [0.02]
    return need / max(sum(seconds) / len(seconds), 1e-3)


@dataclass
class TestStats:
    nodeid: str
    kind: str                       # "coverage" | "pairs" | "random"
    deadline: float
    began: float = field(default_factory=time.time)
    examples: int = 0
    attempts: int = 0
    invalid: int = 0
    set_aside: int = 0
    rows: dict = field(default_factory=dict)    # row -> [examples, max torch, max fd or None, Counter]
    pairs: dict = field(default_factory=dict)   # row -> {(a, b)}: conditions reached in one use (a < b)
    bounds: dict = field(default_factory=dict)  # row -> [max torch is a bound, max fd is a bound]
    findings: list = field(default_factory=list)


class _State:
    writer: Writer | None = None
    current: TestStats | None = None
    tests: dict = {}                # random test nodeid -> declared rows
    pair_tests: dict = {}           # pair-sample test nodeid -> its rows
    conditions: dict = {}           # row -> the conditions it must reach (every row of the report)
    stream: Stream | None = None
    known: list = []                # signatures of every finding seen (this run)
    fatal: set = set()              # rows with a hang or crash finding
    unticked: int = 0
    last_tick: float = 0.0
    inflight: mmap.mmap | None = None


S = _State()


def _write(record: dict) -> None:
    if not gate_mode():
        return
    if S.writer is None:
        S.writer = Writer(os.environ[ENV_DIR], worker_id())
    S.writer.write(record)


def collected(n: int, random_tests: dict, coverage_tests: int, rows: list, conditions: dict | None = None,
              pair_tests: dict | None = None, feasible: dict | None = None, infeasible: dict | None = None) -> None:
    """The tests of this process's session: their count, the random ones' rows, how many
    make the coverage pass, the pair-sample tests' rows, and the report's rows with their
    conditions (`rows`: those the run reports; `conditions`: row -> conditions of every row,
    for the time shares), feasible pairs and declared infeasible ones (row -> [[a, b], ...])."""
    S.tests = dict(random_tests)
    S.pair_tests = dict(pair_tests or {})
    S.conditions = dict(conditions or {})
    _write({"kind": "collected", "tests": n, "coverage_tests": coverage_tests, "rows": rows,
            "feasible_pairs": {row: p for row, p in (feasible or {}).items() if row in dict(rows)},
            "infeasible_pairs": {row: p for row, p in (infeasible or {}).items() if row in dict(rows)}})


def _poll() -> list:
    """New records of every process (others' findings, starts, test statistics)."""
    if not gate_mode():
        return []
    if S.stream is None:
        S.stream = Stream(os.environ[ENV_DIR])
    new = S.stream.poll()
    for r in new:
        if r.get("kind") == "finding":
            sig = (r["row"], r["check"], r.get("what") or r["row"], frozenset(r["signature"]))
            if sig not in S.known:
                S.known.append(sig)
            S.fatal.update(r.get("fatal_rows", ()))
    return new


def pair_deadline(now: float) -> float:
    """The pair-sample tests' one deadline: PAIR_SHARE of the time left when the first of
    them started, in any process (this one, now, if none has)."""
    _poll()
    t0 = float(os.environ.get(ENV_START, _T0))
    first = min([t0 + r["t"] for r in S.stream.records if r.get("kind") == "start" and r["test"] in S.pair_tests],
                default=now)
    return first + PAIR_SHARE * (float(os.environ[ENV_DEADLINE]) - first)


def begin(nodeid: str, kind: str) -> None:
    """Start a test. A random test's deadline is its share of the time left; the pair-sample
    tests share one (`pair_deadline`): they run in their order until it passes."""
    now = time.time()
    deadline = math.inf
    timed = gate_mode() and os.environ.get(ENV_DEADLINE) and fixed_examples() is None
    if timed and kind == "pairs":
        deadline = pair_deadline(now)
    if timed and kind == "random":
        _poll()
        records = S.stream.records
        started = {r["test"] for r in records if r.get("kind") == "start"}
        hits, costs = {}, {}
        for r in records:
            if r.get("kind") == "test":
                for row, (n, _, _, conds) in r["rows"].items():
                    h = hits.setdefault(row, {})
                    for c, k in conds.items():
                        h[c] = h.get(c, 0) + k
                    if n:
                        costs[row] = r["seconds"] / max(n, 1)
        for row in {row for rows in S.tests.values() for row in rows}:
            h = hits.setdefault(row, {})
            for c in S.conditions.get(row, ()):
                h.setdefault(c, 0)
        weights = {t: weight(rows, hits, costs) for t, rows in S.tests.items()}
        waiting = {t for t in S.tests if t not in started}
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        deadline = now + share(float(os.environ[ENV_DEADLINE]) - now, workers, weights, waiting, nodeid)
    S.current = TestStats(nodeid, kind, deadline)
    _write({"kind": "start", "test": nodeid, "t": elapsed()})


def current() -> TestStats | None:
    return S.current


def time_left() -> float:
    t = S.current
    return math.inf if t is None else t.deadline - time.time()


def check_budget() -> None:
    """End the current random test (a budget skip, which the plugin turns into a pass) once
    its share is used -- after its first example, and never while hypothesis shrinks."""
    import pytest
    t = S.current
    if t is None or t.kind != "random":
        return
    t.attempts += 1
    if t.attempts > 1 and time.time() > t.deadline:
        pytest.skip(BUDGET_SPENT)


def max_is_bound(old: float, old_bound: bool, new: float, new_bound: bool) -> bool:
    """Is max(old, new) of two err/tol ratios an upper bound (a ratio against a tolerance's
    floor) rather than a measurement? A tie is measured if either is."""
    if new > old:
        return new_bound
    if new < old:
        return old_bound
    return old_bound and new_bound


def record(uses, outcome) -> None:
    """One judged example: its rows' worst error ratios (and whether each is a bound), the
    conditions it reached, and the pairs of conditions reached together in one use (`uses`:
    [(row, conditions)], one per use, as `condition_sets()` of a case gives them)."""
    t = S.current
    if t is None:
        return
    t.examples += 1
    conditions: dict = {}
    for row, conds in uses:
        conditions.setdefault(row, set()).update(conds)
        ranked = sorted(conds)
        t.pairs.setdefault(row, set()).update((a, b) for i, a in enumerate(ranked) for b in ranked[i + 1:])
    for row, conds in conditions.items():
        stats = t.rows.setdefault(row, [0, 0.0, None, Counter()])
        bounds = t.bounds.setdefault(row, [False, False])
        stats[0] += 1
        r = outcome.per_row.get(row, outcome.err_torch if len(conditions) == 1 else 0.0)
        bounds[0] = max_is_bound(stats[1], bounds[0], r, outcome.bound_rows.get(row, False))
        stats[1] = max(stats[1], r)
        if outcome.err_fd is not None:
            bounds[1] = outcome.fd_bound if stats[2] is None else \
                max_is_bound(stats[2], bounds[1], outcome.err_fd, outcome.fd_bound)
            stats[2] = outcome.err_fd if stats[2] is None else max(stats[2], outcome.err_fd)
        stats[3].update(conds)
    S.unticked += 1
    now = time.time()
    if now - S.last_tick > TICK_SECONDS:
        _write({"kind": "tick", "examples": S.unticked})
        S.last_tick, S.unticked = now, 0


def invalid() -> None:
    if S.current is not None:
        S.current.invalid += 1


def set_aside() -> None:
    if S.current is not None:
        S.current.set_aside += 1


def known(only_mine: bool = False) -> list:
    """Signatures of the findings so far (this process's only, with `only_mine` -- what a
    run of a fixed number of examples may depend on)."""
    if only_mine or fixed_examples() is not None:
        return [f["sig"] for f in (S.current.findings if S.current else [])]
    _poll()
    return list(S.known)


def fatal_rows() -> set:
    if fixed_examples() is None:
        _poll()
    return set(S.fatal)


def finding(record: dict, sig: tuple, fatal_rows=()) -> None:
    """Record a finding at once (the command line prints it as it arrives). `fatal_rows`:
    rows whose examples hang or crash from now on -- set aside in every process."""
    record = {"kind": "finding", **record, "row": sig[0], "check": sig[1], "what": sig[2], "signature": sorted(sig[3]),
              "t": elapsed(), "fatal_rows": sorted(fatal_rows)}
    if S.current is not None:
        S.current.findings.append({"sig": sig})
    if sig not in S.known:
        S.known.append(sig)
    S.fatal.update(fatal_rows)
    _write(record)


def internal_error(test: str, message: str) -> None:
    """The suite itself failed in `test` (the gate exits 2)."""
    _write({"kind": "internal", "test": test, "message": message})


def end(outcome: str) -> None:
    t = S.current
    if t is None:
        return
    if S.unticked:
        _write({"kind": "tick", "examples": S.unticked})
        S.unticked = 0
    rows = {row: [n, mt, mf, dict(c)] for row, (n, mt, mf, c) in t.rows.items()}
    pairs = {row: sorted(map(list, p)) for row, p in t.pairs.items() if p}
    _write({"kind": "test", "test": t.nodeid, "kind_of_test": t.kind, "outcome": outcome, "examples": t.examples,
            "invalid": t.invalid, "set_aside": t.set_aside, "rows": rows, "bounds": t.bounds, "pairs": pairs,
            "seconds": time.time() - t.began, "findings": len(t.findings)})
    S.current = None


# ---------------------------------------------------------------------------- in flight
def inflight_path(worker: str) -> str:
    return os.path.join(os.environ.get(ENV_DIR, "."), f"inflight-{worker}.bin")


def set_inflight(test: str, script: tuple, rows: list) -> None:
    """Keep the example being run -- its test, its pygrad code (definitions, statements) and
    its rows -- where the controller finds it if this process dies."""
    if not gate_mode():
        return
    if S.inflight is None:
        with open(inflight_path(worker_id()), "wb") as f:
            f.truncate(INFLIGHT_BYTES)
        with open(inflight_path(worker_id()), "r+b") as f:
            S.inflight = mmap.mmap(f.fileno(), INFLIGHT_BYTES)
    definitions, body = script
    data = json.dumps({"test": test, "definitions": definitions, "body": body, "rows": rows}).encode()
    if len(data) > INFLIGHT_BYTES - 512:   # too big to keep: the test and rows still name it
        data = json.dumps({"test": test, "definitions": "", "body": [], "rows": rows}).encode()
    S.inflight[:8] = len(data).to_bytes(8, "little")
    S.inflight[512:512 + len(data)] = data
    set_node("")


def set_node(name: str) -> None:
    """The node the example has reached (updated by the program interpreter)."""
    if S.inflight is not None:
        raw = name.encode()[:400]
        S.inflight[8:16] = len(raw).to_bytes(8, "little")
        S.inflight[16:16 + len(raw)] = raw


def read_inflight(worker: str) -> dict | None:
    """What a (dead) worker was running: {"test", "definitions", "body", "rows", "node"}."""
    try:
        with open(inflight_path(worker), "rb") as f:
            buf = f.read(INFLIGHT_BYTES)
    except OSError:
        return None
    n, k = int.from_bytes(buf[:8], "little"), int.from_bytes(buf[8:16], "little")
    if not n:
        return None
    out = json.loads(buf[512:512 + n].decode())
    out["node"] = buf[16:16 + k].decode(errors="replace")
    return out
