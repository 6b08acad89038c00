"""Single-op workloads in pygrad and torch: a chain of small elementwise ops, conv2D, softmax.

Every framework's builder works on the same float64 arrays and returns a `Bench` whose step
is forward + backward, seeded with ones of the output's shape (pygrad's `backward()` on a
non-scalar does exactly that). The NumPy and autograd builders are in `floors` and `hips`."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pygrad import Tensor
from benchmarks.registry import Bench

CHAIN_OPS = 100  # 25 rounds of (* x, + x, tanh, * x)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ----------------------------------------------------------------- elementwise chain
def chain_input(shape: tuple = (16, 16)) -> np.ndarray:
    return rng().uniform(-1, 1, shape)


def chain_pygrad(n_ops: int = CHAIN_OPS, shape: tuple = (16, 16)) -> Bench:
    x = Tensor(chain_input(shape))
    last = {}

    def step():
        y = x
        for _ in range(n_ops // 4):
            y = (y * x + x).tanh() * x
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


def chain_torch(n_ops: int = CHAIN_OPS, shape: tuple = (16, 16)) -> Bench:
    x = torch.tensor(chain_input(shape), requires_grad=True)
    ones = torch.ones(shape, dtype=torch.float64)
    last = {}

    def step():
        y = x
        for _ in range(n_ops // 4):
            y = torch.tanh(y * x + x) * x
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])


# ----------------------------------------------------------------- conv2D
def conv_arrays() -> tuple[np.ndarray, np.ndarray]:
    gen = rng()
    bound = 1 / np.sqrt(1 * 5 * 5)
    return gen.uniform(-bound, bound, (1, 4, 1, 5, 5)), gen.standard_normal((32, 1, 28, 28))


def conv_pygrad() -> Bench:
    kv, xv = conv_arrays()
    kernel, x = Tensor(kv), Tensor(xv, leaf=True)
    last = {}

    def step():
        y = kernel.conv2D(x)
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, kernel.grad, x.grad])


def conv_torch() -> Bench:
    kv, xv = conv_arrays()
    kernel = torch.tensor(kv[0], requires_grad=True)          # (outC, inC, kH, kW)
    x = torch.tensor(xv, requires_grad=True)
    ones = torch.ones(32, 4, 24, 24, dtype=torch.float64)
    last = {}

    def step():
        y = F.conv2d(x, kernel)
        kernel.grad = x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), kernel.grad.numpy()[None], x.grad.numpy()])


# ----------------------------------------------------------------- softmax
def softmax_input() -> np.ndarray:
    return rng().standard_normal((64, 10, 100))


def softmax_pygrad() -> Bench:
    x = Tensor(softmax_input())
    last = {}

    def step():
        y = x.softmax()
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


def softmax_torch() -> Bench:
    x = torch.tensor(softmax_input(), requires_grad=True)
    ones = torch.ones(64, 10, 100, dtype=torch.float64)
    last = {}

    def step():
        y = torch.softmax(x, dim=-1)
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])

