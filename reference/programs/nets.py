"""Random Modules: a plain-data description, its pygrad code, and its forward as a program.

A `ModuleSpec` is the per-sample input shape, a tuple of `Layer`s and the name of its loss
(`registry.MODULE_LOSSES`). It is what strategies draw (structure first, so hypothesis
shrinks it layer by layer) and what reports print. Everything layer-specific comes from the
layer table (`registry.LAYERS`):

- `module_code(spec)`: the `Model(Module)` class and `loss_fn(y_pred, y_true)`; `build`
  compiles exactly that code, so a printed reproducer and the model that ran cannot drift;
- `module_program(spec, batch, weights)`: the forward pass and loss written with registry
  ops (the layers as the design defines them) -- run in torch float64 it is the Module's
  oracle, with the suite's rounding model and tolerance rule;
- `make_batch(spec, batch, seed)`: inputs and targets.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from reference.numerics import DTYPES
from reference.programs.graph import Input, Node, Program
from reference.registry import MODULE_LOSSES, Layer, SpecError
from reference.registry.layers import completing
from reference.registry.regimes import with_offset


@dataclass(frozen=True)
class ModuleSpec:
    """A model: per-sample input shape, layers in order, loss, dtype of the pygrad side.
    `block` = (start, stop): layers start..stop-1 sit in a Module of their own (`Block`,
    attribute `block`) that the model calls inside its forward; () for none. `listed`: the
    model also holds its layers in a list (`self.layers`), as users often do: its copy meets
    each layer twice."""

    input: tuple
    layers: tuple = ()
    loss: str = "sse"
    dtype: str = "float64"
    block: tuple = ()
    listed: bool = False

    def __post_init__(self):
        object.__setattr__(self, "input", tuple(self.input))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "block", tuple(self.block))


@dataclass(frozen=True)
class WeightRef:
    """One weight of a built model: its attribute path ("linear0.W"), shape, uid and the
    layer table's `Weight` (the torch.nn layout)."""

    name: str
    shape: tuple
    uid: int
    layout: object

    @property
    def program_input(self) -> str:
        return self.name.replace(".", "_")


def layer_name(i: int, layer) -> str:
    """The attribute name of layer `i`, e.g. `conv0`, `relu1`."""
    return f"{layer.kind}{i}"


BLOCK = "block"
"""The attribute of the Module inside the model (`ModuleSpec.block`)."""


def in_block(spec: ModuleSpec, i: int) -> bool:
    return bool(spec.block) and spec.block[0] <= i < spec.block[1]


def layer_path(spec: ModuleSpec, i: int) -> str:
    """The attribute path of layer `i` from the model, e.g. `linear0` or `block.relu1`."""
    name = layer_name(i, spec.layers[i])
    return f"{BLOCK}.{name}" if in_block(spec, i) else name


def _check_block(spec: ModuleSpec) -> None:
    """The block is a non-empty range of layers whose skips stay inside it, and no layer
    after it skips from an activation inside it (the block returns only its last)."""
    if not spec.block:
        return
    if len(spec.block) != 2 or not 0 <= spec.block[0] < spec.block[1] <= len(spec.layers):
        raise SpecError(f"block must be (start, stop) with 0 <= start < stop <= {len(spec.layers)}, got {spec.block}")
    start, stop = spec.block
    for i, layer in enumerate(spec.layers):
        skip = layer.get("skip")
        if skip is None:
            continue
        if start <= i < stop and skip < start:
            raise SpecError(f"layer {i} in the block skips from activation {skip}, before the block")
        if i >= stop and start < skip < stop:
            raise SpecError(f"layer {i} skips from activation {skip}, inside the block")


def shapes(spec: ModuleSpec) -> list:
    """Per-sample shapes of every activation: [input, after layer 0, ...]. Raises SpecError
    when the spec is inconsistent."""
    if not (2 <= len(spec.input) <= 3 and all(isinstance(n, int) and n >= 1 for n in spec.input)):
        raise SpecError(f"input must be a per-sample shape (n, features) or (C, H, W), got {spec.input}")
    if spec.loss not in MODULE_LOSSES:
        raise SpecError(f"loss must be one of {tuple(MODULE_LOSSES)}, got {spec.loss!r}")
    if spec.dtype not in DTYPES:
        raise SpecError(f"dtype must be one of {DTYPES}, got {spec.dtype!r}")
    acts = [tuple(spec.input)]
    for layer in spec.layers:
        acts.append(tuple(layer.spec.out_shape(layer, acts[-1], acts)))
    _check_block(spec)
    loss = MODULE_LOSSES[spec.loss]
    if loss.logits and len(acts[-1]) != 2:
        raise SpecError(f"{spec.loss} needs logits of per-sample shape (n, w), got {acts[-1]}")
    if loss.probabilities and (not spec.layers or not spec.layers[-1].spec.probabilities):
        raise SpecError(f"{spec.loss} needs a last layer sigmoid or softmax (predictions in [0, 1])")
    return acts


