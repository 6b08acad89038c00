"""Neural-network ops: softmax, log-softmax, 2-D convolution."""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pygrad.ops import _scratch
from pygrad.ops._core import normalize_axes, operand, result, tensor_method
from pygrad.tensor import Tensor


def _one_axis(axis, xv: np.ndarray, op: str) -> int:
    if xv.ndim == 0:
        raise ValueError(f"{op}: needs a tensor of at least 1 dimension, got shape {xv.shape}")
    if type(axis) is int and -xv.ndim <= axis < xv.ndim:   # the common case, checked quickly
        return axis % xv.ndim
    if isinstance(axis, tuple) or axis is None:
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    return normalize_axes(axis, xv.ndim, op, xv.shape)[0]


def _exp_is_safe(xv: np.ndarray, n: int) -> bool:
    """Can exp(xv) skip the max-shift? True when every exp is a normal number and a sum of `n`
    of them cannot overflow; then exp(x) / sum(exp(x)) is as accurate as the shifted form."""
    if xv.size == 0:
        return False
    info = np.finfo(xv.dtype)
    lo, hi = xv.min(), xv.max()   # nan fails both comparisons
    return bool(lo > math.log(info.tiny) + 1) and bool(hi < math.log(info.max) - math.log(n) - 1)


@tensor_method("softmax")
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, max-shifted unless no exp can overflow or underflow."""
    xv = x._value
    ax = _one_axis(axis, xv, "softmax")
    if _exp_is_safe(xv, xv.shape[ax]):
        y = np.exp(xv)
    else:
        # initial=-inf: an empty axis gives an empty result, as in torch, instead of NumPy's error
        y = xv - xv.max(axis=ax, keepdims=True, initial=-np.inf)   # in place from here: one buffer
        np.exp(y, out=y)
    y /= y.sum(axis=ax, keepdims=True)

    def backward(g):
        # y * (g - sum(g * y)); vecdot forms the sum without a full-size temporary
        gx = g - np.expand_dims(np.vecdot(g, y, axis=ax), ax)
        gx *= y
        x._add_grad(gx)
    return result(y, (x,), backward)


@tensor_method("softmax_log")
def softmax_log(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max)))."""
    xv = x._value
    ax = _one_axis(axis, xv, "softmax_log")
    y = xv - xv.max(axis=ax, keepdims=True, initial=-np.inf)   # as in softmax
    y -= np.log(np.exp(y).sum(axis=ax, keepdims=True))

    def backward(g):
        gx = np.exp(y)                          # softmax, then g - softmax * sum(g), in place
        gx *= g.sum(axis=ax, keepdims=True)
        np.subtract(g, gx, out=gx)
        x._add_grad(gx)
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


