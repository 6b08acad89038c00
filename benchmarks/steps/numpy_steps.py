"""The NumPy limit: each workload's step written by hand in plain NumPy, as fast as known.

The same math as pygrad's step, computing everything pygrad computes -- including the
gradients of inputs that are Tensors in pygrad (the MLP's `x` and `t`, conv2D's input) --
checked to give the same numbers before it is timed. What a NumPy library cannot beat:
no graph, no Tensors, constants hoisted out of the step, 2-D GEMMs, parameters updated in
place, and every array allocated once outside the step (`out=`), so a step asks the
allocator for nothing large. conv2D uses the fastest layout known (pygrad's batch-last,
wide-column im2col in cache-sized chunks; the channel-major im2col this module used before
was slower than pygrad at 46a2324, and one GEMM per direction slower than chunks). Gradients are seeded as pygrad seeds them:
ones of the output's shape, used as a general cotangent (no shortcut from knowing it is ones).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from benchmarks import data
from benchmarks.core import Bench


# ----------------------------------------------------------------- elementwise chain
def chain_step(x: np.ndarray, rounds: int):
    """Forward and backward of `rounds` x (y*x, +x, tanh, *x), seeded with ones;
    returns (y, dy/dx . ones). (Arrays of 2 KiB: `out=` buffers only add calls here.)"""
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


def chain(n_ops: int = data.CHAIN_OPS) -> Bench:
    x = data.chain_input()
    last = {}

    def step():
        last["y"], last["gx"] = chain_step(x, n_ops // 4)
    return Bench(step, lambda: [last["y"], last["gx"]])


# ----------------------------------------------------------------- MLP
def mlp(batch: int = data.BATCH) -> Bench:
    """2-D GEMMs into buffers made once, in-place SGD; also x's and t's gradients (pygrad
    fills them: they are Tensors). The loss is the last step's."""
    n, d_in, d_h, d_out = batch, data.IN, data.HIDDEN, data.OUT
    a = data.mlp_arrays(batch=batch)
    x, t = a["x"].reshape(n, d_in), a["t"].reshape(n, d_out)
    params = [a[k].copy() for k in ("W1", "b1", "W2", "b2")]       # pygrad's layout, for observe
    w1, b1, w2, b2 = params[0][0], params[1][0, 0], params[2][0], params[3][0, 0]   # 2-D views
    g_logp = t * (-1.0 / n)                                         # d loss / d log_softmax: constant
    g_logp_sum = g_logp.sum(axis=1, keepdims=True)
    pre, h, gh = (np.empty((n, d_h)) for _ in range(3))
    logits, logp, g, gt = (np.empty((n, d_out)) for _ in range(4))
    row = np.empty((n, 1))
    gw1, gw2, gx = np.empty((d_in, d_h)), np.empty((d_h, d_out)), np.empty((n, d_in))
    gb1, gb2 = np.empty(d_h), np.empty(d_out)
    last = {}

    def step():
        np.matmul(x, w1, out=pre)
        np.add(pre, b1, out=pre)
        np.maximum(pre, 0, out=h)
        np.matmul(h, w2, out=logits)
        np.add(logits, b2, out=logits)
        np.max(logits, axis=1, keepdims=True, out=row)
        np.subtract(logits, row, out=logp)
        np.exp(logp, out=g)
        np.sum(g, axis=1, keepdims=True, out=row)
        np.log(row, out=row)
        np.subtract(logp, row, out=logp)                            # log_softmax
        last["loss"] = -np.vdot(t, logp) * (1 / n)
        np.multiply(logp, -1.0 / n, out=gt)                         # t's gradient
        np.exp(logp, out=g)
        np.multiply(g, g_logp_sum, out=g)
        np.subtract(g_logp, g, out=g)                               # d loss / d logits
        np.matmul(h.T, g, out=gw2)
        np.sum(g, axis=0, out=gb2)
        np.matmul(g, w2.T, out=gh)
        np.multiply(gh, pre > 0, out=gh)
        np.matmul(x.T, gh, out=gw1)
        np.sum(gh, axis=0, out=gb1)
        np.matmul(gh, w1.T, out=gx)                                 # x's gradient
        for p, gp in ((w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2)):
            gp *= data.LR
            p -= gp
    return Bench(step, lambda: [last["loss"], *params])


# ----------------------------------------------------------------- conv2D
CONV_CHUNK_BYTES = 2 ** 20   # columns of the im2col matrix formed at a time: about a core's L2 cache


