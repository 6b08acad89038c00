"""The layers of `benchmarks/` hold. `lint-imports` over every contract in pyproject.toml runs in
tests/test_reference_layers.py; here: the benchmarks' contracts can fail (an upward import
inside a function breaks them) and no module of `benchmarks/` is in an import cycle."""
import shutil

import grimp

from tests.test_reference_layers import ROOT, cycles, lint


def test_no_module_of_benchmarks_is_in_an_import_cycle():
    assert cycles(grimp.build_graph("benchmarks", cache_dir=None), "benchmarks") == []


def test_an_upward_import_inside_a_function_breaks_the_benchmarks_layers(tmp_path):
    for package in ("benchmarks", "pygrad", "reference"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "benchmarks" / "core.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _upward():\n    from benchmarks import cli\n    return cli\n")
    with open(tmp_path / "benchmarks" / "steps" / "pygrad_steps.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _torch():\n    import torch\n    return torch\n")
    proc = lint(tmp_path)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "benchmarks.core is not allowed to import benchmarks.cli" in proc.stdout, proc.stdout
    assert "benchmarks.steps.pygrad_steps is not allowed to import torch" in proc.stdout, proc.stdout
