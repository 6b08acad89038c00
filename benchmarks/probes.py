"""Workloads measured in separate processes: `import pygrad` and the gate's parallel scaling."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.core import Config, Goal, NotAvailable, Workload
from benchmarks.timing import best_wall

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- import time
IMPORTS = {"bare": "pass", "numpy": "import numpy", "pygrad": "import pygrad", "torch": "import torch"}


def _interpreter(code: str):
    def run():
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return run


def _importtime_breakdown() -> dict[str, float]:
    """Cumulative seconds of the top-level imports under `import pygrad`, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pygrad"],
                          capture_output=True, text=True, check=True)
    out = {}
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2] in ("numpy", "pygrad"):
            out[parts[2]] = int(parts[1]) / 1e6
    return out


def measure_import(config: Config) -> dict:
    repeat = 1 if config.quick else max(config.repeat, 5)
    best = best_wall({name: _interpreter(code) for name, code in IMPORTS.items()}, repeat)
    pygrad_s, torch_s = best["pygrad"] - best["bare"], best["torch"] - best["bare"]
    # A difference of two noisy minima can come out <= 0 on a very fast import; keep it positive.
    pygrad_s, torch_s = max(pygrad_s, 1e-6), max(torch_s, 1e-6)
    return {"pygrad_s": pygrad_s, "torch_s": torch_s, "ratio": pygrad_s / torch_s,
            "value": pygrad_s,
            "times": {"pygrad": pygrad_s, "torch": torch_s, "bare_interpreter": best["bare"],
                      "numpy": max(best["numpy"] - best["bare"], 1e-6)},
            "details": {"repeat": repeat, "best_wall_s": best,
                        "importtime_cumulative_s": _importtime_breakdown(),
                        "measured": "best-of-N wall time of `python -c 'import pygrad'` minus best-of-N "
                                    "of `python -c 'pass'` (fresh interpreters, rounds interleaved); "
                                    "includes importing NumPy, which pygrad needs"}}


# ----------------------------------------------------------------- gate scaling
def _reference_help() -> str:
    done = subprocess.run([sys.executable, "-m", "reference", "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise NotAvailable(f"`python -m reference --help` exited {done.returncode}: {tail}")
    return done.stdout


def _check_run(workers: int, budget: float, tmp: Path, with_out: bool) -> dict:
    report_path = tmp / f"report-n{workers}.json"
    cmd = [sys.executable, "-m", "reference", "--budget", f"{budget:g}", "--seed", "0",
           "-n", str(workers), "--json", str(report_path)]
    if with_out:
        cmd += ["--out", str(tmp / f"failures-n{workers}")]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                              timeout=3 * budget + 300)
    except subprocess.TimeoutExpired:
        raise NotAvailable(f"`{' '.join(cmd[1:])}` did not finish in {3 * budget + 300:.0f} s") from None
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1) or not report_path.exists():
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise NotAvailable(f"`python -m reference -n {workers}` exited {done.returncode}: {tail}")
    report = json.loads(report_path.read_text())
    examples = sum(op["examples"] for op in report["ops"])
    elapsed = float(report.get("elapsed_s") or wall)
    return {"workers": workers, "exit": done.returncode, "examples": examples,
            "elapsed_s": elapsed, "wall_s": wall, "examples_per_s": examples / elapsed,
            "failures": len(report.get("failures", []))}


def measure_check(config: Config) -> dict:
    if importlib.util.find_spec("reference") is None or \
            importlib.util.find_spec("reference.__main__") is None:
        raise NotAvailable("the `reference` package (python -m reference) is not installed yet")
    with_out = "--out" in _reference_help()
    budget = 3.0 if config.quick else config.check_budget
    with tempfile.TemporaryDirectory(prefix="pygrad-bench-") as tmp:
        one, two = (_check_run(n, budget, Path(tmp), with_out) for n in (1, 2))
    if one["examples"] == 0:
        raise NotAvailable("the single-worker gate run reported 0 examples")
    speedup = two["examples_per_s"] / one["examples_per_s"]
    return {"ratio": speedup, "value": speedup,
            "times": {"elapsed_1_worker": one["elapsed_s"], "elapsed_2_workers": two["elapsed_s"]},
            "details": {"budget_s": budget, "runs": [one, two], "cpus": os.cpu_count(),
                        "measured": "examples/s = sum of per-op examples in the gate's JSON / its "
                                    "elapsed_s; speedup = 2 workers / 1 worker, one run each"}}


WORKLOADS = [
    Workload("import_time", "import pygrad (minus bare python)",
             Goal("seconds", 0.15), measure_import,
             note="absolute goal; the torch column is `import torch` measured the same way"),
    Workload("check_scaling", "pygrad-check examples/s, 2 vs 1 workers", Goal("speedup", 1.7),
             measure_check, note="python -m reference --budget B --seed 0 -n 1 / -n 2"),
]
