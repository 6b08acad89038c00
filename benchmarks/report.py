"""The report: a rich table on the terminal and the same rows as JSON."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.core import FRAMEWORKS, Row

UNSTABLE = 1.5  # median/best above this: the samples disagree too much to trust the best
STYLE = {"pass": "green", "miss": "red", "not available": "yellow", "error": "bold red"}


def seconds(t: float | None) -> str:
    if t is None:
        return "—"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(t) >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"


def size(n: float | None) -> str:
    if n is None:
        return "—"
    sign = "-" if n < 0 else "+" if n > 0 else "±"
    n = abs(n)
    for scale, unit in ((1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{sign}{n / scale:.3g} {unit}"
    return f"{sign}{n:.0f} B"


def ratio_cell(row: Row, name: str) -> str:
    """"1.12x (1.05–1.31)": pygrad / `name`, the median of the per-round ratios, and their
    lowest and highest; "—" when `name` did not run."""
    if name not in row.ratios:
        return "—"
    spread = row.spreads.get(name)
    if not spread or spread["rounds"] < 2:
        return f"{row.ratios[name]:.2f}x"
    return f"{row.ratios[name]:.2f}x ({spread['min']:.2f}–{spread['max']:.2f})"


def faults(row: Row, name: str) -> str:
    """Minor page faults per step of `name` (median round), "" where not measured."""
    n = row.faults.get(name)
    if n is None:
        return ""
    return f"\n[dim]{n:.0f} pf[/]" if n >= 0.5 or n == 0 else "\n[dim]<1 pf[/]"


def cells(row: Row) -> tuple[str, ...]:
    """(pygrad, NumPy, torch, autograd, ÷NumPy, ÷torch, ÷autograd) cells; memory, import and
    scaling rows show what they measured. Contests show each time with its page faults per step."""
    if row.status in ("not available", "error"):
        return ("—",) * 7
    if row.id == "memory":
        s = row.details["summary"]
        pg, tc = s["pygrad"], s["torch"]
        peak = pg["traced_peak_step2_bytes"] or pg["traced_peak_max_bytes"]
        return (f"peak {size(peak)[1:]}/step, {size(pg['traced_growth_after_step2_bytes'])} after step 2",
                "—", f"RSS {size(tc['rss_growth_after_step2_bytes'])} after step 2", "—", "—", "—", "—")
    if row.id == "check_scaling":
        one, two = row.details["runs"]
        return (f"1 worker {one['examples_per_s']:.3g} ex/s → 2 workers {two['examples_per_s']:.3g} ex/s",
                "—", "—", "—", "—", f"{row.ratio:.2f}x", "—")
    if not row.ratios:   # import time
        return (seconds(row.pygrad_s), "—", seconds(row.torch_s), "—", "—",
                "—" if row.ratio is None else f"{row.ratio:.2f}x", "—")
    return (*(seconds(row.times.get(name)) + faults(row, name) for name in FRAMEWORKS),
            *(ratio_cell(row, name) for name in ("numpy", "torch", "autograd")))


def table(rows: list[Row], machine: dict) -> Table:
    blas = machine["numpy_blas"]
    caption = (f"{machine['cpu_model']} · {machine['logical_cores']} logical cores · "
               f"numpy {machine['numpy']} ({blas.get('internal_api')} {blas.get('version')}, "
               f"kernel {machine['blas_kernel']}, {machine['numpy_blas_threads']} threads) · "
               f"torch {machine['torch']} ({machine['torch_threads']} threads) · "
               f"autograd {machine.get('autograd') or 'not installed'} · float64 · "
               "times: best round, pf: minor page faults per step; ratios: median of the rounds' "
               "pygrad / other, in brackets the lowest and highest")
    t = Table(title="pygrad vs the hand-written NumPy step, PyTorch and autograd "
                    "(each in its own fresh interpreter, interleaved rounds)", caption=caption)
    right = {"justify": "right"}
    for name, kw in (("workload", {}), ("pygrad", right), ("NumPy", right), ("torch", right),
                     ("autograd", right), ("pygrad/NumPy", right), ("pygrad/torch", right),
                     ("pygrad/autograd", right), ("goal", {}), ("result", {})):
        t.add_column(name, **kw)
    for row in rows:
        t.add_row(row.workload, *cells(row), row.goal, f"[{STYLE[row.status]}]{row.status}[/]")
    return t


def compare_table(results: dict[str, dict], base: str, new: str, factor: float, alpha: float,
                  measured: str = "wall time") -> Table:
    """The regression check's table: one row per case, NEW / BASE with its spread and verdict."""
    t = Table(title=f"pygrad {new} vs {base} (each in its own fresh interpreter, interleaved rounds)",
              caption=f"{measured}: median round; ratio: median of the rounds' NEW / BASE (lowest–highest); "
                      f"slower: ratio ≥ {factor:g} and NEW slower in enough rounds for a one-sided sign "
                      f"test at {alpha:g}; pf: minor page faults per step")
    right = {"justify": "right"}
    for name, kw in (("case", {}), ("BASE", right), ("NEW", right), ("NEW / BASE", right),
                     ("rounds slower", right), ("verdict", {})):
        t.add_column(name, **kw)
    style = {"slower": "bold red", "faster": "green", "same": "default", "not available": "yellow"}
    for name, r in results.items():
        if r["verdict"] == "not available":
            t.add_row(name, "—", "—", "—", "—", f"[yellow]not available: {escape(r['reason'])}[/]")
            continue
        t.add_row(name, f"{seconds(r['base_s'])} · {r['base_faults']:.0f} pf",
                  f"{seconds(r['new_s'])} · {r['new_faults']:.0f} pf",
                  f"{r['ratio']:.2f}x ({r['min']:.2f}–{r['max']:.2f})",
                  f"{r['slower_rounds']}/{r['rounds']}",
                  f"[{style[r['verdict']]}]{r['verdict']}[/]"
                  + ("" if r["same_result"] else " [red](results differ)[/]"))
    return t