def valid(spec: ModuleSpec) -> bool:
    try:
        shapes(spec)
    except SpecError:
        return False
    return True


def complete(layers: list, acts: list, loss: str) -> list:
    """`layers` with what the loss needs appended: a Flatten before logits, a Sigmoid before
    probabilities."""
    need = MODULE_LOSSES[loss]
    layers = list(layers)
    if need.logits and len(acts[-1]) != 2:
        layers.append(Layer.make(completing("logits").kind))
    if need.probabilities and (not layers or not layers[-1].spec.probabilities):
        layers.append(Layer.make(completing("probabilities").kind))
    return layers


# ---------------------------------------------------------------------------- pygrad code
def _class_code(cls: str, spec: ModuleSpec, first: int, last: int, acts: list, dt: str, inner: tuple = (),
                listed: bool = False) -> list:
    """A Module class holding layers first..last-1 (its forward's input is activation
    `first`); `inner` = (start, stop): those layers are the Module at attribute `block`;
    `listed`: the attributes also in a list `self.layers`."""
    parts = []   # (attribute, constructor, activation in, activation out, the layer or None for the block)
    i = first
    while i < last:
        if inner and i == inner[0]:
            parts.append((BLOCK, f"{BLOCK.capitalize()}()", i, inner[1], ""))
            i = inner[1]
            continue
        layer = spec.layers[i]
        name = layer_name(i, layer)
        parts.append((name, layer.spec.code(layer, acts[i], spec.dtype, name), i, i + 1, layer))
        i += 1
    var = [None] * first + ["x"] + [f"h{k + 1}" for k in range(first, len(spec.layers))]
    lines = [f"class {cls}(Module):", "    def __init__(self):"]
    lines += [f"        self.{attr} = {code}" for attr, code, *_ in parts]
    if listed:
        lines.append(f"        self.layers = [{', '.join(f'self.{attr}' for attr, *_ in parts)}]")
    lines.append(f"        super().__init__(x=Tensor(np.zeros({(1,) + acts[first]!r}){dt}, leaf=True))")
    lines += ["", "    def forward(self, x):"]
    for attr, _, a, b, layer in parts:
        call = f"{var[a]}{layer.spec.call_args(layer, var[:a + 1])}" if layer else f"x={var[a]}"   # a Module: keywords
        lines.append(f"        {var[b]} = self.{attr}({call})")
    lines.append(f"        return {var[last]}")
    return lines


def module_code(spec: ModuleSpec) -> str:
    """The class `Model` (after the class `Block` of its inner Module, if any) and the
    function `loss_fn` (no imports, no instance)."""
    acts = shapes(spec)
    dt = "" if spec.dtype == "float64" else f", dtype=np.{spec.dtype}"
    lines = []
    if spec.block:
        lines += _class_code(BLOCK.capitalize(), spec, *spec.block, acts, dt) + ["", ""]
    lines += _class_code("Model", spec, 0, len(spec.layers), acts, dt, spec.block, spec.listed)
    lines += ["", "", "def loss_fn(y_pred, y_true):", f"    return {MODULE_LOSSES[spec.loss].code}"]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=256)
def _compiled(spec: ModuleSpec) -> dict:
    """Namespace holding `Model` and `loss_fn`, compiled from the printed code."""
    import pygrad
    ns: dict = {"__name__": "reference_generated_model", "np": np, **{n: getattr(pygrad, n) for n in pygrad.__all__}}
    exec(compile(module_code(spec), f"<pygrad model {spec!r}>", "exec"), ns)  # noqa: S102 - our own printer
    return ns


def loss_fn(spec: ModuleSpec):
    """The pygrad loss of `spec`: `loss_fn(y_pred, y_true) -> scalar Tensor`."""
    return _compiled(spec)["loss_fn"]


