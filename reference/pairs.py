"""The pair samples of every report row: drafts that reach, together in one use, every
feasible pair of the row's conditions that its coverage samples do not already reach.

Each kind of row has its own draft type, and a row kind here says how a draft becomes a case
(the coverage pass's builders, `reference.coverage`) and which conditions that case's use of
the row reaches (its predicates, never the makers' word):

- ops and losses: `Sample`s -> `op_case` (a draft whose values do not fit its shapes, or
  whose NumPy forward fails or, outside a magnitude regime, is not finite, makes no case);
  valid when torch's exact run is (`Oracle`); reached: its one node;
- layers: `LayerDraft`s -> `layer_case` (the layer first in a Module, or Dropout alone);
  reached: the layer's use;
- `module`: `ModuleSample`s; optimizers: `TrainDraft`s; `engine`: `EngineSample`s; `tensor`:
  `TensorSample`s.

`row_cover(row)` runs the covering builder (`reference.covering`) once per process and row;
`pair_cases(row)` are its samples as cases, the ones covering most pairs first.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from reference.coverage import engine_case, layer_case, module_sample_case, op_case, tensor_case, train_case
from reference import covering_cache
from reference.covering import Builder, Cover, stable_repr
from reference.oracles.oracle import InvalidExample, Oracle
from reference.programs.interpreters import run_numpy
from reference.registry import (ENGINE_ROW, LAYERS, LOSS_OPS, MODULE_ROW, OPS, OPTIMIZERS, Infeasible, SpecError,
                                row_condition_specs, row_pairs)
from reference.registry.engine_row import ENGINE_SAMPLES, GRAPHS
from reference.registry.module_row import MODULE_SAMPLES
from reference.registry.tensor_row import TENSOR_ROW, TENSOR_SAMPLES


def _use_of(case, row: str) -> frozenset:
    """The conditions of the case's first use of `row`."""
    return next((s for r, s in case.condition_sets() if r == row), frozenset())


@dataclass(frozen=True)
class OpRow:
    """An op's (or a loss's) row: drafts are `Sample`s."""

    spec: object

    @property
    def conditions(self) -> tuple:
        return row_condition_specs(self.spec.row)

    def bases(self) -> list:
        return list(self.spec.all_samples())

    def build(self, sample):
        fd = sample.values == "smooth" and not sample.magnitude
        try:
            case = op_case(self.spec, sample, (self.spec.name, "pair", stable_repr(sample)), fd)
        except Exception as e:  # noqa: BLE001 - the shape rule or the reference refuses the draft
            raise Infeasible(f"no program of this draft: {type(e).__name__}: {e}") from e
        prog = case.program
        if any(np.shape(case.values[i.name]) != tuple(i.shape) for i in prog.inputs):
            raise Infeasible("the draft's values do not have its shapes")
        try:
            with np.errstate(all="ignore"):
                values = run_numpy(prog, case.values)
        except Exception as e:  # noqa: BLE001 - the reference refuses the draft
            raise Infeasible(f"the NumPy forward refuses the draft: {e}") from e
        if not sample.magnitude and not all(np.all(np.isfinite(values[n.name])) for n in prog.nodes):
            raise Infeasible("the draft's forward is not finite")   # (a magnitude regime's is the oracle's to judge)
        return case

    def reached(self, case) -> frozenset:
        return _use_of(case, self.spec.row)

    def valid(self, case) -> bool:
        try:
            Oracle(case.program, case.values, case.seed, passes=case.passes)
        except InvalidExample:
            return False
        return True


@dataclass(frozen=True)
class OtherRow:
    """A row whose drafts are not Samples: `drafts` (the coverage drafts, plain first) become
    cases by `make` (raising SpecError, KeyError or Infeasible for a draft that makes none);
    the oracle judges them while they run."""

    row: str
    drafts: tuple
    make: object

    @property
    def conditions(self) -> tuple:
        return row_condition_specs(self.row)

    def bases(self) -> list:
        return list(self.drafts)

    def build(self, draft):
        try:
            return self.make(draft)
        except (SpecError, KeyError) as e:
            raise Infeasible(f"no case of this draft: {e}") from e

    def reached(self, case) -> frozenset:
        return _use_of(case, self.row)

    def valid(self, case) -> bool:
        return True


def row_kind(row: str):
    """The row kind of report row `row` (None for a row without conditions to pair)."""
    for spec in list(OPS.values()) + list(LOSS_OPS.values()):
        if spec.row == row:
            return OpRow(spec)
    for spec in LAYERS.values():
        if spec.row == row:
            return OtherRow(row, tuple(spec.drafts()), layer_case)
    for spec in OPTIMIZERS.values():
        if spec.row == row:
            return OtherRow(row, tuple(spec.drafts()), functools.partial(train_case, spec.name))
    if row == MODULE_ROW:
        return OtherRow(row, MODULE_SAMPLES, module_sample_case)
    if row == ENGINE_ROW:
        return OtherRow(row, ENGINE_SAMPLES, _engine_case)
    if row == TENSOR_ROW:
        return OtherRow(row, TENSOR_SAMPLES, tensor_case)
    return None


def _engine_case(sample):
    if sample.graph not in GRAPHS and sample.graph != "deep":
        raise Infeasible(f"no graph {sample.graph!r}")
    return engine_case(sample)


@functools.lru_cache(maxsize=None)
def row_cover(row: str) -> Cover:
    """The row's covering drafts (see `reference.covering`), once per process: replayed from
    the recipes on disk when the registry has not changed (`reference.covering_cache`),
    else built and kept there (a replayed Cover's `bases` are not judged: [])."""
    kind = row_kind(row)
    if kind is None:
        return Cover([], [], [])
    builder = Builder(kind, row_pairs(row).feasible)
    kept = covering_cache.load(row)
    if kept is not None:
        samples = builder.replay(kept["samples"])
        if None not in samples:
            return Cover(samples, [], [tuple(p) for p in kept["unreached"]])
    built = builder.cover()
    covering_cache.store(row, [b.recipe for b in built.samples], built.unreached)
    return built


def pair_cases(row: str) -> list:
    """The row's pair samples as cases, those covering the most pairs first."""
    return [built.case for built in row_cover(row).samples]


__all__ = ["OpRow", "OtherRow", "row_kind", "row_cover", "pair_cases"]