def conv(**sizes) -> Bench:
    """Stride 1, no padding. The input is stored batch last, `flat` (C, H*W*B + tail); im2col
    column (y, x, b) of tap (c, i, j) is flat[c, (y+i)*W*B + (x+j)*B + b] for x over the whole
    width W ("wide" columns, x >= oW unused), so each tap is one contiguous run of `flat`: the
    matrix is one strided copy, and col2im is kH*kW contiguous adds. The matrix is formed,
    multiplied and scattered back a few output rows at a time (about 1 MiB of columns, used
    while in cache; formed once and kept when it fits in one chunk): measured faster than one
    GEMM per direction over the whole matrix at one and two threads (docs/benchmarks.md)."""
    shape = data.conv_shape(**sizes)
    kv, xv = data.conv_arrays(**shape)
    (batch, chans, height, width), (_, out_c, _, kh, kw) = xv.shape, kv.shape
    oh, ow, ckk = height - kh + 1, width - kw + 1, chans * kh * kw
    per_row = width * batch                                         # columns per output row
    rows = max(1, min(oh, CONV_CHUNK_BYTES // (ckk * per_row * xv.itemsize)))
    chunks = [(y0 * per_row, min(oh, y0 + rows) * per_row) for y0 in range(0, oh, rows)]
    item = xv.itemsize
    flat = np.zeros((chans, height * width * batch + (kw - 1) * batch))
    grid = flat[:, :height * width * batch].reshape(chans, height, width, batch)
    taps = as_strided(flat, shape=(chans, kh, kw, oh * per_row),
                      strides=(flat.strides[0], width * batch * item, batch * item, item))
    widest = max(c1 - c0 for c0, c1 in chunks)
    cols, g_cols = np.empty((ckk, widest)), np.empty((ckk, widest))
    k2 = kv.reshape(out_c, ckk)
    out, g_wide = np.empty((out_c, oh * per_row)), np.zeros((out_c, oh, width, batch))   # wide columns stay 0
    g_all = g_wide.reshape(out_c, oh * per_row)
    gk_t, gk_part, g_flat = np.empty((ckk, out_c)), np.empty((ckk, out_c)), np.empty_like(flat)
    g_grid = g_flat[:, :height * width * batch].reshape(chans, height, width, batch)
    g = np.ones((batch, out_c, oh, ow))
    last = {}

    def im2col(c0, c1):
        part = cols[:, :c1 - c0]
        np.copyto(part.reshape(chans, kh, kw, c1 - c0), taps[..., c0:c1])
        return part

    def step():
        grid[...] = xv.transpose(1, 2, 3, 0)
        for c0, c1 in chunks:
            np.matmul(k2, im2col(c0, c1), out=out[:, c0:c1])
        value = out.reshape(out_c, oh, width, batch)[:, :, :ow].transpose(3, 0, 1, 2)
        g_wide[:, :, :ow] = g.transpose(1, 2, 3, 0)
        gk_t.fill(0)
        g_flat.fill(0)
        for c0, c1 in chunks:
            part = im2col(c0, c1) if len(chunks) > 1 else cols[:, :c1 - c0]
            np.add(gk_t, np.matmul(part, g_all[:, c0:c1].T, out=gk_part), out=gk_t)   # kernel grad.T
            g_part = np.matmul(k2.T, g_all[:, c0:c1], out=g_cols[:, :c1 - c0])
            per_tap = g_part.reshape(chans, kh, kw, c1 - c0)
            for i in range(kh):
                for j in range(kw):
                    start = (i * width + j) * batch + c0
                    g_flat[:, start:start + c1 - c0] += per_tap[:, i, j]
        last.update(y=value, gk=gk_t.T.reshape(kv.shape), gx=g_grid.transpose(3, 0, 1, 2))
    return Bench(step, lambda: [last["y"], last["gk"], last["gx"]])


# ----------------------------------------------------------------- softmax
def softmax() -> Bench:
    """Into buffers made once; exp without the max-shift when no exp can overflow or
    underflow (pygrad's test), shifted otherwise."""
    x = data.softmax_input()
    g = np.ones_like(x)
    y, gx = np.empty_like(x), np.empty_like(x)
    row = np.empty(x.shape[:-1])
    tiny, huge = np.log(np.finfo(x.dtype).tiny) + 1, np.log(np.finfo(x.dtype).max) - np.log(x.shape[-1]) - 1
    last = {}

    def step():
        if x.min() > tiny and x.max() < huge:
            np.exp(x, out=y)
        else:
            np.subtract(x, x.max(axis=-1, keepdims=True), out=y)
            np.exp(y, out=y)
        np.sum(y, axis=-1, out=row)
        np.divide(y, row[..., None], out=y)
        np.vecdot(g, y, out=row)
        np.subtract(g, row[..., None], out=gx)
        np.multiply(gx, y, out=gx)
        last.update(y=y, gx=gx)
    return Bench(step, lambda: [last["y"], last["gx"]])


BUILDERS = {"elementwise_chain": chain, "mlp_step": mlp, "conv2d": conv, "softmax": softmax,
            "module_mlp_step": mlp}
