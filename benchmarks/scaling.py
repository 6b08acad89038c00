"""`python -m benchmarks --scaling`: how time and memory grow with the problem size.

Three sweeps, each in pygrad, the hand-written NumPy step, torch and autograd, every
framework in its own fresh interpreter at every size, rounds interleaved (as the main table,
`benchmarks.runner`):

- the MLP training step of the main table over batch sizes 1 to 1024 (time per step);
- the elementwise chain over lengths 12 to 100 000 ops (time per op; a round is 4 ops);
- conv2D (forward + backward) at the sizes of `data.CONV_SIZES`, from the benchmark's to
  large images, ordered by the size of pygrad's im2col matrix (time per step).

Cost should grow linearly: the growth exponent between the two largest sizes (the slope of
the log-log line) is printed for the first two, 1.0 being linear. Peak memory per size is the
tracemalloc peak of one step, measured in each framework's interpreter after the timing, for
the NumPy-based frameworks (torch's allocator is invisible to tracemalloc), over
`MEMORY_STEPS` steps so that growth across steps shows: "flat" means the last step peaked no
higher than the second. The results go to a JSON file and a log-log plot (PNG; matplotlib).
"""
from __future__ import annotations

import math
from pathlib import Path

from benchmarks import data
from benchmarks.core import FRAMEWORKS, LABELS
from benchmarks.runner import Contender, interleaved, start, stop

BATCHES = (1, 4, 16, 64, 256, 1024)
LENGTHS = (12, 100, 1_000, 10_000, 100_000)
QUICK_BATCHES = (1, 16)
QUICK_LENGTHS = (12, 100)
QUICK_CONV = ("bench", "channels")
MEMORY_STEPS = 4
FLAT_TOLERANCE = 0.01   # relative rise of the last step's peak over the second's still counted flat


def measure_point(workload: str, params: dict, per: int, repeat: int, quick: bool, threads: int | None) -> dict:
    """Time (per `per`), page faults and peak memory of every available framework at one size."""
    contenders = {fw: Contender(fw, workload, params) for fw in FRAMEWORKS}
    children, unavailable = start(contenders, threads)
    try:
        timed = interleaved(children, repeat, quick)
        out = {"seconds": {name: t["best_s"] / per for name, t in timed.items()},
               "median_seconds": {name: t["median_s"] / per for name, t in timed.items()},
               "faults": {name: t["faults"] for name, t in timed.items()},
               "peak_bytes": {}, "memory_flat": {}, "unavailable": unavailable}
        steps = 2 if quick else MEMORY_STEPS
        for name, child in children.items():
            if name == "torch":
                continue                                   # not visible to tracemalloc
            peaks = child.ask(op="peaks", steps=steps)["peaks"]
            out["peak_bytes"][name] = max(peaks)
            out["memory_flat"][name] = peaks[-1] <= peaks[1] * (1 + FLAT_TOLERANCE) + 4096
    finally:
        stop(children)
    return out


def growth_exponent(sizes: list[float], seconds: list[float]) -> float | None:
    """Slope of log(time) over log(size) between the two largest sizes (1.0: linear)."""
    if len(sizes) < 2 or seconds[-1] is None or seconds[-2] is None:
        return None
    return math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2])


