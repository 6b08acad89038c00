"""Interleaved best-of-N timing of several callables.

The contenders take turns: each round times every callable once (alternating which goes
first), so a slow phase of the machine (another process, frequency scaling) hits all of them
alike, and the minimum over rounds is kept — the run least disturbed by everything else.
The cyclic garbage collector stays enabled, because collecting graphs is part of the cost of
a training step; a collection is forced before each sample so that no sample pays for
garbage left by another.
"""
from __future__ import annotations

import gc
import time
from typing import Callable

TARGET_SAMPLE_S = 0.1  # each sample loops a callable until it lasts about this long


def calls_per_sample(fn: Callable[[], object], target_s: float = TARGET_SAMPLE_S) -> int:
    """How many calls of `fn` make one sample of about `target_s` seconds.

    Estimated from the fastest of the single calls made during about `target_s`: a single
    call is often slowed by the other framework's worker threads still spinning, and an
    estimate from one slow call would leave samples far too short."""
    fastest, spent = float("inf"), 0.0
    while spent < target_s or fastest == float("inf"):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        fastest, spent = min(fastest, elapsed), spent + elapsed
    return max(1, min(1 << 20, round(target_s / max(fastest, 1e-9))))


def _sample(fn: Callable[[], object], number: int, limit_s: float = 10 * TARGET_SAMPLE_S) -> float:
    """Seconds per call over `number` calls, or over the calls made before `limit_s` ran out
    (a stalled machine must not stretch one sample to minutes)."""
    gc.collect()
    start = time.perf_counter()
    deadline, done = start + limit_s, 0
    while done < number:
        fn()
        done += 1
        if time.perf_counter() > deadline:
            break
    return (time.perf_counter() - start) / done


def interleaved_best(fns: dict[str, Callable[[], object]], repeat: int,
                     quick: bool = False) -> dict[str, dict]:
    """Seconds per call of each callable: the best of `repeat` interleaved samples.

    Returns `{name: {"best_s", "median_s", "calls_per_sample", "samples", "samples_s"}}`, where
    `samples_s` lists the seconds per call of each round, in round order (so sample k of two
    callables comes from the same round). With `quick`, every callable runs exactly once,
    without warm-up or calibration (a smoke run, not a measurement)."""
    if quick:
        return {name: {"best_s": t, "median_s": t, "calls_per_sample": 1, "samples": 1, "samples_s": [t]}
                for name, t in ((name, _sample(fn, 1)) for name, fn in fns.items())}
    numbers = {}
    for name, fn in fns.items():  # calibration doubles as warm-up (first-call caches, lazy imports)
        numbers[name] = calls_per_sample(fn)
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for r in range(repeat):
        for name in (order if r % 2 == 0 else order[::-1]):
            times[name].append(_sample(fns[name], numbers[name]))
    return {name: {"best_s": min(ts), "median_s": sorted(ts)[len(ts) // 2],
                   "calls_per_sample": numbers[name], "samples": len(ts), "samples_s": ts}
            for name, ts in times.items()}


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
