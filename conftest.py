"""Root pytest configuration: hypothesis profiles (owned by the reference suite).

`HYPOTHESIS_PROFILE` picks one (default `ci`, so a plain `python -m pytest -n 2` is
deterministic):

- `dev`: few examples, a per-worker example database (replays earlier failures);
- `ci`: the gate's profile -- derandomized (the same examples on every run), no database,
  bounded example counts;
- `thorough`: many examples, per-worker database.

A gate run (`python -m reference`, env `PYGRAD_CHECK_DEADLINE`) keeps the chosen profile
but lifts its example cap (the time budget ends each test instead; `dev` keeps its cap),
and replaces derandomization by `--hypothesis-seed`, so `--seed N` replays. Databases are
per xdist worker (`.hypothesis/examples/<worker>`): no file is shared between processes.
"""
import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

pytest_plugins = ["reference.plugin"]

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large]


def _worker_db():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".hypothesis", "examples")
    return DirectoryBasedExampleDatabase(os.path.join(root, worker))


settings.register_profile("dev", max_examples=8, deadline=None, database=_worker_db(),
                          suppress_health_check=_SLOW_OK)
settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None, database=None,
                          print_blob=False, report_multiple_bugs=False,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=1000, deadline=None, database=_worker_db(),
                          suppress_health_check=_SLOW_OK)

_profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if os.environ.get("PYGRAD_CHECK_DEADLINE"):
    _base = settings.get_profile(_profile)
    settings.register_profile(
        "gate", parent=_base, derandomize=False, database=None, report_multiple_bugs=False,
        max_examples=_base.max_examples if _profile == "dev" else 10 ** 6)
    settings.load_profile("gate")
else:
    settings.load_profile(_profile)