def print_report(console: Console, rows: list[Row], machine: dict) -> None:
    console.print(table(rows, machine))
    for row in rows:
        if "reason" in row.details:
            console.print(f"[{STYLE[row.status]}]{row.id}: {escape(row.details['reason'])}[/]")
        spread = {name: t["median_s"] / t["best_s"] for name, t in row.details.get("timing", {}).items()
                  if len(t["samples_s"]) > 1}
        noisy = {name: r for name, r in spread.items() if r > UNSTABLE}
        if noisy:
            console.print(f"[yellow]{row.id}: unstable timing (median/best "
                          + ", ".join(f"{name} {r:.1f}x" for name, r in noisy.items())
                          + "): another process probably competed for the CPU; rerun on a quiet machine[/]")
        for name, same in row.details.get("same_result_by_framework", {}).items():
            if not same:
                console.print(f"[red]{row.id}: pygrad's and {name}'s results differ — the timings "
                              "compare different computations[/]")
        for name, why in row.details.get("unavailable", {}).items():
            console.print(f"[yellow]{row.id}: {name} not available: {escape(why)}[/]")
        missed = [f"pygrad/{name} {g['ratio']:.2f}x > {g['limit']:g}x"
                  for name, g in row.details.get("goals", {}).items() if not g["met"]]
        if missed:
            console.print(f"[red]{row.id}: missed " + ", ".join(missed) + "[/]")
    removed = machine["blas_env_removed"]
    if removed:
        console.print("ran without " + ", ".join(f"{k}={v}" for k, v in removed.items())
                      + f"; NumPy's BLAS kernel: {machine['blas_kernel']}")


def write_json(path: Path, rows: list[Row], machine: dict, settings: dict, extra: dict | None = None) -> None:
    data = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings,
            "machine": machine, "rows": [asdict(row) for row in rows], **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _plain(cell: str) -> str:
    """A rich cell as Markdown text: markup dropped, line breaks as " · "."""
    from rich.text import Text
    return Text.from_markup(cell).plain.replace("\n", " · ")


def markdown(rows: list[Row], machine: dict, settings: dict) -> str:
    """The report's table in Markdown (what docs/benchmarks.md shows), with the machine and
    the command that produced it."""
    blas = machine["numpy_blas"]
    head = ["workload", "pygrad", "NumPy", "torch", "autograd", "pygrad/NumPy", "pygrad/torch",
            "pygrad/autograd", "goal", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        texts = (_plain(c) for c in (row.workload, *cells(row), row.goal, row.status))
        lines.append("| " + " | ".join(texts) + " |")
    busy = machine.get("busy_cores_at_start")
    command = " ".join(settings["command"][1:]) if settings.get("command") else "-m benchmarks"
    lines += ["", f"`python {command}` — "
              f"{machine['cpu_model']}, {machine['logical_cores']} logical cores, numpy {machine['numpy']} "
              f"({blas.get('internal_api')} {blas.get('version')}, kernel {machine['blas_kernel']}), "
              f"{machine['numpy_blas_threads']} BLAS/torch threads, torch {machine['torch']}, autograd "
              f"{machine.get('autograd')}, float64; busy cores before the run: "
              f"{'unknown' if busy is None else f'{busy:.1f}'}. Times: best round (pf: minor page faults "
              "per step, median round); ratios: median of the rounds' pygrad / other (lowest–highest)."]
    return "\n".join(lines) + "\n"


def compare_markdown(results: dict[str, dict], base: str, new: str) -> str:
    head = ["case", "BASE", "NEW", "NEW / BASE", "rounds slower", "verdict"]
    lines = [f"pygrad {new} vs {base}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        if r["verdict"] == "not available":
            lines.append(f"| {name} | — | — | — | — | not available: {r['reason']} |")
            continue
        lines.append(f"| {name} | {seconds(r['base_s'])} · {r['base_faults']:.0f} pf | "
                     f"{seconds(r['new_s'])} · {r['new_faults']:.0f} pf | "
                     f"{r['ratio']:.2f}x ({r['min']:.2f}–{r['max']:.2f}) | {r['slower_rounds']}/{r['rounds']} | "
                     f"{r['verdict']} |")
    return "\n".join(lines) + "\n"
