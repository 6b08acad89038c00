"""The workloads, their goals, and the runner that turns a workload into a result row.

A workload is either a *contest* — one builder per framework (pygrad, the hand-written NumPy
step, torch, HIPS autograd), each returning a `Bench` (a step to time and a way to read its
results) — timed side by side in one process, or a *probe* that measures something else
(import time, memory, parallel scaling) its own way. Every workload produces one row of the
report.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable, NamedTuple


class NotAvailable(Exception):
    """The workload cannot run here (a missing module or command); the row says why."""


class Bench(NamedTuple):
    """`step()` runs the timed work once; `observe()` returns the arrays it produced (output,
    gradients or updated parameters) so the two frameworks can be checked to agree."""
    step: Callable[[], object]
    observe: Callable[[], list]


FRAMEWORKS = ("pygrad", "numpy", "torch", "autograd")
LABELS = {"pygrad": "pygrad", "numpy": "NumPy", "torch": "torch", "autograd": "autograd"}


@dataclass(frozen=True)
class Goal:
    """What counts as a pass. `kind`: "ratio" (pygrad/torch ≤ limit), "seconds" (≤ limit),
    "flat" (memory does not grow after step 2), "speedup" (≥ limit), "ratios" (pygrad/X ≤
    limit for each (X, limit) in `limits`; X a framework that could not run is not judged)."""
    kind: str
    limit: float | None = None
    limits: tuple = ()

    def text(self) -> str:
        if self.kind == "flat":
            return "flat"
        if self.kind == "ratios":
            return ", ".join(f"≤ {limit:g}x {LABELS[name]}" for name, limit in self.limits)
        return {"ratio": f"≤ {self.limit:g}x", "seconds": f"≤ {self.limit:g} s",
                "speedup": f"≥ {self.limit:g}x"}[self.kind]

    def met(self, value) -> bool:
        if self.kind == "speedup":
            return value >= self.limit
        if self.kind == "flat":
            return bool(value)
        if self.kind == "ratios":   # value: {framework: pygrad / framework}
            return all(value[name] <= limit for name, limit in self.limits if name in value)
        return value <= self.limit


@dataclass
class Config:
    quick: bool = False
    repeat: int = 7
    check_budget: float = 20.0
    memory_steps: int = 100
    threads: int | None = None


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    goal: Goal
    measure: Callable[[Config], dict]  # -> the row's measured fields
    note: str = ""


@dataclass
class Row:
    """One line of the report. `pygrad_s`/`torch_s`: pygrad's and torch's times (contests and
    import time; None where the row compares something else); `ratio` = pygrad / torch. `times` holds every duration measured
    (seconds, all > 0). `value` is what the goal is checked against (ratio, seconds,
    flatness, speedup)."""
    id: str
    workload: str
    goal: str
    status: str = "not available"
    pygrad_s: float | None = None
    torch_s: float | None = None
    ratio: float | None = None
    value: float | bool | dict | None = None
    times: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)    # contests: {framework: median round ratio pygrad / framework}
    spreads: dict = field(default_factory=dict)   # contests: {framework: per-round ratio min/median/max}
    details: dict = field(default_factory=dict)
    note: str = ""


def run(workload: Workload, config: Config) -> Row:
    """Measure one workload; an unavailable dependency or a crash becomes a row, not an abort."""
    row = Row(workload.id, workload.title, workload.goal.text(), note=workload.note)
    try:
        measured = workload.measure(config)
    except NotAvailable as exc:
        row.details["reason"] = str(exc)
        return row
    except Exception as exc:  # noqa: BLE001 - a broken workload must not hide the others
        row.status = "error"
        row.details["reason"] = f"{type(exc).__name__}: {exc}"
        row.details["traceback"] = traceback.format_exc()
        return row
    for key, val in measured.items():
        setattr(row, key, val)
    if row.value is None:
        row.value = row.ratio
    row.status = "pass" if workload.goal.met(row.value) else "miss"
    if workload.goal.kind == "ratios":
        row.details["goals"] = {name: {"limit": limit, "ratio": row.ratios[name],
                                       "met": row.ratios[name] <= limit}
                                for name, limit in workload.goal.limits if name in row.ratios}
    return row


def contest(id: str, title: str, goal: Goal, builders: dict[str, Callable[[], Bench]],
            per: int = 1, note: str = "") -> Workload:
    """A workload timed in every framework of `builders` (keys from FRAMEWORKS; "pygrad" and
    "torch" required), interleaved in one process; `per` divides the step time (e.g. 100 for
    a chain of 100 ops timed per op). A framework whose builder raises NotAvailable is left
    out of the row and says why in `details["unavailable"]`.

    Times are the best of N samples. Ratios (`ratios`, judged against the goal) are the
    median over rounds of pygrad's sample / the other's sample of the same round: two samples
    taken a fraction of a second apart see the same machine, so a paired ratio resists
    another process far better than the ratio of two minima taken at different moments.
    `spreads` has the lowest, median and highest round; `details["best_ratios"]` the ratio of
    the best times.

    Before timing, every framework runs one step from the same arrays and its results are
    compared with pygrad's (`details["same_result"]` per framework)."""
    def measure(config: Config) -> dict:
        import numpy as np

        benches, unavailable = {}, {}
        for name, build in builders.items():
            try:
                benches[name] = build()
            except NotAvailable as exc:
                if name in ("pygrad", "torch"):
                    raise
                unavailable[name] = str(exc)
        for bench in benches.values():
            bench.step()
        reference = benches["pygrad"].observe()
        same = {name: all(np.allclose(a, b, rtol=1e-8, atol=1e-10)
                          for a, b in zip(reference, bench.observe(), strict=True))
                for name, bench in benches.items() if name != "pygrad"}
        timed = _interleaved({name: bench.step for name, bench in benches.items()}, config)
        times = {name: t["best_s"] / per for name, t in timed.items()}
        others = [name for name in times if name != "pygrad"]
        spreads = {name: _round_ratios(timed["pygrad"]["samples_s"], timed[name]["samples_s"])
                   for name in others}
        ratios = {name: spreads[name]["median"] for name in others}
        best = {name: times["pygrad"] / times[name] for name in others}
        return {"pygrad_s": times["pygrad"], "torch_s": times["torch"], "ratio": ratios["torch"],
                "value": ratios, "times": times, "ratios": ratios, "spreads": spreads,
                "details": {"same_result": all(same.values()), "same_result_by_framework": same,
                            "best_ratios": best, "unavailable": unavailable, "per": per, "timing": timed}}
    return Workload(id, title, goal, measure, note)


def _round_ratios(mine: list[float], theirs: list[float]) -> dict:
    """pygrad / other in each interleaved round: the spread of the ratio across repeats."""
    rs = sorted(a / b for a, b in zip(mine, theirs))
    return {"min": rs[0], "median": rs[len(rs) // 2], "max": rs[-1], "rounds": len(rs)}


def _interleaved(fns, config: Config) -> dict:
    from benchmarks.timing import interleaved_best
    return interleaved_best(fns, repeat=config.repeat, quick=config.quick)


ORDER = ("elementwise_chain", "mlp_step", "conv2d", "softmax", "module_mlp_step",
         "import_time", "memory", "check_scaling")
CONTESTS = ORDER[:5]


def workloads() -> list[Workload]:
    """Every workload, in report order."""
    from benchmarks import contests, memory, probes
    found = {w.id: w for module in (contests, memory, probes) for w in module.WORKLOADS}
    return [found[name] for name in ORDER]
