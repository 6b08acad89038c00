"""Hypothesis profiles of the suite: `dev` (fast), `ci` (the gate: derandomized, bounded),
`thorough` (long runs), chosen by `HYPOTHESIS_PROFILE`.

- `dev`: few examples, a per-worker example database (replays earlier failures);
- `ci`: derandomized (the same examples on every run), no database, bounded example counts;
- `thorough`: many examples, per-worker database.

A gate run (env `PYGRAD_CHECK_DEADLINE`) keeps the chosen profile but lifts its example cap
(its time budget, or --examples, ends each test instead; `dev` keeps its cap), replaces
derandomization by the gate's seed (so `--seed N` replays) and drops the database.
Databases are per xdist worker (`.hypothesis/examples/<worker>`): no file is shared between
processes.
"""
from __future__ import annotations

import os

PROFILES = ("dev", "ci", "thorough")


def in_xdist_controller(config) -> bool:
    """Is this pytest process pytest-xdist's controller? It runs no test, so it has no use
    for hypothesis (importing it there only delays the workers' start)."""
    return config.getoption("dist", "no") != "no" and "PYTEST_XDIST_WORKER" not in os.environ


def register() -> None:
    """Register the three profiles with hypothesis (imported here, not at module import)."""
    from hypothesis import HealthCheck, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    def worker_db():
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        return DirectoryBasedExampleDatabase(os.path.join(".hypothesis", "examples", worker))
    slow_ok = [HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large,
               HealthCheck.filter_too_much]
    settings.register_profile("dev", max_examples=8, deadline=None, database=worker_db(),
                              suppress_health_check=slow_ok)
    settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None, database=None,
                              print_blob=False, report_multiple_bugs=False, suppress_health_check=slow_ok)
    settings.register_profile("thorough", max_examples=1000, deadline=None, database=worker_db(),
                              suppress_health_check=slow_ok)


def load(default: str | None = "ci") -> None:
    """Register the profiles and load `HYPOTHESIS_PROFILE` (or `default`, if given) when it
    is one of them -- under a gate run, as its time-bounded variant. Does nothing (imports
    nothing) when neither names a profile."""
    name = os.environ.get("HYPOTHESIS_PROFILE", default or "")
    if name not in PROFILES:
        return
    from hypothesis import settings
    register()
    if os.environ.get("PYGRAD_CHECK_DEADLINE"):
        base = settings.get_profile(name)
        settings.register_profile("gate", parent=base, derandomize=False, database=None, report_multiple_bugs=False,
                                  max_examples=base.max_examples if name == "dev" else 10 ** 6)
        settings.load_profile("gate")
    else:
        settings.load_profile(name)
