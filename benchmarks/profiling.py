"""`python -m benchmarks --profile WORKLOAD`: where does pygrad's time go?

Two views of one workload, each framework in its own fresh interpreter (`benchmarks.runner`;
the cProfile run is `python -m benchmarks.profiling WORKLOAD`, an interpreter without torch):

1. The *NumPy floor*: the same forward and backward written as straight NumPy (no graph,
   no Tensors; `benchmarks.floors`, the NumPy column of the table). pygrad minus the floor
   is the framework's overhead (object creation, closures, the graph walk, gradient
   plumbing, memory that is not reused); floor versus torch is the kernels' own gap, which
   no overhead work can close.
2. cProfile of pygrad's step, own time grouped by where it is spent. NumPy's operators
   (`a * b`, `a @ b`) are not function calls cProfile can see: their time is charged to the
   Python function that applies them (an op's forward or its backward rule). cProfile also
   adds a fixed cost per Python call, so call-heavy code looks more expensive here than it
   is; read the shares next to the floor.

It also reports the time the cyclic garbage collector spends per step and the minor page
faults per step (fresh memory from the OS): both grow when graphs are freed only by the
collector instead of by reference counting.
"""
from __future__ import annotations

import cProfile
import gc
import pstats
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from benchmarks.report import seconds
from benchmarks.runner import REPO, Contender, interleaved, start, stop
from benchmarks.timing import calls_per_sample, sample


# ----------------------------------------------------------------- GC and page faults
def _collector_cost(step, calls: int) -> tuple[float, float, float]:
    """(seconds of cyclic GC per step, collections per step, seconds per step) over `calls`
    steps."""
    spent, runs, started = [0.0], [0], [0.0]

    def callback(phase, _info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]
            runs[0] += 1
    gc.collect()
    gc.callbacks.append(callback)
    start = time.perf_counter()
    try:
        for _ in range(calls):
            step()
    finally:
        gc.callbacks.remove(callback)
    return spent[0] / calls, runs[0] / calls, (time.perf_counter() - start) / calls


# ----------------------------------------------------------------- cProfile grouping
def category(filename: str, func: str) -> str:
    """Where a profiled function's own time goes."""
    path = filename.replace("\\", "/")
    if "/pygrad/" in path:
        base = path.rsplit("/", 1)[-1]
        if base == "tensor.py":
            return {"_walk": "graph walk (Tensor._walk)", "backward": "reverse loop (Tensor.backward)",
                    "_result": "Tensor._result", "_add_grad": "Tensor._add_grad"}.get(
                func, f"Tensor.{func}")
        if base == "_core.py":
            return f"{func}()"
        if "/ops/" in path:
            return ("op backward rules (Python + NumPy operators)" if func == "backward"
                    else "op forward functions (Python + NumPy operators)")
        return f"{base.removesuffix('.py')} (Module/layers/optim)"
    if path.endswith("copy.py"):
        return "copy.deepcopy (model_reset + first call)"
    if "/numpy/" in path:
        return "NumPy Python-level wrappers"
    if filename == "~":
        return "NumPy C methods" if ("numpy" in func or "ndarray" in func) else "Python builtins"
    if "/benchmarks/" in path:
        return "benchmark harness"
    return "other Python"


def profile(workload: str, console: Console, repeat: int = 7, threads: int | None = None) -> None:
    """Print the summary (pygrad, the NumPy floor and torch, each in its own interpreter),
    then run the cProfile view in a fresh interpreter without torch."""
    contenders = {name: Contender(fw, workload) for name, fw in
                  (("pygrad", "pygrad"), ("numpy floor", "numpy"), ("torch", "torch"))}
    children, _ = start(contenders, threads)
    try:
        timed = interleaved(children, repeat)
    finally:
        stop(children)
    best = {name: t["best_s"] for name, t in timed.items()}
    summary = Table(title=f"{workload}: pygrad vs the NumPy floor vs torch (best of {repeat} rounds, "
                          "each in its own interpreter)")
    for col in ("", "time", "x torch", "share of pygrad", "page faults per step"):
        summary.add_column(col, justify="right" if col else "left")
    for name, t in best.items():
        summary.add_row(name, seconds(t), f"{t / best['torch']:.2f}x", f"{t / best['pygrad']:.0%}",
                        f"{timed[name]['faults']:.0f}")
    summary.add_row("pygrad overhead (pygrad - floor)", seconds(best["pygrad"] - best["numpy floor"]),
                    "", f"{(best['pygrad'] - best['numpy floor']) / best['pygrad']:.0%}", "")
    console.print(summary)
    command = [sys.executable, "-m", "benchmarks.profiling", workload] + ([str(threads)] if threads else [])
    subprocess.run(command, cwd=REPO, check=True)


def profile_here(workload: str, console: Console, threads: int | None = None) -> dict:
    """cProfile, GC cost and page faults of pygrad's step, in this interpreter."""
    from benchmarks.environment import apply_threads
    from benchmarks.steps import builders

    apply_threads(threads)
    step = builders("pygrad")[workload]().step
    calls = max(calls_per_sample(step, 0.5), 1)
    gc_s, gc_runs, step_s = _collector_cost(step, calls)
    _, faults, _ = sample(step, calls)
    console.print(f"cyclic GC: {seconds(gc_s)} per step ({gc_s / step_s:.0%} of the {seconds(step_s)} "
                  f"mean step of that loop), {gc_runs:.2f} collections per step; {faults:.0f} minor page "
                  "faults per step")

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        step()
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        groups[category(filename, func)] = groups.get(category(filename, func), 0.0) + tt
        rows.append((tt, nc / calls, f"{filename.rsplit('/', 1)[-1]}:{line}({func})"))

    by_group = Table(title=f"cProfile own time by place ({calls} steps, profiler overhead included)")
    for col in ("place", "share", "per step"):
        by_group.add_column(col, justify="left" if col == "place" else "right")
    for name, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        by_group.add_row(name, f"{tt / total:.1%}", seconds(tt / calls))
    console.print(by_group)

    top = Table(title="top functions by own time")
    for col in ("function", "calls/step", "share", "per step"):
        top.add_column(col, justify="left" if col == "function" else "right")
    for tt, per_step, name in sorted(rows, reverse=True)[:20]:
        top.add_row(name, f"{per_step:g}", f"{tt / total:.1%}", seconds(tt / calls))
    console.print(top)
    return {"groups": {k: v / total for k, v in groups.items()}}


if __name__ == "__main__":
    profile_here(sys.argv[1], Console(), int(sys.argv[2]) if len(sys.argv) > 2 else None)
