"""Single-op workloads: a chain of small elementwise ops, conv2D, softmax.

Each workload is a pair of builders over the same float64 arrays; each builder returns a
`Bench` whose step is forward + backward, seeded with ones of the output's shape in both
frameworks (pygrad's `backward()` on a non-scalar does exactly that)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pygrad import Tensor
from benchmarks.registry import Bench, Goal, pair

CHAIN_OPS = 100  # 25 rounds of (* x, + x, tanh, * x)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ----------------------------------------------------------------- elementwise chain
def _chain_input() -> np.ndarray:
    return _rng().uniform(-1, 1, (16, 16))


def chain_pygrad() -> Bench:
    x = Tensor(_chain_input())
    last = {}

    def step():
        y = x
        for _ in range(CHAIN_OPS // 4):
            y = (y * x + x).tanh() * x
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


def chain_torch() -> Bench:
    x = torch.tensor(_chain_input(), requires_grad=True)
    ones = torch.ones(16, 16, dtype=torch.float64)
    last = {}

    def step():
        y = x
        for _ in range(CHAIN_OPS // 4):
            y = torch.tanh(y * x + x) * x
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])


# ----------------------------------------------------------------- conv2D
def _conv_arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    bound = 1 / np.sqrt(1 * 5 * 5)
    return rng.uniform(-bound, bound, (1, 4, 1, 5, 5)), rng.standard_normal((32, 1, 28, 28))


def conv_pygrad() -> Bench:
    kv, xv = _conv_arrays()
    kernel, x = Tensor(kv), Tensor(xv, leaf=True)
    last = {}

    def step():
        y = kernel.conv2D(x)
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, kernel.grad, x.grad])


def conv_torch() -> Bench:
    kv, xv = _conv_arrays()
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
def _softmax_input() -> np.ndarray:
    return _rng().standard_normal((64, 10, 100))


def softmax_pygrad() -> Bench:
    x = Tensor(_softmax_input())
    last = {}

    def step():
        y = x.softmax()
        y.backward()
        last["y"] = y
    return Bench(step, lambda: [last["y"].value, x.grad])


def softmax_torch() -> Bench:
    x = torch.tensor(_softmax_input(), requires_grad=True)
    ones = torch.ones(64, 10, 100, dtype=torch.float64)
    last = {}

    def step():
        y = torch.softmax(x, dim=-1)
        x.grad = None
        y.backward(ones)
        last["y"] = y
    return Bench(step, lambda: [last["y"].detach().numpy(), x.grad.numpy()])


WORKLOADS = [
    pair("elementwise_chain", f"elementwise chain, {CHAIN_OPS} ops (16,16), per op",
         Goal("ratio", 1.5), chain_pygrad, chain_torch, per=CHAIN_OPS,
         note="25 x (y*x, +x, tanh, *x); time of forward + backward divided by 100"),
    pair("conv2d", "conv2D (32,1,28,28), 4 kernels 5x5",
         Goal("ratio", 1.5), conv_pygrad, conv_torch,
         note="gradients of kernel and input in both frameworks"),
    pair("softmax", "softmax (64,10,100)", Goal("ratio", 2.0),
         softmax_pygrad, softmax_torch, note="last axis; backward seeded with ones"),
]
