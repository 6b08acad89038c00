"""Mutants: deliberately wrong gradient rules (and Module, optimizer and engine bugs).

The reference suite must prove it can fail. Each `Mutant` is a source patch of the current
pygrad: an exact snippet `original` of `file` (it must occur there exactly once) and its
`replacement`. Every mutant is a bug someone could plausibly write, and each leaves forward
values unchanged where the real bug would, so only a gradient, structure or invariant check
can see it -- often only under a condition (a broadcast operand, a tuple axis, a non-last
softmax axis, outC > 1, repeated indices, an exact zero, a second backward pass, a later
optimizer step, a Module call). `catches` names the check kind of the gate's report expected
to catch it: `grad`, `fd`, `invariant`, `structure` or `value`.

`apply(mutant, root)` copies the project into a fresh directory and patches the one file
there. Run the gate from that directory (`python -m` puts the current directory first on
`sys.path`, ahead of the editable install, so the mutated pygrad is the one imported):

    path = apply(mutant, root)
    subprocess.run([sys.executable, "-m", "reference", ...], cwd=path, env=env(path))

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

CHECKS = ("grad", "fd", "invariant", "structure", "value")

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


from reference.selftest.catalogue import MUTANTS  # noqa: E402 - the table needs Mutant

BY_NAME = {m.name: m for m in MUTANTS}
if len(BY_NAME) != len(MUTANTS):
    raise RuntimeError("reference.selftest: mutant names must be unique")


# ---------------------------------------------------------------------------- applying
def occurrences(mutant: Mutant, root: Path | str = ROOT) -> int:
    """How many times the mutant's snippet occurs in its file under `root`."""
    return (Path(root) / mutant.file).read_text().count(mutant.original)


def patched_source(mutant: Mutant, text: str) -> str:
    """`text` with the snippet replaced; StaleMutant unless it occurs exactly once, and
    SyntaxError if the result does not compile."""
    n = text.count(mutant.original)
    if n != 1:
        where = "does not occur" if n == 0 else f"occurs {n} times"
        raise StaleMutant(f"mutant {mutant.name}: its snippet {where} in {mutant.file} (it must occur "
                          f"exactly once); update the catalogue to the current source.\n"
                          f"snippet:\n{mutant.original}")
    new = text.replace(mutant.original, mutant.replacement)
    compile(new, mutant.file, "exec")
    return new


def apply(mutant: Mutant, root: Path | str = ROOT, dest: Path | str | None = None) -> Path:
    """Copy the project at `root` (COPIED: pygrad/, reference/, conftest.py, pyproject.toml;
    no .git, no caches) into `dest` (default: a fresh temporary directory)
    and patch `mutant.file` there. Returns the copy's path; the caller removes it (or uses
    `applied`). Raises StaleMutant before copying anything if the snippet is stale."""
    root = Path(root)
    new = patched_source(mutant, (root / mutant.file).read_text())
    if dest is None:
        out = Path(tempfile.mkdtemp(prefix=f"pygrad-mutant-{mutant.name}-"))
    else:
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=_IGNORED, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, out / name)
    (out / mutant.file).write_text(new)
    return out


@contextmanager
def applied(mutant: Mutant, root: Path | str = ROOT):
    """`apply` as a context manager: yields the mutated copy, removes it afterwards."""
    path = apply(mutant, root)
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
