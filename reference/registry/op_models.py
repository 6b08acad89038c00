"""The models of registry entries beyond their call: PyTorch twins and NumPy references where the
libraries' semantics differ, kinks, sign rules and rounding-error models."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as tF

from reference.registry.spec import axes_of, count_of


def as_torch_constant(c):
    """A constant operand for torch: arrays become float64 tensors, numbers stay numbers."""
    if isinstance(c, np.ndarray):
        return torch.from_numpy(np.asarray(c, dtype=np.float64))
    return float(c)


# ---------------------------------------------------------------------------- sign rules
def keep_sign(signs, args):
    return signs[0]


def positive(signs, args):
    return "pos"


def nonnegative(signs, args):
    return "nonneg"


def closed_under_positive(signs, args):
    """Sums and products: positive if every operand is, non-negative if every operand is."""
    if all(s == "pos" for s in signs):
        return "pos"
    return "nonneg" if all(s in ("pos", "nonneg") for s in signs) else "any"


def positive_if_all(signs, args):
    return "pos" if all(s == "pos" for s in signs) else "any"


def mask_sign(signs, args):
    v = args.get("value", 0.0)
    if signs[0] == "pos" and v > 0:
        return "pos"
    return "nonneg" if signs[0] in ("pos", "nonneg") and v >= 0 else "any"


# ---------------------------------------------------------------------------- reductions
def torch_reduce(name):
    def twin(x, axis, keepdims):
        dims = axes_of(axis, x.ndim)
        if not dims:  # NumPy: reduce over no axis; torch would reduce over all of them
            x, dims, keepdims = x.unsqueeze(-1), (-1,), False
        if name == "std":
            return torch.std(x, dim=dims, correction=0, keepdim=keepdims)
        return getattr(torch, name)(x, dim=dims, keepdim=keepdims)
    return twin


def numpy_reduce(fn):
    return lambda x, axis, keepdims: fn(x, axis=axes_of(axis, x.ndim), keepdims=keepdims)


def reduction_in_ulps(operands, args):
    return count_of(operands[0].shape, args["axis"]) + 1


def _keep(a, axis, keepdims, like):
    """`a` (reduced with keepdims=True) shaped like the op's output."""
    return a if keepdims else np.squeeze(a, axis=axes_of(axis, a.ndim)).reshape(like.shape)


def _std_rows(x, axis):
    """(row maximum of |x|, population std) over `axis`, keepdims=True."""
    ax = axes_of(axis, x.ndim)
    return np.max(np.abs(x), axis=ax, keepdims=True), np.std(x, axis=ax, keepdims=True)


def std_kinks(operands, args):
    """std is not differentiable where a row is constant. The kink is exact (every correct
    implementation computes std 0 and torch's gradient 0) when the row is constant and its
    mean is computed exactly: a single entry, or small dyadic values (k/4, |k| <= 4096)."""
    (x,) = operands
    axis = args["axis"]
    ax = axes_of(axis, x.ndim)
    _, s = _std_rows(x, axis)
    const = (np.max(x, axis=ax, keepdims=True) == np.min(x, axis=ax, keepdims=True))
    first = x[tuple(slice(0, 1) if i in ax else slice(None) for i in range(x.ndim))]
    dyadic = (np.abs(first) <= 1024) & (first * 4 == np.round(first * 4))
    exact = const & (dyadic | (count_of(x.shape, axis) == 1))
    return [(s, exact)]


def std_out_abs(operands, out, args):
    (x,) = operands
    k = count_of(x.shape, args["axis"])
    m, _ = _std_rows(x, args["axis"])
    return _keep((k + 2) * m, args["axis"], args["keepdims"], out)


def std_bwd_abs(operands, out, g, args):
    """d std / dx = (x - mean) / (K std): near a constant row the centred values carry an
    absolute error ~u max|x| that the division by std amplifies."""
    (x,) = operands
    axis, keepdims = args["axis"], args["keepdims"]
    k = count_of(x.shape, axis)
    m, s = _std_rows(x, axis)
    g = np.asarray(g)
    if not keepdims:
        g = np.expand_dims(g, axes_of(axis, x.ndim))
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = np.where(s > 0, (k + 2) * m / (k * s), 0.0)
    return [np.broadcast_to(np.abs(g) * amp, x.shape)]


