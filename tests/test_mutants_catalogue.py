"""reference.mutants: the catalogue cannot go stale silently, and `apply` patches a copy only."""
import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from reference.mutants import (BY_NAME, CHECKS, COPIED, MUTANTS, ROOT, Mutant, StaleMutant, apply, env,
                               occurrences, patched_source)


def test_catalogue_is_large_unique_and_well_formed():
    assert len(MUTANTS) >= 20
    assert len(BY_NAME) == len(MUTANTS)
    for m in MUTANTS:
        assert m.catches in CHECKS, m.name
        assert m.file.startswith("pygrad/") and (ROOT / m.file).is_file(), m.name
        assert m.description and m.original != m.replacement, m.name


def test_catalogue_covers_every_family_of_bug():
    files = {m.file for m in MUTANTS}
    for f in ("pygrad/ops/_core.py", "pygrad/ops/arithmetic.py", "pygrad/ops/linalg.py", "pygrad/ops/nn.py",
              "pygrad/ops/reduction.py", "pygrad/ops/shape.py", "pygrad/ops/elementwise.py",
              "pygrad/tensor.py", "pygrad/module.py", "pygrad/optims.py", "pygrad/basics.py"):
        assert f in files, f"no mutant in {f}"
    assert {"grad", "invariant", "structure"} <= {m.catches for m in MUTANTS}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_snippet_occurs_exactly_once(name):
    assert occurrences(BY_NAME[name]) == 1, f"mutant {name} is stale: update its snippet"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_apply_patches_a_copy_that_imports(name, tmp_path):
    m = BY_NAME[name]
    path = apply(m, ROOT, dest=tmp_path / "copy")
    patched, pristine = path / m.file, ROOT / m.file
    assert patched.read_text() != pristine.read_text()
    assert patched.read_text() == pristine.read_text().replace(m.original, m.replacement)
    # only the one file differs
    for other in (ROOT / "pygrad").rglob("*.py"):
        rel = other.relative_to(ROOT)
        if str(rel) != m.file:
            assert filecmp.cmp(other, path / rel, shallow=False), rel
    # python run from the copy imports the mutated pygrad, not the installed one
    out = subprocess.run([sys.executable, "-c", "import pygrad; print(pygrad.__file__)"],
                         cwd=path, env=env(path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (path / "pygrad" / "__init__.py").resolve()


def test_apply_copies_the_project_and_nothing_else(tmp_path):
    path = apply(MUTANTS[0], ROOT, dest=tmp_path / "copy")
    present = {p.name for p in path.iterdir()}
    assert present == {n for n in COPIED if (ROOT / n).exists()}
    assert not list(path.rglob("__pycache__")) and not (path / ".git").exists()


def test_stale_or_ambiguous_snippets_fail_loudly(tmp_path):
    missing = Mutant("gone", "pygrad/tensor.py", "this text is not in pygrad\n", "x\n", "grad", "stale")
    with pytest.raises(StaleMutant, match="does not occur"):
        apply(missing, ROOT, dest=tmp_path / "a")
    assert not (tmp_path / "a").exists()
    twice = Mutant("twice", "pygrad/ops/reduction.py", "    count = math.prod(xv.shape[a] for a in axes)\n",
                   "    count = 1\n", "grad", "ambiguous")
    with pytest.raises(StaleMutant, match="occurs 2 times"):
        apply(twice, ROOT, dest=tmp_path / "b")
    with pytest.raises(SyntaxError):
        patched_source(Mutant("broken", "f.py", "a = 1\n", "a = (\n", "grad", "bad"), "a = 1\n")


def test_mutant_rejects_an_unknown_check_kind():
    with pytest.raises(ValueError, match="catches"):
        Mutant("m", "pygrad/tensor.py", "a", "b", "vibes", "")
