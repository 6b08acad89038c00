"""Probes: what a mutant changes, seen without the gate.

A probe case (`Case`) runs one piece of pygrad's public surface on inputs drawn from a
NumPy RNG (never hypothesis, never the registry's samples) and compares values and
gradients with torch (or torch.optim, or the contract's own numbers); the cases are in
`probe_ops` and `probe_state`. A case ends `ok`, `wrong` (pygrad returned something that
disagrees) or `error` (pygrad raised, or ran past `CASE_TIMEOUT`).

Which cases can see a mutant is decided once, on the unmutated pygrad: `reach` traces the
lines of pygrad each case runs. A change on a statement a case never runs cannot change that
case (everything up to the statement's first run is the same code), so a mutant is probed
only by the cases that run its statement, and the rows of those cases are its rows.

`Prober` runs cases in a worker process (`python -m reference.selftest.probes`) that imports
torch once and re-imports pygrad from a private copy for each mutant; a worker that hangs
past `MUTANT_TIMEOUT` is killed and the mutant's cases count as errors (as the gate counts a
hang).
"""
from __future__ import annotations

import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reference.selftest import probe_ops, probe_state
from reference.selftest.mutants import ROOT
from reference.selftest.probe_base import Case, PygradRaised

DRAWS = 3                 # random draws per case
CASE_TIMEOUT = 5.0        # seconds one case may run in a worker
HANGS = 2                 # cases past CASE_TIMEOUT after which a mutant's other cases count as hangs too
MUTANT_TIMEOUT = 120.0    # seconds all of a mutant's cases may run before its worker is killed


@dataclass
class Outcome:
    """What one case did on one mutant, over its draws: `ok`, `wrong` or `error`."""
    case: str
    status: str
    detail: str = ""


def run_case(case: Case, pg, torch, seed: int) -> Outcome:
    """All draws of `case` on the pygrad module `pg`: the first draw that goes wrong decides."""
    for draw in range(DRAWS):
        rng = np.random.default_rng([seed, draw, _stable_hash(case.name)])
        try:
            with _alarm(CASE_TIMEOUT), np.errstate(all="ignore"):   # a mutant's NaN is judged, not printed
                comparisons = case.run(pg, torch, rng)
        except PygradRaised as e:
            return Outcome(case.name, "error", str(e))
        except _Timeout:
            return Outcome(case.name, "error", f"did not return within {CASE_TIMEOUT:g} s")
        except Exception as e:  # noqa: BLE001 - the case's own code choked on what pygrad gave back
            why = f"draw {draw}: pygrad's result is unusable: {type(e).__name__}: {e}"
            return Outcome(case.name, "wrong", why[:300])
        bad = [c for c in comparisons if not c.ok]
        if bad:
            return Outcome(case.name, "wrong", f"draw {draw}: {bad[0].what} {bad[0].detail}"[:300])
    return Outcome(case.name, "ok")


