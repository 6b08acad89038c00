"""reference.selftest.run: the mutant self-test classifies gate runs correctly, renders its
kill table, and -- end to end, unfocused, as CI runs it -- a real mutant is killed while an
equivalent rewrite survives."""
from __future__ import annotations

import json

import pytest

from reference.registry import rows
from reference.selftest.catalogue import BY_NAME, MUTANTS
from reference.selftest.mutants import Mutant
from reference.selftest.run import (CI_SUBSET, Result, classify, gate_command, markdown, run_mutant, selection,
                                    stats)
from tests._gate import REPO, gate

GRAD = {"test": "test_ops.py::test_op[neg]", "op": "neg", "check": "grad", "message": "gradient of x0 differs",
        "reproducer": None, "found_at_s": 7.5}
FD = dict(GRAD, check="fd", found_at_s=3.25, test="test_programs.py::test_chain")


# ---------------------------------------------------------------------------- classify
def test_classify_killed_takes_the_earliest_failure():
    status, first, why = classify(1, {"failures": [GRAD, FD], "internal_errors": []})
    assert (status, why) == ("killed", "") and first is FD


def test_classify_survived():
    assert classify(0, {"failures": [], "internal_errors": []}) == ("survived", None, "")


@pytest.mark.parametrize("returncode, doc, why", [
    (None, None, "did not finish in time"),                                   # the runner's timeout
    (None, {"failures": [GRAD]}, "did not finish in time"),
    (0, None, "without a JSON report"),
    (1, None, "without a JSON report"),                                       # exit 1 and no report
    (2, None, "without a JSON report"),
    (-9, None, "without a JSON report"),                                      # killed by a signal
    (1, {"failures": []}, "exited 1 without reporting a finding"),
    (2, {"failures": [], "internal_errors": ["boom in test_ops"]}, "exited 2: boom in test_ops"),
    (2, {"failures": [GRAD], "internal_errors": [], "interrupted": True}, "exited 2"),   # a finding, but exit 2
    (0, {"failures": [GRAD]}, "exited 0"),                                    # inconsistent: not a kill
])
def test_classify_errors(returncode, doc, why):
    status, first, text = classify(returncode, doc)
    assert status == "error" and why in text, text
    assert first is (GRAD if doc and doc.get("failures") else None)


# ---------------------------------------------------------------------------- selection and CI subset
def test_selection():
    assert selection(None, False) == list(MUTANTS) == selection([], False)
    assert [m.name for m in selection(["neg_sign", "fanout_overwrite"], False)] == [
        m.name for m in MUTANTS if m.name in ("neg_sign", "fanout_overwrite")]      # catalogue order
    assert [m.name for m in selection([], True)] == [m.name for m in MUTANTS if m.name in CI_SUBSET]
    both = {m.name for m in selection(["neg_sign"], True)}
    assert both == set(CI_SUBSET) | {"neg_sign"}


def test_ci_subset_is_small_known_and_diverse():
    assert len(set(CI_SUBSET)) == len(CI_SUBSET) and 5 <= len(CI_SUBSET) <= 12
    assert set(CI_SUBSET) <= set(BY_NAME)
    chosen = [BY_NAME[n] for n in CI_SUBSET]
    assert {m.catches for m in chosen} >= {"grad", "invariant", "value"}
    assert len({m.row for m in chosen}) >= 6 and all(m.row in rows() for m in chosen)
    families = {m.row.split(":")[0] if ":" in m.row else "op" if m.row not in ("module", "engine") else m.row
                for m in chosen}
    assert families >= {"op", "loss", "optim", "module", "engine"}, families
    assert len({m.file for m in chosen}) >= 5


def test_gate_command_is_the_whole_gate_unfocused(tmp_path):
    cmd = gate_command(15, 3, 2, "ci", tmp_path / "r.json", tmp_path / "out")
    assert cmd[1:3] == ["-m", "reference"] and "--exitfirst" in cmd and "--only" not in cmd
    assert cmd[cmd.index("--budget") + 1] == "15.0" and cmd[cmd.index("--seed") + 1] == "3"
    assert cmd[cmd.index("-n") + 1] == "2" and cmd[cmd.index("--json") + 1] == str(tmp_path / "r.json")
    focused = gate_command(15, 3, 2, "ci", tmp_path / "r.json", tmp_path / "out", ["neg"])
    assert focused[-2:] == ["--only", "neg"]


