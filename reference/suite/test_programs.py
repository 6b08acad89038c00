"""Random programs of 2-12 ops: chains (each op consumes the previous node) and DAGs
(anchors anywhere, operands reused -- the same node twice in one op, fan-out into several
consumers, several sinks). Every intermediate value and gradient is compared with PyTorch;
the loss's gradient also with finite differences wherever no kink is within reach."""
import pytest
from hypothesis import strategies as st

from reference.generators.programs import programs
from reference.harness import prop, run_property
from reference.registry import DTYPES, ENGINE_ROW, OPS


def _rows(**params):
    return [spec.row for spec in OPS.values() if spec.in_programs] + [ENGINE_ROW]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["chain", "dag"])
@prop(rows=_rows, checks=("value", "grad", "fd", "error"))
def test_program(form, dtype, request):
    """random chains and DAGs of 2-12 ops with reused intermediates (an operand used twice,
    fan-out, mixed dtypes): every node's value and gradient equal torch's, and the inputs'
    gradients match finite differences; a failure names the first wrong node"""
    strategy = st.sampled_from(["torch", "fd"]).flatmap(lambda mode: programs(dtype=dtype, form=form, mode=mode))
    run_property(strategy, request.node.nodeid)
