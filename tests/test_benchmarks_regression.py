"""The regression check's logic (`python -m benchmarks compare`): which ref it compares
against, how it exports a ref, how it decides "slower beyond the noise", and that the command
runs end to end. No timing is asserted: the verdicts are checked on made-up samples."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import regression
from benchmarks.regression import cases, default_base, export, sign_test_p, slower_names, verdict

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- deciding
def test_sign_test_counts_the_tail_of_fair_coin_flips():
    assert sign_test_p(0, 5) == 1.0
    assert sign_test_p(5, 5) == 1 / 32
    assert sign_test_p(13, 15) == pytest.approx((105 + 15 + 1) / 2 ** 15)
    assert sign_test_p(12, 15) > 0.01 > sign_test_p(13, 15)


def test_consistently_slower_by_more_than_the_factor_is_named():
    base = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 1.02, 0.98, 1.0, 1.0, 1.01, 0.99, 1.0]
    new = [1.5 * b for b in base]
    got = verdict(new, base)
    assert got["verdict"] == "slower" and got["ratio"] == pytest.approx(1.5)
    assert got["slower_rounds"] == got["rounds"] == 15
    assert verdict(base, new)["verdict"] == "faster"


def test_a_burst_of_noise_is_not_a_regression():
    base = [1.0] * 15
    new = [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9]
    got = verdict(new, base)          # median 3x, but slower in only 8 rounds of 15
    assert got["ratio"] == 3.0 and got["slower_rounds"] == 8
    assert got["verdict"] == "same"


def test_a_small_consistent_change_is_below_the_factor():
    base = [1.0] * 15
    got = verdict([1.04] * 15, base)  # every round slower, but by 4% < 10%
    assert got["p_slower"] < regression.ALPHA and got["verdict"] == "same"
    assert verdict([1.04] * 15, base, factor=1.03)["verdict"] == "slower"


def test_one_round_never_decides():
    assert verdict([10.0], [1.0])["verdict"] == "same"


def test_slower_names_lists_only_slower_cases():
    results = {"a": {"verdict": "same"}, "b": {"verdict": "slower"}, "c": {"verdict": "faster"},
               "d": {"verdict": "not available", "reason": "x"}, "e": {"verdict": "slower"}}
    assert slower_names(results) == ["b", "e"]


def test_cases_cover_every_contest_and_every_conv_size():
    from benchmarks import data
    from benchmarks.catalogue import CONTESTS

    found = cases()
    assert [name for name in found if ":" not in name] == list(CONTESTS)
    conv = {name for name, (workload, _) in found.items() if workload == "conv2d"}
    assert len(conv) == len(data.CONV_SIZES)      # the benchmark's size is the plain "conv2d"


# ----------------------------------------------------------------- which ref
def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=repo,
                   check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path):
    """A repository with pygrad/ changed in commits 1 and 3 and docs changed in commit 2."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "pygrad").mkdir()
    commits = []
    for k, (path, text) in enumerate([("pygrad/a.py", "v1"), ("docs.md", "d"), ("pygrad/a.py", "v2")]):
        (tmp_path / path).write_text(text)
        _git(tmp_path, "add", "-A")
        _git(tmp_path, "commit", "-qm", f"c{k}")
        commits.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                                      text=True, check=True).stdout.strip())
    return tmp_path, commits


def test_clean_tree_compares_against_the_pygrad_before_its_last_change(repo):
    path, (c1, c2, c3) = repo
    base, why = default_base(path)
    assert base == c2 and "parent" in why     # c3 changed pygrad; its parent has the old pygrad


def test_uncommitted_changes_compare_against_the_last_commit_that_changed_pygrad(repo):
    path, (c1, c2, c3) = repo
    (path / "docs.md").write_text("changed, not pygrad")
    _git(path, "commit", "-qam", "c4 docs only")
    assert default_base(path)[0] == c2      # clean: the pygrad before c3, the last change to it
    (path / "pygrad" / "a.py").write_text("v3, not committed")
    base, why = default_base(path)
    assert base == c3 and "working tree" in why


def test_export_writes_the_package_as_it_was_at_the_ref(repo, tmp_path_factory):
    path, (c1, c2, c3) = repo
    dest = export(c1, tmp_path_factory.mktemp("old"), repo=path)
    assert (dest / "pygrad" / "a.py").read_text() == "v1"
    assert not (dest / "docs.md").exists()
    with pytest.raises(ValueError, match="no-such-ref"):
        export("no-such-ref", tmp_path_factory.mktemp("bad"), repo=path)


# ----------------------------------------------------------------- the command
def test_compare_runs_end_to_end_and_writes_its_json(tmp_path):
    out, md = tmp_path / "compare.json", tmp_path / "compare.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "compare", "HEAD", "--quick",
                           "--only", "softmax", "conv2d:channels", "--json", str(out), "--markdown", str(md)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"softmax", "conv2d:channels"}
    for name, result in report["results"].items():
        assert result["verdict"] == "same", name          # one round never decides
        assert result["same_result"], name                # both versions computed the same numbers
        base_path, new_path = result["pygrad"]["base"], result["pygrad"]["new"]
        assert base_path != new_path and "pygrad-compare-" in base_path
        assert Path(new_path).resolve().is_relative_to(ROOT)
    assert "nothing got slower beyond the noise" in done.stdout
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 and "| softmax |" in md.read_text()


def test_compare_refuses_an_unknown_ref():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "compare", "no-such-ref-xyz", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no-such-ref-xyz" in done.stdout


def test_compare_can_judge_by_cpu_time(tmp_path):
    out = tmp_path / "compare.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "compare", "HEAD", "--quick", "--threads", "1",
                           "--cpu-time", "--only", "softmax", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    result = report["results"]["softmax"]
    assert report["measured"] == result["measured"] == "CPU time"
    assert result["new_s"] == result["timing"]["new"]["cpu_s"][0] > 0
