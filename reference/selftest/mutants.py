"""Mutants: deliberately wrong gradient rules (and Module, optimizer and engine bugs), the
types of both kinds and how one is applied to a copy of the project.

The reference suite must prove it can fail. A `Mutant` (the hand-written catalogue,
`catalogue.py`) is a source patch of the current pygrad: an exact snippet `original` of `file` (it must occur there exactly once) and its
`replacement`. Every mutant is a bug someone could plausibly write, and each leaves forward
values unchanged where the real bug would, so only a gradient, structure or invariant check
can see it -- often only under a condition (a broadcast operand, a tuple axis, a non-last
softmax axis, outC > 1, repeated indices, an exact zero, a second backward pass, a later
optimizer step, a Module call). `catches` names the check kind of the gate's report expected
to catch it: `grad`, `fd`, `invariant`, `structure`, `value` or -- for a bug that makes pygrad
raise where it must not -- `error`.

`apply(mutant, root)` copies the project into a fresh directory and patches the one file
there. Run the gate from that directory (`python -m` puts the current directory first on
`sys.path`, ahead of the editable install, so the mutated pygrad is the one imported):

    path = apply(mutant, root)
    subprocess.run([sys.executable, "-m", "reference", ...], cwd=path, env=env(path))

A `GeneratedMutant` (`generate.py`) is one mechanical change at a position of pygrad's
current source: the span `line:col`-`end_line:end_col` holding `original` becomes
`replacement`. Both kinds patch text through `patched(text)`, which `apply` calls.

A mutant whose snippet no longer occurs exactly once raises `StaleMutant`: after a refactor of
pygrad the catalogue must be updated, never silently skipped (a mutant that patches nothing
would "survive" and look like a hole in the gate, or worse, be dropped from the count).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHECKS = ("grad", "fd", "invariant", "structure", "value", "error")

# What `apply` copies: everything the gate and the unit tests need, nothing else.
COPIED = ("pygrad", "reference", "conftest.py", "pyproject.toml")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "*.egg-info",
                                  "reference-failures")

ROOT = Path(__file__).resolve().parent.parent.parent


class StaleMutant(ValueError):
    """The mutant's snippet does not occur exactly once in its file."""


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str            # relative to the project root
    original: str        # exact snippet of the current source, occurring exactly once
    replacement: str
    catches: str         # the check kind expected to catch it (CHECKS)
    description: str     # what breaks, and under which condition it shows
    row: str = ""        # the report row its finding should be blamed on (--focused runs --only it)

    def __post_init__(self):
        if self.catches not in CHECKS:
            raise ValueError(f"mutant {self.name}: catches must be one of {CHECKS}, got {self.catches!r}")
        if self.original == self.replacement:
            raise ValueError(f"mutant {self.name}: the replacement equals the original")

    def patched(self, text: str) -> str:
        return patched_source(self, text)


@dataclass(frozen=True)
class GeneratedMutant:
    """One mechanical change of pygrad's source (see `generate`): the text `original` at
    line:col..end_line:end_col (1-based lines, 0-based character columns) of `file` becomes
    `replacement`. `name` is a stable id: it depends on the function, the operator and the
    text changed, not on line numbers."""
    name: str
    file: str            # relative to the project root
    function: str        # qualified name of the enclosing function, e.g. "sub.backward"
    operator: str        # the operator kind (generate.OPERATORS)
    line: int
    col: int
    end_line: int
    end_col: int
    statement_line: int  # the lines of the statement (of a compound one: its header) that holds the
    statement_end: int   # change: one of them runs whenever the change can
    original: str
    replacement: str
    row: str = ""        # filled by classification: the report rows whose code runs it (--focused)
    catches: str = ""    # unknown in advance

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def description(self) -> str:
        return f"{self.operator} in {self.function}: {self.original} -> {self.replacement}"

    def patched(self, text: str) -> str:
        """`text` with the span replaced; StaleMutant unless the span holds `original`."""
        lines = text.splitlines(keepends=True)
        start = sum(len(t) for t in lines[:self.line - 1]) + self.col
        end = sum(len(t) for t in lines[:self.end_line - 1]) + self.end_col
        if text[start:end] != self.original:
            raise StaleMutant(f"generated mutant {self.name}: {self.location} no longer holds "
                              f"{self.original!r}; generate the mutants again from the current source")
        new = text[:start] + self.replacement + text[end:]
        compile(new, self.file, "exec")
        return new


# ---------------------------------------------------------------------------- applying
def occurrences(mutant: Mutant, root: Path | str = ROOT) -> int:
    """How many times the mutant's snippet occurs in its file under `root`."""
    return (Path(root) / mutant.file).read_text().count(mutant.original)


def patched_source(mutant, text: str) -> str:
    """`text` with the mutant's change; for a catalogue Mutant: the snippet replaced, StaleMutant unless it occurs exactly once, and
    SyntaxError if the result does not compile."""
    if not isinstance(mutant, Mutant):
        return mutant.patched(text)
    n = text.count(mutant.original)
    if n != 1:
        where = "does not occur" if n == 0 else f"occurs {n} times"
        raise StaleMutant(f"mutant {mutant.name}: its snippet {where} in {mutant.file} (it must occur "
                          f"exactly once); update the catalogue to the current source.\n"
                          f"snippet:\n{mutant.original}")
    new = text.replace(mutant.original, mutant.replacement)
    compile(new, mutant.file, "exec")
    return new


def apply(mutant, root: Path | str = ROOT, dest: Path | str | None = None, extra: tuple = ()) -> Path:
    """Copy the project at `root` (COPIED: pygrad/, reference/, conftest.py, pyproject.toml;
    no .git, no caches) into `dest` (default: a fresh temporary directory)
    and patch `mutant.file` there (either kind of mutant). `extra` names more top-level
    entries to copy (the unit-test probe copies `tests`). Returns the copy's path; the caller
    removes it (or uses `applied`). Raises StaleMutant before copying anything if the snippet
    is stale."""
    root = Path(root)
    new = patched_source(mutant, (root / mutant.file).read_text())
    if dest is None:
        out = Path(tempfile.mkdtemp(prefix=f"pygrad-mutant-{mutant.name}-"))
    else:
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
    for name in COPIED + tuple(extra):
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=_IGNORED, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, out / name)
    (out / mutant.file).write_text(new)
    return out


@contextmanager
def applied(mutant, root: Path | str = ROOT, extra: tuple = ()):
    """`apply` as a context manager: yields the mutated copy, removes it afterwards."""
    path = apply(mutant, root, extra=extra)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def env(path: Path | str) -> dict:
    """The environment for a subprocess run in the mutated copy at `path`: its directory
    first on PYTHONPATH, and no bytecode written into it."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(path)] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    return e
