"""reference.selftest: the mutant self-test classifies gate runs correctly, end to end on one
real mutant (killed) and one equivalent rewrite (survived), with a small budget."""
import subprocess
import sys
from pathlib import Path

import pytest

from reference.invariants import ROWS
from reference.mutants import BY_NAME, Mutant
from reference.registry import OPS
from reference.selftest import CI_SUBSET, FOCUS, Result, classify, markdown, run_mutant, selection

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("returncode, doc, status", [
    (1, {"failures": [{"check": "grad", "message": "gradient of x0 differs\nmore"}]}, "killed"),
    (0, {"failures": []}, "survived"),
    (1, {"failures": []}, "error"),          # exit 1 must come with a failure
    (2, {"failures": []}, "error"),          # the gate crashed
    (0, None, "error"),                      # no report
    (None, None, "error"),                   # timed out
    (2, {"failures": [{"check": "error", "message": "internal error of the reference suite"}]}, "error"),
])
def test_classify(returncode, doc, status):
    got, checks, first = classify(returncode, doc)
    assert got == status
    if status == "killed":
        assert checks == ["grad"] and first == "gradient of x0 differs"


def test_every_mutant_has_a_focus_of_known_rows():
    assert set(FOCUS) == set(BY_NAME)
    for name, only in FOCUS.items():
        assert only and set(only) <= set(OPS) | set(ROWS), name


def test_ci_subset_is_small_known_and_diverse():
    assert 4 <= len(CI_SUBSET) <= 8 and set(CI_SUBSET) <= set(BY_NAME)
    assert {BY_NAME[n].catches for n in CI_SUBSET} >= {"grad", "invariant"}
    assert {m.name for m in selection([], ci_subset=True)} == set(CI_SUBSET)
    assert len(selection(None, ci_subset=False)) == len(BY_NAME)


@pytest.mark.parametrize("args", [["--mutants", "no_such_mutant"], ["--ci-subset"]])
def test_bad_selftest_arguments_exit_2(args):
    r = subprocess.run([sys.executable, "-m", "reference", *args, "--budget", "5"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout


def test_a_real_mutant_is_killed_and_an_equivalent_rewrite_survives():
    killed = run_mutant(BY_NAME["neg_sign"], budget=8, seed=0, workers=1, only=("neg",))
    assert killed.status == "killed" and "grad" in killed.checks, killed
    same = Mutant("neg_rewritten", "pygrad/ops/arithmetic.py", "        a._add_grad(-g)\n",
                  "        a._add_grad(-1.0 * g)\n", "grad", "an equivalent rewrite: nothing to find")
    survived = run_mutant(same, budget=8, seed=0, workers=1, only=("neg",))
    assert survived.status == "survived" and survived.checks == [], survived


def test_kill_table_as_markdown():
    results = [Result("neg_sign", "grad", "killed", ["grad"], "gradient of x0 differs", 3.0, 40),
               Result("bce_grad_fused_sigmoid", "grad", "survived", [], "", 20.0, 300)]
    md = markdown(results, seed=3, budget=20, elapsed=23)
    assert md.startswith("## pygrad-check self-test: 1/2 mutants killed")
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    assert rows[0].startswith("| `neg_sign` | `ops/arithmetic.py` |") and "| killed |" in rows[0]
    assert "| **SURVIVED** |" in rows[1] and "w.r.t. pred" in rows[1]
