"""Timing steps as users run them: each contender in its own fresh interpreter
(`benchmarks.child`), the interpreters taking turns.

A contender is one framework's step of one workload, optionally with another pygrad put in
front of the import path (the regression check times two versions of pygrad this way).
Every contender's interpreter is started fresh, builds its step and warms it up; then each
round asks every contender for one sample, one after the other (the order alternates between
rounds), so a slow phase of the machine hits all of them alike and a sample of one contender
is paired with the other's sample from the same round. Only one interpreter runs at a time;
between samples the command pauses `SETTLE_S`, long enough for the BLAS worker threads the
last contender left spinning to go to sleep (OpenBLAS spins for about 0.1 s after its last
call), so no contender pays for another's threads -- as a user's process would not.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.core import NotAvailable

REPO = Path(__file__).resolve().parent.parent
SETTLE_S = 0.2


@dataclass(frozen=True)
class Contender:
    """`framework`'s step of `workload` with `params`; `pygrad_path`: a directory holding
    another version of the `pygrad` package, imported instead of the working tree's."""
    framework: str
    workload: str
    params: dict = field(default_factory=dict)
    pygrad_path: str | None = None


class Child:
    """A fresh interpreter running `python -m benchmarks.child` for one contender."""

    def __init__(self, contender: Contender, threads: int | None):
        paths = [str(REPO)] if contender.pygrad_path is None else [contender.pygrad_path, str(REPO)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
        self.contender = contender
        # `-m` puts the working directory first on the path: it must not be the repository when
        # another pygrad is to be imported
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.child"], env=env,
                                     cwd=contender.pygrad_path or REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        built = self.ask(op="build", framework=contender.framework, workload=contender.workload,
                         params=contender.params, threads=threads)
        if not built.get("ok"):
            self.close()
            raise NotAvailable(built.get("unavailable", "the step could not be built"))
        self.info = built["info"]

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.contender.framework} interpreter for {self.contender.workload} "
                               f"exited (status {self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.contender.framework} {self.contender.workload}: {answer['error']}")
        return answer

    def observe(self, directory: str) -> list:
        import numpy as np

        path = Path(directory) / f"{id(self)}.npz"
        self.ask(op="observe", path=str(path))
        with np.load(path) as arrays:
            return [arrays[f"arr_{k}"] for k in range(len(arrays.files))]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def start(contenders: dict[str, Contender], threads: int | None) -> tuple[dict[str, Child], dict[str, str]]:
    """({name: Child}, {name: why not available}); the first contender must start."""
    children, unavailable = {}, {}
    try:
        for k, (name, contender) in enumerate(contenders.items()):
            try:
                children[name] = Child(contender, threads)
            except NotAvailable as exc:
                if k == 0:
                    raise
                unavailable[name] = str(exc)
    except BaseException:
        stop(children)
        raise
    return children, unavailable


def stop(children: dict[str, Child]) -> None:
    for child in children.values():
        child.close()


def same_results(children: dict[str, Child], reference: str) -> dict[str, bool]:
    """Does each child's step give the reference child's arrays? (after the build's one step)"""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="pygrad-bench-") as tmp:
        want = children[reference].observe(tmp)
        return {name: all(np.allclose(a, b, rtol=1e-8, atol=1e-10)
                          for a, b in zip(want, child.observe(tmp), strict=True))
                for name, child in children.items() if name != reference}


def interleaved(children: dict[str, Child], repeat: int, quick: bool = False,
                settle_s: float = SETTLE_S) -> dict[str, dict]:
    """Samples of every child, rounds interleaved.

    Returns {name: {"best_s", "median_s", "samples_s", "faults", "faults_s", "cpu_s",
    "calls_per_sample"}}: seconds per call of each round in round order (sample k of two
    children comes from round k), the minor page faults per call of the median round (and of
    every round), and the process's CPU seconds per call of every round. With `quick`, one call per child, no
    calibration (a smoke run, not a measurement)."""
    numbers = {name: 1 if quick else child.ask(op="calibrate", target_s=0.1)["number"]
               for name, child in children.items()}
    seconds = {name: [] for name in children}
    faults = {name: [] for name in children}
    cpu = {name: [] for name in children}
    order = list(children)
    for r in range(1 if quick else repeat):
        for name in (order if r % 2 == 0 else order[::-1]):
            if settle_s and not quick:
                time.sleep(settle_s)
            got = children[name].ask(op="sample", number=numbers[name])
            seconds[name].append(got["seconds"])
            faults[name].append(got["faults"])
            cpu[name].append(got["cpu_seconds"])
    out = {}
    for name, ts in seconds.items():
        middle = sorted(range(len(ts)), key=ts.__getitem__)[len(ts) // 2]
        out[name] = {"best_s": min(ts), "median_s": ts[middle], "samples_s": ts,
                     "faults": faults[name][middle], "faults_s": faults[name], "cpu_s": cpu[name],
                     "calls_per_sample": numbers[name]}
    return out


def round_ratios(mine: list[float], theirs: list[float]) -> dict:
    """mine / theirs in each round: the median and the spread across rounds."""
    rs = sorted(a / b for a, b in zip(mine, theirs))
    return {"min": rs[0], "median": rs[len(rs) // 2], "max": rs[-1], "rounds": len(rs)}
