"""The NumPy limit: each workload's step written by hand in plain NumPy.

What a NumPy library cannot beat: the same math as pygrad's step, with 2-D GEMMs, no graph,
no Tensors, constants hoisted out of the step and the parameters updated in place. Each
computes everything pygrad computes — including the gradients of inputs that pygrad fills
because they are Tensors (the MLP's `x` and `t`, conv2D's input) — and is checked to give the
same numbers (`Bench.observe`). Gradients are seeded as pygrad seeds them: ones of the
output's shape.
"""
from __future__ import annotations

import numpy as np

from benchmarks import ops, training
from benchmarks.registry import Bench
from benchmarks.training import BATCH, IN, LR, OUT


# ----------------------------------------------------------------- elementwise chain
def chain_step(x: np.ndarray, rounds: int):
    """Forward and backward of `rounds` x (y*x, +x, tanh, *x), seeded with ones;
    returns (y, dy/dx . ones)."""
    saved, y = [], x
    for _ in range(rounds):
        c = np.tanh(y * x + x)
        saved.append((y, c))
        y = c * x
    g, gx = np.ones_like(y), np.zeros_like(x)
    for y_in, c in reversed(saved):
        gx += g * c                                # y = c * x
        gb = (g * x) * (1 - c * c)                 # c = tanh(b)
        gx += gb                                   # b = a + x
        gx += gb * y_in                            # a = y_in * x
        g = gb * x
    return y, gx + g                               # the first y is x itself


def chain_numpy(n_ops: int = ops.CHAIN_OPS, shape: tuple = (16, 16)) -> Bench:
    x = ops.chain_input(shape)
    last = {}

    def step():
        last["y"], last["gx"] = chain_step(x, n_ops // 4)
    return Bench(step, lambda: [last["y"], last["gx"]])


# ----------------------------------------------------------------- MLP
def mlp_numpy(batch: int = BATCH) -> Bench:
    """The MLP step: the batch copied into a 2-D buffer, 2-D GEMMs, in-place SGD."""
    a = training.mlp_arrays(batch=batch)
    x_src, t = a["x"], a["t"].reshape(batch, OUT)
    params = [a[k].copy() for k in ("W1", "b1", "W2", "b2")]   # pygrad's layout, for observe
    w1, b1, w2, b2 = params[0][0], params[1][0, 0], params[2][0], params[3][0, 0]  # 2-D views
    xb = np.empty((batch, IN))
    g_logp = t * (-1.0 / batch)                                  # d loss / d log_softmax: constant
    last = {}

    def step():
        np.copyto(xb, x_src.reshape(batch, IN))                 # the batch copied in
        pre = xb @ w1
        pre += b1
        h = np.maximum(pre, 0)
        logits = h @ w2
        logits += b2
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        last["loss"] = -(t * logp).sum() * (1 / batch)
        last["gt"] = logp * (-1.0 / batch)                      # pygrad fills t.grad (t is a Tensor)
        g = np.exp(logp)
        g *= g_logp.sum(axis=1, keepdims=True)
        np.subtract(g_logp, g, out=g)                           # d loss / d logits
        gw2, gb2 = h.T @ g, g.sum(axis=0)
        gh = g @ w2.T
        gh *= pre > 0
        gw1, gb1 = xb.T @ gh, gh.sum(axis=0)
        last["gx"] = gh @ w1.T                                  # pygrad fills x.grad (x is a Tensor)
        for p, gp in ((w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2)):
            gp *= LR
            p -= gp
    return Bench(step, lambda: [last["loss"], *params])


# ----------------------------------------------------------------- conv2D
def conv_numpy() -> Bench:
    """Channel-major im2col (B, C*kH*kW, oH*oW): the forward GEMM yields NCHW directly and
    col2im adds contiguous rows. Not pygrad's layout: the fastest plain NumPy found."""
    from numpy.lib.stride_tricks import sliding_window_view

    kv, xv = ops.conv_arrays()
    (batch, chans, height, width), (_, out_c, _, kh, kw) = xv.shape, kv.shape
    oh, ow, ckk = height - kh + 1, width - kw + 1, chans * kh * kw
    k2 = kv.reshape(out_c, ckk)
    g = np.ones((batch, out_c, oh * ow))
    last = {}

    def step():
        cols = sliding_window_view(xv, (kh, kw), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3)
        cols = cols.reshape(batch, ckk, oh * ow)                         # one strided copy
        value = np.matmul(k2, cols).reshape(batch, out_c, oh, ow)
        gk = np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0)
        g_cols = np.matmul(k2.T, g).reshape(batch, chans, kh, kw, oh, ow)
        gx = np.zeros_like(xv)
        for i in range(kh):
            for j in range(kw):
                gx[:, :, i:i + oh, j:j + ow] += g_cols[:, :, i, j]
        last.update(y=value, gk=gk.reshape(kv.shape), gx=gx)
    return Bench(step, lambda: [last["y"], last["gk"], last["gx"]])


# ----------------------------------------------------------------- softmax
def softmax_numpy() -> Bench:
    x = ops.softmax_input()
    g = np.ones_like(x)
    last = {}

    def step():
        y = x - x.max(axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=-1, keepdims=True)
        gx = g - np.vecdot(g, y)[..., None]
        gx *= y
        last.update(y=y, gx=gx)
    return Bench(step, lambda: [last["y"], last["gx"]])
