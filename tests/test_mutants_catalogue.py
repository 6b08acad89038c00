"""reference.selftest's mutant catalogue: large, well-formed, current with pygrad's source,
covering every module family and every class of bug the gate must catch; `apply` patches
one file of a copy that imports the mutated pygrad first."""
from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reference.registry import rows
from reference.selftest import catalogue
from reference.selftest.catalogue import BY_NAME, MUTANTS
from reference.selftest.mutants import (CHECKS, COPIED, Mutant, StaleMutant, applied, apply, env, occurrences,
                                        patched_source)
from tests._gate import CHECK_KINDS, REPO

PYGRAD_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "pygrad").rglob("*.py"))


def test_catalogue_is_large_unique_and_well_formed():
    assert len(MUTANTS) >= 45
    assert len({m.name for m in MUTANTS}) == len(MUTANTS) == len(BY_NAME)
    assert catalogue.MUTANTS is MUTANTS
    assert set(CHECKS) <= CHECK_KINDS                      # kinds of the report's findings
    known_rows = set(rows())
    for m in MUTANTS:
        assert m.name.isidentifier(), m.name
        assert m.catches in CHECKS, m.name
        assert m.row in known_rows, f"{m.name}: {m.row!r} is not a row of the report"
        assert m.file in PYGRAD_FILES, f"{m.name}: {m.file} is not a pygrad source file"
        assert len(m.description.split()) >= 6, m.name
        assert m.original and m.original != m.replacement, m.name
    assert len({(m.file, m.original, m.replacement) for m in MUTANTS}) == len(MUTANTS), "two mutants are one patch"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_snippet_occurs_exactly_once_and_the_patch_compiles(name):
    m = BY_NAME[name]
    assert occurrences(m, REPO) == 1, f"mutant {name} is stale: update its snippet to the current {m.file}"
    text = (REPO / m.file).read_text()
    patched = patched_source(m, text)
    assert patched != text and patched.count(m.replacement) >= 1
    compile(patched, m.file, "exec")


def test_every_module_family_and_row_family_has_mutants():
    files = {m.file for m in MUTANTS}
    for f in ("pygrad/ops/_core.py", "pygrad/ops/arithmetic.py", "pygrad/ops/linalg.py", "pygrad/ops/nn.py",
              "pygrad/ops/reduction.py", "pygrad/ops/shape.py", "pygrad/ops/elementwise.py", "pygrad/tensor.py",
              "pygrad/module.py", "pygrad/optims.py", "pygrad/basics.py", "pygrad/losses.py"):
        assert f in files, f"no mutant in {f}"
    mutated_rows = {m.row for m in MUTANTS}
    assert {"module", "engine"} <= mutated_rows
    for prefix, at_least in (("optim:", 4), ("layer:", 4), ("loss:", 2)):
        assert len({r for r in mutated_rows if r.startswith(prefix)}) >= at_least, prefix
    assert len({r for r in mutated_rows if ":" not in r and r not in ("module", "engine")}) >= 15
    assert {m.catches for m in MUTANTS} >= {"grad", "invariant", "structure", "value"}


def _says(*words):
    return lambda m: all(w.lower() in " ".join(m.description.split()).lower() for w in words)


# each class of bug the gate must catch even where forward values are right (DESIGN.md), and
# that the unfocused gate once missed: at least one mutant of its row whose description says so
BUG_CLASSES = {
    "optimizer state that shows from the third step": ("optim:", _says("third step")),
    "several parameters": ("optim:", _says("two or more parameters")),
    "a 1-element operand": ("", _says("1-element")),
    "tuple axes": ("mean", _says("tuple")),
    "an intermediate shared by several consumers": ("engine", _says("shared intermediate")),
    "CCELoss's mask": ("loss:CCELoss", _says("mask=True")),
    "BCELoss at predictions of exactly 0 or 1": ("loss:BCELoss", _says("exactly 0 or 1")),
    "mixed dtypes": ("", _says("different float dtypes")),
    "a non-last softmax axis": ("softmax", _says("axis")),
    "outC > 1": ("conv2D", _says("outC > 1")),
    "repeated advanced indices": ("getitem", _says("repeat")),
    "an exact kink": ("relu", _says("exact zeros")),
    "reset_grad": ("engine", _says("backward(reset_grad")),
    "a Module leaking into its weights": ("module", _says("original weights")),
    "a weight resized by a batch": ("layer:Linear", _says("batch")),
    "fan-out not accumulated": ("engine", _says("used twice")),
    "a transposed matmul rule": ("matmul", _says("transposed")),
}


@pytest.mark.parametrize("bug", list(BUG_CLASSES))
def test_catalogue_has_each_class_of_bug(bug):
    row, says = BUG_CLASSES[bug]
    found = [m.name for m in MUTANTS if m.row.startswith(row) and says(m)]
    assert found, f"no mutant for {bug}"


