"""The import contracts in pyproject.toml ([tool.importlinter]) hold: `lint-imports` passes.

import-linter builds the import graph with grimp, which counts every import statement,
including those inside functions, so a layer that reaches up lazily still breaks its contract."""
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _lint_imports() -> list[str]:
    found = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert found, "lint-imports is not installed: it comes with the test extra (pip install -e '.[test]')"
    return [found]


def test_lint_imports_keeps_every_contract():
    done = subprocess.run([*_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " broken" in done.stdout and "0 broken" in done.stdout


def test_a_function_level_import_upward_breaks_the_benchmarks_layers(tmp_path):
    """The contract can fail: a copy of the package whose lowest layer imports the CLI inside a
    function is reported broken."""
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks")
    shutil.copytree(ROOT / "pygrad", tmp_path / "pygrad")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "benchmarks" / "core.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _upward():\n    from benchmarks import cli\n    return cli\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([*_lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode != 0
    assert "benchmarks.core -> benchmarks.cli" in done.stdout
