"""Every registry op, alone, against PyTorch and against finite differences.

Parametrized over `OPS`, so each op is its own test id (and its own row in the gate's
table). Shapes come from the op's shape rule (`mutually_broadcastable_shapes` for the
broadcasting ops, matmul's gufunc signature, 0-D and 1-D operands, negative and tuple axes,
...); both float64 and float32; torch tests include exact kink points, FD tests stay away
from them."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from fuzz.harness import run_case
from fuzz.strategies import op_cases
from reference import session
from reference.check import Mismatch
from reference.programs import CODE_HEADER
from reference.registry import OPS

OP_NAMES = sorted(OPS)


@pytest.mark.parametrize("op", OP_NAMES)
@given(data=st.data())
def test_op_vs_torch(op, data):
    run_case(data.draw(op_cases(OPS[op], mode="torch"), label="case"), op=op)


@pytest.mark.parametrize("op", OP_NAMES)
@given(data=st.data())
def test_op_vs_finite_differences(op, data):
    run_case(data.draw(op_cases(OPS[op], mode="fd"), label="case"), op=op, fd=True,
             require_fd=True)


BINARY = sorted(n for n, s in OPS.items() if s.shapes in ("broadcast", "matmul"))


@st.composite
def incompatible(draw, op):
    """Two shapes NumPy refuses to combine for `op`: a mismatched inner dimension for `@`,
    two different sides > 1 on one axis for the broadcasting ops."""
    if OPS[op].shapes == "matmul":
        n = draw(st.integers(1, 4))
        return (draw(st.integers(1, 3)), n), (n + draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    a = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    k = draw(st.integers(0, len(a) - 1))
    b = list(a)
    b[k] = draw(st.integers(2, 5).filter(lambda m: m != a[k]))
    return a, tuple(b[draw(st.integers(0, k)):])


@pytest.mark.parametrize("op", BINARY)
@given(data=st.data())
def test_incompatible_shapes_raise(op, data):
    """Where NumPy and torch refuse the shapes, pygrad raises ValueError (naming the op),
    not another exception and not a result."""
    from pygrad import Tensor
    sa, sb = data.draw(incompatible(op), label="shapes")
    session.check_budget()
    if not _numpy_refuses(op, sa, sb):
        raise RuntimeError(f"strategy defect: NumPy accepts shapes {sa} and {sb} for {op}")
    spec = OPS[op]
    with pytest.raises(Exception):
        spec.torch(torch.ones(sa, dtype=torch.float64), torch.ones(sb, dtype=torch.float64))
    code = f"{spec.code.format('a', 'b')}"
    with session.example():
        try:
            spec.call(Tensor(np.ones(sa)), Tensor(np.ones(sb)))
        except ValueError as e:
            if op.split("_")[0] not in str(e):
                raise _error(op, sa, sb, code, f"the ValueError does not name the op: {e}")
        except Exception as e:  # noqa: BLE001
            raise _error(op, sa, sb, code, f"raised {type(e).__name__} ({e}), not ValueError")
        else:
            raise _error(op, sa, sb, code, "returned a result")
    session.record(0.0, None, {op: 0.0}, [op])


def _numpy_refuses(op, sa, sb) -> bool:
    try:
        OPS[op].numpy(np.ones(sa), np.ones(sb))
    except ValueError:
        return True
    return False


def _error(op, sa, sb, code, what) -> Mismatch:
    repro = (f'"""Regression test written by the pygrad reference suite (error check)."""\n'
             f"{CODE_HEADER}import pytest\n\n\ndef test_{op}_incompatible_shapes():\n"
             f"    a = Tensor(np.ones({sa!r}))\n    b = Tensor(np.ones({sb!r}))\n"
             f"    with pytest.raises(ValueError, match={op.split('_')[0]!r}):\n        {code}\n")
    return Mismatch("error", op, f"{op} on shapes {sa} and {sb}: pygrad {what}, but NumPy and "
                    "torch refuse these shapes", f"{code}  [{op}]", repro)
