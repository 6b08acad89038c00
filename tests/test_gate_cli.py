"""The gate's command line before any work, `--list`, `merge`, and the report as data.

No test here runs the suite: argument and output-path errors must be caught before pytest
starts (exit 2), and merging shard reports is checked on reports written by hand after
`report.document`'s fields. The in-process tests replace the run itself with a recorder, so
a check that let a bad argument through fails at once instead of starting a 60 s run.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from reference.gate import cli, report
from tests._gate import REPO, gate, user_env

SUITE = REPO / "reference" / "suite"


def flat(text: str) -> str:
    return "".join(text.split())


# ---------------------------------------------------------------------------- output paths
def _bad_paths(tmp: Path) -> dict:
    """name -> (arguments, the path the message must name)."""
    a_file = tmp / "a_file.txt"
    a_file.write_text("not a directory\n")
    a_dir = tmp / "a_dir"
    a_dir.mkdir()
    missing = tmp / "no" / "such" / "dir"
    return {
        "json into a missing directory": (["--json", missing / "report.json"], missing / "report.json"),
        "markdown into a missing directory": (["--markdown", missing / "report.md"], missing / "report.md"),
        "out under a missing parent": (["--out", missing / "failures"], missing / "failures"),
        "out under a file": (["--out", a_file / "failures"], a_file / "failures"),
        "out is a file": (["--out", a_file], a_file),
        "json is a directory": (["--json", a_dir], a_dir),
        "markdown is a directory": (["--markdown", a_dir], a_dir),
    }


BAD_PATHS = [
    "json into a missing directory", "markdown into a missing directory", "out under a missing parent",
    "out under a file", "out is a file", "json is a directory", "markdown is a directory"]


@pytest.mark.parametrize("case", BAD_PATHS)
def test_unwritable_output_path_is_a_usage_error_before_any_work(case, tmp_path):
    args, named = _bad_paths(tmp_path)[case]
    # a valid report path next to the bad one: it must not be written either (no run started)
    extra = [] if "--json" in args else ["--json", tmp_path / "ok.json"]
    r = gate(["--examples", "1", "-n", "1", *args, *extra], cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.output
    assert "usageerror" in flat(r.output).lower(), r.output
    assert flat(str(named)) in r.flat(), f"the message does not name {named}:\n{r.output}"
    assert r.wall_s < 10, f"took {r.wall_s:.1f} s: work started before the paths were checked"
    assert "pygrad-check: seed" not in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "ok.json").exists()
    assert not (tmp_path / "reference-failures").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
@pytest.mark.parametrize("flag", ["--json", "--out"])
def test_output_in_a_read_only_directory_is_a_usage_error(flag, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = gate(["--examples", "1", flag, locked / "x"], cwd=tmp_path, timeout=60)
    finally:
        locked.chmod(0o700)
    assert r.returncode == 2 and flat(str(locked / "x")) in r.flat(), r.output
    assert r.wall_s < 10


def test_check_writable_refuses_a_directory_it_may_not_write(tmp_path, monkeypatch):
    """The permission branch of the check, also where the tests run as root."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(cli.os, "access",
                        lambda p, mode: False if Path(p) == locked and mode == os.W_OK else real_access(p, mode))
    for path, directory in ((locked / "r.json", False), (locked / "failures", True), (locked, True)):
        with pytest.raises(cli.UsageError, match="writable"):
            cli.check_writable(path, "--x", directory=directory)
    cli.check_writable(tmp_path / "r.json", "--x")               # its writable parent is fine
    cli.check_writable(tmp_path / "new-dir", "--x", directory=True)
    cli.check_writable(None, "--x")
    assert not (tmp_path / "new-dir").exists()                  # checking creates nothing


# ---------------------------------------------------------------------------- arguments
@pytest.fixture
def no_run(monkeypatch):
    """Replace the run and the self-test with recorders: a test fails instead of running."""
    calls = []
    monkeypatch.setattr(cli, "run", lambda args, console: calls.append(("run", args)) or 0)
    import reference.selftest.run as selftest_run
    monkeypatch.setattr(selftest_run, "run", lambda args, console: calls.append(("mutants", args)) or 0)
    return calls


