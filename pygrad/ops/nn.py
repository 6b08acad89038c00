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
        # y * (g - sum(g * y)); vecdot forms the sum without a full-size temporary. Its fast
        # (BLAS) loop needs a real stride: a broadcast gradient such as backward()'s seed is
        # made contiguous first (6x faster than vecdot's loop over a zero stride).
        if g.strides[ax] == 0 and g.shape[ax] > 1:
            g = np.ascontiguousarray(g)
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


# The im2col matrix is formed whole -- one GEMM per direction, kept by the graph for backward --
# while it fits in WHOLE_BYTES; beyond, CHUNK_BYTES of columns at a time, re-formed in backward
# from the padded input the graph keeps instead. Both are about a core's L2 cache: measured on
# 1 and 2 threads (docs/benchmarks.md), a matrix larger than the cache costs more in memory
# traffic than its GEMMs gain from being whole, and a chunk of it is used while still in cache.
WHOLE_BYTES = 2 ** 20
CHUNK_BYTES = 2 ** 20


class _Product:
    """The matrix left @ right, not formed: `_ConvLayout.scatter` forms it chunk by chunk."""

    def __init__(self, left: np.ndarray, right: np.ndarray, clear_wide: bool):
        self.left, self.right, self.clear_wide = left, right, clear_wide
        self.dtype = np.result_type(left, right)


