"""Real runs of `python -m reference`, as a user or CI runs it: from a fresh directory, in a
subprocess, with its pytest-xdist workers.

What they prove (DESIGN.md, "The gate's interface"):
- the machine's other pytest plugins and PYTEST_ADDOPTS do not reach the gate's pytest;
- a run on correct pygrad exits 0 with the contract's JSON report, a row per registry row and
  every condition reached; `--examples N` with one seed is replayed exactly (apart from
  timings), whatever the number of workers;
- `--shard I/N` runs a share of the coverage pass, and `merge` of the N shard reports is the
  whole pass: one verdict, every condition reached;
- a pygrad that hangs or kills its worker is a finding (exit 1), never a hang of the gate or
  an internal error, and the other rows go on;
- an interrupted run writes its report (`"interrupted": true`), exits 2 and leaves no process;
- `--exitfirst` on a real bug exits 1 at the first finding, and the regression test it writes
  fails on the broken pygrad and passes on the correct one.

Each run costs start-up plus the deterministic coverage pass (~10-20 s); budgets are minimal.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference.gate.report import without_timings
from reference.selftest.catalogue import BY_NAME
from reference.selftest.mutants import Mutant, apply, patched_source
from tests._gate import (CHECK_KINDS, CONTRACT_FIELDS, EXTRA_FIELDS, FAILURE_CONTRACT_FIELDS, REPO, ROW_FIELDS,
                         TIMEOUT, children, gate, group_members, kill_group, report, rows_of, user_env, wait_until)

SEED = 20240611


@pytest.fixture(scope="module")
def registry_rows():
    from reference.registry import row_conditions, rows
    return {row: list(row_conditions(row)) for row in rows()}


@pytest.fixture(scope="module")
def coverage_cases():
    """How many samples one full (unsharded) coverage pass runs."""
    from reference.coverage import row_cases
    from reference.registry import rows
    return sum(len(row_cases(row)) for row in rows())


def assert_contract(doc: dict, registry_rows: dict) -> None:
    assert set(doc) == CONTRACT_FIELDS | EXTRA_FIELDS, set(doc) ^ (CONTRACT_FIELDS | EXTRA_FIELDS)
    assert isinstance(doc["seed"], int) and isinstance(doc["budget_s"], float)
    assert isinstance(doc["workers"], int) and isinstance(doc["elapsed_s"], float) and doc["elapsed_s"] > 0
    assert [r["op"] for r in doc["ops"]] == list(registry_rows), "the report's rows are not the registry's"
    for r in doc["ops"]:
        assert set(r) == ROW_FIELDS, r
        assert isinstance(r["examples"], int) and r["status"] in ("pass", "thin", "fail")
        assert isinstance(r["max_err_torch"], float) and isinstance(r["max_err_fd"], float)
        assert list(r["conditions"]) == registry_rows[r["op"]], r["op"]
        assert all(isinstance(n, int) and n >= 0 for n in r["conditions"].values())
        assert set(r["pairs"]) == {"reached", "feasible"} and 0 <= r["pairs"]["reached"] <= r["pairs"]["feasible"]
        assert len(r["unreached_pairs"]) == r["pairs"]["feasible"] - r["pairs"]["reached"], r["op"]
        assert r["status"] != "thin" or 0 in r["conditions"].values()
    for f in doc["failures"]:
        assert FAILURE_CONTRACT_FIELDS <= set(f) and f["check"] in CHECK_KINDS, f
        assert f["op"] is None or f["op"] in registry_rows, f


# ---------------------------------------------------------------------------- correct pygrad
def test_correct_pygrad_passes_and_examples_replay_exactly(tmp_path, registry_rows, coverage_cases):
    """exit 0, the contract's report, --require-coverage met; the same seed with --examples
    gives the same report apart from timings, with 2 workers or 1."""
    common = ["--examples", "1", "--seed", SEED, "--require-coverage", "--example-timeout", "30"]
    first = tmp_path / "first"
    first.mkdir()
    r = gate([*common, "-n", "2", "--json", "a.json", "--markdown", "a.md"], cwd=first)
    assert r.returncode == 0, r.output[-5000:]
    doc = report(first / "a.json")
    assert_contract(doc, registry_rows)
    assert doc["failures"] == [] and doc["thin"] == [] and doc["internal_errors"] == []
    assert (doc["seed"], doc["workers"], doc["examples_per_test"]) == (SEED, 2, 1)
    assert doc["require_coverage"] is True and doc["interrupted"] is False and doc["crashed"] is False
    assert (doc["exit_status"], doc["verdict"]) == (0, "no failures")
    for row in doc["ops"]:
        assert row["status"] == "pass" and row["examples"] > 0, row
        assert all(n > 0 for n in row["conditions"].values()), row
    # the coverage pass (every sample), then one random example per property test
    assert doc["examples"] > coverage_cases and doc["tests"] > 0
    assert sorted(p.name for p in first.iterdir()) == ["a.json", "a.md"], "the run left files behind"
    md = (first / "a.md").read_text()
    assert "no failures" in md and all(f"| `{row}` |" in md for row in registry_rows)
    assert "no failures" in r.output

    again = tmp_path / "again"
    again.mkdir()
    r = gate([*common, "-n", "1", "--json", "b.json"], cwd=again)
    assert r.returncode == 0, r.output[-5000:]
    replay = report(again / "b.json")
    assert replay["workers"] == 1
    a, b = without_timings(doc), without_timings(replay)
    a.pop("workers"), b.pop("workers")
    differ = {k for k in a if a[k] != b.get(k)} | (set(b) - set(a))
    assert not differ, f"--examples with one seed gave different reports in {sorted(differ)}: " + \
        str([(x, y) for x, y in zip(a["ops"], b["ops"]) if x != y][:3])


def test_the_machines_pytest_setup_does_not_reach_the_gate(tmp_path):
    """Another pytest plugin installed beside pygrad (here one that fails at import) and
    PYTEST_ADDOPTS belong to the user's pytest, not to the gate's: the gate runs as without them."""
    site = tmp_path / "site"
    dist = site / "stray_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "stray_plugin.py").write_text("raise RuntimeError('a stray pytest plugin was loaded')\n")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stray-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nstray = stray_plugin\n")
    env = {**user_env(site), "PYTEST_ADDOPTS": "--no-such-option"}
    plain = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert plain.returncode != 0 and "stray pytest plugin" in plain.stdout + plain.stderr, "the set-up is not live"
    r = gate(["--examples", "1", "--only", "add", "-n", "1", "--seed", SEED], cwd=tmp_path, env=env)
    assert r.returncode == 0 and "no failures" in r.output, r.output[-3000:]


def test_shards_merge_into_one_coverage_pass(tmp_path, registry_rows, coverage_cases):
    """3 shards of a coverage-only run (the budget is spent before any random test starts):
    each runs a share, alone it is thin; merged they are exactly one full coverage pass, every
    condition reached, one verdict."""
    paths = []
    for i in (1, 2, 3):
        path = tmp_path / f"shard{i}.json"
        extra = ["--require-coverage"] if i == 1 else []      # a shard alone cannot reach everything
        r = gate(["--budget", "1", "--seed", SEED, "-n", "1", "--shard", f"{i}/3", "--json", path,
                  "--example-timeout", "30", *extra],
                 cwd=tmp_path)
        doc = report(path)
        assert_contract(doc, registry_rows)
        assert doc["failures"] == [] and doc["internal_errors"] == [] and doc["shard"] == [i, 3]
        assert 0 < doc["examples"] < coverage_cases, f"shard {i}/3 ran {doc['examples']} of {coverage_cases}"
        assert doc["thin"], f"shard {i}/3 alone reached every condition: it is not a share"
        if i == 1:
            assert r.returncode == 1 and doc["exit_status"] == 1 and "unreached" in doc["verdict"], r.output[-3000:]
        else:
            assert r.returncode == 0, r.output[-5000:]
        assert f"--shard {i}/3" in r.output          # the replay line names the shard
        paths.append(path)
    shards = [report(p) for p in paths]

    merged_path = tmp_path / "merged.json"
    r = gate(["merge", *paths, "--json", merged_path, "--markdown", tmp_path / "merged.md"], cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.output
    merged = report(merged_path)
    assert (merged["exit_status"], merged["verdict"]) == (0, "no failures")
    assert merged["merged_shards"] == 3 and merged["seed"] == SEED and merged["require_coverage"] is True
    assert merged["thin"] == [] and merged["failures"] == []
    assert merged["examples"] == sum(d["examples"] for d in shards) == coverage_cases
    rows = rows_of(merged)
    assert list(rows) == list(registry_rows)
    for row, conds in registry_rows.items():
        assert rows[row]["status"] == "pass", rows[row]
        assert rows[row]["examples"] == sum(rows_of(d)[row]["examples"] for d in shards)
        assert rows[row]["conditions"] == {c: sum(rows_of(d)[row]["conditions"][c] for d in shards) for c in conds}
        unreached = [{tuple(p) for p in rows_of(d)[row]["unreached_pairs"]} for d in shards]   # a pair any shard reached
        assert {tuple(p) for p in rows[row]["unreached_pairs"]} == set.intersection(*unreached), row
    assert "no failures" in (tmp_path / "merged.md").read_text()


# ---------------------------------------------------------------------------- broken pygrad
ELEMENTWISE = "pygrad/ops/elementwise.py"
HANG = Mutant("tanh_hangs", ELEMENTWISE,
              "    def backward(g):\n        x._add_grad(g * (1 - y * y))\n",
              "    def backward(g):\n        if y.size >= 5:\n            while True:\n                pass\n"
              "        x._add_grad(g * (1 - y * y))\n", "grad", "tanh's backward never returns for 5+ entries", "tanh")
CRASH = Mutant("sigmoid_kills_its_process", ELEMENTWISE,
               "    def backward(g):\n        x._add_grad(g * (y * (1 - y)))\n",
               "    def backward(g):\n        if y.size >= 5:\n            import os\n            os._exit(3)\n"
               "        x._add_grad(g * (y * (1 - y)))\n", "grad", "sigmoid's backward kills the process", "sigmoid")


def test_a_hang_and_a_crash_are_findings_and_the_run_goes_on(tmp_path):
    """tanh's backward spins forever and sigmoid's kills its worker: the per-example limit
    and the crashed-worker handling make both `error` findings (exit 1, not 2), the other
    rows are still checked, and the run ends by itself: a hang the limit did not cut would spin
    until `gate`'s own timeout kills it. How long it took is not asserted: a loaded machine
    stretches any run, and timing is never asserted in a test."""
    copy = apply(HANG, REPO, dest=tmp_path / "copy")
    (copy / ELEMENTWISE).write_text(patched_source(CRASH, (copy / ELEMENTWISE).read_text()))
    budget = 15
    r = gate(["--budget", budget, "--seed", "0", "-n", "1", "--example-timeout", "3", "--json", "r.json",
              "--out", "found"], cwd=copy, env=user_env(copy), timeout=budget + 120)
    assert r.returncode == 1, r.output[-5000:]
    doc = report(copy / "r.json")
    assert doc["internal_errors"] == [] and doc["crashed"] is False and doc["interrupted"] is False
    errors = [f for f in doc["failures"] if f["check"] == "error"]
    hangs = [f for f in errors if "did not return within 3 s" in f["message"]]
    crashes = [f for f in errors if "worker process died" in f["message"]]
    assert hangs and crashes, [(f["op"], f["check"], f["message"][:120]) for f in doc["failures"]]
    # the hang is blamed on tanh's row (a Module's or training run's hang by replaying its
    # program of registry ops), and every reproducer is the example's runnable code
    assert any(f["op"] == "tanh" for f in hangs), [(f["op"], f["message"][:120]) for f in hangs]
    for f in hangs + crashes:
        compile(f["reproducer"], "test_finding.py", "exec")
        assert "Tensor(" in f["reproducer"]
    assert any(f["op"] == "sigmoid" for f in crashes), crashes
    rows = rows_of(doc)
    for f in hangs + crashes:
        assert rows[f["op"]]["status"] == "fail"
    for row in ("exp", "log", "softmax", "softmax_log", "getitem", "conv2D", "loss:CCELoss", "engine"):
        assert rows[row]["examples"] > 0, f"{row} was not checked after the hang and the crash"
    written = {p.read_text() for p in (copy / "found").glob("test_*.py")}
    assert all(f["reproducer"] in written for f in doc["failures"] if f["reproducer"])


def test_a_reproducer_without_code_is_still_valid_python():
    from reference.programs.printer import regression_test
    code = regression_test("error", "worker_crash", ["# under the gate the process running this died"])
    compile(code, "test_worker_crash.py", "exec")


# ---------------------------------------------------------------------------- interruption
def _stream_has_tests(tmpdir: Path) -> bool:
    for path in tmpdir.glob("pygrad-check-*/*.jsonl"):
        try:
            if '"kind": "test"' in path.read_text(errors="replace"):
                return True
        except OSError:
            pass
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_run_writes_its_report_exits_2_and_leaves_no_process(signum, tmp_path, registry_rows):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = user_env()
    env["TMPDIR"] = str(tmpdir)           # where the gate keeps its run directory: watched below
    log = open(tmp_path / "gate.log", "w")

    def as_in_a_terminal():               # a shell's foreground job: Ctrl-C raises KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen([sys.executable, "-m", "reference", "--budget", "120", "--seed", "3", "-n", "1",
                             "--json", "r.json"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=as_in_a_terminal)
    try:
        pytest_pid = wait_until(lambda: children(proc.pid), 60)
        assert pytest_pid, "the gate started no pytest"
        pytest_pid = pytest_pid[0]
        assert wait_until(lambda: _stream_has_tests(tmpdir), 120), "no test finished within 120 s"
        assert proc.poll() is None
        sent = time.time()
        proc.send_signal(signum)
        returncode = proc.wait(timeout=60)
        stopped_in = time.time() - sent
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        log.close()
    output = (tmp_path / "gate.log").read_text()
    assert returncode == 2, output[-3000:]
    assert stopped_in < 20, f"the gate took {stopped_in:.1f} s to stop"
    assert "interrupted" in output
    doc = report(tmp_path / "r.json")
    assert doc["interrupted"] is True and (doc["exit_status"], doc["verdict"]) == (2, "interrupted")
    assert set(doc) >= CONTRACT_FIELDS
    assert doc["examples"] > 0 and doc["tests"] > 0, "the report lost what ran before the interruption"
    assert [r["op"] for r in doc["ops"]] == list(registry_rows)
    leftover = wait_until(lambda: not group_members(pytest_pid), 15)
    assert leftover, f"pytest's processes are still running: {group_members(pytest_pid)}"
    assert not list(tmpdir.glob("pygrad-check-*")), "the run directory was not removed"


# ---------------------------------------------------------------------------- a real finding
def test_exitfirst_finds_a_real_bug_and_its_regression_test_replays_it(tmp_path):
    """neg's gradient with the wrong sign: --exitfirst stops at the first finding (exit 1,
    long before the budget); the regression test written under --out fails against the
    mutated pygrad and passes against the correct one."""
    copy = apply(BY_NAME["neg_sign"], REPO, dest=tmp_path / "copy")
    budget = 60
    r = gate(["--budget", budget, "--seed", "0", "-n", "1", "--exitfirst", "--json", "r.json", "--out", "found"],
             cwd=copy, env=user_env(copy), timeout=budget + 120)
    assert r.returncode == 1, r.output[-5000:]
    doc = report(copy / "r.json")
    assert doc["cut"] is True and doc["internal_errors"] == [] and doc["exit_status"] == 1
    assert doc["elapsed_s"] < budget - 10, "--exitfirst did not stop at the first finding"
    first = min(doc["failures"], key=lambda f: f["found_at_s"])
    assert (first["op"], first["check"]) == ("neg", "grad"), first
    assert first["reproducer"] and doc["first_failure_s"] == pytest.approx(first["found_at_s"], abs=1e-3)
    written = sorted((copy / "found").glob("test_*.py"))
    assert written and any(p.read_text() == first["reproducer"] for p in written), written
    repro = next(p for p in written if p.read_text() == first["reproducer"])

    broken = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(repro)], cwd=copy,
                            env=user_env(copy), capture_output=True, text=True, timeout=TIMEOUT)
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "1 failed" in broken.stdout and "gradient" in broken.stdout

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(repro, clean / repro.name)
    fixed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", repro.name], cwd=clean,
                           env=user_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert fixed.returncode == 0 and "1 passed" in fixed.stdout, fixed.stdout[-3000:]
