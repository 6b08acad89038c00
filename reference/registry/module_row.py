"""The Module row's table: its conditions, and its coverage samples as data.

Like an op's samples, a `ModuleSample` says what to run -- the model (per-sample input
shape, layers, loss, dtype), the batch sizes of its calls, which calls `model_reset()` first,
an optimizer stepping between calls (name and hyper-parameters of `OPTIMIZERS`), the share of
exact zeros in the inputs -- and the coverage pass (`reference.coverage`) turns each into a
case. The first sample is the plain one; `LOSS_BASE` is the model every other loss of
`MODULE_LOSSES` ends once; `TRAINED` is the model the optimizers' samples train.
"""
from __future__ import annotations

from dataclasses import dataclass

from reference.registry.layers import Layer

MODULE_ROW = "module"

MODULE_CONDITIONS = ("batch size 1", "batch size changes", "call without model_reset",
                     "optimizer step between calls", "float32", "exact zero at a ReLU kink", "state_dict round trip")
"""Conditions of the `module` row: how users call a Module."""

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
)
PLAIN = MODULE_SAMPLES[0]
LOSS_BASE = ModuleSample((3, 3), MLP, PLAIN.loss)
TRAINED = ModuleSample((1, 3), (Layer.make("linear", out=3, bias=True), Layer.make("tanh"),
                                Layer.make("linear", out=2, bias=True)), "mse")