class _ConvLayout:
    """Index arithmetic of the batch-last im2col used by conv2D.

    The padded input is stored as `flat` (C, Hp*Wp*B + tail): channel-major, batch last.
    Column n = (y, x, b) of the im2col matrix for kernel tap (c, i, j) reads
    flat[c, (y*s + i)*Wp*B + (x*s + j)*B + b], so the whole im2col matrix is one strided view.
    With stride 1 the x range is widened to the full padded width Wp ("wide" columns, zeroed
    where x >= oW): every tap's columns are then one contiguous run of `flat`, and the
    col2im scatter in backward becomes kH*kW contiguous adds.

    The columns of output rows [y0, y1) are columns [y0*R, y1*R) of the matrix (R =
    ow_cols*B), so the matrix can be formed, multiplied and scattered a few rows at a time
    (`chunks`): each piece is used while it is still in cache instead of streaming a matrix of
    kH*kW times the input's size through memory."""

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
        self.ckk = self.chans * kh * kw
        self.n_cols = self.oh * self.ow_cols * batch             # columns of the im2col matrix

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

    def matrix_bytes(self, itemsize: int) -> int:
        """Size of the whole im2col matrix (CKK, N)."""
        return self.ckk * self.n_cols * itemsize

    def chunks(self, itemsize: int):
        """(y0, y1, c0, c1) for consecutive output rows [y0, y1) and their columns [c0, c1),
        as many rows as keep a chunk of the matrix near CHUNK_BYTES."""
        per_row = self.ow_cols * self.batch
        rows = max(1, min(self.oh, CHUNK_BYTES // max(1, self.ckk * per_row * itemsize)))
        for y0 in range(0, self.oh, rows):
            y1 = min(self.oh, y0 + rows)
            yield y0, y1, y0 * per_row, y1 * per_row

    def chunk_buffer(self, dtype) -> np.ndarray:
        """A 1-D scratch buffer that holds any chunk of the matrix (`chunk_of`)."""
        itemsize = np.dtype(dtype).itemsize
        widest = max((c1 - c0 for _, _, c0, c1 in self.chunks(itemsize)), default=0)
        return _scratch.take((self.ckk * widest,), dtype)

    def chunk_of(self, buf: np.ndarray, c0: int, c1: int) -> np.ndarray:
        """A contiguous (CKK, c1 - c0) view of the start of `buf`."""
        return buf[:self.ckk * (c1 - c0)].reshape(self.ckk, c1 - c0)

    def im2col(self, flat: np.ndarray, y0: int, y1: int, out: np.ndarray) -> np.ndarray:
        """The columns of output rows [y0, y1) of the im2col matrix, copied into `out`
        (CKK, columns), a contiguous array."""
        taps = self.tap_view(flat)[:, :, :, y0:y1]
        np.copyto(out.reshape(taps.shape), taps)
        return out

    def clear_wide(self, m: np.ndarray) -> np.ndarray:
        """Zero the columns with x >= oW of a (rows, columns) piece of whole output rows of
        the matrix (wide layout only)."""
        if self.wide and self.ow_cols != self.ow:
            m.reshape(m.shape[0], -1, self.ow_cols, self.batch)[:, :, self.ow:, :] = 0
        return m

    def scatter(self, g_cols, dtype) -> np.ndarray:
        """col2im: add each tap's columns (CKK, oH*ow_cols*B) back into a zero `flat`.
        `g_cols` is that matrix, or a `_Product` standing for it, formed chunk by chunk."""
        flat = np.zeros((self.chans, self.flat_size), dtype=dtype)
        if not isinstance(g_cols, _Product):
            self._add_taps(flat, g_cols, 0, self.oh)
            return flat
        buf = self.chunk_buffer(g_cols.dtype)
        for y0, y1, c0, c1 in self.chunks(np.dtype(g_cols.dtype).itemsize):
            part = np.matmul(g_cols.left, g_cols.right[:, c0:c1], out=self.chunk_of(buf, c0, c1))
            if g_cols.clear_wide:
                self.clear_wide(part)
            self._add_taps(flat, part, y0, y1)
        _scratch.give(buf)
        return flat

    def _add_taps(self, flat: np.ndarray, cols: np.ndarray, y0: int, y1: int) -> None:
        """Add the columns of output rows [y0, y1), `cols` (CKK, columns), into `flat`."""
        taps = cols.reshape(self.chans, self.kh, self.kw, -1)
        b, rows = self.batch, y1 - y0
        if self.wide:
            n, first = taps.shape[-1], y0 * self.ow_cols * b
            for i in range(self.kh):
                for j in range(self.kw):
                    start = (i * self.wp + j) * b + first
                    flat[:, start:start + n] += taps[:, i, j]
        else:
            item, row = flat.itemsize, self.wp * b * flat.itemsize
            for i in range(self.kh):
                for j in range(self.kw):
                    start = (i * self.wp + j) * b + y0 * self.s * self.wp * b
                    target = as_strided(flat[:, start:], shape=(self.chans, rows, self.ow, b),
                                        strides=(flat.strides[0], self.s * row, self.s * b * item, item))
                    target += taps[:, i, j].reshape(self.chans, rows, self.ow, b)


@tensor_method("conv2D")
def conv2D(kernel: Tensor, x, stride: int = 1, padding: int = 0) -> Tensor:
    """Cross-correlation like torch.nn.functional.conv2d, with `self` as the kernel.

    kernel (1 or B, outC, inC, kH, kW), x (B, inC, H, W) -> (B, outC, oH, oW) with
    oH = (H + 2 padding - kH) // stride + 1. A kernel with leading 1 is shared by the batch
    and its gradient summed over it; the input gradient sums over output channels.
    Implemented as im2col (strided copies) and GEMMs: one GEMM per direction while the im2col
    matrix fits in WHOLE_BYTES; beyond that, for a shared kernel, a few output rows at a time
    (`_ConvLayout.chunks`), the graph keeping the padded input instead of the matrix."""
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
    item = xv.dtype.itemsize
    flat = lay.to_flat(xv, _scratch.take((xv.shape[1], lay.flat_size), xv.dtype))
    # The wide columns (x >= oW) hold neighbouring pixels and only ever meet zero gradients;
    # they need clearing only when a non-finite value would make 0 * inf a nan.
    finite_x = bool(np.isfinite(xv).all())
    # One GEMM per direction while the im2col matrix fits in WHOLE_BYTES (the graph then keeps
    # the matrix); beyond it, chunks of output rows, and the graph keeps only the padded input.
    # A kernel per sample (leading dim B) always takes the whole matrix.
    whole = not shared or lay.matrix_bytes(item) <= WHOLE_BYTES
    if whole:
        cols = lay.im2col(flat, 0, lay.oh, _scratch.take((ckk, lay.n_cols), xv.dtype))   # (CKK, N)
        _scratch.give(flat)
        if not finite_x:
            lay.clear_wide(cols)
        held = cols
    if shared:
        k2 = kv.reshape(out_c, ckk)
        if whole:
            out = np.matmul(k2, cols)                                      # (outC, N)
        else:
            # im2col and GEMM a few output rows at a time; `flat` stays for backward, which
            # forms the same chunks again
            out = np.empty((out_c, lay.n_cols), dtype)
            buf = lay.chunk_buffer(xv.dtype)
            for y0, y1, c0, c1 in lay.chunks(item):
                np.matmul(k2, lay.im2col(flat, y0, y1, lay.chunk_of(buf, c0, c1)), out=out[:, c0:c1])
            _scratch.give(buf)
            held = flat
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
        g_flat = g_wide.reshape(out_c, -1)                                 # (outC, N)
        if shared and whole:
            if n_k:
                # (cols @ g.T).T: OpenBLAS is ~2x faster in this orientation for short, wide operands
                gk = (cols @ g_flat.T).T
                kernel._add_grad(gk.reshape(kv.shape).astype(kv.dtype, copy=False))
            if n_x:
                g_cols = _scratch.take((ckk, lay.n_cols), np.result_type(k2, g_flat))
                np.matmul(k2.T, g_flat, out=g_cols)                            # (CKK, N)
                if not np.isfinite(kv).all():   # as for cols: g is zero in the wide columns
                    lay.clear_wide(g_cols)
        elif shared:
            if n_k:
                gk_sum = np.zeros(kv.shape, np.result_type(xv, g_flat))
                buf = lay.chunk_buffer(xv.dtype)
                for y0, y1, c0, c1 in lay.chunks(item):
                    chunk = lay.im2col(flat, y0, y1, lay.chunk_of(buf, c0, c1))
                    if not finite_x:
                        lay.clear_wide(chunk)
                    gk_sum += (chunk @ g_flat[:, c0:c1].T).T.reshape(kv.shape)   # orientation as above
                _scratch.give(buf)
                kernel._add_grad(gk_sum.astype(kv.dtype, copy=False))
            if n_x:   # the column gradients k2.T @ g, formed chunk by chunk by the scatter
                g_cols = _Product(k2.T, g_flat, clear_wide=not np.isfinite(kv).all())
        else:
            g_b = g_flat.reshape(out_c, -1, batch).transpose(2, 0, 1)       # (B, outC, M)
            if n_k:
                gk = np.matmul(g_b, cols_b.transpose(0, 2, 1))
                kernel._add_grad(gk.reshape(kv.shape).astype(kv.dtype, copy=False))
            if n_x:
                g_cols = np.matmul(k2.transpose(0, 2, 1), g_b).transpose(1, 2, 0).reshape(ckk, -1)
                if not np.isfinite(kv).all():   # as for cols: g is zero in the wide columns
                    lay.clear_wide(g_cols)
        if n_x:
            gx = lay.from_flat(lay.scatter(g_cols, dtype))
            x._add_grad(gx.astype(xv.dtype, copy=False))
            if shared and whole:
                _scratch.give(g_cols)
        _scratch.give(g_wide)
    _scratch.give_when_gone(backward, held)   # the only holder of cols (whole) or flat (chunks)
    return result(value, (kernel, x), backward)
