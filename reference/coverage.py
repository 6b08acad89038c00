"""The deterministic coverage pass: every row's samples, before any random example.

Like PyTorch's OpInfo `sample_inputs`, each registry entry enumerates the cases that matter
(`OpSpec.all_samples()`, the layer and optimizer tables' `samples` and layers' `alone` runs,
the Module row's `MODULE_SAMPLES`), the plain one first; this module turns them into cases
with deterministic values (the engine's graphs from `ENGINE_SAMPLES`), and adds a deep graph. `row_cases(row)` is the
pass of one report row; the gate runs every row's, in full, whatever its budget.
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from reference.cases import DeepGraphCase, DropoutCase, ErrorCase, ModuleCase, ProgramCase, TrainCase
from reference.checks.engine import DEEP_STEPS
from reference.checks.module_calls import ModuleCalls
from reference.checks.training import EXTRA, TrainRun, weight_shapes
from reference.programs.graph import Input, Node, single_op, with_loss
from reference.programs.nets import ModuleSpec, complete, make_batch, shapes
from reference.registry import ENGINE_ROW, LAYERS, LOSS_OPS, MODULE_LOSSES, MODULE_ROW, OPS, OPTIMIZERS, rows, spec_of
from reference.registry.engine_row import ENGINE_INPUTS, ENGINE_SAMPLES, GRAPHS
from reference.registry.module_row import LOSS_BASE, MODULE_SAMPLES, PLAIN, TRAINED
from reference.registry.regimes import fitting_layout, magnitude_values, spread_layouts
from reference.registry.tensor_row import TENSOR_ROW, TENSOR_SAMPLES
from reference.value_strategies import simplex_rows


def _seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


# ---------------------------------------------------------------------------- op samples
def _smooth(rng, shape, domain):
    """Values inside `domain`, at least 0.05 from 0 and from the ends of (0, 1)."""
    if domain == "unit":
        return rng.uniform(0.05, 0.95, shape)
    mag = rng.uniform(0.5, 2.0, shape)
    if domain == "simplex":
        return simplex_rows(mag)
    return mag if domain == "pos" else mag * rng.choice([-1.0, 1.0], shape)


def _kinked(spec, a, args, slot):
    """`a` with exact kink points of the op placed on purpose (torch defines them)."""
    if slot != 0 or a.ndim == 0 and spec.exact_kinks == "zeros":
        return np.zeros_like(a) if slot == 0 else a
    if spec.exact_kinks == "zeros":
        flat = a.reshape(-1).copy()
        flat[::2] = 0.0
        return flat.reshape(a.shape)
    if spec.exact_kinks == "rows":   # constant rows along the reduced axes, dyadic (exact means)
        from reference.registry import axes_of
        axes = axes_of(spec.all_args(args).get("axis"), a.ndim)
        first = a[tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.ndim))]
        return np.broadcast_to(np.round(first * 4) / 4, a.shape).copy()
    return a


def sample_values(spec, sample, names, rng) -> dict:
    """name -> array for the operands of a sample (`names` in operand order)."""
    if sample.make is not None:
        arrays = list(sample.make(rng))
    else:
        domains = spec.domains(sample.args)
        arrays = [_smooth(rng, s, domains[i]) for i, s in enumerate(sample.shapes)]
        if sample.values == "kinks":
            arrays = [_kinked(spec, a, sample.args, i) for i, a in enumerate(arrays)]
        elif sample.values == "wide":
            arrays = [a * 300.0 for a in arrays]
    dtypes = sample.operand_dtypes()
    arrays = magnitude_values(spec, sample.magnitude, sample.args, sample.shapes, dtypes, arrays)
    return {n: np.asarray(a, dtype=dtypes[i]) for i, (n, a) in enumerate(zip(names, arrays))}


def sample_case(spec, index: int) -> ProgramCase:
    """Sample `index` of `spec` as a program case; the first (plain, smooth) one is also
    checked against finite differences -- the random phase's FD properties do the rest."""
    sample = spec.all_samples()[index]
    n = 1 if sample.same_operand else len(sample.shapes)
    roles = tuple("constant" if i in sample.constant else "array" if i in sample.arrays else "input"
                  for i in range(n))
    prog, cots = single_op(spec.name, sample.shapes[:n], sample.args, sample.operand_dtypes()[:n], roles,
                           spec.domains(sample.args)[:n], sample.same_operand, sample.layouts[:n])
    rng = np.random.default_rng(_seed(spec.name, index))
    values = sample_values(spec, sample, [f"x{i}" for i in range(len(sample.shapes))], rng)
    if sample.same_operand:
        values = {"x0": values["x0"]}
    for w in cots:
        values[w] = np.asarray(rng.uniform(0.5, 1.5, prog.shape(w)) * rng.choice([-1.0, 1.0], prog.shape(w)),
                               dtype=prog.dtype(w))
    return ProgramCase(prog, values, _seed(spec.name, index, "noise"), fd=index == 0 and sample.values == "smooth")