class _ConvLayout:
    """Index arithmetic of the batch-last im2col used by conv2D.

    The padded input is stored as `flat` (C, Hp*Wp*B + tail): channel-major, batch last.
    Column n = (y, x, b) of the im2col matrix for kernel tap (c, i, j) reads
    flat[c, (y*s + i)*Wp*B + (x*s + j)*B + b], so the whole im2col matrix is one strided view.
    With stride 1 the x range is widened to the full padded width Wp ("wide" columns, zeroed
    where x >= oW): every tap's columns are then one contiguous run of `flat`, and the
    col2im scatter in backward becomes kH*kW contiguous adds."""

    def __init__(self, xshape, kh, kw, stride, padding):
        batch, self.chans, height, width = xshape
        self.kh, self.kw, self.s, self.p = kh, kw, stride, padding
        self.hp, self.wp = height + 2 * padding, width + 2 * padding
        self.oh = (self.hp - kh) // stride + 1
        self.ow = (self.wp - kw) // stride + 1
        self.wide = stride == 1
        self.ow_cols = self.wp if self.wide else self.ow       # x positions per column row
        self.batch = batch
        self.tail = (kw - 1) * batch if self.wide else 0        # wide reads run past the end
        self.flat_size = self.hp * self.wp * batch + self.tail

    def to_flat(self, xv: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """(B, C, H, W) -> `flat` (C, Hp*Wp*B + tail), zero padded."""
        flat.fill(0)
        grid = flat[:, :self.hp * self.wp * self.batch].reshape(self.chans, self.hp, self.wp, self.batch)
        p = self.p
        grid[:, p:self.hp - p, p:self.wp - p, :] = xv.transpose(1, 2, 3, 0)
        return flat

    def from_flat(self, flat: np.ndarray) -> np.ndarray:
        """Inverse of `to_flat` (a view): (C, Hp*Wp*B + tail) -> (B, C, H, W)."""
        grid = flat[:, :self.hp * self.wp * self.batch].reshape(self.chans, self.hp, self.wp, self.batch)
        p = self.p
        return grid[:, p:self.hp - p, p:self.wp - p, :].transpose(3, 0, 1, 2)

    def tap_view(self, flat: np.ndarray) -> np.ndarray:
        """Strided view (C, kH, kW, oH, ow_cols, B) of `flat`: the im2col matrix."""
        b, s, item = self.batch, self.s, flat.itemsize
        row = self.wp * b * item
        return as_strided(flat, shape=(self.chans, self.kh, self.kw, self.oh, self.ow_cols, b),
                          strides=(flat.strides[0], row, b * item, s * row, s * b * item, item),
                          writeable=False)

    def clear_wide(self, m: np.ndarray) -> np.ndarray:
        """Zero the columns with x >= oW of a (rows, oH*ow_cols*B) matrix (wide layout only)."""
        if self.wide and self.ow_cols != self.ow:
            m.reshape(m.shape[0], self.oh, self.ow_cols, self.batch)[:, :, self.ow:, :] = 0
        return m

    def scatter(self, g_cols: np.ndarray, dtype) -> np.ndarray:
        """col2im: add each tap's columns (CKK, oH*ow_cols*B) back into a zero `flat`."""
        flat = np.zeros((self.chans, self.flat_size), dtype=dtype)
        taps = g_cols.reshape(self.chans, self.kh, self.kw, -1)
        b = self.batch
        if self.wide:
            n = taps.shape[-1]
            for i in range(self.kh):
                for j in range(self.kw):
                    start = (i * self.wp + j) * b
                    flat[:, start:start + n] += taps[:, i, j]
        else:
            item, row = flat.itemsize, self.wp * b * flat.itemsize
            for i in range(self.kh):
                for j in range(self.kw):
                    start = (i * self.wp + j) * b
                    target = as_strided(flat[:, start:], shape=(self.chans, self.oh, self.ow, b),
                                        strides=(flat.strides[0], self.s * row, self.s * b * item, item))
                    target += taps[:, i, j].reshape(self.chans, self.oh, self.ow, b)
        return flat


@tensor_method("conv2D")
def conv2D(kernel: Tensor, x, stride: int = 1, padding: int = 0) -> Tensor:
    """Cross-correlation like torch.nn.functional.conv2d, with `self` as the kernel.

    kernel (1 or B, outC, inC, kH, kW), x (B, inC, H, W) -> (B, outC, oH, oW) with
    oH = (H + 2 padding - kH) // stride + 1. A kernel with leading 1 is shared by the batch
    and its gradient summed over it; the input gradient sums over output channels.
    Implemented as im2col (one strided copy) and one GEMM per direction."""
    n_k, n_x = isinstance(kernel, Tensor), isinstance(x, Tensor)
    kernel, kv = operand(kernel, "conv2D")
    x, xv = operand(x, "conv2D")
    kv, xv = np.asarray(kv), np.asarray(xv)
    _check_conv(kv, xv, stride, padding)
    batch, out_c = xv.shape[0], kv.shape[1]
    shared = kv.shape[0] == 1
    lay = _ConvLayout(xv.shape, kv.shape[3], kv.shape[4], int(stride), int(padding))
    ckk = kv[0, 0].size
    dtype = np.result_type(kv, xv)
    flat = lay.to_flat(xv, _scratch.take((xv.shape[1], lay.flat_size), xv.dtype))
    taps = lay.tap_view(flat)
    cols = _scratch.take((ckk, taps[0, 0, 0].size), taps.dtype)            # (CKK, N), im2col
    np.copyto(cols.reshape(taps.shape), taps)
    _scratch.give(flat)
    # The wide columns (x >= oW) hold neighbouring pixels and only ever meet zero gradients;
    # they need clearing only when a non-finite value would make 0 * inf a nan.
    if not np.isfinite(xv).all():
        lay.clear_wide(cols)
    if shared:
        k2 = kv.reshape(out_c, ckk)
        out = k2 @ cols                                                   # (outC, N)
        value = out.reshape(out_c, lay.oh, lay.ow_cols, batch)[:, :, :lay.ow].transpose(3, 0, 1, 2)
    else:
        k2 = kv.reshape(batch, out_c, ckk)
        cols_b = cols.reshape(ckk, -1, batch).transpose(2, 0, 1)          # (B, CKK, oH*ow_cols)
        out = np.matmul(k2, cols_b)                                       # (B, outC, oH*ow_cols)
        value = out.reshape(batch, out_c, lay.oh, lay.ow_cols)[..., :lay.ow]

    def backward(g):
        g_wide = _scratch.take((out_c, lay.oh, lay.ow_cols, batch), np.result_type(g, dtype))
        g_wide[:, :, lay.ow:] = 0
        g_wide[:, :, :lay.ow] = g.transpose(1, 2, 3, 0)
        g_flat = g_wide.reshape(out_c, -1)                                # (outC, N)
        if shared:
            if n_k:
                # (cols @ g.T).T: OpenBLAS is ~2x faster in this orientation for short, wide operands
                gk = (cols @ g_flat.T).T
                kernel._add_grad(gk.reshape(kv.shape).astype(kv.dtype, copy=False))
            if n_x:
                g_cols = _scratch.take((ckk, g_flat.shape[1]), np.result_type(k2, g_flat))
                np.matmul(k2.T, g_flat, out=g_cols)                        # (CKK, N)
        else:
            g_b = g_flat.reshape(out_c, -1, batch).transpose(2, 0, 1)      # (B, outC, M)
            if n_k:
                gk = np.matmul(g_b, cols_b.transpose(0, 2, 1))
                kernel._add_grad(gk.reshape(kv.shape).astype(kv.dtype, copy=False))
            if n_x:
                g_cols = np.matmul(k2.transpose(0, 2, 1), g_b).transpose(1, 2, 0).reshape(ckk, -1)
        if n_x:
            if not np.isfinite(kv).all():   # as for cols: g is zero in the wide columns
                lay.clear_wide(g_cols)
            gx = lay.from_flat(lay.scatter(g_cols, dtype))
            x._add_grad(gx.astype(xv.dtype, copy=False))
            if shared:
                _scratch.give(g_cols)
        _scratch.give(g_wide)
    _scratch.give_when_gone(backward, cols)   # the only holder of cols
    return result(value, (kernel, x), backward)
