"""Hypothesis strategies for Modules, their calls and their training, from the layer,
loss and optimizer tables."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from reference.cases import DropoutCase, ModuleCase, TrainCase
from reference.checks.layer_alone import DropoutRun
from reference.checks.module_calls import ModuleCalls
from reference.checks.training import EXTRA, TrainRun, weight_shapes
from reference.generators.programs import oracle_seed
from reference.programs.nets import ModuleSpec, complete, make_batch, shapes, valid
from reference.registry import DTYPES, LAYERS, MODULE_LOSSES, OPTIMIZERS
from reference.registry.layers import completing
from reference.registry.regimes import layouts_for

BATCH = st.integers(1, 4)


@st.composite
def module_specs(draw, dtype: str | None = None, max_layers: int = 5, weights: bool = False, chunkable: bool = False):
    """A consistent `ModuleSpec`, drawn layer by layer from the tracked per-sample shape: each
    layer kind that fits it (the table's `draw`), then the loss, with what the loss needs
    appended (a Flatten before logits, a Sigmoid before probabilities), and half the time a
    range of them inside a Module of their own (`ModuleSpec.block`), and half the time the
    layers also in a list. `weights`: at least
    one layer with weights (the table's layer that `completes` "weights" -- a Linear -- is
    appended to a model without). `chunkable`: a loss whose
    divisor does not depend on the values (step_single accumulation applies)."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    conv = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))) if conv \
        else (draw(st.integers(1, 3)), draw(st.integers(1, 5)))
    acts, layers = [shape], []
    for _ in range(draw(st.integers(0, max_layers))):
        options = {kind: spec.draw(acts[-1], acts) for kind, spec in LAYERS.items()}
        options = {k: s for k, s in options.items() if s is not None}
        kind = draw(st.sampled_from(sorted(options)))
        layer = draw(options[kind])
        layers.append(layer)
        acts.append(shapes(ModuleSpec(shape, tuple(layers)))[-1])
    if weights and not any(layer.spec.weights(layer) for layer in layers):
        layers.append(draw(completing("weights").draw((1, 2), [])))
        acts.append(shapes(ModuleSpec(shape, tuple(layers)))[-1])
    loss = draw(st.sampled_from(sorted(n for n, m in MODULE_LOSSES.items() if m.reduction or not chunkable)))
    layers = tuple(complete(layers, acts, loss))
    block = ()
    if layers and draw(st.booleans()):    # a Module called inside the model's forward
        start = draw(st.integers(0, len(layers) - 1))
        block = (start, draw(st.integers(start + 1, len(layers))))
        if not valid(ModuleSpec(shape, layers, loss, dtype, block)):
            block = ()
    return ModuleSpec(shape, layers, loss=loss, dtype=dtype, block=block, listed=draw(st.booleans()))


def _batches(spec, sizes, seed, zeros, offset=False):
    return tuple(make_batch(spec, b, seed + 1 + k, zeros, offset) for k, b in enumerate(sizes))


@st.composite
def module_cases(draw, step: bool = False):
    """Calls of a random Module: 1-3 calls of batch size 1-4 (it changes between calls), each
    maybe after `model_reset()`; with `step`, two calls with an optimizer step between, and
    model_reset() before the second or not; now and then a state_dict / load_state_dict round
    trip and a call after it. Values last: weights from a seed, batches from
    `make_batch` (zero rows now and then: exact zeros at a ReLU after a bias-free Linear)."""
    spec = draw(module_specs(), label="spec")
    n_calls = 2 if step else draw(st.integers(1, 3))
    sizes = [draw(BATCH) for _ in range(n_calls)]
    resets = tuple([True] + [draw(st.booleans()) for _ in range(n_calls - 1)])
    optimizer = None
    if step:
        name = draw(st.sampled_from(sorted(OPTIMIZERS)))
        optimizer = (name, draw(OPTIMIZERS[name].strategy()))
    zeros = draw(st.sampled_from([0.0, 0.3]))
    state = draw(st.booleans())
    first = spec.layers[0].spec if spec.layers else None
    offset = draw(st.sampled_from([False] + [True] * bool(first and first.offset)))   # a normalising first layer
    seed = draw(st.integers(0, 2 ** 16))
    batches = _batches(spec, sizes, seed, zeros, offset)
    noise = oracle_seed(spec, seed, resets, optimizer, state, *[a for b in batches for a in b])
    return ModuleCase(ModuleCalls(spec, seed, batches, resets, noise, optimizer, state))


@st.composite
def train_cases(draw, name: str, accumulate: bool = False):
    """Training a small random Module with optimizer `name` for 3-10 steps (batch sizes 1-4
    per step), random hyper-parameters, `model_reset()` before every call or never, the
    target marked leaf=True or not, `model.weights` in a shuffled order or not, a parameter
    outside the Module given too or not (in the loss's graph at some steps, or never), now and
    then an all-zero batch, each parameter's value in a memory layout (C-contiguous first, then
    those its shape takes: `registry.regimes`). `accumulate`: each step is 2-3 equal chunks of 1-2 samples
    through `step_single`, with a `batch_size` that makes it one whole-batch step, or 1-4, and
    `optim.zero_grad()` before every round or only before the first; otherwise, half the time,
    a penalty term on a weight itself beside its twin in the batched copy."""
    spec = draw(module_specs(max_layers=4, weights=True, chunkable=accumulate), label="spec")
    hyper = draw(OPTIMIZERS[name].strategy(), label="hyper-parameters")
    n_steps = draw(st.integers(1, 3) if accumulate else st.integers(3, 10))
    chunks = [(draw(st.integers(2, 3)), draw(st.integers(1, 2))) if accumulate else (1, draw(BATCH))
              for _ in range(n_steps)]
    reset, target_leaf, unused = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    order = None
    n = sum(len(layer.spec.weights(layer)) for layer in spec.layers)
    if draw(st.booleans()):
        order = tuple(draw(st.permutations(range(n))))
    extra_steps = tuple(k for k in range(n_steps) if draw(st.booleans())) if unused else ()
    divisor = draw(st.one_of(st.none(), st.integers(1, 4))) if accumulate else None
    zero_grad = draw(st.booleans()) if accumulate else True
    penalty = False if accumulate else draw(st.booleans())
    shapes = [shape for _, shape in weight_shapes(spec)] + [EXTRA.shape] * unused
    layouts = tuple(draw(st.sampled_from([""] + layouts_for(shape))) for shape in shapes)
    zero_step = draw(st.one_of(st.none(), st.integers(1, n_steps - 1))) if n_steps > 1 else None
    zeros = draw(st.sampled_from([0.0, 0.3]))
    seed = draw(st.integers(0, 2 ** 16))
    steps = []
    for k, (c, size) in enumerate(chunks):
        x, t = make_batch(spec, c * size, seed + 1 + k, zeros)
        if k == zero_step:
            x = np.zeros_like(x)
        steps.append(tuple((x[i * size:(i + 1) * size], t[i * size:(i + 1) * size]) for i in range(c)))
    noise = oracle_seed(spec, seed, name, hyper, reset, target_leaf, order, unused, divisor, extra_steps, layouts,
                        zero_grad, penalty, *[a for s in steps for c in s for a in c])
    return TrainCase(TrainRun(spec, seed, name, tuple(sorted(hyper.items())), tuple(steps), reset, target_leaf,
                              order, unused, noise, divisor, extra_steps, layouts, zero_grad, penalty))


@st.composite
def dropout_cases(draw):
    """Dropout alone in training mode: any shape, rate in [0, 1], seed, dtype."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    rate = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]))
    return DropoutCase(DropoutRun(shape, rate, draw(st.integers(0, 2 ** 16)), draw(st.sampled_from(DTYPES))))