def weight(model, name: str):
    """The pygrad Tensor at attribute path `name` (e.g. "linear0.W") of `model`."""
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def build(spec: ModuleSpec, seed: int) -> tuple:
    """(pygrad model, [WeightRef]): the `Model` of `module_code(spec)` initialised under
    `np.random.seed(seed)` (the global NumPy state is restored after). The weights are read
    from the layers (not from `model.weights`), so a Module that records its weights wrongly
    is still checked in full."""
    ns = _compiled(spec)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        model = ns["Model"]()
    finally:
        np.random.set_state(state)
    refs = []
    for i, layer in enumerate(spec.layers):
        for w in layer.spec.weights(layer):
            name = f"{layer_path(spec, i)}.{w.attr}"
            t = weight(model, name)
            refs.append(WeightRef(name, tuple(t.shape), t.uid, w))
    return model, refs


def make_batch(spec: ModuleSpec, batch: int, seed, zeros: float = 0.0, offset: bool = False) -> tuple:
    """(x, target) float64 arrays for `batch` samples: x standard normal (moved by the
    large offset of its dtype with `offset`: registry regimes), the target from the loss's
    entry.

    `zeros`: the probability that an entry of x, and separately a whole row of x (its last
    axis), is exactly 0. A zero row through a bias-free Linear (a zero patch through a
    bias-free Conv2D) gives exact zeros to the next ReLU: its kink, where torch says 0."""
    rng = np.random.default_rng(seed)
    acts = shapes(spec)
    x = rng.standard_normal((batch,) + acts[0])
    if zeros:
        x[rng.random(x.shape) < zeros] = 0.0
        x[rng.random(x.shape[:-1]) < zeros] = 0.0
    if offset:
        x = with_offset(x, spec.dtype, "real")
    return x, MODULE_LOSSES[spec.loss].target(rng, (batch,) + acts[-1])


# ---------------------------------------------------------------------------- the oracle's program
class _Builder:
    """Adds registry nodes to a program under construction: `node(op, operands, **args)`."""

    def __init__(self, dtype: str, batch: int):
        self.dtype, self.batch, self.nodes = dtype, batch, []
        self._counter = itertools.count()

    def __call__(self, op, operands, **args) -> str:
        name = f"v{next(self._counter)}"
        self.nodes.append(Node(name, op, tuple(operands), args))
        return name

    def const(self, v: float) -> float:
        """A Python float constant as pygrad sees it: NumPy casts it to the tensor's dtype."""
        return float(np.asarray(v, dtype=self.dtype))


def module_program(spec: ModuleSpec, batch: int, weights) -> tuple:
    """(Program, [activation node names]): the forward pass of `spec` on a batch and its
    loss, written with registry ops exactly as the design defines the layers and losses.
    Inputs: "x" (an input), one weight per `WeightRef` (`program_input`), the target "y"
    (a constant); the root is the loss. Activation 0 is "x", activation i the output of
    layer i - 1."""
    acts = shapes(spec)
    dt = spec.dtype
    inputs = [Input("x", (batch,) + acts[0], dt)]
    inputs += [Input(w.program_input, w.shape, dt, role="weight") for w in weights]
    inputs.append(Input("y", (batch,) + acts[-1], dt, role="constant"))
    node = _Builder(dt, batch)
    h = ["x"]
    for i, layer in enumerate(spec.layers):
        prefix = layer_path(spec, i).replace(".", "_")
        h.append(layer.spec.forward(node, layer, h[-1], h, lambda attr, p=prefix: f"{p}_{attr}"))
    root = MODULE_LOSSES[spec.loss].add(node, h[-1], "y")
    return Program(tuple(inputs), tuple(node.nodes), root), h


def program_values(spec: ModuleSpec, weights, values: dict, x, target, cast: bool = True) -> dict:
    """Input values of `module_program`: x and the target as the dtype holds them, and the
    weights (attribute path -> array), cast to the dtype too unless `cast` is False (an exact
    float64 trajectory)."""
    dt = spec.dtype
    out = {"x": np.asarray(x, dtype=dt), "y": np.asarray(target, dtype=dt)}
    for w in weights:
        out[w.program_input] = np.asarray(values[w.name], dtype=dt if cast else None)
    return out


def ops_of(spec: ModuleSpec) -> set:
    """The registry ops (and loss classes) the Module's forward and loss use."""
    node = _Builder(spec.dtype, 1)
    h = ["x"]
    for i, layer in enumerate(spec.layers):
        h.append(layer.spec.forward(node, layer, h[-1], h, lambda attr, i=i: f"w{i}_{attr}"))
    MODULE_LOSSES[spec.loss].add(node, h[-1], "y")
    return {n.op for n in node.nodes}
