"""The engine: `backward(reset_grad=...)` semantics and `create_graph` structure.

- reset_grad=False: every node keeps the gradient it holds and adds the new pass to it;
  the torch oracle is `torch.autograd.backward([root, *intermediates], [ones, *previous])`;
- backward() twice equals backward() once (reset_grad=True zeroes everything first);
- `create_graph()` returns every learnable tensor once, in post-order of a left-to-right
  depth-first walk, and the weights (leaf=False) in the same order."""
import pytest
from hypothesis import given, note, strategies as st

from fuzz.harness import judged, run_case
from fuzz.strategies import programs
from reference import session
from reference.check import check_backward_twice, check_structure
from reference.programs import program_code
from reference.registry import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backward_reset_grad_false(dtype, data):
    case = data.draw(programs(dtype=dtype, min_ops=1, max_ops=6), label="case")
    run_case(case, passes=data.draw(st.integers(2, 3), label="backward passes"))


@given(data=st.data())
def test_backward_twice_equals_once(data):
    case = data.draw(programs(min_ops=1, max_ops=6), label="case")
    session.check_budget()
    note(program_code(case.program, case.values))
    out = judged(lambda: check_backward_twice(case.program, case.values, case.seed))
    session.record(out.err_torch, None, out.per_op, case.program.ops(), case.features)


@given(data=st.data())
def test_create_graph_structure(data):
    case = data.draw(programs(min_ops=1, max_ops=8), label="case")
    session.check_budget()
    note(program_code(case.program, case.values))
    with session.example():
        check_structure(case.program, case.values)
    session.record(0.0, None, {}, case.program.ops(), case.features)

