"""Random programs of 2-12 ops: chains (each op consumes the previous node) and DAGs
(anchors anywhere, operands reused -- the same node twice in one op, fan-out into several
consumers, several sinks). Every intermediate value and gradient is compared with PyTorch;
the loss's gradient also with finite differences wherever no kink is within reach."""
import pytest
from hypothesis import given, strategies as st

from fuzz.harness import run_case
from fuzz.strategies import programs
from reference.registry import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["chain", "dag"])
@given(data=st.data())
def test_program(form, dtype, data):
    mode = data.draw(st.sampled_from(["torch", "fd"]), label="values")
    run_case(data.draw(programs(dtype=dtype, form=form, mode=mode), label="case"), fd=True)
