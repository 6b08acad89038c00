"""The workloads, their goals, and the runner that turns a workload into a result row.

A workload is either a *pair* — one builder for pygrad and one for torch, each returning a
`Bench` (a step to time and a way to read its results) — timed side by side, or a *probe*
that measures something else (import time, memory, parallel scaling) its own way. Every
workload produces one row of the report.
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


@dataclass(frozen=True)
class Goal:
    """What counts as a pass. `kind`: "ratio" (pygrad/torch ≤ limit), "seconds" (≤ limit),
    "flat" (memory does not grow after step 2), "speedup" (≥ limit)."""
    kind: str
    limit: float | None = None

    def text(self) -> str:
        if self.kind == "flat":
            return "flat"
        return {"ratio": f"≤ {self.limit:g}x", "seconds": f"≤ {self.limit:g} s",
                "speedup": f"≥ {self.limit:g}x"}[self.kind]

    def met(self, value: float) -> bool:
        if self.kind == "speedup":
            return value >= self.limit
        if self.kind == "flat":
            return bool(value)
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
    """One line of the report. `pygrad_s`/`torch_s`: the two compared times (pairs and import
    time; None where the row compares something else). `times` holds every duration measured
    (seconds, all > 0). `value` is what the goal is checked against (ratio, seconds,
    flatness, speedup)."""
    id: str
    workload: str
    goal: str
    status: str = "not available"
    pygrad_s: float | None = None
    torch_s: float | None = None
    ratio: float | None = None
    value: float | bool | None = None
    times: dict = field(default_factory=dict)
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
    return row


def pair(id: str, title: str, goal: Goal, build_pygrad: Callable[[], Bench],
         build_torch: Callable[[], Bench], per: int = 1, note: str = "") -> Workload:
    """A pygrad-vs-torch workload: times both steps interleaved, best of N; `per` divides the
    step time (e.g. 100 for a chain of 100 ops timed per op)."""
    def measure(config: Config) -> dict:
        import numpy as np

        pg, tc = build_pygrad(), build_torch()
        pg.step()
        tc.step()
        agree = all(np.allclose(a, b, rtol=1e-8, atol=1e-10)
                    for a, b in zip(pg.observe(), tc.observe(), strict=True))
        timed = _interleaved({"pygrad": pg.step, "torch": tc.step}, config)
        pygrad_s, torch_s = timed["pygrad"]["best_s"] / per, timed["torch"]["best_s"] / per
        return {"pygrad_s": pygrad_s, "torch_s": torch_s, "ratio": pygrad_s / torch_s,
                "times": {"pygrad": pygrad_s, "torch": torch_s},
                "details": {"same_result": agree, "per": per, "timing": timed}}
    return Workload(id, title, goal, measure, note)


def _interleaved(fns, config: Config) -> dict:
    from benchmarks.timing import interleaved_best
    return interleaved_best(fns, repeat=config.repeat, quick=config.quick)


ORDER = ("elementwise_chain", "mlp_step", "conv2d", "softmax", "module_mlp_step",
         "import_time", "memory", "check_scaling")


def workloads() -> list[Workload]:
    """Every workload, in report order."""
    from benchmarks import memory, ops, probes, training
    found = {w.id: w for module in (ops, training, memory, probes) for w in module.WORKLOADS}
    return [found[name] for name in ORDER]
