"""The gate installed, not only cloned: a wheel of the project in a fresh virtualenv runs
`pygrad-check` from an unrelated empty directory, with the suite and its pytest
configuration shipped inside the package.

Nothing is downloaded: the wheel is built without build isolation (setuptools of this
environment) and installed by this environment's pip (`pip --python`) into a virtualenv without
pip. Only then does the virtualenv get this environment's packages (torch, hypothesis, pytest,
rich): a `.pth` file of plain paths to this environment's site directories. That works whether
this environment is a virtualenv or a plain interpreter (`--system-site-packages` would expose
the *base* interpreter's packages, not a virtualenv's), and it does not run the .pth files in
those directories -- an editable install's finder among them -- so the pygrad the virtualenv
imports is the wheel's, which the test checks.
"""
from __future__ import annotations

import json
import shutil
import site
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


def _parent_site_dirs() -> list:
    """Where this environment's installed packages live: its site directories (the base
    interpreter's too when it is a virtualenv with system site packages) and the user site,
    never the checkout."""
    dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [d for d in dict.fromkeys(dirs)
            if Path(d).is_dir() and REPO != Path(d).resolve() and REPO not in Path(d).resolve().parents]


def _site_dirs(python: Path) -> list:
    out = _run([python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"])
    return json.loads(out.stdout)


@pytest.fixture
def installed(tmp_path):
    """(venv directory, its python, the wheel) with a wheel of this checkout installed."""
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
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # this environment's pip installs into the venv's python, before the venv sees any other
    # pygrad (a dist-info of an editable install here would read as "already satisfied")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         env=_venv_env(tmp_path))
    [venv_site] = _site_dirs(python)
    (Path(venv_site) / "_parent_environment.pth").write_text("".join(f"{d}\n" for d in _parent_site_dirs()))
    shutil.rmtree(src)        # nothing may depend on the build's sources
    return venv, python, wheel


# What the venv's python imports: the modules' files, its prefix, the pygrad distribution's
# site directory and where pip installed it from (direct_url.json), and the modules of the
# import finders in use (an editable install's finder is `__editable___<name>_finder`).
WHERE = """
import importlib.metadata as md, json, sys
import pygrad, reference, reference.suite
dist = md.distribution("pygrad")
print(json.dumps({"files": [reference.__file__, pygrad.__file__, reference.suite.__file__], "prefix": sys.prefix,
                  "dist": str(dist.locate_file("")), "url": json.loads(dist.read_text("direct_url.json"))["url"],
                  "finders": [getattr(f, "__module__", "") for f in sys.meta_path]}))
"""


def test_installed_pygrad_check_runs_from_an_empty_directory(installed, tmp_path):
    venv, python, wheel = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _venv_env(tmp_path)
    where = _run([python, "-c", WHERE], cwd=elsewhere, env=env)
    found = json.loads(where.stdout)
    venv_lib = (venv / "lib").resolve()
    for f in map(Path, found["files"]):
        f = f.resolve()
        assert venv_lib in f.parents and "site-packages" in f.parts, f"{f} is not the venv's installed copy"
        assert REPO not in f.parents
    assert Path(found["prefix"]).resolve() == venv.resolve()
    # the wheel, not an editable install of this checkout seen through the parent's site directories
    assert venv_lib in Path(found["dist"]).resolve().parents and found["url"].endswith(wheel.name), found
    assert not any("editable" in finder for finder in found["finders"]), found["finders"]

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
