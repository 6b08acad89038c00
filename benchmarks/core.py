"""What the benchmark command works with: steps, goals, workloads, result rows.

A workload is either a *contest* -- one step per framework (pygrad, the hand-written NumPy
step, torch, HIPS autograd), each timed in its own fresh interpreter -- or a *probe* that
measures something else (import time, memory, the gate's parallel scaling) its own way.
Every workload produces one `Row` of the report. This module imports nothing of the
package: every other module may import it.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable, NamedTuple


class NotAvailable(Exception):
    """The workload cannot run here (a missing module or command); the row says why."""


class Bench(NamedTuple):
    """`step()` runs the timed work once; `observe()` returns the arrays it produced (output,
    gradients or updated parameters) so the frameworks can be checked to agree."""
    step: Callable[[], object]
    observe: Callable[[], list]


FRAMEWORKS = ("pygrad", "numpy", "torch", "autograd")
LABELS = {"pygrad": "pygrad", "numpy": "NumPy", "torch": "torch", "autograd": "autograd"}


@dataclass(frozen=True)
class Goal:
    """What counts as a pass. `kind`: "ratio" (pygrad/torch <= limit), "seconds" (<= limit),
    "flat" (memory does not grow after step 2), "speedup" (>= limit), "ratios" (pygrad/X <=
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
    import time; None where the row compares something else); `ratio` = pygrad / torch.
    `times` holds every duration measured (seconds, all > 0); `faults` the minor page faults
    per step of each framework (contests). `value` is what the goal is checked against
    (ratio, seconds, flatness, speedup)."""
    id: str
    workload: str
    goal: str
    status: str = "not available"
    pygrad_s: float | None = None
    torch_s: float | None = None
    ratio: float | None = None
    value: float | bool | dict | None = None
    times: dict = field(default_factory=dict)
    faults: dict = field(default_factory=dict)
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