@pytest.mark.parametrize("argv, says", [
    (["--budget", "0"], "--budget"),
    (["--budget", "-5"], "--budget"),
    (["--examples", "0"], "--examples"),
    (["-n", "0"], "-n"),
    (["--workers", "-1"], "-n"),
    (["--example-timeout", "0"], "--example-timeout"),
    (["--shard", "4/3"], "--shard"),
    (["--shard", "0/3"], "--shard"),
    (["--shard", "1/0"], "--shard"),
    (["--shard", "x"], "--shard"),
    (["--shard", "1/3/2"], "--shard"),
    (["--only", "no_such_op"], "no_such_op"),
    (["--only", "add", "optim:NoSuchOptimizer"], "optim:NoSuchOptimizer"),
    (["--ci-subset"], "--mutants"),
    (["--focused"], "--mutants"),
    (["--mutants", "no_such_mutant"], "no_such_mutant"),
    (["--mutants", "neg_sign", "no_such_mutant"], "no_such_mutant"),
    (["--together"], "--mutants"),
    (["--mutants", "neg_sign", "--together"], "--together"),
])
def test_bad_arguments_exit_2_before_any_work(argv, says, no_run, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert no_run == []
    out = capsys.readouterr().out
    assert "usage error" in out and flat(says) in flat(out), out


@pytest.mark.parametrize("argv", [["--budget", "abc"], ["--examples", "1.5"], ["--profile", "nightly"],
                                  ["--no-such-flag"], ["-n"]])
def test_malformed_arguments_exit_2(argv, no_run, capsys):
    assert cli.main(argv) == 2            # argparse's usage error, returned, not raised
    assert no_run == []


def test_help_exits_0(no_run, capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--budget", "--seed", "--json", "--profile", "--only", "--examples", "--shard",
                 "--require-coverage", "--mutants", "--markdown", "--out", "--example-timeout", "--exitfirst"):
        assert flag in out, flag
    assert no_run == []


def test_valid_arguments_reach_the_run(no_run, tmp_path, monkeypatch):
    """The recorder sees valid arguments, parsed (the control of the tests above)."""
    monkeypatch.chdir(tmp_path)
    argv = ["--budget", "2.5", "--seed", "9", "-n", "1", "--shard", "2/3", "--only", "add", "module", "optim:Adam",
            "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"), "--out", str(tmp_path / "new"),
            "--example-timeout", "3", "--exitfirst", "--require-coverage", "--profile", "dev"]
    assert cli.main(argv) == 0
    [(what, args)] = no_run
    assert what == "run"
    assert (args.budget, args.seed, args.workers, args.shard) == (2.5, 9, 1, "2/3")
    assert args.only == ["add", "module", "optim:Adam"] and args.exitfirst and args.require_coverage
    assert args.profile == "dev" and args.example_timeout == 3.0 and args.examples is None
    assert not (tmp_path / "new").exists() and not (tmp_path / "r.json").exists()
    no_run.clear()
    assert cli.main(["--mutants", "neg_sign", "--ci-subset", "--budget", "5"]) == 0
    [(what, args)] = no_run
    assert what == "mutants" and args.mutants == ["neg_sign"] and args.ci_subset


def test_an_internal_error_exits_2_never_1(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)

    def crash(args, console):
        raise RuntimeError("the tool itself broke")
    monkeypatch.setattr(cli, "run", crash)
    assert cli.main(["--examples", "1"]) == 2
    assert "internal error of pygrad-check" in capsys.readouterr().out


def test_shard_parsing():
    assert cli.parse_shard(None) == (1, 1)
    assert cli.parse_shard("1/1") == (1, 1)
    assert cli.parse_shard("3/3") == (3, 3)
    for bad in ("0/1", "2/1", "1/", "/2", "a/b", "1-2", " 1/2", "-1/2"):
        with pytest.raises(cli.UsageError):
            cli.parse_shard(bad)


# ---------------------------------------------------------------------------- --list
def _suite_property_tests() -> set:
    """'module.py::test_name' of every test function of the shipped suite, read from source."""
    out = set()
    for path in SUITE.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.add(f"{path.name}::{node.name}")
    return out


