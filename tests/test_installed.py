"""The gate installed, not only cloned: a wheel of the project in a fresh virtualenv runs
`pygrad-check` from an unrelated empty directory, with the suite and its pytest
configuration shipped inside the package.

Nothing is downloaded: the wheel is built without build isolation (setuptools of this
environment), and the virtualenv sees this environment's packages (torch, hypothesis,
pytest, rich) through --system-site-packages; pip itself comes from there too.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests._gate import REPO, gate, user_env

# What a wheel is built from (the checkout's other files -- tests, fuzz, .git -- are not needed).
SOURCES = ("pygrad", "reference", "pyproject.toml", "README.md")


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _venv_env(tmp: Path) -> dict:
    """A user's shell: no PYTHONPATH pointing at the checkout, no pytest variables."""
    env = user_env()
    env.pop("PYTHONPATH")
    env["TMPDIR"] = str(tmp)
    return env


@pytest.fixture
def installed(tmp_path):
    """(venv directory, its python) with a wheel of this checkout installed."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:      # build from a copy: the build writes build/ and *.egg-info next to the sources
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist], cwd=src)
    [wheel] = dist.glob("pygrad-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "reference/suite/gate.ini" in names and "reference/suite/test_coverage.py" in names, \
        "the wheel does not ship the gate's suite and its pytest configuration"
    assert not any(n.startswith(("tests/", "fuzz/")) for n in names)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    python = venv / "bin" / "python"
    # pip of this environment (seen through --system-site-packages), run by the venv's python,
    # installs into the venv
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], env=_venv_env(tmp_path))
    shutil.rmtree(src)        # nothing may depend on the build's sources
    return venv, python


def test_installed_pygrad_check_runs_from_an_empty_directory(installed, tmp_path):
    venv, python = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _venv_env(tmp_path)
    where = _run([python, "-c", "import json, reference, pygrad, reference.suite, sys; print(json.dumps("
                  "[reference.__file__, pygrad.__file__, reference.suite.__file__, sys.prefix]))"],
                 cwd=elsewhere, env=env)
    files = [Path(p).resolve() for p in json.loads(where.stdout)]
    site = (venv / "lib").resolve()
    for f in files[:3]:
        assert site in f.parents and "site-packages" in f.parts, f"{f} is not the venv's installed copy"
        assert REPO not in f.parents
    assert files[3] == venv.resolve()

    script = venv / "bin" / "pygrad-check"
    assert script.is_file(), "the wheel installs no pygrad-check console script"
    r = gate(["--budget", "3", "-n", "1", "--seed", "0", "--example-timeout", "30", "--json", "r.json"],
             cwd=elsewhere, env=env,
             command=[str(script)])
    assert r.returncode == 0, r.output[-5000:]
    doc = json.loads((elsewhere / "r.json").read_text())
    assert doc["exit_status"] == 0 and doc["failures"] == [] and doc["internal_errors"] == []
    assert doc["examples"] > 0 and all(row["examples"] > 0 for row in doc["ops"])
    assert sorted(p.name for p in elsewhere.iterdir()) == ["r.json"], "the gate left files in the user's directory"

    # `python -m reference` of the venv is the same command
    r = gate(["--list"], cwd=elsewhere, env=env, command=[str(python), "-m", "reference"], timeout=120)
    assert r.returncode == 0 and "conv2D" in r.output, r.output[-3000:]
