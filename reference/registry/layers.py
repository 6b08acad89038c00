"""The layer table: one `LayerSpec` per pygrad layer class a random Module may hold.

An entry states everything the suite needs about its layer: which per-sample activation
shapes it accepts and what it returns, how hypothesis draws its parameters, the pygrad code
that builds and calls it, its forward as registry ops (the oracle: the layer as the design
defines it), its weights with their torch.nn layout, a torch.nn twin (for the unit tests
that cross-check the oracle), its coverage samples and its conditions. Adding a layer to
pygrad means its class plus one entry here.

Shapes are per sample (the batch axis excluded): (C, H, W) for conv stacks, (n, features)
for MLPs and after `Flatten`, which maps (...) to (1, prod(...)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from reference.registry.regimes import offset_input_condition
from reference.registry.spec import Condition


class SpecError(ValueError):
    """A Module description is not consistent (shapes, skip indices, loss requirements)."""


@dataclass(frozen=True)
class Layer:
    """One layer of a random Module: its kind and parameters (sorted (name, value) pairs)."""

    kind: str
    params: tuple = ()

    @classmethod
    def make(cls, kind: str, **params) -> "Layer":
        return cls(kind, tuple(sorted(params.items())))

    def get(self, key: str, default=None):
        return dict(self.params).get(key, default)

    @property
    def spec(self) -> "LayerSpec":
        if self.kind not in LAYERS:
            raise SpecError(f"Layer: kind must be one of {tuple(LAYERS)}, got {self.kind!r}")
        return LAYERS[self.kind]

    def __repr__(self) -> str:
        return f"Layer.make({', '.join([repr(self.kind)] + [f'{k}={v!r}' for k, v in self.params])})"


@dataclass(frozen=True)
class LayerUse:
    """A layer inside one example, as condition predicates see it."""

    layer: Layer
    shape: tuple          # per-sample input shape
    batches: tuple        # batch sizes of the calls
    dtype: str
    mode: str = "eval"    # Dropout: "eval" (inside a Module) or "training"
    offset: bool = False  # its input is the Module's, with a large offset and a small spread


@dataclass(frozen=True)
class LayerDraft:
    """A layer row's coverage draft: the layer, its per-sample input shape, the dtype, the
    batch sizes of the Module's calls, and the mode -- "eval" (inside a Module, completed to
    the plain Module loss) or "training" (Dropout alone, values from `seed`)."""

    layer: Layer
    shape: tuple
    dtype: str = "float64"
    sizes: tuple = (2,)
    mode: str = "eval"
    seed: int = 0
    offset: bool = False   # the Module's input with a large offset and a small spread (LayerSpec.offset)


def layer_param(**params):
    """Maker: the draft's layer with the given parameters."""
    def make(draft: LayerDraft) -> LayerDraft:
        return replace(draft, layer=Layer.make(draft.layer.kind, **{**dict(draft.layer.params), **params}))
    return make


def draft_field(**fields):
    """Maker: the draft with the given fields (shape, dtype, sizes, mode)."""
    def make(draft: LayerDraft) -> LayerDraft:
        return replace(draft, **fields)
    return make


@dataclass(frozen=True)
class DropoutRun:
    """Dropout called alone in training mode (a Module calls its layers in eval mode): the
    input shape, the rate, the seed of the values and of `np.random`, the dtype."""

    shape: tuple
    rate: float
    seed: int
    dtype: str = "float64"

    def arrays(self) -> tuple:
        """(x, cotangent): x away from 0 (the dropped entries are the output's zeros)."""
        rng = np.random.default_rng(self.seed)
        x = rng.uniform(0.5, 2.0, self.shape) * rng.choice([-1.0, 1.0], self.shape)
        return x.astype(self.dtype), rng.standard_normal(self.shape).astype(self.dtype)


@dataclass(frozen=True)
class Weight:
    """A weight attribute of a layer and its torch.nn parameter: `to_torch(a)` maps the
    pygrad array (value or gradient) to torch's layout."""

    attr: str
    torch_name: str
    to_torch: Callable