def _op_cases(spec) -> list:
    errors = list(spec.rule.error_inputs(spec)) + list(spec.error_inputs)
    return [sample_case(spec, i) for i in range(len(spec.all_samples()))] + \
        [ErrorCase(spec.name, i) for i in range(len(errors))]


# ---------------------------------------------------------------------------- Modules
def module_case(spec: ModuleSpec, sizes=(2,), resets=None, optimizer=None, zeros=0.0, tag="",
                state=False, offset=False) -> ModuleCase:
    seed = _seed("module", spec, sizes, tag)
    batches = tuple(make_batch(spec, b, seed + k, zeros, offset) for k, b in enumerate(sizes))
    resets = tuple(resets or [True] * len(sizes))
    return ModuleCase(ModuleCalls(spec, seed % 2 ** 16, batches, resets, seed + 7, optimizer, state))


def _module_cases() -> list:
    """The Module row's samples (`registry.module_row`), then every other end a Module may have."""
    out = [module_case(ModuleSpec(s.input, s.layers, s.loss, s.dtype), s.sizes, s.resets, s.optimizer, s.zeros,
                       state=s.state) for s in MODULE_SAMPLES]
    base = LOSS_BASE
    acts = shapes(ModuleSpec(base.input, base.layers, base.loss))
    for loss in MODULE_LOSSES:
        if loss != base.loss:
            out.append(module_case(ModuleSpec(base.input, tuple(complete(base.layers, acts, loss)), loss), (2,)))
    return out


def _layer_cases(spec) -> list:
    out = []
    for k, (layer, shape) in enumerate(spec.samples):
        layers = [layer]
        acts = [shape, layer.spec.out_shape(layer, shape, [shape])]
        for dtype in ("float64", "float32") if k == 0 else ("float64",):
            model = ModuleSpec(shape, tuple(complete(layers, acts, PLAIN.loss)), PLAIN.loss, dtype)
            out.append(module_case(model, (2,)))
            if spec.offset and k == 0 and dtype == "float64":   # the large-offset regime, once per dtype
                for dt in ("float64", "float32"):
                    out.append(module_case(dataclasses.replace(model, dtype=dt), (2,), offset=True))
    return out + [DropoutCase(run) for run in spec.alone]


# ---------------------------------------------------------------------------- optimizers
def train_run(name, hyper, steps=4, chunks=1, size=2, dtype="float64", zero_steps=(), **kw) -> TrainCase:
    """Training `TRAINED` with optimizer `name`; `zero_steps`: steps whose inputs are all 0."""
    spec = ModuleSpec(TRAINED.input, TRAINED.layers, TRAINED.loss, dtype)
    seed = _seed("train", name, repr(hyper), steps, chunks, dtype, zero_steps, repr(kw))
    batches = []
    for k in range(steps):
        x, t = make_batch(spec, chunks * size, seed + k)
        if k in zero_steps:
            x = np.zeros_like(x)
        batches.append(tuple((x[i * size:(i + 1) * size], t[i * size:(i + 1) * size]) for i in range(chunks)))
    return TrainCase(TrainRun(spec, seed % 2 ** 16, name, tuple(hyper.items()), tuple(batches), noise=seed + 1, **kw))