def test_list_shows_every_op_row_and_property(tmp_path):
    from reference.registry import LOSS_OPS, OPS, row_conditions, rows
    env = user_env()
    env["COLUMNS"] = "400"        # a wide table: no name folded across lines
    r = gate(["--list"], cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.output
    cells = {c.strip() for line in r.output.splitlines() for c in line.split("│")}
    missing = [name for name in list(OPS) + list(LOSS_OPS) if name not in cells]
    assert not missing, f"ops not listed: {missing}"
    missing = [row for row in rows() if row not in cells]
    assert not missing, f"rows not listed: {missing}"
    props = _suite_property_tests()
    assert len(props) >= 10
    missing = [p for p in props if p not in cells]
    assert not missing, f"property tests not listed: {missing}"
    # the rows table (two columns): each row with every one of its conditions
    listed, current = {}, None
    for line in r.output.splitlines():
        parts = line.split("│")
        if len(parts) == 4:
            current = parts[1].strip() or current
            listed[current] = listed.get(current, "") + " " + parts[2]
    for row in rows():
        text = " ".join(listed.get(row, "").split())
        for cond in row_conditions(row):
            assert " ".join(cond.split()) in text, f"--list does not show condition {cond!r} of row {row}"
    assert "pygrad-check: seed" not in r.output and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- the report as data
def _row(op, examples, torch=0.0, fd=0.0, conditions=None, status="pass", bounds=(False, False)):
    return {"op": op, "examples": examples, "max_err_torch": torch, "max_err_fd": fd, "status": status,
            "conditions": dict(conditions or {}), "max_err_torch_bound": bounds[0], "max_err_fd_bound": bounds[1]}


def _failure(op, check="grad", t=1.0, signature=("broadcast",), test="test_ops.py::test_op[x]", reproducer=None):
    return {"test": test, "op": op, "check": check, "message": f"{check} of {op} differs\nsecond line",
            "reproducer": reproducer, "conditions": list(signature), "signature": list(signature), "found_at_s": t,
            "shrunk": True}


def _doc(i, n, ops, failures=(), seed=7, **extra):
    doc = {"seed": seed, "budget_s": 10.0, "workers": 2, "elapsed_s": 9.0 + i, "ops": ops, "failures": list(failures),
           "profile": "ci", "shard": [i, n], "examples_per_test": None, "interrupted": False, "cut": False,
           "crashed": False, "require_coverage": False, "exit_status": 0, "verdict": "no failures",
           "examples": sum(r["examples"] for r in ops), "tests": 5, "first_failure_s": None,
           "thin": [r["op"] for r in ops if r["status"] == "thin"], "internal_errors": []}
    doc.update(extra)
    return doc


def _shards(with_failure=False):
    repro = "def test_neg_grad_0123abcd():\n    assert False, 'neg is wrong'\n"
    s1 = _doc(1, 3, [_row("add", 3, 0.1, 0.2, {"broadcast": 0, "used twice": 1}, "thin"),
                     _row("neg", 2, 0.0, 0.1, {"exact zero": 0}, "thin")])
    s2 = _doc(2, 3, [_row("add", 4, 0.3, 0.05, {"broadcast": 2, "used twice": 0}, "thin"),
                     _row("neg", 1, 0.5, 0.0, {"exact zero": 0}, "fail" if with_failure else "thin")],
              failures=[_failure("neg", t=4.0, reproducer=repro)] if with_failure else [])
    s3 = _doc(3, 3, [_row("add", 1, 0.0, 0.0, {"broadcast": 0, "used twice": 0}, "thin"),
                     _row("neg", 5, 0.2, 0.3, {"exact zero": 0}, "thin"),
                     _row("mul", 2, 0.1, 0.1, {}, "pass")],
              failures=[_failure("neg", t=2.5, reproducer=repro), _failure("neg", t=9.0, reproducer=repro),
                        _failure("add", check="fd", t=3.0, signature=())] if with_failure else [])
    return [s1, s2, s3]


def test_merge_sums_rows_and_recomputes_status():
    merged = report.merge(_shards())
    rows = {r["op"]: r for r in merged["ops"]}
    assert [r["op"] for r in merged["ops"]] == ["add", "neg", "mul"]
    assert rows["add"] == {"op": "add", "examples": 8, "max_err_torch": 0.3, "max_err_fd": 0.2, "status": "pass",
                           "conditions": {"broadcast": 2, "used twice": 1},     # every shard alone was thin
                           "max_err_torch_bound": False, "max_err_fd_bound": False}
    assert rows["neg"]["examples"] == 8 and rows["neg"]["status"] == "thin"
    assert rows["neg"]["conditions"] == {"exact zero": 0}
    assert rows["mul"]["status"] == "pass" and rows["mul"]["examples"] == 2
    assert merged["examples"] == 18 and merged["merged_shards"] == 3 and merged["seed"] == 7
    assert merged["workers"] == 6 and merged["elapsed_s"] == 12.0 and merged["budget_s"] == 10.0
    assert merged["failures"] == [] and merged["thin"] == ["neg"] and merged["first_failure_s"] is None
    assert report.merged_status(merged) == (0, "no failures")
    assert set(merged) >= {"seed", "budget_s", "workers", "elapsed_s", "ops", "failures"}


def test_merge_keeps_each_finding_once_and_fails_its_row():
    merged = report.merge(_shards(with_failure=True))
    rows = {r["op"]: r for r in merged["ops"]}
    assert rows["neg"]["status"] == "fail" and rows["add"]["status"] == "fail" and rows["mul"]["status"] == "pass"
    assert [(f["op"], f["check"], f["found_at_s"]) for f in merged["failures"]] == [
        ("neg", "grad", 2.5), ("add", "fd", 3.0)]                   # the earliest of each signature
    assert merged["first_failure_s"] == 2.5
    assert report.merged_status(merged)[0] == 1


def test_merged_status_follows_the_single_run_rule():
    base = report.merge(_shards())
    assert report.merged_status(dict(base, require_coverage=True))[0] == 1      # neg is thin
    assert report.merged_status(dict(base, require_coverage=True, thin=[]))[0] == 0
    assert report.merged_status(dict(base, interrupted=True))[0] == 2
    assert report.merged_status(dict(base, crashed=True))[0] == 2
    assert report.merged_status(dict(base, internal_errors=["boom"]))[0] == 2
    failing = report.merge(_shards(with_failure=True))
    assert report.merged_status(dict(failing, internal_errors=["boom"]))[0] == 2   # never 1 for a crash
    one = _shards()
    one[1]["interrupted"] = True
    assert report.merge(one)["interrupted"] and report.merged_status(report.merge(one))[0] == 2
    one = _shards()
    one[2]["internal_errors"] = ["worker blew up"]
    assert report.merge(one)["internal_errors"] == ["worker blew up"]


@pytest.mark.parametrize("shards, says", [
    ([(1, 3), (3, 3)], "shards 1..N"),                # a missing shard
    ([(1, 2), (1, 2)], "shards 1..N"),                # the same shard twice
    ([(1, 2), (2, 2), (2, 2)], "shards 1..N"),
    ([(1, 2), (2, 3)], "shards 1..N"),                # shards of different runs
    ([(2, 2)], "shards 1..N"),
    ([], "no reports"),
])
def test_merge_refuses_reports_that_are_not_one_run(shards, says):
    docs = [_doc(i, n, [_row("add", 1)]) for i, n in shards]
    with pytest.raises(report.MergeError, match=says.replace(".", r"\.")):
        report.merge(docs)


def test_merge_refuses_different_seeds():
    with pytest.raises(report.MergeError, match="different seeds"):
        report.merge([_doc(1, 2, [_row("add", 1)], seed=7), _doc(2, 2, [_row("add", 1)], seed=8)])


def test_merge_of_one_unsharded_report_is_that_report():
    doc = _doc(1, 1, [_row("add", 3, 0.1, 0.2, {"broadcast": 1})])
    del doc["shard"]                               # an old report without the field: one shard of one
    merged = report.merge([doc])
    assert merged["ops"] == doc["ops"] and merged["examples"] == 3


def _write(tmp_path, docs) -> list:
    paths = []
    for d in docs:
        p = tmp_path / f"shard-{d['shard'][0]}-of-{d['shard'][1]}-seed{d['seed']}.json"
        p.write_text(json.dumps(d))
        paths.append(str(p))
    return paths


def test_merge_command_combines_shards(tmp_path, capsys):
    paths = _write(tmp_path, _shards())
    out = tmp_path / "merged.json"
    assert cli.main(["merge", *paths, "--json", str(out), "--markdown", str(tmp_path / "m.md"),
                     "--out", str(tmp_path / "failures")]) == 0
    merged = json.loads(out.read_text())
    assert merged["exit_status"] == 0 and merged["verdict"] == "no failures"
    assert {r["op"]: r["status"] for r in merged["ops"]} == {"add": "pass", "neg": "thin", "mul": "pass"}
    assert {r["op"]: r["examples"] for r in merged["ops"]} == {"add": 8, "neg": 8, "mul": 2}
    md = (tmp_path / "m.md").read_text()
    assert "no failures" in md and "| `add` | 8 |" in md
    assert not (tmp_path / "failures").exists()
    assert "merged3shardreport(s):18examples" in flat(capsys.readouterr().out)


def test_merge_command_exits_1_on_a_finding_and_writes_its_regression_test(tmp_path):
    paths = _write(tmp_path, _shards(with_failure=True))
    out = tmp_path / "merged.json"
    assert cli.main(["merge", *paths, "--json", str(out), "--out", str(tmp_path / "failures")]) == 1
    merged = json.loads(out.read_text())
    assert merged["exit_status"] == 1 and len(merged["failures"]) == 2
    written = tmp_path / "failures" / "test_neg_grad_0123abcd.py"
    assert written.read_text().startswith("def test_neg_grad_0123abcd():")


def test_merge_command_refuses_what_is_not_one_run(tmp_path, capsys):
    shards = _shards()
    good = _write(tmp_path, shards)
    other_seed = _write(tmp_path, [dict(shards[2], seed=8)])
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    a_list = tmp_path / "a_list.json"
    a_list.write_text("[1, 2]")
    no_ops = tmp_path / "no_ops.json"
    no_ops.write_text(json.dumps({k: v for k, v in shards[2].items() if k != "ops"}))
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    out = tmp_path / "merged.json"
    cases = [
        ([good[0], good[2]], "shards1..N"),                       # shard 2/3 missing
        ([good[0], good[1], good[1], good[2]], "shards1..N"),     # shard 2/3 twice
        ([good[0], good[1], *other_seed], "differentseeds"),
        ([good[0], good[1], str(tmp_path / "missing.json")], "missing.jsonisnotafile"),
        ([good[0], good[1], str(a_dir)], "isnotafile"),
        ([good[0], good[1], str(bad_json)], "bad.jsonisnotaJSONreportofpygrad-check"),
        ([good[0], good[1], str(a_list)], "a_list.jsonisnotareportofpygrad-check(nobudget_s"),
        ([good[0], good[1], str(no_ops)], "no_ops.jsonisnotareportofpygrad-check(noops)"),
    ]
    for paths, says in cases:
        assert cli.main(["merge", *paths, "--json", str(out)]) == 2, paths
        text = flat(capsys.readouterr().out)
        assert "usageerror" in text and says in text, (paths, text)
        assert not out.exists()
    # an unwritable output is refused before anything is merged or written
    assert cli.main(["merge", *good, "--json", str(tmp_path / "no" / "m.json"), "--out", str(tmp_path / "f")]) == 2
    assert not (tmp_path / "f").exists()
    assert cli.main(["merge"]) == 2                                # no report at all


def _records():
    """Workers' stream records of a small run: two rows, one finding seen twice, one internal error."""
    return [
        {"kind": "collected", "tests": 3, "coverage_tests": 1, "rows": [["add", ["broadcast", "twice"]],
                                                                         ["neg", ["zero"]]]},
        {"kind": "test", "test": "t1", "kind_of_test": "coverage", "examples": 5, "invalid": 1, "set_aside": 0,
         "rows": {"add": [3, 0.2, None, {"broadcast": 2}], "neg": [2, 0.1, 0.3, {"zero": 0, "undeclared": 4}],
                  "not_a_row": [7, 9.0, 9.0, {}]}},
        {"kind": "test", "test": "t2", "kind_of_test": "random", "examples": 4, "invalid": 0, "set_aside": 2,
         "rows": {"add": [4, 0.5, 0.25, {"twice": 1, "broadcast": 1}]}},
        {"kind": "finding", "test": "t2", "row": "neg", "check": "grad", "signature": ["zero"], "t": 5.0,
         "message": "m"},
        {"kind": "finding", "test": "t3", "row": "neg", "check": "grad", "signature": ["zero"], "t": 3.0,
         "message": "m (again, earlier)"},
        {"kind": "tick", "examples": 3},
    ]


def test_summarize_counts_rows_conditions_and_distinct_findings():
    s = report.summarize(_records(), ["add", "neg"], {"add": ["broadcast", "twice"], "neg": ["zero"]})
    rows = {r["op"]: r for r in s.rows}
    assert [r["op"] for r in s.rows] == ["add", "neg"]
    assert rows["add"] == {"op": "add", "examples": 7, "max_err_torch": 0.5, "max_err_fd": 0.25, "status": "pass",
                           "conditions": {"broadcast": 3, "twice": 1}, "fd_ran": True,
                           "max_err_torch_bound": False, "max_err_fd_bound": False}
    assert rows["neg"]["conditions"] == {"zero": 0}                  # only declared conditions count
    assert rows["neg"]["status"] == "fail"                           # a finding beats thin
    assert (s.examples, s.tests, s.invalid, s.set_aside) == (9, 2, 1, 2)
    assert len(s.findings) == 1 and s.findings[0]["t"] == 3.0 and s.first_failure_s == 3.0
    assert s.internal == []
    no_finding = [r for r in _records() if r["kind"] != "finding"]
    s = report.summarize(no_finding, ["add", "neg"], {"add": ["broadcast", "twice"], "neg": ["zero"]})
    assert {r["op"]: r["status"] for r in s.rows} == {"add": "pass", "neg": "thin"} and s.thin == ["neg"]
    s = report.summarize([], ["add"], {"add": ["broadcast"]})
    assert s.rows[0]["examples"] == 0 and s.rows[0]["fd_ran"] is False and s.rows[0]["max_err_fd"] == 0.0
    assert s.rows[0]["status"] == "thin" and s.first_failure_s is None


def test_verdict_orders_interruption_crash_findings_and_coverage():
    conds = {"add": ["broadcast", "twice"], "neg": ["zero"]}
    found = report.summarize(_records(), ["add", "neg"], conds)
    clean = report.summarize([r for r in _records() if r["kind"] != "finding"], ["add", "neg"], conds)
    internal = report.summarize(_records() + [{"kind": "internal", "test": "t", "message": "boom"}],
                                ["add", "neg"], conds)
    assert report.verdict(found, False, False, False)[0] == 1
    assert report.verdict(found, False, True, False)[0] == 2            # interrupted
    assert report.verdict(found, True, False, False)[0] == 2            # the run crashed: never 1
    assert report.verdict(internal, False, False, False)[0] == 2        # an internal error of the suite
    assert report.verdict(clean, False, False, False) == (0, "no failures")
    assert report.verdict(clean, False, False, True)[0] == 1             # --require-coverage: neg is thin
    full = report.summarize([r for r in _records() if r["kind"] != "finding"], ["add"], conds)
    assert report.verdict(full, False, False, True)[0] == 0


def test_document_has_the_contract_fields_and_without_timings_drops_only_timings():
    s = report.summarize(_records(), ["add", "neg"], {"add": ["broadcast", "twice"], "neg": ["zero"]})
    s.findings[0].update(reproducer="def test_x():\n    pass\n", conditions=["zero"], shrunk=True)
    run = {"seed": 3, "budget_s": 5, "workers": 2, "elapsed_s": 6.5, "profile": "ci", "shard": [1, 1],
           "interrupted": False}
    doc = report.document(s, run)
    assert {"seed", "budget_s", "workers", "elapsed_s", "ops", "failures"} <= set(doc)
    assert isinstance(doc["budget_s"], float) and doc["profile"] == "ci" and doc["interrupted"] is False
    for r in doc["ops"]:
        assert set(r) == {"op", "examples", "max_err_torch", "max_err_fd", "status", "conditions",
                          "max_err_torch_bound", "max_err_fd_bound"}
    [f] = doc["failures"]
    assert {"test", "op", "check", "message", "reproducer"} <= set(f)
    assert (f["op"], f["check"], f["test"], f["found_at_s"]) == ("neg", "grad", "t3", 3.0)
    assert doc["first_failure_s"] == 3.0 and doc["examples"] == 9
    bare = report.without_timings(doc)
    assert not {"elapsed_s", "budget_s", "first_failure_s"} & set(bare)
    assert "found_at_s" not in bare["failures"][0] and bare["failures"][0]["message"] == f["message"]
    assert bare["ops"] == doc["ops"] and bare["seed"] == 3
    later = dict(doc, elapsed_s=99.0, first_failure_s=50.0, failures=[dict(f, found_at_s=50.0)])
    assert report.without_timings(later) == bare
    other = dict(doc, ops=[dict(doc["ops"][0], examples=8)] + doc["ops"][1:])
    assert report.without_timings(other) != bare