def plan(quick: bool) -> dict:
    """{sweep: (workload, [(size, label, params, per)], unit)}."""
    conv = sorted((data.conv_matrix_bytes(**shape) / 2 ** 20, data.conv_label(**shape), shape, 1)
                  for name, shape in data.CONV_SIZES.items() if not quick or name in QUICK_CONV)
    return {
        "mlp": ("mlp_step", [(n, str(n), {"batch": n}, 1) for n in (QUICK_BATCHES if quick else BATCHES)], "step"),
        "chain": ("elementwise_chain", [(n, f"{n:,}", {"n_ops": n}, 4 * (n // 4))
                                        for n in (QUICK_LENGTHS if quick else LENGTHS)], "op"),
        "conv": ("conv2d", [(round(mib, 2), label, params, per) for mib, label, params, per in conv], "step"),
    }


def run(quick: bool, repeat: int, threads: int | None = None, status=None) -> dict:
    sweeps = {}
    for sweep, (workload, points_plan, unit) in plan(quick).items():
        points = []
        for size, label, params, per in points_plan:
            if status:
                status(f"scaling: {sweep} at {label}")
            reps = repeat if (sweep != "chain" or size <= 10_000) else min(repeat, 3)
            point = measure_point(workload, params, per, 1 if quick else reps, quick, threads)
            point.update(size=size, label=label, per=per)
            points.append(point)
        sizes = [p["size"] for p in points]
        total = {name: [p["seconds"].get(name) and p["seconds"][name] * p["per"] for p in points]
                 for name in FRAMEWORKS}
        sweeps[sweep] = {"unit": unit, "sizes": sizes, "points": points,
                         "growth_exponent": {name: growth_exponent(sizes, ts) for name, ts in total.items()
                                             if all(t is not None for t in ts)}}
    return sweeps


TITLES = {"mlp": ("MLP 784-100-10 training step over the batch size", "batch", "time per step"),
          "chain": ("elementwise chain (16,16), forward + backward, over its length", "ops", "time per op"),
          "conv": ("conv2D forward + backward over the input size (im2col matrix, MiB)", "input, kernels",
                   "time per step")}


def print_tables(console, sweeps: dict) -> None:
    from rich.table import Table

    from benchmarks.report import seconds, size

    for sweep, found in sweeps.items():
        title, size_name, unit = TITLES[sweep]
        t = Table(title=f"{title} ({unit}, pf = minor page faults per step; peak memory of one step, tracemalloc)")
        t.add_column(size_name, justify="right")
        for name in FRAMEWORKS:
            t.add_column(LABELS[name], justify="right")
        for name in FRAMEWORKS:
            if name != "torch":
                t.add_column(f"{LABELS[name]} peak", justify="right")
        for p in found["points"]:
            mem = []
            for name in FRAMEWORKS:
                if name == "torch":
                    continue
                peak = p["peak_bytes"].get(name)
                cell = "—" if peak is None else size(peak)[1:]
                if peak is not None and not p["memory_flat"][name]:
                    cell += " (grows)"
                mem.append(cell)
            times = [seconds(p["seconds"].get(name))
                     + (f" · {p['faults'][name]:.0f} pf" if name in p["faults"] else "") for name in FRAMEWORKS]
            t.add_row(p["label"] if sweep != "conv" else f"{p['label']}, {p['size']:g} MiB", *times, *mem)
        console.print(t)
        if sweep != "conv":
            exps = ", ".join(f"{LABELS[n]} {e:.2f}" for n, e in found["growth_exponent"].items()
                             if e is not None)
            console.print("growth exponent of the total time between the two largest sizes "
                          f"(1.00 = linear): {exps}")


def plot(sweeps: dict, path: Path, caption: str) -> bool:
    """Log-log plot: time (top) and peak memory (bottom) of every sweep; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, len(sweeps), figsize=(6 * len(sweeps), 9), squeeze=False)
    labels = {"mlp": ("batch size", "seconds per step"), "chain": ("chain length (ops)", "seconds per op"),
              "conv": ("im2col matrix of the input (MiB)", "seconds per step")}
    styles = {"pygrad": ("o-", "tab:blue"), "numpy": ("s--", "tab:gray"), "torch": ("^-", "tab:orange"),
              "autograd": ("D:", "tab:green")}
    for col, (sweep, found) in enumerate(sweeps.items()):
        sizes = found["sizes"]
        xlabel, ylabel = labels[sweep]
        for row, key, yl in ((0, "seconds", ylabel), (1, "peak_bytes", "peak bytes of one step (tracemalloc)")):
            ax = axes[row][col]
            for name in FRAMEWORKS:
                ys = [p[key].get(name) for p in found["points"]]
                if any(y is None for y in ys):
                    continue
                ax.plot(sizes, ys, styles[name][0], color=styles[name][1], label=LABELS[name])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(yl)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        if sweep == "conv":
            for p in found["points"]:
                axes[0][col].annotate(p["label"], (p["size"], p["seconds"]["pygrad"]), fontsize=6,
                                      textcoords="offset points", xytext=(3, -9))
        axes[0][col].set_title({"mlp": "MLP 784-100-10 step", "chain": "elementwise chain (16,16)",
                                "conv": "conv2D, forward + backward"}[sweep])
    fig.suptitle("pygrad scaling: `python -m benchmarks --scaling`")
    fig.text(0.5, 0.005, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
