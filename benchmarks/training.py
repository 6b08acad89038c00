"""Training-step workloads: the 784-100-10 MLP, once with plain Tensors and a hand-written
SGD update, once through pygrad's `Module` + `SGD` against `torch.nn.Module` + `torch.optim.SGD`.

Both frameworks start from the same float64 arrays and compute the same thing:
x (64,1,784) @ W1 (1,784,100) + b1, relu, @ W2 (1,100,10) + b2, then the cross-entropy
`-(1/64) * sum(target * log_softmax(logits))` with one-hot targets, backward, and
`p <- p - lr * grad` for the four parameters.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pygrad import Tensor
from benchmarks.registry import Bench, NotAvailable

BATCH, IN, HIDDEN, OUT = 64, 784, 100, 10
LR = 0.01


def mlp_arrays(seed: int = 0, batch: int = BATCH) -> dict[str, np.ndarray]:
    """Inputs, one-hot targets and Linear-style uniform weights, shared by every framework.
    The weights do not depend on `batch`."""
    rng = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(IN), 1 / np.sqrt(HIDDEN)
    weights = {
        "W1": rng.uniform(-b1, b1, (1, IN, HIDDEN)), "b1": rng.uniform(-b1, b1, (1, 1, HIDDEN)),
        "W2": rng.uniform(-b2, b2, (1, HIDDEN, OUT)), "b2": rng.uniform(-b2, b2, (1, 1, OUT)),
    }
    return {"x": rng.standard_normal((batch, 1, IN)),
            "t": np.eye(OUT)[rng.integers(0, OUT, batch)][:, None, :], **weights}


def pygrad_loss(logits, t):
    return -(t * logits.softmax_log()).sum() * (1 / logits.shape[0])


def torch_loss(logits, t):
    return -(t * torch.log_softmax(logits, dim=-1)).sum() * (1 / logits.shape[0])


# ----------------------------------------------------------------- plain tensors
def mlp_pygrad(batch: int = BATCH) -> Bench:
    a = mlp_arrays(batch=batch)
    x, t = Tensor(a["x"], leaf=True), Tensor(a["t"], leaf=True)
    params = [Tensor(a[k], label=k) for k in ("W1", "b1", "W2", "b2")]
    last = {}

    def step():
        w1, b1, w2, b2 = params
        loss = pygrad_loss((x @ w1 + b1).relu() @ w2 + b2, t)
        loss.backward()
        for p in params:
            p.value -= LR * p.grad     # in place, as torch's p.sub_ and the NumPy step
        last["loss"] = loss
    return Bench(step, lambda: [last["loss"].value] + [p.value for p in params])


def mlp_torch(batch: int = BATCH) -> Bench:
    a = mlp_arrays(batch=batch)
    x, t = torch.tensor(a["x"]), torch.tensor(a["t"])
    params = [torch.tensor(a[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")]
    last = {}

    def step():
        w1, b1, w2, b2 = params
        loss = torch_loss(torch.relu(x @ w1 + b1) @ w2 + b2, t)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(LR * p.grad)
        last["loss"] = loss
    return Bench(step, lambda: [last["loss"].detach().numpy()] + [p.detach().numpy() for p in params])


# ----------------------------------------------------------------- Module + SGD
def pygrad_model():
    """(model, SGD optimizer) built from pygrad's Module, Linear, ReLU and SGD."""
    try:
        from pygrad.activations import ReLU
        from pygrad.basics import Linear
        from pygrad.module import Module
        from pygrad.optims import SGD
    except ImportError as exc:
        raise NotAvailable(f"pygrad's Module/Linear/ReLU/SGD are not importable: {exc}") from None

    class MLP(Module):
        def __init__(self):
            self.dense1 = Linear(IN, HIDDEN)
            self.relu1 = ReLU()
            self.dense2 = Linear(HIDDEN, OUT)
            super().__init__(x=Tensor(np.ones((1, 1, IN)), leaf=True))

        def forward(self, x):
            return self.dense2(self.relu1(self.dense1(x)))

    a = mlp_arrays()
    model = MLP()
    for layer, w, b in ((model.dense1, "W1", "b1"), (model.dense2, "W2", "b2")):
        layer.W.value, layer.B.value = a[w], a[b]
    return model, SGD(model.weights, lr=LR)


class TorchMLP(nn.Module):
    def __init__(self, a: dict[str, np.ndarray]):
        super().__init__()
        self.dense1 = nn.Linear(IN, HIDDEN, dtype=torch.float64)
        self.relu1 = nn.ReLU()
        self.dense2 = nn.Linear(HIDDEN, OUT, dtype=torch.float64)
        with torch.no_grad():
            for layer, w, b in ((self.dense1, "W1", "b1"), (self.dense2, "W2", "b2")):
                layer.weight.copy_(torch.tensor(a[w][0].T))
                layer.bias.copy_(torch.tensor(a[b][0, 0]))

    def forward(self, x):
        return self.dense2(self.relu1(self.dense1(x)))


def module_pygrad() -> Bench:
    """The contract's training loop: model_reset, zero_grad, call, loss, backward, step."""
    model, optim = pygrad_model()
    a = mlp_arrays()
    x, t = Tensor(a["x"], leaf=True), Tensor(a["t"], leaf=True)
    last = {}

    def step():
        model.model_reset()
        optim.zero_grad()
        loss = pygrad_loss(model(x=x), t)
        loss.backward()
        optim.step(loss)
        last["loss"] = loss

    def observe():
        out = [last["loss"].value]
        for layer in (model.dense1, model.dense2):
            out += [layer.W.value, layer.B.value]
        return out
    return Bench(step, observe)


def module_torch() -> Bench:
    a = mlp_arrays()
    model = TorchMLP(a)
    optim = torch.optim.SGD(model.parameters(), lr=LR)
    x, t = torch.tensor(a["x"]), torch.tensor(a["t"])
    last = {}

    def step():
        optim.zero_grad()
        loss = torch_loss(model(x), t)
        loss.backward()
        optim.step()
        last["loss"] = loss

    def observe():  # in pygrad's layout: W (1, in, out), B (1, 1, out)
        out = [last["loss"].detach().numpy()]
        for layer in (model.dense1, model.dense2):
            out += [layer.weight.detach().numpy().T[None], layer.bias.detach().numpy()[None, None]]
        return out
    return Bench(step, observe)

