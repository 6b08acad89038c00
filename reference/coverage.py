"""The deterministic coverage pass: every row's samples, before any random example.

Like PyTorch's OpInfo `sample_inputs`, each registry entry enumerates the cases that matter
as drafts (`OpSpec.all_samples()`, `LayerSpec.drafts()`, `OptimizerSpec.drafts()`, the
Module row's `MODULE_SAMPLES`, the engine row's `ENGINE_SAMPLES`, the tensor row's
`TENSOR_SAMPLES`), the plain one first; this module turns a draft into a case with
deterministic values (`op_case`, `layer_case`, `module_sample_case`, `train_case`,
`engine_case`, `tensor_case`: the same builders make the pair samples of `reference.pairs`).
`row_cases(row)` is the pass of one report row; the gate runs every row's, in full, whatever
its budget.
"""
from __future__ import annotations

import zlib

import numpy as np

from reference.cases import DeepGraphCase, DropoutCase, ErrorCase, ModuleCase, ProgramCase, TrainCase
from reference.checks.engine import DEEP_STEPS
from reference.checks.module_calls import ModuleCalls
from reference.checks.training import EXTRA, TrainRun, weight_shapes
from reference.programs.graph import Input, Node, single_op, with_loss
from reference.programs.nets import ModuleSpec, complete, make_batch, shapes
from reference.registry import ENGINE_ROW, LAYERS, LOSS_OPS, MODULE_LOSSES, MODULE_ROW, OPS, OPTIMIZERS, rows, spec_of
from reference.registry.engine_row import ENGINE_INPUTS, ENGINE_SAMPLES, GRAPHS, EngineSample
from reference.registry.layers import DropoutRun, LayerDraft
from reference.registry.module_row import LOSS_BASE, MODULE_SAMPLES, PLAIN, TRAINED, ModuleSample
from reference.registry.optimizers import SPREAD, TrainDraft
from reference.registry.regimes import fitting_layout, magnitude_values, spread_layouts
from reference.registry.tensor_row import TENSOR_ROW, TENSOR_SAMPLES, TensorSample
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
    return op_case(spec, sample, (spec.name, index), fd=index == 0 and sample.values == "smooth")


def op_case(spec, sample, key: tuple, fd: bool) -> ProgramCase:
    """`sample` of `spec` as a program case, its values drawn from a generator seeded by `key`."""
    n = 1 if sample.same_operand else len(sample.shapes)
    roles = tuple("constant" if i in sample.constant else "array" if i in sample.arrays else "input"
                  for i in range(n))
    prog, cots = single_op(spec.name, sample.shapes[:n], sample.args, sample.operand_dtypes()[:n], roles,
                           spec.domains(sample.args)[:n], sample.same_operand, sample.layouts[:n])
    rng = np.random.default_rng(_seed(*key))
    values = sample_values(spec, sample, [f"x{i}" for i in range(len(sample.shapes))], rng)
    if sample.same_operand:
        values = {"x0": values["x0"]}
    for w in cots:
        values[w] = np.asarray(rng.uniform(0.5, 1.5, prog.shape(w)) * rng.choice([-1.0, 1.0], prog.shape(w)),
                               dtype=prog.dtype(w))
    return ProgramCase(prog, values, _seed(*key, "noise"), fd=fd)


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


def module_sample_case(s: ModuleSample) -> ModuleCase:
    """A `ModuleSample` (the Module row's draft) as a case."""
    spec = ModuleSpec(s.input, s.layers, s.loss, s.dtype, s.block, s.listed)
    return module_case(spec, s.sizes, s.resets, s.optimizer, s.zeros, state=s.state)


def _module_cases() -> list:
    """The Module row's samples (`registry.module_row`), then every other end a Module may have."""
    out = [module_sample_case(s) for s in MODULE_SAMPLES]
    base = LOSS_BASE
    acts = shapes(ModuleSpec(base.input, base.layers, base.loss))
    for loss in MODULE_LOSSES:
        if loss != base.loss:
            out.append(module_case(ModuleSpec(base.input, tuple(complete(base.layers, acts, loss)), loss), (2,)))
    return out


def layer_case(d: LayerDraft):
    """A `LayerDraft` as a case: the layer first in a Module completed to the plain loss (its
    input with a large offset where `d.offset`), or (mode "training") Dropout alone."""
    if d.mode == "training":
        return DropoutCase(DropoutRun(d.shape, d.layer.get("rate"), d.seed, d.dtype))
    acts = [d.shape, d.layer.spec.out_shape(d.layer, d.shape, [d.shape])]
    model = ModuleSpec(d.shape, tuple(complete([d.layer], acts, PLAIN.loss)), PLAIN.loss, d.dtype)
    return module_case(model, d.sizes, offset=d.offset)


