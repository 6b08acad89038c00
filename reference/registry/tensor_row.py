"""The `tensor` row's table: Tensor's own methods, its conditions and coverage samples.

The row checks what a Tensor offers besides its ops (`reference.checks.tensor_api`): inputs
made with `pygrad.array`, `shape`/`dtype`/`ndim`/`size`/`len`, `numpy()`, `item()`,
`detach()`, the graphs `backward` stores (`topo`, `weights`), and the helpers that change a
tensor between passes -- one per learnable input, its *mode*: kept as is, `new_value(v)`,
`x.value = v`, `reset_grad()`, `x.grad = G` -- followed by a second forward and a
`backward(reset_grad=False)`, whose gradients the contract fixes (held + new pass).

A sample (the row's draft) names an engine graph (`engine_row.GRAPHS`), the modes of its
learnable inputs in order, the dtype, a memory layout and the seeds; its conditions are
predicates on a `TensorUse` with makers on `TensorSample`.

The layout regimes (`registry.regimes.LAYOUTS`, group "layout") fit this row as they fit
every op row: the inputs hold their values in the layout (each whose shape it changes), and
so do the arrays the helpers are given (`new_value(v)`, `x.value = v`, `x.grad = G`) -- the
helpers meet views, read-only and non-contiguous arrays as users hand them over. The
magnitude and shape regimes do not: the helpers copy, keep or add arrays whatever their
values and sizes, and the ops of the graphs get those regimes in their own rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from reference.registry.engine_row import ENGINE_INPUTS
from reference.registry.regimes import LAYOUTS, fitting_layout, layout_reached
from reference.registry.spec import Condition, Infeasible

TENSOR_ROW = "tensor"

MODES = ("keep", "new_value", "assign", "reset", "set_grad")
"""What happens to a learnable input between the two passes."""


@dataclass(frozen=True)
class TensorUse:
    """A tensor-helpers example as condition predicates see it."""

    modes: tuple       # per learnable input, in the program's order
    dtypes: frozenset
    layouts: tuple = ()   # per Tensor input, its memory layout ("" = C-contiguous)
    shapes: tuple = ()    # per Tensor input


@dataclass(frozen=True)
class TensorSample:
    """The row's draft: graph name, modes of its learnable inputs, dtype, seeds."""

    graph: str
    modes: tuple
    dtype: str = "float64"
    values_seed: int = 1
    seed: int = 21
    layout: str = ""      # the inputs' memory layout, where their shape takes it


def _set_mode(mode: str):
    def make(d: TensorSample) -> TensorSample:
        if mode in d.modes:
            return d
        free = [i for i, m in enumerate(d.modes) if m == "keep"]
        if not free:
            raise Infeasible(f"no learnable input left for {mode}")
        return replace(d, modes=d.modes[:free[0]] + (mode,) + d.modes[free[0] + 1:])
    return make


def _mode(name: str, mode: str) -> Condition:
    return Condition(name, lambda u: mode in u.modes, make=_set_mode(mode))


def _set_layout(key: str):
    def make(d: TensorSample) -> TensorSample:
        if not any(fitting_layout(key, shape) for _, shape, _ in ENGINE_INPUTS):
            raise Infeasible(f"no input of the engine graphs takes a {LAYOUTS[key].name}")
        return replace(d, layout=key)
    return make


def _layout(key: str) -> Condition:
    return Condition(LAYOUTS[key].name, lambda u: layout_reached(key, u.layouts, u.shapes), make=_set_layout(key),
                     group="layout")


TENSOR_CONDITIONS = (
    _mode("new_value, then a pass", "new_value"),
    _mode("value assigned, grad kept", "assign"),
    _mode("reset_grad(), then a pass", "reset"),
    _mode("grad assigned, then a pass", "set_grad"),
    Condition("float32", lambda u: "float32" in u.dtypes, make=lambda d: replace(d, dtype="float32")),
) + tuple(_layout(key) for key in LAYOUTS)

TENSOR_INFEASIBLE: dict = {}
"""Pairs of the tensor row's conditions that cannot meet: none (its graphs have two learnable
inputs, one per mode, and a layout applies to every input whose shape takes it)."""

_DRAFTS = (
    TensorSample("fan-out", ("keep", "keep")),
    TensorSample("fan-out", ("new_value", "assign"), seed=22),
    TensorSample("sinks", ("reset", "set_grad"), values_seed=2, seed=23),
    TensorSample("chain", ("set_grad", "new_value"), "float32", values_seed=3, seed=24),
)
TENSOR_SAMPLES = _DRAFTS + tuple(_set_layout(key)(_DRAFTS[1 + k % 3]) for k, key in enumerate(LAYOUTS))
"""The row's coverage samples, the plain one first; then one per layout, made from the drafts
whose helpers change inputs (each helper meets every layout's arrays in turn)."""


TENSOR_SURFACE = ("array", "Tensor", "Tensor.shape", "Tensor.dtype", "Tensor.ndim", "Tensor.size", "Tensor.__len__",
                  "Tensor.numpy", "Tensor.item", "Tensor.detach", "Tensor.create_graph", "Tensor.backward",
                  "Tensor.topo", "Tensor.topo=", "Tensor.weights", "Tensor.weights=", "Tensor.value", "Tensor.grad")
"""What every example of the row calls (`checks.tensor_api`; `registry.surface`)."""
MODE_SURFACE = {"new_value": "Tensor.new_value", "assign": "Tensor.value=", "reset": "Tensor.reset_grad",
                "set_grad": "Tensor.grad="}
"""What a mode calls besides: a sample reaches it when one of its inputs has that mode."""


def tensor_conditions(use: TensorUse) -> set:
    return {c.name for c in TENSOR_CONDITIONS if c.reached(use)}
