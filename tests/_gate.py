"""Helpers of the gate's tests: run `python -m reference` as a user would, in a subprocess.

Each run gets the environment of a user's shell: this checkout first on PYTHONPATH (so the
gate and its pytest-xdist workers import this tree's pygrad and reference, not whatever an
editable install points at), and none of the variables pytest-xdist sets in the worker that
runs the test (the gate starts a pytest of its own).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The report's fields: the contract's (DESIGN.md, "The gate's interface") and the ones this
# gate adds. A field added to the report must be added here (and documented).
CONTRACT_FIELDS = {"seed", "budget_s", "workers", "elapsed_s", "ops", "failures"}
EXTRA_FIELDS = {"profile", "shard", "examples_per_test", "interrupted", "cut", "crashed", "require_coverage",
                "exit_status", "verdict", "examples", "tests", "first_failure_s", "thin", "internal_errors",
                "infeasible_reached"}
ROW_FIELDS = {"op", "examples", "max_err_torch", "max_err_fd", "status", "conditions", "max_err_torch_bound",
              "max_err_fd_bound", "pairs", "unreached_pairs"}
FAILURE_CONTRACT_FIELDS = {"test", "op", "check", "message", "reproducer"}
CHECK_KINDS = {"value", "grad", "fd", "invariant", "structure", "error"}

# Ceiling on any one subprocess: a hung gate fails its test instead of hanging the suite.
TIMEOUT = 300


def user_env(*first: Path | str) -> dict:
    """os.environ as a user's shell has it: `first` then this checkout first on PYTHONPATH,
    no pytest(-xdist) variables of the test process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"))}
    path = [str(p) for p in first] + [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Run:
    returncode: int
    output: str
    wall_s: float

    def flat(self) -> str:
        """The output without any whitespace (rich wraps long lines, even inside a path)."""
        return "".join(self.output.split())


def gate(args: list, cwd: Path, env: dict | None = None, timeout: float = TIMEOUT,
         command: list | None = None) -> Run:
    """Run `python -m reference ARGS` (or `command + ARGS`) in `cwd`, in its own process
    group; on timeout the whole group is killed and the test fails."""
    cmd = (command or [sys.executable, "-m", "reference"]) + [str(a) for a in args]
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env or user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, _ = proc.communicate()
        raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout} s; its output:\n{out[-5000:]}")
    return Run(proc.returncode, out, time.time() - start)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def rows_of(doc: dict) -> dict:
    return {r["op"]: r for r in doc["ops"]}


# ---------------------------------------------------------------------------- processes
def _stat(pid: int) -> list | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()   # [state, ppid, pgrp, session, ...]


def _live(field: int, value: int) -> list:
    """Live processes (not zombies) whose /proc stat field `field` (1 ppid, 2 pgrp) is `value`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and int(st[field]) == value and st[0] not in "ZX":
                out.append(int(entry))
    return out


def children(pid: int) -> list:
    """Live processes whose parent is `pid`."""
    return _live(1, pid)


def group_members(pgid: int) -> list:
    """Processes of process group `pgid` that are still running (not zombies)."""
    return _live(2, pgid)


def wait_until(predicate, timeout: float, step: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (None)."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None
