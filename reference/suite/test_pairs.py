"""The pair samples: per report row, deterministic samples that reach every feasible pair of
its conditions together in one use (`reference.pairs`, built by `reference.covering`), the
ones covering most pairs first. They run after the coverage pass, until one deadline
(`runstate.session.pair_deadline`), or -- with --examples N -- the first N of each row. One
test per row, so that the slow rows (the optimizers, run first) share the workers."""
import pytest

from reference.harness import prop, run_samples
from reference.pairs import pair_cases
from reference.registry import rows
from reference.runstate import session
from reference.suite.test_coverage import sharded


def _rows(row):
    return [row]


@pytest.mark.parametrize("row", rows())
@prop(rows=_rows, checks=("value", "grad", "fd", "invariant", "structure", "error"))
def test_pairs(row, request):
    """every feasible pair of every row's conditions reached together in one use -- two
    broadcast forms at once, a 1-D operand with a batched one, an axis form with keepdims and
    float32, an optimizer with several options at once, a schedule on each graph shape --
    against torch and finite differences"""
    cases = sharded(pair_cases(row), row)[:session.fixed_examples()]
    run_samples(cases, request.node.nodeid, timed=True)