@dataclass(frozen=True)
class LayerSpec:
    """See the module docstring. `draw(shape, earlier)` returns a strategy of `Layer`s (or
    None when the layer does not fit `shape`); `out_shape(layer, shape, earlier)` raises
    SpecError; `code(layer, shape, dtype, name)` is the constructor; `call_args(layer, vars)`
    the arguments after the input in `forward`; `forward(node, layer, cur, acts, w)` adds the
    layer's registry nodes (`w(attr)` names a weight's program input); `weights(layer)` the
    present weights; `torch(layer, shape)` a torch.nn module for the twin (or None) and
    `torch_forward(module, layer, h, acts)` its forward; `alone`: runs of the layer by itself
    for what a Module cannot show (`DropoutRun`s: Dropout in training mode), which the
    coverage pass wraps into cases.

    Facts the Module machinery reads: `probabilities` (its output lies in [0, 1]: a loss on
    probabilities may follow it), `kink_at_zero` (its derivative jumps at 0, where torch
    defines it), `keeps_zero_rows(layer)` (a zero row of its input comes out of its weights as
    an exact zero row: a bias-free Linear, how a Module call feeds exact zeros to the next
    layer's kink), `completes` ("logits", "probabilities" or "weights": the layer appended to
    a Module whose loss needs per-sample logits (n, w), probabilities, or some weight)."""

    kind: str
    cls: str
    draw: Callable
    out_shape: Callable
    code: Callable
    forward: Callable
    call_args: Callable = lambda layer, acts: ""
    weights: Callable = lambda layer: ()
    torch: Callable = lambda layer, shape: None
    torch_forward: Callable = None
    samples: tuple = ()
    conditions: tuple = field(default_factory=tuple)
    alone: tuple = ()
    probabilities: bool = False
    kink_at_zero: bool = False
    keeps_zero_rows: Callable = lambda layer: False
    completes: str = ""
    offset: bool = False
    infeasible: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.offset:   # it normalises: the large-offset input regime (registry regimes)
            offset = offset_input_condition(draft_field(offset=True))
            object.__setattr__(self, "conditions", tuple(self.conditions) + (offset,))

    @property
    def row(self) -> str:
        return f"layer:{self.cls}"

    def drafts(self) -> list:
        """The coverage drafts: each sample in a Module (the first also in float32, and for a
        layer that normalises, with a large-offset input in both dtypes), then the runs alone."""
        out = [LayerDraft(layer, shape) for layer, shape in self.samples]
        out[1:1] = [replace(out[0], dtype="float32")] if out else []
        if self.offset and out:
            out[2:2] = [replace(d, offset=True) for d in out[:2]]
        return out + [LayerDraft(Layer.make(self.kind, rate=run.rate), run.shape, run.dtype, mode="training",
                                 seed=run.seed) for run in self.alone]


def _dt(dtype: str) -> str:
    return "" if dtype == "float64" else f", dtype=np.{dtype}"


_BATCH = Condition("batch > 1", lambda u: max(u.batches, default=1) > 1, draft_field(sizes=(2,)))
_F32 = Condition("float32", lambda u: u.dtype == "float32", draft_field(dtype="float32"))
_NO_BIAS = Condition("no bias", lambda u: not u.layer.get("bias"), layer_param(bias=False))


# ---------------------------------------------------------------------------- Linear
def _linear_out(layer, shape, earlier):
    if len(shape) < 2:
        raise SpecError(f"linear needs a per-sample shape of 2+ dims, got {shape}")
    return shape[:-1] + (layer.get("out"),)


def _linear_forward(node, layer, cur, acts, w):
    out = node("matmul", (cur, w("W")))
    return node("add", (out, w("B"))) if layer.get("bias") else out


LINEAR_W = Weight("W", "weight", lambda a: a[0].T)
LINEAR_B = Weight("B", "bias", lambda a: a[0, 0])


def _linear_draw(shape, earlier):
    if len(shape) < 2:
        return None
    return st.builds(lambda o, b: Layer.make("linear", out=o, bias=b), st.integers(1, 5), st.booleans())


