"""The covering arrays on disk: each row's pair-sample recipes, keyed by the registry content.

Building a row's covering array (`reference.covering`) judges thousands of candidate drafts;
its result is a function of the registry -- the code of `reference` -- and of the NumPy and
torch versions the drafts are judged with. So each row's result is kept as *recipes* (per
sample: its base draft's index and the makers applied, `Built.recipe`) plus the pairs left
unreached, in `<cache>/<key>/<row>.json`, `key` a hash of every source file of `reference`
and those versions; the next process replays the recipes (`Builder.replay`: one build per
sample, no search). A recipe that no longer builds, or a file that cannot be read, means the
row is built again; a directory that cannot be written costs only the time. The cache is
`$PYGRAD_CHECK_CACHE`, else `$XDG_CACHE_HOME/pygrad-check`, else `~/.cache/pygrad-check`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib

ENV_CACHE = "PYGRAD_CHECK_CACHE"


def cache_dir() -> pathlib.Path:
    if os.environ.get(ENV_CACHE):
        return pathlib.Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "pygrad-check"


@functools.lru_cache(maxsize=None)
def registry_key() -> str:
    """A hash of the source of every module of `reference` and of the numpy and torch versions."""
    import numpy
    import torch
    root = pathlib.Path(__file__).resolve().parent
    h = hashlib.sha256(f"{numpy.__version__} {torch.__version__}".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def _path(row: str) -> pathlib.Path:
    name = hashlib.sha256(row.encode()).hexdigest()[:16]
    return cache_dir() / registry_key() / f"{name}.json"


def load(row: str) -> dict | None:
    """{"samples": [recipe, ...], "unreached": [[a, b], ...]} kept for `row`, or None."""
    try:
        data = json.loads(_path(row).read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("row") == row else None


def store(row: str, recipes, unreached) -> None:
    """Keep a row's recipes and unreached pairs (written whole, then renamed: readers in
    other processes see the old file or the new one)."""
    path = _path(row)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"row": row, "samples": [list(r) for r in recipes],
                                   "unreached": [list(p) for p in unreached]}))
        os.replace(tmp, path)
    except OSError:
        pass


__all__ = ["ENV_CACHE", "cache_dir", "registry_key", "load", "store"]
