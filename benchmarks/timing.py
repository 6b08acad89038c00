"""Measuring one step in the process that runs it: calls per sample, a sample's seconds and
minor page faults per call, tracemalloc peaks.

The cyclic garbage collector stays enabled, because collecting graphs is part of the cost of
a training step; a collection is forced before each sample so that no sample pays for
garbage left by another. Nothing here imports NumPy or a framework.
"""
from __future__ import annotations

import gc
import resource
import time
from typing import Callable

TARGET_SAMPLE_S = 0.1  # each sample loops a step until it lasts about this long


def calls_per_sample(fn: Callable[[], object], target_s: float = TARGET_SAMPLE_S) -> int:
    """How many calls of `fn` make one sample of about `target_s` seconds.

    Estimated from the fastest of the single calls made during about `target_s` (a single
    call can be slowed by the machine; an estimate from it would leave samples too short).
    The calls double as warm-up (first-call caches, lazy imports, the allocator's heap)."""
    fastest, spent = float("inf"), 0.0
    while spent < target_s or fastest == float("inf"):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        fastest, spent = min(fastest, elapsed), spent + elapsed
    return max(1, min(1 << 20, round(target_s / max(fastest, 1e-9))))


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def sample(fn: Callable[[], object], number: int,
           limit_s: float = 10 * TARGET_SAMPLE_S) -> tuple[float, float, float]:
    """(seconds per call, minor page faults per call, CPU seconds of the process per call) over
    `number` calls, or over the calls made before `limit_s` ran out (a stalled machine must not
    stretch one sample to minutes). With one thread, CPU time is what a busy machine disturbs
    least (time spent waiting for a core is not counted); with more, it adds up every thread."""
    gc.collect()
    faults, cpu = _minor_faults(), time.process_time()
    start = time.perf_counter()
    deadline, done = start + limit_s, 0
    while done < number:
        fn()
        done += 1
        if time.perf_counter() > deadline:
            break
    seconds = (time.perf_counter() - start) / done
    return seconds, (_minor_faults() - faults) / done, (time.process_time() - cpu) / done


def peaks(step: Callable[[], object], steps: int) -> list[int]:
    """tracemalloc peak of each of `steps` steps above what was live before it (a full
    collection before each, untraced)."""
    import tracemalloc

    out = []
    tracemalloc.start()
    try:
        for _ in range(steps):
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            step()
            out.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return out


def best_wall(commands: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best-of-`repeat` wall time of each callable, called once per round, rounds interleaved
    (for expensive callables such as starting an interpreter)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    order = list(commands)
    for r in range(repeat):
        for name in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            commands[name]()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}