def test_layers_have_their_own_mutants():
    layers = [m for m in MUTANTS if m.row.startswith("layer:")]
    assert len(layers) >= 5 and all(m.file == "pygrad/basics.py" for m in layers)


# ---------------------------------------------------------------------------- apply
@pytest.mark.parametrize("name", list(BY_NAME))
def test_apply_patches_only_its_file_in_a_copy(name, tmp_path):
    m = BY_NAME[name]
    before = (REPO / m.file).read_text()
    path = apply(m, REPO, dest=tmp_path / "copy")
    assert (REPO / m.file).read_text() == before, "apply touched the original"
    assert (path / m.file).read_text() == before.replace(m.original, m.replacement)
    for rel in PYGRAD_FILES:
        if rel != m.file:
            assert filecmp.cmp(REPO / rel, path / rel, shallow=False), rel
    assert (path / "reference" / "gate" / "cli.py").read_bytes() == (REPO / "reference/gate/cli.py").read_bytes()


def test_apply_copies_the_project_and_nothing_else(tmp_path):
    path = apply(MUTANTS[0], REPO, dest=tmp_path / "copy")
    assert {p.name for p in path.iterdir()} == {n for n in COPIED if (REPO / n).exists()}
    assert {"pygrad", "reference"} <= set(COPIED)
    assert not list(path.rglob("__pycache__")) and not list(path.rglob("*.pyc")) and not (path / ".git").exists()
    assert not (path / "tests").exists() and not (path / "fuzz").exists()


def test_applied_removes_its_copy():
    with applied(BY_NAME["neg_sign"], REPO) as path:
        assert (path / "pygrad" / "ops" / "arithmetic.py").is_file()
    assert not path.exists()


# one mutant per pygrad file: the copy's interpreter imports the mutated module, not this
# checkout's or an installed one
ONE_PER_FILE = list({m.file: m.name for m in MUTANTS}.values())


@pytest.mark.parametrize("name", ONE_PER_FILE)
def test_the_copy_imports_the_mutated_pygrad_first(name, tmp_path):
    m = BY_NAME[name]
    path = apply(m, REPO, dest=tmp_path / "copy")
    module = m.file.removesuffix(".py").replace("/", ".")
    probe = ("import importlib, json, pygrad, reference; mod = importlib.import_module(%r); "
             "print(json.dumps([pygrad.__file__, reference.__file__, mod.__file__]))" % module)
    environment = env(path)
    environment["PYTHONPATH"] += ":" + str(REPO)    # this checkout on the path too: the copy must come first
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=environment, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    files = [Path(p).resolve() for p in json.loads(out.stdout)]
    assert files[0] == (path / "pygrad" / "__init__.py").resolve()
    assert files[1] == (path / "reference" / "__init__.py").resolve()
    assert files[2] == (path / m.file).resolve()
    assert m.replacement in files[2].read_text()
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"


# ---------------------------------------------------------------------------- stale snippets
def test_a_stale_snippet_raises_before_anything_is_copied(tmp_path):
    gone = Mutant("gone", "pygrad/tensor.py", "this text is not in pygrad\n", "x = 1\n", "grad", "stale", "engine")
    with pytest.raises(StaleMutant, match="does not occur"):
        apply(gone, REPO, dest=tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_an_ambiguous_snippet_raises(tmp_path):
    text = (REPO / "pygrad/ops/elementwise.py").read_text()
    snippet = "    def backward(g):\n"
    n = text.count(snippet)
    assert n >= 2
    twice = Mutant("twice", "pygrad/ops/elementwise.py", snippet, "    def backward(h):\n", "grad", "ambiguous", "relu")
    with pytest.raises(StaleMutant, match=f"occurs {n} times"):
        apply(twice, REPO, dest=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_patch_that_does_not_compile_raises():
    with pytest.raises(SyntaxError):
        patched_source(Mutant("broken", "f.py", "a = 1\n", "a = (\n", "grad", "bad"), "a = 1\n")


def test_a_mutant_must_name_a_check_kind_and_change_something():
    with pytest.raises(ValueError, match="catches"):
        Mutant("m", "pygrad/tensor.py", "a", "b", "vibes", "")
    with pytest.raises(ValueError, match="equals"):
        Mutant("m", "pygrad/tensor.py", "a", "a", "grad", "")


@pytest.mark.parametrize("module", ["reference.selftest.catalogue", "reference.selftest.mutants",
                                    "reference.selftest.run"])
def test_each_selftest_module_imports_on_its_own(module, tmp_path):
    """In a fresh interpreter, whichever module comes first."""
    out = subprocess.run([sys.executable, "-c", f"import {module}, reference.selftest.catalogue as c; "
                          "print(len(c.MUTANTS))"], cwd=tmp_path, env=env(REPO), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) == len(MUTANTS)