# ---------------------------------------------------------------------------- softmax
def softmax_np(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax_np(x, axis):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _softmax_rel(x, out, ax):
    """Relative error of softmax's output, in ulps: k + 4 for exp, the sum and the division,
    plus |x - max| (its own) and the output-weighted mean of it (the sum's): a max-shifted
    softmax (torch's) rounds x - max, an absolute error of up to u |x - max| in exp's argument."""
    if x.size == 0:
        return np.zeros_like(out)
    shift = np.abs(x - np.max(x, axis=ax, keepdims=True))
    return x.shape[ax] + 4 + shift + np.sum(out * shift, axis=ax, keepdims=True)


def softmax_out_abs(operands, out, args):
    return _softmax_rel(operands[0], out, args["axis"]) * out


def softmax_bwd_abs(operands, out, g, args):
    (x,) = operands
    ax = args["axis"]
    gy = np.abs(g) * out
    return [_softmax_rel(x, out, ax) * (gy + out * np.sum(gy, axis=ax, keepdims=True))]


def log_softmax_out_abs(operands, out, args):
    (x,) = operands
    ax = args["axis"]
    s = x - np.max(x, axis=ax, keepdims=True)
    lse = np.log(np.sum(np.exp(s), axis=ax, keepdims=True))
    return np.abs(s) + np.abs(lse) + x.shape[ax] + 2


def log_softmax_bwd_abs(operands, out, g, args):
    (x,) = operands
    ax = args["axis"]
    k = x.shape[ax]
    return [np.abs(g) + (k + 4) * np.exp(out) * np.sum(np.abs(g), axis=ax, keepdims=True)]


def smooth_bwd_abs(ulps):
    """An elementwise op whose derivative is computed to `ulps` absolute ulps of g."""
    return lambda operands, out, g, args: [ulps * np.abs(g)]


# ---------------------------------------------------------------------------- indexing
def flat_positions(shape, idx) -> np.ndarray:
    """The flat positions NumPy's `x[idx]` reads, laid out like its result."""
    return np.asarray(np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[idx])


def torch_getitem(x, idx):
    # NumPy indexing semantics (negative steps, mixed advanced indices) expressed as a gather.
    pos = flat_positions(tuple(x.shape), idx)
    flat = torch.from_numpy(np.ascontiguousarray(pos.reshape(-1)))
    return x.reshape(-1)[flat].reshape(pos.shape)


def numpy_getitem(x, idx):
    return np.asarray(x[idx])


def mask_of(shape, idcs) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[idcs] = True
    return m


def torch_mask(x, idcs, value):
    m = torch.from_numpy(mask_of(tuple(x.shape), idcs))
    return torch.where(m, torch.tensor(float(value), dtype=x.dtype), x)


def numpy_mask(x, idcs, value):
    out = np.array(x, copy=True)
    out[idcs] = value
    return out


# ---------------------------------------------------------------------------- conv2D
def torch_conv(k, x, stride, padding):
    if k.shape[0] == 1:
        return tF.conv2d(x, k[0], stride=stride, padding=padding)
    b, c, h, w = x.shape
    _, o, _, kh, kw = k.shape
    out = tF.conv2d(x.reshape(1, b * c, h, w), k.reshape(b * o, c, kh, kw),
                    stride=stride, padding=padding, groups=b)
    return out.reshape(b, o, out.shape[-2], out.shape[-1])


def numpy_conv(k, x, stride, padding):
    """Direct cross-correlation: one shifted product per kernel offset (no im2col)."""
    s, p = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    b, c, h, w = xp.shape
    _, o, _, kh, kw = k.shape
    oh, ow = (h - kh) // s + 1, (w - kw) // s + 1
    kk = np.broadcast_to(k, (b, o, c, kh, kw))
    out = np.zeros((b, o, oh, ow), dtype=np.result_type(k, x))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
            out = out + np.einsum("boc,bchw->bohw", kk[:, :, :, i, j], patch)
    return out


def conv_in_ulps(operands, args):
    return math.prod(operands[0].shape[2:]) + 1


# ---------------------------------------------------------------------------- pow
def is_integer(p) -> bool:
    return float(p) == round(float(p))


def pow_domain(args):
    p = args["p"]
    if not is_integer(p):
        return ("pos",)
    return ("nonzero",) if p < 0 else ("real",)


def pow_kinks(operands, args):
    (x,) = operands
    p = args["p"]
    if is_integer(p) and p >= 0:
        return []
    # Domain edge (non-integer p) or pole (negative p) at 0. torch defines the derivative
    # at an exact 0 only for non-integer p > 1 (it is 0 there).
    exact = (x == 0) if (not is_integer(p) and p > 1) else np.zeros(x.shape, dtype=bool)
    return [(x, exact)]


def pow_sign(signs, args):
    p = args["p"]
    if signs[0] == "pos":
        return "pos"
    if is_integer(p) and p % 2 == 0:
        return "nonneg" if p > 0 else "pos" if p == 0 else "any"
    return "any"


def pole_at_zero(slot: int):
    """A pole (or domain edge) where operand `slot` is 0; never an exact kink."""
    return lambda ops, args: [(ops[slot], np.zeros(np.shape(ops[slot]), dtype=bool))]


@dataclass(frozen=True)
class ZeroBases:
    """Values of a ** b at exact zero bases (every other entry) under exponents in [1.5, 3]:
    torch defines both derivatives there (0 ** b has derivative 0 in a and in b). A
    `Sample.make` that follows its sample's shapes (`for_shapes`)."""

    shapes: tuple = ((2, 3), (2, 3))

    def __call__(self, rng) -> tuple:
        a = rng.uniform(0.5, 2.0, self.shapes[0])
        a.reshape(-1)[::2] = 0.0
        return a, rng.uniform(1.5, 3.0, self.shapes[1])

    def for_shapes(self, shapes) -> "ZeroBases":
        return ZeroBases(tuple(shapes))


def relu_kinks(operands, args):
    (x,) = operands
    return [(x, x == 0)]


# ---------------------------------------------------------------------------- magnitudes
# Thresholds of the error model, each (dtype, args, shapes, headroom) -> the scale of the
# inputs near which a computation overflows (or underflows); see OpSpec and
# `reference.registry.regimes`. `headroom`: the fraction of the dtype's largest number the
# results may reach -- HEADROOM for the regimes' draws, what the oracle accepts for its
# judgement (`oracles.oracle.validate`: half).
HEADROOM = 2.0 ** -12     # under the dtype's largest number: what a program's loss may add


def room(dtype, n: int = 1, headroom: float = HEADROOM) -> float:
    """The largest magnitude an op's result may reach: `headroom` times the dtype's largest
    number, shared by the `n` entries a program's loss sums (each times a cotangent below
    2), so that the loss of an example stays finite."""
    return float(np.finfo(dtype).max) * headroom / (2 * max(int(n), 1))


def tiny_of(dtype) -> float:
    return float(np.finfo(dtype).tiny)


def _size(shapes) -> int:
    return math.prod(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _all_sizes(shapes) -> int:
    return math.prod(math.prod(s) for s in shapes)


def sum_overflow(scale: float):
    """Results that are sums of the operands' entries: |a| + |b| (`scale` 2), a reduction of
    n entries (sum, mean: max / n)."""
    return lambda dtype, args, shapes, headroom=HEADROOM: room(dtype, _all_sizes(shapes), headroom) / (2 * scale)


def product_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    """x * y, a @ b, conv2D: products of two operands, summed (sqrt max)."""
    return math.sqrt(room(dtype, _all_sizes(shapes), headroom)) / 2


def constant_product_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    """c * x, c @ x with constants of magnitude below 3."""
    return room(dtype, _all_sizes(shapes) * max(1, np.size(args.get("const", 1.0))), headroom) / 6


def square_root_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    """a / b, c / x: the textbook b ** 2 of the gradient overflows at sqrt max, where the
    quotient and the gradient are still ordinary numbers (the regime crosses it)."""
    return math.sqrt(float(np.finfo(dtype).max))


def exp_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    return math.log(room(dtype, _size(shapes), headroom)) / 2


def exp_inside_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    """sigmoid, tanh, softmax, log-softmax, cross-entropy: bounded results around an exp that
    overflows at log max when written naively (the regime crosses it)."""
    return math.log(float(np.finfo(dtype).max))


def pow_overflow(dtype, args, shapes, headroom=HEADROOM):
    """x ** p for p > 0: room ** (1 / p) (for p < 1 the input itself reaches room first)."""
    p = float(args["p"])
    if p <= 0:
        return None
    r = room(dtype, _size(shapes), headroom)
    return math.exp(math.log(r) / max(p, 1.0)) / 2


def std_overflow(dtype, args, shapes, headroom=HEADROOM) -> float:
    """The squared deviations, summed over the k entries of a row, stay below room."""
    return math.sqrt(room(dtype, count_of(shapes[0], args["axis"]), headroom)) / 4


def product_underflow(dtype, args, shapes) -> float:
    """Products of two operands near tiny (x * y, a @ b, conv2D, b ** 2)."""
    return math.sqrt(tiny_of(dtype))


def std_underflow(dtype, args, shapes):
    """float32 rows whose squared deviations would underflow in float32 (entries near
    sqrt(tiny)): torch, and pygrad, sum them in float64. Not float64: its error model has no
    term for a row whose squares all underflow, amplified by the square root."""
    return math.sqrt(tiny_of(dtype)) if np.dtype(dtype).itemsize < 8 else None


def constant_product_underflow(dtype, args, shapes) -> float:
    return tiny_of(dtype)


def pow_underflow(dtype, args, shapes):
    """x ** p near tiny for p >= 1; for 0 < p < 1, x near tiny (its derivative is large)."""
    p = float(args["p"])
    return None if p <= 0 else tiny_of(dtype) ** (1 / p) if p >= 1 else tiny_of(dtype)


def log_underflow(dtype, args, shapes) -> float:
    """log near the smallest normal number: its derivative 1 / x nears overflow."""
    return 4 * tiny_of(dtype)
