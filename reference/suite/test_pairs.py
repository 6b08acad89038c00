"""The pair samples: per report row, deterministic samples that reach every feasible pair of
its conditions together in one use (`reference.pairs`, built by `reference.covering`), the
ones covering most pairs first. They run after the coverage pass, in a share of the time
left (`runstate.session.PAIR_SHARE`), or -- with --examples N -- the first N of each row."""
import pytest

from reference.coverage import coverage_units, unit_rows
from reference.harness import prop, run_samples
from reference.pairs import pair_cases
from reference.runstate import session
from reference.suite.test_coverage import sharded


def _cases(rows: list):
    """This shard's pair samples of `rows`, built row by row as they are needed."""
    n = session.fixed_examples()
    for row in rows:
        yield from sharded(pair_cases(row), row)[:n]


@pytest.mark.parametrize("unit", coverage_units())
@prop(rows=unit_rows, checks=("value", "grad", "fd", "invariant", "structure", "error"))
def test_pairs(unit, request):
    """every feasible pair of every row's conditions reached together in one use -- two
    broadcast forms at once, a 1-D operand with a batched one, an axis form with keepdims and
    float32, an optimizer with several options at once, a schedule on each graph shape --
    against torch and finite differences"""
    run_samples(_cases(unit_rows(unit)), request.node.nodeid, timed=True)
