"""`python -m benchmarks --scaling`: how time and memory grow with the problem size.

Two sweeps, each in pygrad, the hand-written NumPy step, torch and autograd, timed side by
side in one process (interleaved, best of N, as the main table):

- the MLP training step of the main table over batch sizes 1 to 1024 (time per step);
- the elementwise chain over lengths 12 to 100 000 ops (time per op; a round is 4 ops).

Cost should grow linearly: the growth exponent between the two largest sizes (the slope of
the log-log line) is printed, 1.0 being linear. Peak memory per size is the tracemalloc peak
of one step, measured after the timing (tracing slows Python down) for the NumPy-based
frameworks — torch's allocator is invisible to tracemalloc — and over `MEMORY_STEPS` steps so
that growth across steps shows: "flat" means the last step peaked no higher than the second.
The results go to a JSON file and a log-log plot (PNG; needs matplotlib).
"""
from __future__ import annotations

import gc
import math
import tracemalloc
from pathlib import Path

from benchmarks import floors, hips, ops, training
from benchmarks.registry import FRAMEWORKS, LABELS, NotAvailable
from benchmarks.report import seconds, size
from benchmarks.timing import interleaved_best

BATCHES = (1, 4, 16, 64, 256, 1024)
LENGTHS = (12, 100, 1_000, 10_000, 100_000)
QUICK_BATCHES = (1, 16)
QUICK_LENGTHS = (12, 100)
MEMORY_STEPS = 4
FLAT_TOLERANCE = 0.01   # relative rise of the last step's peak over the second's still counted flat


def _mlp_builders(batch: int) -> dict:
    return {"pygrad": lambda: training.mlp_pygrad(batch), "numpy": lambda: floors.mlp_numpy(batch),
            "torch": lambda: training.mlp_torch(batch), "autograd": lambda: hips.mlp_autograd(batch)}


def _chain_builders(n_ops: int) -> dict:
    return {"pygrad": lambda: ops.chain_pygrad(n_ops), "numpy": lambda: floors.chain_numpy(n_ops),
            "torch": lambda: ops.chain_torch(n_ops), "autograd": lambda: hips.chain_autograd(n_ops)}


def _peak_memory(step, steps: int) -> list[int]:
    """tracemalloc peak of each of `steps` steps (a full collection before each, untraced)."""
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(steps):
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            step()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return peaks


def measure_point(builders: dict, per: int, repeat: int, quick: bool) -> dict:
    """Time (per `per`) and peak memory of every available framework at one size."""
    benches, unavailable = {}, {}
    for name, build in builders.items():
        try:
            benches[name] = build()
        except NotAvailable as exc:
            unavailable[name] = str(exc)
    for bench in benches.values():
        bench.step()                                   # warm-up, and the first step's caches
    timed = interleaved_best({name: b.step for name, b in benches.items()}, repeat=repeat, quick=quick)
    out = {"seconds": {name: t["best_s"] / per for name, t in timed.items()},
           "median_seconds": {name: t["median_s"] / per for name, t in timed.items()},
           "peak_bytes": {}, "memory_flat": {}, "unavailable": unavailable}
    steps = 2 if quick else MEMORY_STEPS
    for name, bench in benches.items():
        if name == "torch":
            continue                                   # not visible to tracemalloc
        peaks = _peak_memory(bench.step, steps)
        out["peak_bytes"][name] = max(peaks)
        out["memory_flat"][name] = peaks[-1] <= peaks[1] * (1 + FLAT_TOLERANCE) + 4096
    del benches
    gc.collect()
    return out


def growth_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """Slope of log(time) over log(size) between the two largest sizes (1.0: linear)."""
    if len(sizes) < 2 or seconds[-1] is None or seconds[-2] is None:
        return None
    return math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2])


def run(quick: bool, repeat: int, status=None) -> dict:
    sweeps = {}
    for sweep, sizes, builders, per_of, unit in (
            ("mlp", QUICK_BATCHES if quick else BATCHES, _mlp_builders, lambda n: 1, "step"),
            ("chain", QUICK_LENGTHS if quick else LENGTHS, _chain_builders, lambda n: 4 * (n // 4), "op")):
        points = []
        for n in sizes:
            if status:
                status(f"scaling: {sweep} at {n}")
            reps = repeat if (sweep == "mlp" or n <= 10_000) else min(repeat, 3)
            point = measure_point(builders(n), per_of(n), 1 if quick else reps, quick)
            point["size"] = n
            points.append(point)
        total = {name: [p["seconds"].get(name) and p["seconds"][name] * per_of(p["size"]) for p in points]
                 for name in FRAMEWORKS}
        sweeps[sweep] = {"unit": unit, "sizes": list(sizes), "points": points,
                         "growth_exponent": {name: growth_exponent(list(sizes), ts) for name, ts in total.items()
                                             if all(t is not None for t in ts)}}
    return sweeps


def print_tables(console, sweeps: dict) -> None:
    from rich.table import Table

    titles = {"mlp": ("MLP 784-100-10 training step over the batch size", "batch", "time per step"),
              "chain": ("elementwise chain (16,16), forward + backward, over its length", "ops", "time per op")}
    for sweep, data in sweeps.items():
        title, size_name, unit = titles[sweep]
        t = Table(title=f"{title} ({unit}; peak memory of one step, tracemalloc)")
        t.add_column(size_name, justify="right")
        for name in FRAMEWORKS:
            t.add_column(LABELS[name], justify="right")
        for name in FRAMEWORKS:
            if name != "torch":
                t.add_column(f"{LABELS[name]} peak", justify="right")
        for p in data["points"]:
            mem = []
            for name in FRAMEWORKS:
                if name == "torch":
                    continue
                peak = p["peak_bytes"].get(name)
                cell = "—" if peak is None else size(peak)[1:]
                if peak is not None and not p["memory_flat"][name]:
                    cell += " (grows)"
                mem.append(cell)
            t.add_row(f"{p['size']:,}", *(seconds(p["seconds"].get(name)) for name in FRAMEWORKS), *mem)
        console.print(t)
        exps = ", ".join(f"{LABELS[n]} {e:.2f}" for n, e in data["growth_exponent"].items() if e is not None)
        console.print(f"growth exponent of the total time between the two largest sizes (1.00 = linear): {exps}")


def plot(sweeps: dict, path: Path, caption: str) -> bool:
    """Log-log plot: time (top) and peak memory (bottom) of both sweeps; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    labels = {"mlp": ("batch size", "seconds per step"), "chain": ("chain length (ops)", "seconds per op")}
    styles = {"pygrad": ("o-", "tab:blue"), "numpy": ("s--", "tab:gray"), "torch": ("^-", "tab:orange"),
              "autograd": ("D:", "tab:green")}
    for col, (sweep, data) in enumerate(sweeps.items()):
        sizes = data["sizes"]
        xlabel, ylabel = labels[sweep]
        for row, key, yl in ((0, "seconds", ylabel), (1, "peak_bytes", "peak bytes of one step (tracemalloc)")):
            ax = axes[row][col]
            for name in FRAMEWORKS:
                ys = [p[key].get(name) for p in data["points"]]
                if any(y is None for y in ys):
                    continue
                ax.plot(sizes, ys, styles[name][0], color=styles[name][1], label=LABELS[name])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(yl)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        axes[0][col].set_title("MLP 784-100-10 step" if sweep == "mlp" else "elementwise chain (16,16)")
    fig.suptitle("pygrad scaling: `python -m benchmarks --scaling`")
    fig.text(0.5, 0.005, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
