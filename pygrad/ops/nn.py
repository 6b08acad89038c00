"""Neural-network ops: softmax, log-softmax, 2-D convolution."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pygrad.ops._core import normalize_axes, operand, result, tensor_method
from pygrad.tensor import Tensor


def _one_axis(axis, xv: np.ndarray, op: str) -> int:
    if xv.ndim == 0:
        raise ValueError(f"{op}: needs a tensor of at least 1 dimension, got shape {xv.shape}")
    if isinstance(axis, tuple) or axis is None:
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    return normalize_axes(axis, xv.ndim, op, xv.shape)[0]


@tensor_method("softmax")
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, max-shifted for stability."""
    xv = x._value
    ax = _one_axis(axis, xv, "softmax")
    e = np.exp(xv - xv.max(axis=ax, keepdims=True))
    y = e / e.sum(axis=ax, keepdims=True)

    def backward(g):
        gy = g * y
        x._add_grad(gy - y * gy.sum(axis=ax, keepdims=True))
    return result(y, (x,), backward)


@tensor_method("softmax_log")
def softmax_log(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max)))."""
    xv = x._value
    ax = _one_axis(axis, xv, "softmax_log")
    shifted = xv - xv.max(axis=ax, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))

    def backward(g):
        x._add_grad(g - np.exp(y) * g.sum(axis=ax, keepdims=True))
    return result(y, (x,), backward)


def _check_conv(kv: np.ndarray, xv: np.ndarray, stride, padding) -> None:
    def fail(why):
        raise ValueError(f"conv2D: {why} (kernel shape {kv.shape}, input shape {xv.shape}, "
                         f"stride {stride}, padding {padding})")
    for name, v, low in (("stride", stride, 1), ("padding", padding, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"conv2D: {name} must be an int, got {v!r}")
        if v < low:
            fail(f"{name} must be >= {low}")
    if kv.ndim != 5:
        fail("the kernel must be 5-D (1 or B, outC, inC, kH, kW)")
    if xv.ndim != 4:
        fail("the input must be 4-D (B, inC, H, W)")
    if kv.shape[2] != xv.shape[1]:
        fail(f"kernel in-channels {kv.shape[2]} != input channels {xv.shape[1]}")
    if kv.shape[0] not in (1, xv.shape[0]):
        fail(f"kernel batch {kv.shape[0]} must be 1 or the input batch {xv.shape[0]}")
    if kv.shape[3] > xv.shape[2] + 2 * padding or kv.shape[4] > xv.shape[3] + 2 * padding:
        fail("the kernel is larger than the (padded) input")


@tensor_method("conv2D")
def conv2D(kernel: Tensor, x, stride: int = 1, padding: int = 0) -> Tensor:
    """Cross-correlation like torch.nn.functional.conv2d, with `self` as the kernel.

    kernel (1 or B, outC, inC, kH, kW), x (B, inC, H, W) -> (B, outC, oH, oW) with
    oH = (H + 2 padding - kH) // stride + 1. A kernel with leading 1 is shared by the batch
    and its gradient summed over it. Implemented as im2col (a strided view, one copy) and
    one GEMM per direction."""
    n_k, n_x = isinstance(kernel, Tensor), isinstance(x, Tensor)
    kernel, kv = operand(kernel, "conv2D")
    x, xv = operand(x, "conv2D")
    kv, xv = np.asarray(kv), np.asarray(xv)
    _check_conv(kv, xv, stride, padding)
    batch, chans, height, width = xv.shape
    shared, out_c, kh, kw = kv.shape[0] == 1, kv.shape[1], kv.shape[3], kv.shape[4]
    ckk = chans * kh * kw
    p, s = int(padding), int(stride)
    xp = np.pad(xv, ((0, 0), (0, 0), (p, p), (p, p))) if p else xv
    oh, ow = (height + 2 * p - kh) // s + 1, (width + 2 * p - kw) // s + 1
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]  # (B, C, oH, oW, kH, kW)
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch, oh * ow, ckk)
    if shared:
        k2 = kv.reshape(out_c, ckk)
        out = cols.reshape(-1, ckk) @ k2.T                      # (B*oH*oW, outC)
    else:
        k2 = kv.reshape(batch, out_c, ckk)
        out = np.matmul(cols, k2.swapaxes(1, 2))              # (B, oH*oW, outC)
    value = out.reshape(batch, oh, ow, out_c).transpose(0, 3, 1, 2)

    def backward(g):
        g_rows = g.transpose(0, 2, 3, 1).reshape(batch, oh * ow, out_c)
        if n_k:
            if shared:
                gk = g_rows.reshape(-1, out_c).T @ cols.reshape(-1, ckk)
            else:
                gk = np.matmul(g_rows.swapaxes(1, 2), cols)
            kernel._add_grad(gk.reshape(kv.shape).astype(kv.dtype, copy=False))
        if n_x:
            g_cols = (g_rows.reshape(-1, out_c) @ k2) if shared else np.matmul(g_rows, k2)
            g_cols = g_cols.reshape(batch, oh, ow, chans, kh, kw)
            gxp = np.zeros(xp.shape, dtype=xv.dtype)
            for i in range(kh):
                for j in range(kw):
                    gxp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += \
                        g_cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
            x._add_grad(gxp[:, :, p:p + height, p:p + width] if p else gxp)
    return result(value, (kernel, x), backward)
