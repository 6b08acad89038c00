"""HIPS autograd (`pip install -e ".[bench]"`), written as its users write it.

autograd differentiates plain functions of NumPy arrays: the model is a function of a list of
2-D parameter arrays, `value_and_grad` gives the loss and the gradients, and the update makes
new arrays (`[p - lr * g ...]`), as in autograd's own examples. Outputs that are not scalars
are differentiated with `make_vjp` seeded with ones, as pygrad seeds them. conv2D uses
`autograd.scipy.signal.convolve` (autograd's convnet example; it needs SciPy), with the
kernel flipped to make torch's cross-correlation. Every builder raises `NotAvailable` when
autograd (or SciPy, for conv2D) is not installed.
"""
from __future__ import annotations

import numpy as np

from benchmarks import data
from benchmarks.core import Bench, NotAvailable
from benchmarks.data import BATCH, IN, LR, OUT


def _autograd():
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        raise NotAvailable('autograd is not installed (pip install -e ".[bench]")') from None
    return autograd, anp


# ----------------------------------------------------------------- elementwise chain
def chain(n_ops: int = data.CHAIN_OPS, shape: tuple = data.CHAIN_SHAPE) -> Bench:
    autograd, anp = _autograd()
    x = data.chain_input(shape)

    def chain(x):
        y = x
        for _ in range(n_ops // 4):
            y = anp.tanh(y * x + x) * x
        return y
    ones = np.ones(shape)
    last = {}

    def step():
        vjp, y = autograd.make_vjp(chain)(x)
        last["y"], last["gx"] = y, vjp(ones)
    return Bench(step, lambda: [last["y"], last["gx"]])


# ----------------------------------------------------------------- MLP
def mlp(batch: int = BATCH) -> Bench:
    autograd, anp = _autograd()
    a = data.mlp_arrays(batch=batch)
    x, t = a["x"].reshape(batch, IN), a["t"].reshape(batch, OUT)

    def loss(params, x, t):
        w1, b1, w2, b2 = params
        logits = anp.dot(anp.maximum(anp.dot(x, w1) + b1, 0.0), w2) + b2
        shifted = logits - anp.max(logits, axis=1, keepdims=True)
        log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.sum(t * log_p) * (1 / batch)
    value_and_grad = autograd.value_and_grad(loss)
    state = {"params": [a["W1"][0], a["b1"][0, 0], a["W2"][0], a["b2"][0, 0]]}

    def step():
        value, grads = value_and_grad(state["params"], x, t)
        state["params"] = [p - LR * g for p, g in zip(state["params"], grads)]
        state["loss"] = value

    def observe():   # in pygrad's layout: W (1, in, out), B (1, 1, out)
        w1, b1, w2, b2 = state["params"]
        return [state["loss"], w1[None], b1[None, None], w2[None], b2[None, None]]
    return Bench(step, observe)


# ----------------------------------------------------------------- conv2D
def conv(**sizes) -> Bench:
    autograd, anp = _autograd()
    try:
        from autograd.scipy.signal import convolve
    except ImportError:
        raise NotAvailable("autograd.scipy.signal needs SciPy") from None
    kv, xv = data.conv_arrays(**data.conv_shape(**sizes))
    k = kv[0]                                           # (outC, inC, kH, kW)

    def conv(k, x):
        return convolve(x, k[:, :, ::-1, ::-1], axes=([2, 3], [2, 3]), dot_axes=([1], [1]), mode="valid")
    vjp_maker = autograd.make_vjp(conv, argnum=(0, 1))
    last = {}

    def step():
        vjp, y = vjp_maker(k, xv)
        gk, gx = vjp(np.ones(y.shape))
        last.update(y=y, gk=gk[None], gx=gx)
    return Bench(step, lambda: [last["y"], last["gk"], last["gx"]])


# ----------------------------------------------------------------- softmax
def softmax() -> Bench:
    autograd, anp = _autograd()
    x = data.softmax_input()

    def softmax(x):
        e = anp.exp(x - anp.max(x, axis=-1, keepdims=True))
        return e / anp.sum(e, axis=-1, keepdims=True)
    vjp_maker = autograd.make_vjp(softmax)
    ones = np.ones(x.shape)
    last = {}

    def step():
        vjp, y = vjp_maker(x)
        last["y"], last["gx"] = y, vjp(ones)
    return Bench(step, lambda: [last["y"], last["gx"]])


BUILDERS = {"elementwise_chain": chain, "mlp_step": mlp, "conv2d": conv, "softmax": softmax,
            "module_mlp_step": mlp}