def _optimizer_cases(spec) -> list:
    plain, visible = spec.samples[0], spec.samples[-1]
    return [train_run(spec.name, plain), train_run(spec.name, visible, steps=5),
            train_run(spec.name, plain, order=(3, 1, 2, 0), target_leaf=False, reset=False),
            train_run(spec.name, visible, steps=2, chunks=2), train_run(spec.name, plain, unused=True),
            train_run(spec.name, visible, dtype="float32"),
            train_run(spec.name, visible, steps=2, chunks=3, divisor=2),
            train_run(spec.name, visible, steps=4, zero_steps=(1, 2), unused=True, extra_steps=(0, 2)),
            train_run(spec.name, visible, steps=4, unused=True, extra_steps=(0, 1, 2, 3), layouts=_trained_layouts())]


def _trained_layouts() -> tuple:
    """Every memory layout on some parameter of `TRAINED` (and the one outside it) that takes it."""
    shapes = [shape for _, shape in weight_shapes(ModuleSpec(TRAINED.input, TRAINED.layers, TRAINED.loss))]
    return spread_layouts(shapes + [EXTRA.shape])


# ---------------------------------------------------------------------------- engine
def _program(nodes, inputs, seed) -> tuple:
    prog, cots = with_loss(inputs, nodes)
    rng = np.random.default_rng(seed)
    values = {i.name: np.asarray(rng.uniform(0.5, 1.5, i.shape) * rng.choice([-1.0, 1.0], i.shape), dtype=i.dtype)
              for i in prog.inputs}
    return prog, values


def _graph(name: str, dtype: str = "float64", layout: str = "") -> tuple:
    """(nodes, inputs) of the engine row's graph `name`, the inputs in memory layout `layout`
    where their shape takes it."""
    inputs = [Input(n, shape, dtype, role, layout=fitting_layout(layout, shape)) for n, shape, role in ENGINE_INPUTS]
    return [Node(n, op, operands, dict(args)) for n, op, operands, args in GRAPHS[name]], inputs


def _engine_cases() -> list:
    """The engine row's samples (`registry.engine_row`), then the deep graph."""
    out = []
    for s in ENGINE_SAMPLES:
        prog, values = _program(*_graph(s.graph), s.values_seed)
        out.append(ProgramCase(prog, values, s.seed, fd=s.fd, check=s.check, passes=s.passes, stop=s.stop))
    return out + [DeepGraphCase(DEEP_STEPS)]


def _tensor_cases() -> list:
    """The tensor row's samples (`registry.tensor_row`): engine graphs, inputs changed
    between two passes."""
    out = []
    for s in TENSOR_SAMPLES:
        prog, values = _program(*_graph(s.graph, s.dtype, s.layout), s.values_seed)
        out.append(ProgramCase(prog, values, s.seed, check="helpers", helpers=s.modes))
    return out


# ---------------------------------------------------------------------------- per row
def row_cases(row: str) -> list:
    """The coverage pass of one report row: its deterministic cases, the plain one first."""
    for spec in list(OPS.values()) + list(LOSS_OPS.values()):
        if spec.row == row:
            return _op_cases(spec)
    for spec in LAYERS.values():
        if spec.row == row:
            return _layer_cases(spec)
    for spec in OPTIMIZERS.values():
        if spec.row == row:
            return _optimizer_cases(spec)
    if row == MODULE_ROW:
        return _module_cases()
    if row == ENGINE_ROW:
        return _engine_cases()
    if row == TENSOR_ROW:
        return _tensor_cases()
    raise KeyError(f"no coverage samples for row {row!r}")


def coverage_units() -> list:
    """The coverage pass as tests: one per row, but one for all the optimizers' rows (the
    first torch.optim step imports torch._dynamo, ~1 s: one process pays it)."""
    optim = [spec.row for spec in OPTIMIZERS.values()]
    return [r for r in rows() if r not in optim] + ["optimizers"]


def unit_rows(unit: str) -> list:
    return [spec.row for spec in OPTIMIZERS.values()] if unit == "optimizers" else [unit]


__all__ = ["row_cases", "coverage_units", "unit_rows", "sample_case", "spec_of"]
