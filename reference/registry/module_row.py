"""The Module row's table: its conditions (with their makers), and its coverage samples as data.

Like an op's samples, a `ModuleSample` says what to run -- the model (per-sample input
shape, layers, loss, dtype), the batch sizes of its calls, which calls `model_reset()` first,
an optimizer stepping between calls (name and hyper-parameters of `OPTIMIZERS`), the share of
exact zeros in the inputs -- and the coverage pass (`reference.coverage`) turns each into a
case. The first sample is the plain one; `LOSS_BASE` is the model every other loss of
`MODULE_LOSSES` ends once; `TRAINED` is the model the optimizers' samples train.

The conditions' predicates read the calls of a Module case (`checks.module_calls.ModuleCalls`:
`batches` of (x, target), `resets`, `optimizer`, `spec`); their makers change a `ModuleSample`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from reference.registry.layers import Layer
from reference.registry.spec import Condition, Infeasible

MODULE_ROW = "module"

MODULE_SURFACE = ("Module", "Module.__call__", "Module.model_reset", "Module.__deepcopy__", "Module.named_weights",
                  "Module.state_dict", "Module.load_state_dict", "Tensor.__deepcopy__")
"""What the Module row's checks call (`checks.module_calls`; `registry.surface`): the batched
copy is a deepcopy, the state round trip names weights by attribute path."""


@dataclass(frozen=True)
class ModuleSample:
    input: tuple
    layers: tuple
    loss: str
    dtype: str = "float64"
    sizes: tuple = (2,)
    resets: tuple | None = None       # None: model_reset() before every call
    optimizer: tuple | None = None    # (name, hyper-parameters): a step after every call but the last
    zeros: float = 0.0                # see `nets.make_batch`
    state: bool = False               # a state_dict / load_state_dict round trip, then a call
    block: tuple = ()                 # layers inside a Module of their own (`nets.ModuleSpec.block`)
    listed: bool = False              # the layers also held in a list (`nets.ModuleSpec.listed`)

    def calls(self, sizes: tuple) -> "ModuleSample":
        """This sample with calls of `sizes` (the resets kept, extended by plain calls)."""
        resets = None if self.resets is None else (self.resets + (True,) * len(sizes))[:len(sizes)]
        return replace(self, sizes=tuple(sizes), resets=resets)


def _sizes(calls) -> list:
    return [len(x) for x, _ in calls.batches]


def _zero_at_kink(calls) -> bool:
    layers = calls.spec.layers
    return len(layers) >= 2 and layers[0].spec.keeps_zero_rows(layers[0]) and layers[1].spec.kink_at_zero and any(
        x.size and np.any(np.all(x == 0, axis=-1)) for x, _ in calls.batches)


def _two_calls(s: ModuleSample) -> ModuleSample:
    return s if len(s.sizes) > 1 else s.calls(s.sizes * 2)


def _changing(s: ModuleSample) -> ModuleSample:
    s = _two_calls(s)
    return s.calls(s.sizes[:-1] + (s.sizes[0] + 1,))


def _no_reset(s: ModuleSample) -> ModuleSample:
    s = _two_calls(s)
    return replace(s, resets=(True,) + (False,) * (len(s.sizes) - 1))


def _zeros_at_kink(s: ModuleSample) -> ModuleSample:
    """A bias-free first Linear before the ReLU, and rows of exact zeros in the inputs."""
    if len(s.layers) < 2 or s.layers[0].kind != "linear" or not s.layers[1].spec.kink_at_zero:
        raise Infeasible("the model does not start with a Linear and a layer with a kink at 0")
    first = Layer.make("linear", **{**dict(s.layers[0].params), "bias": False})
    return replace(s, layers=(first,) + tuple(s.layers[1:]), zeros=max(s.zeros, 0.5))


MODULE_CONDITIONS = (
    Condition("batch size 1", lambda c: 1 in _sizes(c), lambda s: s.calls((1,) + s.sizes[1:])),
    Condition("batch size changes", lambda c: len(set(_sizes(c))) > 1, _changing),
    Condition("call without model_reset", lambda c: not all(c.resets), _no_reset),
    Condition("optimizer step between calls", lambda c: bool(c.optimizer) and len(c.batches) > 1,
              lambda s: replace(_two_calls(s), optimizer=s.optimizer or ("SGD", {"lr": 0.1}))),
    Condition("float32", lambda c: c.spec.dtype == "float32", lambda s: replace(s, dtype="float32")),
    Condition("exact zero at a ReLU kink", _zero_at_kink, _zeros_at_kink),
    Condition("state_dict round trip", lambda c: c.state, lambda s: replace(s, state=True)),
    Condition("a Module inside the Module", lambda c: bool(c.spec.block),
              lambda s: replace(s, block=(0, min(2, len(s.layers))))),
    Condition("layers also held in a list", lambda c: c.spec.listed, lambda s: replace(s, listed=True)))
"""Conditions of the `module` row: how users call a Module."""

MODULE_INFEASIBLE: dict = {}
"""Pairs of the Module row's conditions that cannot meet: none."""

MLP = (Layer.make("linear", out=3, bias=True), Layer.make("relu"), Layer.make("linear", out=2, bias=True))

MODULE_SAMPLES = (
    ModuleSample((2, 3), MLP, "sse"),
    ModuleSample((2, 3), MLP, "sse", sizes=(1,)),
    ModuleSample((2, 3), MLP, "sse", sizes=(1, 3, 2), resets=(True, False, True)),
    ModuleSample((2, 3), MLP, "sse", sizes=(2, 2), resets=(True, False), optimizer=("SGD", {"lr": 0.1})),
    ModuleSample((2, 3), MLP, "sse", sizes=(2, 1), resets=(True, True),
                 optimizer=("Adam", {"lr": 0.05, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8})),
    ModuleSample((2, 3), MLP, "sse", "float32"),
    # zero rows through a bias-free Linear: exact zeros at the ReLU's kink
    ModuleSample((2, 3), (Layer.make("linear", out=3, bias=False), Layer.make("relu")), "sse", sizes=(3,), zeros=0.4),
    ModuleSample((2, 3), MLP, "sse", "float32", sizes=(2, 3), resets=(True, False), state=True),
    ModuleSample((2, 3), MLP, "sse", sizes=(2, 3), resets=(True, False), state=True, block=(1, 3), listed=True),
)
PLAIN = MODULE_SAMPLES[0]
LOSS_BASE = ModuleSample((3, 3), MLP, PLAIN.loss)
TRAINED = ModuleSample((1, 3), (Layer.make("linear", out=3, bias=True), Layer.make("tanh"),
                                Layer.make("linear", out=2, bias=True)), "mse")
