"""Every registry op (and loss class), alone, against PyTorch and against finite differences.

Parametrized over the op tables, so each op is its own test id and its own row. Shapes and
arguments come from the op's shape rule; float64, float32 and mixed operands; torch tests
include exact kink points, finite-difference tests stay away from them."""
import pytest

from reference.generators.programs import op_cases
from reference.harness import prop, run_property
from reference.registry import LOSS_OPS, OPS, spec_of

OP_NAMES = sorted(OPS) + sorted(LOSS_OPS)


def _rows(op):
    return [spec_of(op).row]


@pytest.mark.parametrize("op", OP_NAMES)
@prop(rows=_rows, checks=("value", "grad", "error"))
def test_op_vs_torch(op, request):
    """each op alone, float64, float32 and mixed dtypes, broadcast/0-D/1-D operands, every axis
    form, exact kink points: its value and every operand's gradient equal torch's"""
    run_property(op_cases(spec_of(op), mode="torch"), request.node.nodeid)


@pytest.mark.parametrize("op", OP_NAMES)
@prop(rows=_rows, checks=("fd", "error"))
def test_op_vs_finite_differences(op, request):
    """each op alone, away from kinks: <grad, v> equals a central finite difference along a
    random direction v (every coordinate for inputs of <= 8 entries), in float64"""
    run_property(op_cases(spec_of(op), mode="fd"), request.node.nodeid)
