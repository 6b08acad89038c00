"""Peak memory per training step over many steps: does it stay flat?

Each framework runs the Module + SGD training step of `benchmarks.steps` in a fresh
interpreter (`python -m benchmarks.memory FRAMEWORK STEPS`), so neither sees the other's
heap. Per step it records:

- the tracemalloc peak (reset before each step): every NumPy array and Python object alive at
  the step's high-water mark, including anything left over from earlier steps. NumPy reports
  its buffers to tracemalloc; torch's allocator does not, so this number is pygrad's verdict.
- the resident set size (VmRSS) after the step, and its peak during the step (VmHWM, reset
  through /proc/self/clear_refs where the kernel allows it): comparable across frameworks,
  but coarse (the allocator keeps freed pages).

Before each step a full `gc.collect()` runs outside the timed and traced region. It empties
the interpreter's free lists (tuples, floats, ...), which tracemalloc would otherwise count as
live memory that creeps up by a few KiB per step until the lists fill, and it returns the
number of unreachable objects the previous step left in reference cycles: a graph kept alive
by a cycle waits for the collector instead of being freed when its last reference goes, so
that count is recorded per step too.

The verdict: "flat" when no step after step 2 peaks above step 2's tracemalloc peak by more
than `TOLERANCE` (relative) — step 1 may allocate one-time caches — and no step after the
first leaves cyclic garbage.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

from benchmarks.core import Config, Goal, NotAvailable, Workload

TOLERANCE = 0.01


def _status_kib() -> dict[str, int]:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return {line.split(":")[0]: int(line.split()[1]) for line in f
                    if line.startswith(("VmRSS", "VmHWM"))}
    except OSError:
        return {}


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def record(framework: str, steps: int, threads: int | None) -> dict:
    """Run `steps` training steps of `framework` here and record memory per step."""
    import tracemalloc

    from benchmarks.environment import apply_threads
    from benchmarks.steps import builders

    apply_threads(threads, torch=framework == "torch")
    step = builders(framework)["module_mlp_step"]().step
    traced, rss, rss_peak, seconds, cyclic = [], [], [], [], []
    hwm_resets = True
    gc.collect()
    tracemalloc.start()
    for k in range(steps):
        found = gc.collect()
        if k:
            cyclic.append(found)   # left by the previous step
        tracemalloc.reset_peak()
        hwm_resets = _reset_rss_peak() and hwm_resets
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
        traced.append(tracemalloc.get_traced_memory()[1])
        status = _status_kib()
        rss.append(status.get("VmRSS", 0) * 1024)
        rss_peak.append(status.get("VmHWM", 0) * 1024)
    tracemalloc.stop()
    cyclic.append(gc.collect())
    return {"framework": framework, "steps": steps, "traced_peak_bytes": traced,
            "cyclic_garbage_objects": cyclic,
            "rss_bytes": rss, "rss_peak_bytes": rss_peak if hwm_resets else None,
            "step_seconds": seconds}


def growth_after_step2(series: list[int]) -> int:
    """How far the later steps rise above step 2 (bytes, >= 0 means growth)."""
    return max(series[2:], default=series[1]) - series[1] if len(series) > 1 else 0


def _mean_after_first(xs: list[float]) -> float:
    """Mean step time without step 1 (which warms caches up); measured with tracemalloc on."""
    return sum(xs[1:]) / (len(xs) - 1) if len(xs) > 1 else xs[0]


def _run_child(framework: str, steps: int, threads: int | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", framework, str(steps)]
    if threads:
        cmd.append(str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise NotAvailable(f"memory run of {framework} failed: {tail[0]}")
    return json.loads(done.stdout)


def measure(config: Config) -> dict:
    steps = 5 if config.quick else config.memory_steps
    pg = _run_child("pygrad", steps, config.threads)
    tc = _run_child("torch", steps, config.threads)
    traced = pg["traced_peak_bytes"]
    growth = growth_after_step2(traced)
    cycles = max(pg["cyclic_garbage_objects"][1:], default=0)
    flat = (growth <= TOLERANCE * traced[1] if len(traced) > 1 else True) and cycles == 0
    summary = {
        name: {
            "traced_peak_step2_bytes": r["traced_peak_bytes"][1] if steps > 1 else None,
            "traced_peak_max_bytes": max(r["traced_peak_bytes"]),
            "traced_growth_after_step2_bytes": growth_after_step2(r["traced_peak_bytes"]),
            "rss_growth_after_step2_bytes": growth_after_step2(r["rss_bytes"]),
            "rss_peak_growth_after_step2_bytes":
                growth_after_step2(r["rss_peak_bytes"]) if r["rss_peak_bytes"] else None,
            "cyclic_garbage_objects_max_after_step1": max(r["cyclic_garbage_objects"][1:], default=0),
        } for name, r in (("pygrad", pg), ("torch", tc))
    }
    return {"value": flat,
            "times": {"pygrad_step": _mean_after_first(pg["step_seconds"]),
                      "torch_step": _mean_after_first(tc["step_seconds"])},
            "details": {"steps": steps, "summary": summary, "pygrad": pg, "torch": tc,
                        "verdict": f"tracemalloc peak after step 2 within {TOLERANCE:.0%} of step 2, "
                                   "and no cyclic garbage after step 1"}}


WORKLOADS = [
    Workload("memory", "peak memory, Module + SGD steps", Goal("flat"),
             measure, note="tracemalloc peak per step (pygrad verdict); RSS for both; "
                           "step times measured with tracemalloc on"),
]


if __name__ == "__main__":
    framework, n_steps = sys.argv[1], int(sys.argv[2])
    n_threads = int(sys.argv[3]) if len(sys.argv) > 3 else None
    try:
        print(json.dumps(record(framework, n_steps, n_threads)))
    except NotAvailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
