"""The deterministic coverage pass: every report row's samples (`reference.coverage`), before
any random example. Each row is one test; every sample runs, and every failure with a new
signature is a finding of its own."""
import pytest

from reference.coverage import coverage_units, row_cases, unit_rows
from reference.harness import prop, run_samples
from reference.runstate import session


def sharded(cases: list, row: str) -> list:
    """This shard's share of a row's samples (--shard I/N): every N-th, offset by the row."""
    i, n = session.shard()
    offset = sum(map(ord, row))
    return [c for k, c in enumerate(cases) if (k + offset) % n == i - 1]


@pytest.mark.parametrize("unit", coverage_units())
@prop(rows=unit_rows, checks=("value", "grad", "fd", "invariant", "structure", "error"))
def test_coverage(unit, request):
    """every row's deterministic samples -- each op's broadcast patterns, axis forms, exact kinks,
    mixed dtypes, error inputs; each layer in a Module; each loss option; the Module's calls;
    each optimizer over >= 4 steps with >= 2 parameters; the engine's graphs (fan-out, sinks,
    reset_grad=False, learnable=False, a 10 000-op chain) -- against torch and finite differences"""
    run_samples([case for row in unit_rows(unit) for case in sharded(row_cases(row), row)], request.node.nodeid)