# ---------------------------------------------------------------------------- the kill table
def _results():
    return [Result("neg_sign", True, 7.5, "test_coverage.py::test_coverage[neg]", "grad", "neg", "killed", "grad",
                   "neg", 12.0),
            Result("bce_grad_fused_sigmoid", False, None, None, None, None, "survived", "grad", "loss:BCELoss", 40.0),
            Result("fanout_overwrite", True, 19.5, "test_engine.py::test_fanout", "grad", "engine", "killed", "grad",
                   "engine", 25.0),
            Result("adam_eps_inside_sqrt", False, None, None, None, None, "error", "invariant", "optim:Adam", 200.0,
                   "the gate exited 2: boom")]


def test_stats():
    s = stats(_results())
    assert s == {"killed": 2, "total": 4, "median_first_failure_s": 13.5,
                 "worst_first_failure_s": 19.5}
    assert stats([])["median_first_failure_s"] is None
    assert stats(_results()[1:2]) == {"killed": 0, "total": 1, "median_first_failure_s": None,
                                      "worst_first_failure_s": None}


def test_markdown_kill_table_with_time_to_first_failure():
    md = markdown(_results(), seed=3, budget=20, elapsed=277, focused=False)
    assert md.startswith("## pygrad-check self-test: 2/4 mutants killed")
    assert "unfocused" in md and "seed 3" in md and "median 13.5 s" in md and "worst 19.5 s" in md
    header = next(line for line in md.splitlines() if line.startswith("| mutant"))
    assert "first failure (s)" in header
    rows_ = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows_) == 4
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows_]
    col = [c.strip() for c in header.strip("|").split("|")].index("first failure (s)")
    assert [c[col] for c in cells] == ["7.5", "-", "19.5", "-"]
    assert rows_[0].startswith("| `neg_sign` | `ops/arithmetic.py` |") and "| killed |" in rows_[0]
    assert "`grad` in `test_coverage.py::test_coverage[neg]`" in rows_[0]
    assert "**SURVIVED**" in rows_[1] and "w.r.t. pred" in rows_[1]      # the mutant's description
    assert "**ERROR**" in rows_[3] and "the gate exited 2: boom" in rows_[3]
    assert "focused" in markdown(_results(), 3, 20, 277, focused=True).splitlines()[2]


# ---------------------------------------------------------------------------- real runs
def test_selftest_command_kills_a_real_mutant_unfocused(tmp_path):
    """`--mutants neg_sign`: the whole gate (no --only) on a mutated copy finds it; the JSON
    carries the contract's per-mutant fields and the time to the first failure."""
    r = gate(["--mutants", "neg_sign", "--budget", "6", "--seed", "0", "-n", "1", "--json", "s.json",
              "--markdown", "s.md"], cwd=tmp_path)
    assert r.returncode == 0, r.output[-5000:]
    doc = json.loads((tmp_path / "s.json").read_text())
    [m] = doc["mutants"]
    assert {"name", "killed", "first_failure_s", "test", "check"} <= set(m)
    assert m["name"] == "neg_sign" and m["killed"] is True and m["status"] == "killed"
    assert m["first_failure_s"] is not None and 0 < m["first_failure_s"] < m["wall_s"]
    assert m["check"] == "grad" and m["row"] == "neg" and "neg" in m["test"]
    assert doc["killed"] == doc["total"] == 1 and doc["focused"] is False
    assert "1/1 mutants killed" in (tmp_path / "s.md").read_text()
    assert "every mutant killed" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.md"]


def test_an_equivalent_rewrite_survives_its_whole_budget(tmp_path):
    """A mutant that changes nothing a check can see is not killed: the gate runs its
    budget (and the coverage pass) and exits 0 -- the self-test does not invent kills."""
    same = Mutant("neg_rewritten", "pygrad/ops/arithmetic.py", "        a._add_grad(-g)\n",
                  "        a._add_grad(-1.0 * g)\n", "grad", "an equivalent rewrite: nothing to find", "neg")
    budget = 4
    result = run_mutant(same, budget=budget, seed=0, workers=1, root=REPO, log=tmp_path / "gate.log")
    assert result.status == "survived", (result, (tmp_path / "gate.log").read_text()[-3000:])
    assert not result.killed and result.first_failure_s is None and result.test is None and result.check is None
    assert result.wall_s >= budget
    assert "no failures" in (tmp_path / "gate.log").read_text()
