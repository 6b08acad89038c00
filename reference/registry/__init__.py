"""The registry: one table per extension axis, the single source of truth of the suite.

- `OPS`: one `OpSpec` per public Tensor operation (the contract's `reference.registry.OPS`);
- `LOSS_OPS`: pygrad's loss classes as entries of the same kind; `MODULE_LOSSES`: the ends
  a random Module may have;
- `LAYERS`: one `LayerSpec` per layer class; `OPTIMIZERS`: one `OptimizerSpec` per optimizer;
- the Module row's, the engine row's and the tensor row's conditions and coverage samples
  (`module_row`, `engine_row`, `tensor_row`);
- `rows()`: every row of the gate's report, each with its conditions (`row_conditions`) and
  the pairs of them that are feasible (`row_pairs`).

Every strategy, oracle, check, coverage sample and report row is derived from these tables.
"""
from __future__ import annotations

from reference.numerics import DTYPES, U
from reference.registry.engine_row import ENGINE_ROW
from reference.registry.layers import LAYERS, Layer, LayerSpec, LayerUse, SpecError
from reference.registry.losses import LOSS_OPS, MODULE_LOSSES, ModuleLoss
from reference.registry.module_row import MODULE_CONDITIONS, MODULE_ROW
from reference.registry.pairs import RowPairs, pairs_of, row_condition_specs, row_infeasible, row_pairs
from reference.registry.ops import COVERS, OPS
from reference.registry.optimizers import OPTIMIZERS, OptimizerSpec, TrainUse
from reference.registry.regimes import REGIMES
from reference.registry.spec import (Condition, ErrorInput, Infeasible, OpSpec, Plan, Sample, Use, axes_of,
                                     count_of)
from reference.registry.tensor_row import TENSOR_ROW


def spec_of(op: str) -> OpSpec:
    """The entry of a program node's op: a Tensor operation or a loss class."""
    return OPS[op] if op in OPS else LOSS_OPS[op]


def op_rows() -> list:
    return [spec.row for spec in list(OPS.values()) + list(LOSS_OPS.values())]


def rows() -> list:
    """Every row of the gate's report, in table order."""
    return (op_rows() + [spec.row for spec in LAYERS.values()] + [MODULE_ROW]
            + [spec.row for spec in OPTIMIZERS.values()] + [ENGINE_ROW, TENSOR_ROW])


def row_conditions(row: str) -> tuple:
    """The names of the conditions the row must reach to read `pass` (not `thin`)."""
    return tuple(c.name for c in row_condition_specs(row))


def ops_of_row(row: str) -> list:
    """The op entries whose examples count in `row` (for --only)."""
    return [name for name, spec in {**OPS, **LOSS_OPS}.items() if spec.row == row]


__all__ = ["OPS", "LOSS_OPS", "MODULE_LOSSES", "LAYERS", "OPTIMIZERS", "COVERS", "DTYPES", "U", "MODULE_ROW",
           "ENGINE_ROW", "REGIMES", "TENSOR_ROW", "Condition", "ErrorInput", "Infeasible", "Layer", "LayerSpec",
           "LayerUse", "ModuleLoss", "OpSpec",
           "OptimizerSpec", "Plan", "Sample", "SpecError", "TrainUse", "Use", "axes_of", "count_of", "rows",
           "row_conditions", "spec_of", "op_rows", "ops_of_row", "MODULE_CONDITIONS", "RowPairs", "pairs_of",
           "row_condition_specs", "row_infeasible", "row_pairs"]