def _stable_hash(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") ^ len(text)


class _Timeout(BaseException):
    pass


@contextmanager
def _alarm(seconds: float):
    def fire(signum, frame):
        raise _Timeout
    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cases() -> list:
    """Every probe case, in a fixed order."""
    return probe_ops.CASES + probe_state.CASES


# ---------------------------------------------------------------------------- loading pygrad
def load_pygrad(directory: Path | str):
    """Import pygrad afresh from `directory` (which holds a `pygrad/` package), dropping any
    pygrad imported before."""
    for name in [n for n in sys.modules if n == "pygrad" or n.startswith("pygrad.")]:
        del sys.modules[name]
    sys.path.insert(0, str(directory))
    try:
        importlib.invalidate_caches()
        return importlib.import_module("pygrad")
    finally:
        sys.path.remove(str(directory))


def reach(seed: int = 0, root: Path | str = ROOT) -> dict:
    """{(file relative to root, line): [case names that run it]} on the unmutated pygrad at
    `root`, over every draw of every case."""
    import torch
    with tempfile.TemporaryDirectory(prefix="pygrad-probe-reach-") as tmp:
        shutil.copytree(Path(root) / "pygrad", Path(tmp) / "pygrad",
                        ignore=shutil.ignore_patterns("__pycache__"))
        pg = load_pygrad(tmp)
        prefix = str(Path(tmp).resolve()) + os.sep
        table: dict = {}
        for case in cases():
            lines = set()

            def local(frame, event, arg, lines=lines):
                if event == "line":
                    lines.add((frame.f_code.co_filename, frame.f_lineno))
                return local

            def tracer(frame, event, arg):
                return local if frame.f_code.co_filename.startswith(prefix) else None

            sys.settrace(tracer)
            try:
                outcome = run_case(case, pg, torch, seed)
            finally:
                sys.settrace(None)
            if outcome.status != "ok":
                raise RuntimeError(f"probe {case.name} fails on the unmutated pygrad: {outcome.detail}")
            for filename, line in lines:
                key = (Path(filename).resolve().relative_to(Path(tmp).resolve()).as_posix(), line)
                table.setdefault(key, []).append(case.name)
    return table


# ---------------------------------------------------------------------------- the worker
def worker(directory: str) -> None:
    """Read mutants (JSON lines: file, text, cases, seed) on stdin; for each, write its
    mutated file into `directory`'s pygrad copy, re-import pygrad, run the named cases and
    print their outcomes as one JSON line."""
    import torch
    sys.dont_write_bytecode = True
    by_name = {c.name: c for c in cases()}
    base = Path(directory)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        path = base / job["file"]
        original = path.read_text(encoding="utf-8")
        path.write_text(job["text"], encoding="utf-8")
        try:
            try:
                pg = load_pygrad(base)
            except Exception as e:  # noqa: BLE001 - a mutant that breaks the import raises everywhere
                outcomes = [Outcome(n, "error", f"import: {type(e).__name__}: {e}"[:300]) for n in job["cases"]]
            else:
                outcomes = []
                for n in job["cases"]:
                    hangs = sum(o.detail.startswith("did not return") for o in outcomes)
                    outcomes.append(run_case(by_name[n], pg, torch, job["seed"]) if hangs < HANGS else
                                    Outcome(n, "error", f"not run: {hangs} cases hung before it"))
        finally:
            path.write_text(original, encoding="utf-8")
        print(json.dumps({"outcomes": [o.__dict__ for o in outcomes]}), flush=True)


@dataclass
class Prober:
    """Worker processes running probe cases on mutated pygrads (`probe`)."""
    root: Path = ROOT
    seed: int = 0
    _procs: dict = field(default_factory=dict)

    def _start(self, slot: int):
        tmp = Path(tempfile.mkdtemp(prefix="pygrad-probe-"))
        shutil.copytree(self.root / "pygrad", tmp / "pygrad", ignore=shutil.ignore_patterns("__pycache__"))
        # a mutant's NaNs and overflows are what the probes judge, not noise for the terminal
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONWARNINGS="ignore")
        proc = subprocess.Popen([sys.executable, "-m", "reference.selftest.probes", str(tmp)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
        ready = proc.stdout.readline()
        if not ready.strip():
            raise RuntimeError("a probe worker did not start")
        self._procs[slot] = (proc, tmp)

    def close(self):
        for proc, tmp in self._procs.values():
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)
        self._procs.clear()

    def submit(self, slot: int, file: str, text: str, case_names: list) -> None:
        if slot not in self._procs:
            self._start(slot)
        proc = self._procs[slot][0]
        proc.stdin.write(json.dumps({"file": file, "text": text, "cases": case_names, "seed": self.seed}) + "\n")
        proc.stdin.flush()

    def poll(self, slot: int, started: float, case_names: list):
        """The outcomes of the job in `slot`, None while it runs; a worker past
        MUTANT_TIMEOUT is killed and every case of the job is an error."""
        proc, tmp = self._procs[slot]
        ready, _, _ = select.select([proc.stdout], [], [], 0)
        if ready:
            line = proc.stdout.readline()
            if line:
                return [Outcome(**o) for o in json.loads(line)["outcomes"]]
            why = f"the probe worker died (exit {proc.wait()})"
        elif time.time() - started > MUTANT_TIMEOUT:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            why = f"did not return within {MUTANT_TIMEOUT:g} s"
        else:
            return None
        shutil.rmtree(tmp, ignore_errors=True)
        del self._procs[slot]
        return [Outcome(n, "error", why) for n in case_names]


if __name__ == "__main__":  # pragma: no cover - the worker process
    from reference.selftest.probes import worker as _worker   # the package's classes, not __main__'s
    _worker(sys.argv[1])
