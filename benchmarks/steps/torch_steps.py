"""The workloads in PyTorch (float64), computing what pygrad's steps compute."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import data
from benchmarks.core import Bench


def chain(n_ops: int = data.CHAIN_OPS) -> Bench:
    x = torch.tensor(data.chain_input(), requires_grad=True)
    ones = torch.ones(data.CHAIN_SHAPE, dtype=torch.float64)
    last = {}

    def step():
        y = x
        for _ in range(n_ops // 4):
            y = torch.tanh(y * x + x) * x
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])


def loss(logits, t):
    return -(t * torch.log_softmax(logits, dim=-1)).sum() * (1 / logits.shape[0])


def mlp(batch: int = data.BATCH) -> Bench:
    """x does not require a gradient here (torch users do not ask for it)."""
    a = data.mlp_arrays(batch=batch)
    x, t = torch.tensor(a["x"]), torch.tensor(a["t"])
    params = [torch.tensor(a[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")]
    last = {}

    def step():
        w1, b1, w2, b2 = params
        out = loss(torch.relu(x @ w1 + b1) @ w2 + b2, t)
        for p in params:
            p.grad = None
        out.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(data.LR * p.grad)
        last["loss"] = out
    return Bench(step, lambda: [last["loss"].detach().numpy()] + [p.detach().numpy() for p in params])


class TorchMLP(nn.Module):
    def __init__(self, a: dict[str, np.ndarray]):
        super().__init__()
        self.dense1 = nn.Linear(data.IN, data.HIDDEN, dtype=torch.float64)
        self.relu1 = nn.ReLU()
        self.dense2 = nn.Linear(data.HIDDEN, data.OUT, dtype=torch.float64)
        with torch.no_grad():
            for layer, w, b in ((self.dense1, "W1", "b1"), (self.dense2, "W2", "b2")):
                layer.weight.copy_(torch.tensor(a[w][0].T))
                layer.bias.copy_(torch.tensor(a[b][0, 0]))

    def forward(self, x):
        return self.dense2(self.relu1(self.dense1(x)))


def module_mlp() -> Bench:
    """nn.Module + torch.optim.SGD: zero_grad, loss, backward, step."""
    a = data.mlp_arrays()
    model = TorchMLP(a)
    optim = torch.optim.SGD(model.parameters(), lr=data.LR)
    x, t = torch.tensor(a["x"]), torch.tensor(a["t"])
    last = {}

    def step():
        optim.zero_grad()
        out = loss(model(x), t)
        out.backward()
        optim.step()
        last["loss"] = out

    def observe():  # in pygrad's layout: W (1, in, out), B (1, 1, out)
        arrays = [last["loss"].detach().numpy()]
        for layer in (model.dense1, model.dense2):
            arrays += [layer.weight.detach().numpy().T[None], layer.bias.detach().numpy()[None, None]]
        return arrays
    return Bench(step, observe)


def conv(**sizes) -> Bench:
    shape = data.conv_shape(**sizes)
    kv, xv = data.conv_arrays(**shape)
    kernel = torch.tensor(kv[0], requires_grad=True)          # (outC, inC, kH, kW)
    x = torch.tensor(xv, requires_grad=True)
    side = shape["size"] - shape["k"] + 1
    ones = torch.ones(shape["batch"], shape["out"], side, side, dtype=torch.float64)
    last = {}

    def step():
        y = F.conv2d(x, kernel)
        kernel.grad = x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), kernel.grad.numpy()[None], x.grad.numpy()])


def softmax() -> Bench:
    x = torch.tensor(data.softmax_input(), requires_grad=True)
    ones = torch.ones(data.SOFTMAX_SHAPE, dtype=torch.float64)
    last = {}

    def step():
        y = torch.softmax(x, dim=-1)
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])


BUILDERS = {"elementwise_chain": chain, "mlp_step": mlp, "conv2d": conv, "softmax": softmax,
            "module_mlp_step": module_mlp}
