"""The workloads in pygrad, as its users write them. Imports pygrad and NumPy, never torch.

Each builder returns a `Bench` whose step is forward + backward (+ update), seeded as
pygrad's `backward()` seeds a non-scalar output: ones of its shape. Only the public API is
used, so the same steps time any version of pygrad (the regression check)."""
from __future__ import annotations

import numpy as np

from benchmarks import data
from benchmarks.core import Bench, NotAvailable
from pygrad import Tensor


def chain(n_ops: int = data.CHAIN_OPS) -> Bench:
    x = Tensor(data.chain_input())
    last = {}

    def step():
        y = x
        for _ in range(n_ops // 4):
            y = (y * x + x).tanh() * x
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


def loss(logits, t):
    return -(t * logits.softmax_log()).sum() * (1 / logits.shape[0])


def mlp(batch: int = data.BATCH) -> Bench:
    """Plain Tensors and a hand-written in-place SGD update (as torch's p.sub_)."""
    a = data.mlp_arrays(batch=batch)
    x, t = Tensor(a["x"], leaf=True), Tensor(a["t"], leaf=True)
    params = [Tensor(a[k], label=k) for k in ("W1", "b1", "W2", "b2")]
    last = {}

    def step():
        w1, b1, w2, b2 = params
        out = loss((x @ w1 + b1).relu() @ w2 + b2, t)
        out.backward()
        for p in params:
            p.value -= data.LR * p.grad
        last["loss"] = out
    return Bench(step, lambda: [last["loss"].value] + [p.value for p in params])


def model_and_optimizer():
    """(model, SGD optimizer): pygrad's Module, Linear, ReLU and SGD, the shared weights."""
    try:
        from pygrad.activations import ReLU
        from pygrad.basics import Linear
        from pygrad.module import Module
        from pygrad.optims import SGD
    except ImportError as exc:
        raise NotAvailable(f"pygrad's Module/Linear/ReLU/SGD are not importable: {exc}") from None

    class MLP(Module):
        def __init__(self):
            self.dense1 = Linear(data.IN, data.HIDDEN)
            self.relu1 = ReLU()
            self.dense2 = Linear(data.HIDDEN, data.OUT)
            super().__init__(x=Tensor(np.ones((1, 1, data.IN)), leaf=True))

        def forward(self, x):
            return self.dense2(self.relu1(self.dense1(x)))

    a = data.mlp_arrays()
    model = MLP()
    for layer, w, b in ((model.dense1, "W1", "b1"), (model.dense2, "W2", "b2")):
        layer.W.value, layer.B.value = a[w], a[b]
    return model, SGD(model.weights, lr=data.LR)


def module_mlp() -> Bench:
    """The contract's training loop: model_reset, zero_grad, call, loss, backward, step."""
    model, optim = model_and_optimizer()
    a = data.mlp_arrays()
    x, t = Tensor(a["x"], leaf=True), Tensor(a["t"], leaf=True)
    last = {}

    def step():
        model.model_reset()
        optim.zero_grad()
        out = loss(model(x=x), t)
        out.backward()
        optim.step(out)
        last["loss"] = out

    def observe():
        arrays = [last["loss"].value]
        for layer in (model.dense1, model.dense2):
            arrays += [layer.W.value, layer.B.value]
        return arrays
    return Bench(step, observe)


def conv(**sizes) -> Bench:
    kv, xv = data.conv_arrays(**data.conv_shape(**sizes))
    kernel, x = Tensor(kv), Tensor(xv, leaf=True)
    last = {}

    def step():
        y = kernel.conv2D(x)
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, kernel.grad, x.grad])


def softmax() -> Bench:
    x = Tensor(data.softmax_input())
    last = {}

    def step():
        y = x.softmax()
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


BUILDERS = {"elementwise_chain": chain, "mlp_step": mlp, "conv2d": conv, "softmax": softmax,
            "module_mlp_step": module_mlp}