# ---------------------------------------------------------------------------- optimizers
def train_case(name: str, d: TrainDraft) -> TrainCase:
    """A `TrainDraft` of optimizer `name` as a case (the options left at their defaults are
    not passed: the run's seed names only those given)."""
    options = {k: getattr(d, k) for k in ("order", "target_leaf", "reset", "unused", "divisor", "extra_steps",
                                          "zero_grad", "penalty")
               if getattr(d, k) != getattr(TrainDraft, k)}
    if d.layout:
        options["layouts"] = _trained_layouts(d.layout)
    return train_run(name, d.hyper, steps=d.steps, chunks=d.chunks, dtype=d.dtype, zero_steps=d.zero_steps, **options)


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


def _trained_layouts(layout: str) -> tuple:
    """Per parameter of `TRAINED` (and the one outside it): `layout` where its shape takes it,
    or (SPREAD) every memory layout on some parameter that takes it."""
    shapes = [shape for _, shape in weight_shapes(ModuleSpec(TRAINED.input, TRAINED.layers, TRAINED.loss))]
    shapes.append(EXTRA.shape)
    if layout == SPREAD:
        return spread_layouts(shapes)
    return tuple(fitting_layout(layout, shape) for shape in shapes)


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


def engine_case(s: EngineSample):
    """An `EngineSample` (the engine row's draft) as a case: its graph under its check, or the
    deep graph."""
    if s.graph == "deep":
        return DeepGraphCase(DEEP_STEPS)
    prog, values = _program(*_graph(s.graph), s.values_seed)
    return ProgramCase(prog, values, s.seed, fd=s.fd, check=s.check, passes=s.passes, stop=s.stop)


def tensor_case(s: TensorSample) -> ProgramCase:
    """A `TensorSample` (the tensor row's draft) as a case: an engine graph (its inputs in the
    draft's layout) whose learnable inputs change between two passes as `s.modes` says."""
    prog, values = _program(*_graph(s.graph, s.dtype, s.layout), s.values_seed)
    return ProgramCase(prog, values, s.seed, check="helpers", helpers=s.modes)


# ---------------------------------------------------------------------------- per row
def row_cases(row: str) -> list:
    """The coverage pass of one report row: its deterministic cases, the plain one first."""
    for spec in list(OPS.values()) + list(LOSS_OPS.values()):
        if spec.row == row:
            return _op_cases(spec)
    for spec in LAYERS.values():
        if spec.row == row:
            return [layer_case(d) for d in spec.drafts()]
    for spec in OPTIMIZERS.values():
        if spec.row == row:
            return [train_case(spec.name, d) for d in spec.drafts()]
    if row == MODULE_ROW:
        return _module_cases()
    if row == ENGINE_ROW:
        return [engine_case(s) for s in ENGINE_SAMPLES]
    if row == TENSOR_ROW:
        return [tensor_case(s) for s in TENSOR_SAMPLES]
    raise KeyError(f"no coverage samples for row {row!r}")


OPTIMIZER_UNITS = 1
"""The optimizers' rows are this many coverage tests (`optimizers:SGD+SGD_Momentum+...`):
one, so that only one worker pays the first torch.optim step's import of torch._dynamo
(~1 s); with their perturbed trajectories made one at a time they cost ~1.5 s of CPU in all,
which the other worker spends on the other rows meanwhile (two units: 0.2 s slower start-up
in an interleaved comparison, six runs each)."""


def coverage_units() -> list:
    """The coverage pass as tests: one per row, but the optimizers' rows in OPTIMIZER_UNITS."""
    optim = [spec.row for spec in OPTIMIZERS.values()]
    names = [name for name in OPTIMIZERS]
    groups = ["optimizers:" + "+".join(names[k::OPTIMIZER_UNITS]) for k in range(OPTIMIZER_UNITS)]
    return [r for r in rows() if r not in optim] + groups


def unit_rows(unit: str) -> list:
    if unit.startswith("optimizers:"):
        return [OPTIMIZERS[name].row for name in unit.split(":", 1)[1].split("+")]
    return [unit]


__all__ = ["row_cases", "coverage_units", "unit_rows", "sample_case", "spec_of", "op_case", "layer_case",
           "module_sample_case", "train_case", "engine_case", "tensor_case"]