# ---------------------------------------------------------------------------- Conv2D
def _conv_out(layer, shape, earlier):
    if len(shape) != 3:
        raise SpecError(f"conv needs a per-sample shape (C, H, W), got {shape}")
    (kh, kw), s, p = layer.get("kernel"), layer.get("stride", 1), layer.get("padding", 0)
    h, w = shape[1] + 2 * p, shape[2] + 2 * p
    if kh > h or kw > w:
        raise SpecError(f"conv kernel {(kh, kw)} is larger than the padded input {(h, w)}")
    return (layer.get("out"), (h - kh) // s + 1, (w - kw) // s + 1)


def _conv_code(layer, shape, dtype, name):
    kh, kw = layer.get("kernel")
    extra = (f", stride={layer.get('stride')}" if layer.get("stride", 1) != 1 else "") + \
            (f", padding={layer.get('padding')}" if layer.get("padding", 0) else "")
    bias = "" if layer.get("bias") else ", bias=False"
    return f"Conv2D({layer.get('out')}, {shape[0]}, {kh}, {kw}{bias}, label={name!r}{_dt(dtype)}{extra})"


def _conv_forward(node, layer, cur, acts, w):
    out = node("conv2D", (w("kw"), cur), stride=layer.get("stride", 1), padding=layer.get("padding", 0))
    return node("add", (out, w("kb"))) if layer.get("bias") else out


def _conv_draw(shape, earlier):
    if len(shape) != 3:
        return None

    @st.composite
    def draw(d):
        pad = d(st.integers(0, 1))
        kh, kw = d(st.integers(1, min(3, shape[1] + 2 * pad))), d(st.integers(1, min(3, shape[2] + 2 * pad)))
        return Layer.make("conv", out=d(st.integers(1, 3)), kernel=(kh, kw), stride=d(st.integers(1, 2)),
                          padding=pad, bias=d(st.booleans()))
    return draw()


def _conv_torch(layer, shape):
    return torch.nn.Conv2d(shape[0], layer.get("out"), tuple(layer.get("kernel")), stride=layer.get("stride", 1),
                           padding=layer.get("padding", 0), bias=layer.get("bias"), dtype=torch.float64)


CONV_KW = Weight("kw", "weight", lambda a: a[0])
CONV_KB = Weight("kb", "bias", lambda a: a[0, :, 0, 0])


# ---------------------------------------------------------------------------- AddNorm
def _addnorm_out(layer, shape, earlier):
    skip = layer.get("skip")
    if skip is not None:
        if earlier is None or not 0 <= skip < len(earlier):
            raise SpecError(f"addnorm skip {skip} does not name an earlier activation")
        if earlier[skip] != shape:
            raise SpecError(f"addnorm skip {skip} has shape {earlier[skip]}, its input {shape}")
    return shape


def _addnorm_forward(node, layer, cur, acts, w):
    """gain * (y - mean) / sqrt(var + eps) + bias over the last axis, y = x + skip."""
    skip = layer.get("skip")
    y = node("add", (cur, cur if skip is None else acts[skip]))
    c = node("sub", (y, node("mean", (y,))))
    var = node("mean", (node("mul", (c, c)),))
    r = node("pow", (node("radd", (var,), const=node.const(layer.get("epsilon"))),), p=-0.5)
    scaled = node("rmul", (node("mul", (c, r)),), const=node.const(layer.get("gain")))
    return node("radd", (scaled,), const=node.const(layer.get("shift")))


def _addnorm_draw(shape, earlier):
    if shape[-1] < 2:
        return None   # a row of one entry normalises to exactly 0: nothing to check
    same = [j for j, s in enumerate(earlier) if s == shape]
    return st.builds(lambda skip, gain, shift: Layer.make("addnorm", skip=skip, gain=gain, shift=shift,
                                                          epsilon=1e-5),
                     st.sampled_from([None] + same), st.sampled_from([1.0, 0.5, 2.0]), st.sampled_from([0.0, 0.25]))


def _addnorm_torch_forward(module, layer, h, acts):
    skip = layer.get("skip")
    y = h + (h if skip is None else acts[skip])
    return F.layer_norm(y, (y.shape[-1],), eps=layer.get("epsilon")) * layer.get("gain") + layer.get("shift")


# ---------------------------------------------------------------------------- the table
def _same(layer, shape, earlier):
    return shape


def _simple(kind, cls, op, conditions=(), **facts):
    return LayerSpec(kind, cls, draw=lambda shape, earlier: st.just(Layer.make(kind)), out_shape=_same,
                     code=lambda layer, shape, dtype, name: f"{cls}()",
                     forward=lambda node, layer, cur, acts, w: node(op, (cur,)),
                     torch_forward=lambda module, layer, h, acts: getattr(torch, op)(h),
                     samples=((Layer.make(kind), (2, 3)),), conditions=(_BATCH, _F32) + tuple(conditions), **facts)


def _softmax_axis_ok(layer, shape, earlier):
    axis = layer.get("axis", -1)
    if not (-len(shape) <= axis <= len(shape) and axis != 0):
        raise SpecError(f"softmax axis {axis} is not a non-batch axis of {(None,) + shape}")
    return shape


def _flatten_forward(node, layer, cur, acts, w):
    return node("reshape", (cur,), shape=(node.batch, 1, -1))


_LIST = [
    LayerSpec("linear", "Linear", draw=_linear_draw, out_shape=_linear_out,
              code=lambda layer, shape, dtype, name: f"Linear({shape[-1]}, {layer.get('out')}"
                                                     f"{'' if layer.get('bias') else ', bias=False'}, "
                                                     f"label={name!r}{_dt(dtype)})",
              forward=_linear_forward,
              weights=lambda layer: (LINEAR_W,) + ((LINEAR_B,) if layer.get("bias") else ()),
              torch=lambda layer, shape: torch.nn.Linear(shape[-1], layer.get("out"), bias=layer.get("bias"),
                                                         dtype=torch.float64),
              torch_forward=lambda module, layer, h, acts: module(h),
              samples=((Layer.make("linear", out=3, bias=True), (2, 4)),
                       (Layer.make("linear", out=2, bias=False), (1, 3))),
              conditions=(_BATCH, _F32, _NO_BIAS,
                          Condition("n > 1 rows", lambda u: u.shape[0] > 1,
                                    lambda d: replace(d, shape=(2,) + tuple(d.shape[1:])))),
              keeps_zero_rows=lambda layer: not layer.get("bias"), completes="weights"),
    LayerSpec("conv", "Conv2D", draw=_conv_draw, out_shape=_conv_out, code=_conv_code, forward=_conv_forward,
              weights=lambda layer: (CONV_KW,) + ((CONV_KB,) if layer.get("bias") else ()),
              torch=_conv_torch, torch_forward=lambda module, layer, h, acts: module(h),
              samples=((Layer.make("conv", out=2, kernel=(2, 2), stride=1, padding=0, bias=True), (1, 4, 4)),
                       (Layer.make("conv", out=3, kernel=(3, 2), stride=2, padding=1, bias=False), (2, 5, 4))),
              conditions=(_BATCH, _F32, Condition("stride > 1", lambda u: u.layer.get("stride", 1) > 1,
                                                  layer_param(stride=2)),
                          Condition("padding > 0", lambda u: u.layer.get("padding", 0) > 0, layer_param(padding=1)),
                          Condition("outC > 1", lambda u: u.layer.get("out") > 1, layer_param(out=2)),
                          Condition("inC > 1", lambda u: u.shape[0] > 1,
                                    lambda d: replace(d, shape=(2,) + tuple(d.shape[1:]))),
                          _NO_BIAS)),
    LayerSpec("flatten", "Flatten", draw=lambda shape, earlier: st.just(Layer.make("flatten")),
              out_shape=lambda layer, shape, earlier: (1, math.prod(shape)),
              code=lambda layer, shape, dtype, name: "Flatten()", forward=_flatten_forward,
              torch_forward=lambda module, layer, h, acts: h.reshape(h.shape[0], 1, -1),
              samples=((Layer.make("flatten"), (2, 3, 3)),),
              conditions=(_BATCH, Condition("from (C, H, W)", lambda u: len(u.shape) == 3,
                                            draft_field(shape=(2, 3, 3)))), completes="logits"),
    _simple("relu", "ReLU", "relu", kink_at_zero=True),
    _simple("tanh", "Tanh", "tanh"),
    _simple("sigmoid", "Sigmoid", "sigmoid", probabilities=True, completes="probabilities"),
    LayerSpec("softmax", "Softmax",
              draw=lambda shape, earlier: st.sampled_from(sorted({-1, 1, -len(shape)})).map(
                  lambda a: Layer.make("softmax", axis=a)),
              out_shape=_softmax_axis_ok, code=lambda layer, shape, dtype, name: f"Softmax(axis={layer.get('axis')})",
              forward=lambda node, layer, cur, acts, w: node("softmax", (cur,), axis=layer.get("axis")),
              torch_forward=lambda module, layer, h, acts: torch.softmax(h, dim=layer.get("axis")),
              samples=((Layer.make("softmax", axis=-1), (2, 3)), (Layer.make("softmax", axis=1), (3, 2))),
              conditions=(_BATCH, Condition("non-last axis", lambda u: u.layer.get("axis") % (len(u.shape) + 1)
                                            != len(u.shape), layer_param(axis=1))), probabilities=True, offset=True),
    LayerSpec("addnorm", "AddNorm", draw=_addnorm_draw, out_shape=_addnorm_out,
              code=lambda layer, shape, dtype, name: f"AddNorm(gain={layer.get('gain')!r}, "
                                                     f"bias={layer.get('shift')!r}, epsilon={layer.get('epsilon')!r})",
              call_args=lambda layer, acts: f", {acts[-1] if layer.get('skip') is None else acts[layer.get('skip')]}",
              forward=_addnorm_forward, torch_forward=_addnorm_torch_forward,
              samples=((Layer.make("addnorm", skip=None, gain=1.0, shift=0.0, epsilon=1e-5), (2, 3)),
                       (Layer.make("addnorm", skip=0, gain=2.0, shift=0.25, epsilon=1e-5), (2, 4))),
              conditions=(_BATCH, Condition("skip from an earlier activation", lambda u: u.layer.get("skip") is not None,
                                            layer_param(skip=0)),
                          Condition("gain or bias", lambda u: u.layer.get("gain") != 1 or u.layer.get("shift") != 0,
                                    layer_param(gain=2.0))),
              offset=True),
    LayerSpec("dropout", "Dropout", draw=lambda shape, earlier: st.just(Layer.make("dropout", rate=0.1)),
              out_shape=_same, code=lambda layer, shape, dtype, name: f"Dropout(rate={layer.get('rate')!r})",
              call_args=lambda layer, acts: ", training=False",
              forward=lambda node, layer, cur, acts, w: cur,
              torch_forward=lambda module, layer, h, acts: h,
              samples=((Layer.make("dropout", rate=0.25), (2, 3)),),
              alone=(DropoutRun((4, 5), 0.25, 1), DropoutRun((3, 4), 0.5, 2, "float32")),
              conditions=(Condition("eval mode in a Module", lambda u: u.mode == "eval", draft_field(mode="eval"),
                                    group="mode"),
                          Condition("training mode", lambda u: u.mode == "training", draft_field(mode="training"),
                                    group="mode"))),
]

LAYERS: dict = {spec.kind: spec for spec in _LIST}
"""Layer kind -> spec."""


def completing(need: str) -> LayerSpec:
    """The layer appended to a Module whose loss needs `need` ("logits", "probabilities",
    "weights"): the table's entry that `completes` it."""
    return next(spec for spec in LAYERS.values() if spec.completes == need)


def layer_conditions(use: LayerUse) -> set:
    return {c.name for c in use.layer.spec.conditions if c.reached(use)}
