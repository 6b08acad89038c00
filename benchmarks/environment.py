"""The run's environment: the BLAS variables the command drops, thread counts, machine info.

`OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` are read once, when OpenBLAS is loaded (that is,
when NumPy is first imported), and on some machines they pin a slow kernel. The benchmark
command therefore re-executes the interpreter without them before anything imports NumPy
(`reexec_without_blas_vars`), and reports which kernel threadpoolctl then shows. Tests and CI
never touch these variables; only this command's own process tree runs without them.

Nothing in this module imports NumPy at import time.
"""
from __future__ import annotations

import json
import os
import platform
import sys

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Set in the re-executed process: the removed variables and their values, as JSON.
_REMOVED_MARK = "PYGRAD_BENCH_REMOVED_BLAS_VARS"


def reexec_without_blas_vars() -> None:
    """Replace this process by the same command with `BLAS_VARS` removed from the environment.

    Returns (does nothing) when none of them is set or this process is already the re-executed
    one. Must run before NumPy is imported: the variables only matter at BLAS load time."""
    present = {name: os.environ[name] for name in BLAS_VARS if name in os.environ}
    if not present or _REMOVED_MARK in os.environ:
        return
    if "numpy" in sys.modules:
        raise RuntimeError("benchmarks: NumPy was imported before the BLAS environment was cleaned")
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
    env[_REMOVED_MARK] = json.dumps(present)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def removed_blas_vars() -> dict:
    """The BLAS variables this process runs without, with the values they had."""
    return json.loads(os.environ.get(_REMOVED_MARK, "{}"))


def numpy_blas() -> dict:
    """threadpoolctl's entry for the BLAS library NumPy is linked against (empty if none)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    own = [lib for lib in blas if "numpy" in lib.get("filepath", "")
           or lib.get("filepath", "").startswith(numpy_dir)]
    return (own or blas or [{}])[0]


def apply_threads(n: int | None, torch: bool = False) -> dict:
    """In a child interpreter: limit NumPy's BLAS to `n` threads (None: leave its default) and,
    for torch, give torch as many threads as NumPy's BLAS then has, so every framework runs
    with the same count. Returns {"numpy_blas_threads", "torch_threads"}."""
    import numpy  # noqa: F401 - threadpoolctl limits only the BLAS libraries already loaded
    from threadpoolctl import threadpool_limits

    if n:
        # kept for the process's lifetime: the limits hold while the reference lives
        apply_threads.limits = threadpool_limits(limits=n, user_api="blas")
    blas = int(numpy_blas().get("num_threads") or 1)
    out = {"numpy_blas_threads": blas, "torch_threads": None}
    if torch:
        import torch as _torch
        _torch.set_num_threads(blas)
        out["torch_threads"] = _torch.get_num_threads()
    return out


def load_now(seconds: float = 0.5) -> float | None:
    """How many cores were busy over the next `seconds` (from /proc/stat), or None off Linux.
    Unlike the load average, it does not carry the previous minutes' load."""
    def busy_total():
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)
    try:
        b0, t0 = busy_total()
        import time
        time.sleep(seconds)
        b1, t1 = busy_total()
    except (OSError, ValueError, IndexError):
        return None
    return (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)


def _cpuinfo() -> tuple[str | None, int | None]:
    """(CPU model name, physical core count) from /proc/cpuinfo, or Nones off Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    model, cores, phys = None, set(), None
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        model = model or fields.get("model name")
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
            phys = len(cores)
    return model, phys


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine_info(threads: int | None) -> dict:
    """What a reader needs to compare two result files: CPU, cores, versions, BLAS kernel.
    Imports NumPy (for its BLAS) but no framework: torch is only ever imported by its child."""
    import numpy as np
    import threadpoolctl

    model, physical = _cpuinfo()
    blas = numpy_blas()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": _version("torch"),
        "autograd": _version("autograd"),
        "threadpoolctl": threadpoolctl.__version__,
        "numpy_blas": {key: blas.get(key) for key in
                       ("internal_api", "version", "architecture", "threading_layer", "num_threads")},
        "blas_kernel": blas.get("architecture"),
        "numpy_blas_threads": threads or int(blas.get("num_threads") or 1),
        "torch_threads": threads or int(blas.get("num_threads") or 1),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "blas_env_removed": removed_blas_vars(),
        "blas_env_in_effect": {name: os.environ.get(name) for name in BLAS_VARS},
    }
