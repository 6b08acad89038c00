"""The op registry: one declarative `OpSpec` per public pygrad operation.

This is the reference suite's OpInfo table. Strategies (`fuzz/strategies.py`), the oracles,
the program interpreters and printer, and the report all read it; adding an operation to
pygrad means adding one entry to `OPS` (and, if it has a new shape rule, teaching
`fuzz/strategies.py` that rule).

An entry declares:

- how to call it in pygrad: `code`, a Python template such as ``"{0} + {1}"`` or
  ``"{0}.sum({args})"``. The same template is used to call the op (compiled once) and to
  print programs as plain pygrad code, so the two cannot drift apart;
- `torch`: the PyTorch equivalent (float64 oracle) and `numpy`: the NumPy forward
  reference (used by the finite-difference oracle). Both follow NumPy semantics, so the
  torch twins translate where torch differs (``axis=()``, negative-step slices, ``.mT``);
- the shape rule (`shapes`, interpreted by the strategies) and its arguments;
- the input domain (`domain`, per operand: ``"real"``, ``"pos"``, ``"nonzero"``) and the
  kinks (`kinks`): points where the op is not differentiable or where its domain ends.
  Finite differences must stay away from them; the torch comparison also runs exactly on
  them where torch defines a derivative (`exact` kinks, e.g. relu at 0);
- its rounding-error model (`out_ulps`, `in_ulps`, `out_abs`, `bwd_abs`), per dtype
  through the unit roundoff `U`, from which `reference.oracles` derives tolerances;
- `wide_range`: the op has a code path for large inputs (exp's overflow range), so torch
  checks also draw inputs of magnitude up to about 1e3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as tF

# Unit roundoff of each program dtype: the scale of every per-dtype tolerance.
U = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
DTYPES = tuple(U)


def _no_kinks(operands, args) -> list:
    return []


def _real(args) -> tuple:
    return ("real", "real")


@dataclass(frozen=True)
class OpSpec:
    """One pygrad operation (see the module docstring for the meaning of each field)."""

    name: str
    arity: int                        # number of Tensor operands
    code: str                         # pygrad call template ({0}, {1}, {name}, {args}, {targs})
    torch: Callable                   # (*torch operands, **args) -> torch.Tensor, NumPy semantics
    numpy: Callable                   # (*ndarrays, **args) -> ndarray
    shapes: str                       # shape rule, interpreted by fuzz/strategies.py
    posargs: tuple = ()               # arguments printed positionally in {args}, in order
    kwargs: tuple = ()                # arguments printed as key=value in {args}
    defaults: Mapping = field(default_factory=dict)   # pygrad's defaults for omitted arguments
    domain: Callable = _real          # args -> per-operand domain: "real" | "pos" | "nonzero"
    kinks: Callable = _no_kinks       # (operands, args) -> [(s, exact)], kink where s == 0
    exact_kinks: str | None = None    # how strategies place exact kink points: "zeros" | "rows"
    sign: Callable | None = None      # (operand signs, args) -> "pos" | "nonneg" | "any"
    out_ulps: float = 0.0             # forward rounding, relative to |out|, in ulps
    in_ulps: Callable | float = 0.0   # backward-stable operand perturbation, in ulps
    out_abs: Callable | None = None   # (operands, out, args) -> absolute forward error / u
    bwd_abs: Callable | None = None   # (operands, out, g_out, args) -> [abs grad error / u per operand]
    fd_min_side: int = 1              # smallest side for finite differences (std needs 2)
    wide_range: bool = False          # torch checks also draw inputs up to ~1e3 in magnitude
    notes: str = ""

    def __post_init__(self):
        if self.arity not in (1, 2):
            raise ValueError(f"{self.name}: arity must be 1 or 2")

    def all_args(self, args: Mapping) -> dict:
        """`args` with pygrad's defaults filled in (what the twins and references receive)."""
        return {**self.defaults, **args}

    def call(self, *operands, **args):
        """Apply the op in pygrad by evaluating its `code` template."""
        names = tuple(sorted(args))
        key = (self.code, len(operands), names)
        fn = _COMPILED.get(key)
        if fn is None:
            expr = self.render([f"_{i}" for i in range(len(operands))], {k: k for k in names},
                               lambda key, value: value)
            params = ", ".join([f"_{i}" for i in range(len(operands))] + list(names))
            fn = eval(f"lambda {params}: {expr}", {})  # noqa: S307 - our own templates
            _COMPILED[key] = fn
        return fn(*operands, **args)

    def render(self, operands: list, args: Mapping, fmt: Callable) -> str:
        """The template filled with operand expressions and arguments formatted by
        `fmt(name, value)`."""
        parts = [fmt(k, args[k]) for k in self.posargs if k in args]
        parts += [f"{k}={fmt(k, args[k])}" for k in self.kwargs if k in args]
        joined = ", ".join(parts)
        named = {k: fmt(k, v) for k, v in args.items() if k not in self.posargs + self.kwargs}
        return self.code.format(*operands, args=joined, targs=", " + joined if joined else "", **named)


_COMPILED: dict = {}


# ---------------------------------------------------------------------------- helpers
def axes_of(axis, ndim: int) -> tuple:
    """NumPy's reading of `axis` as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in items))


def count_of(shape: tuple, axis) -> int:
    return math.prod(shape[a] for a in axes_of(axis, len(shape)))


def _tt(c):
    """A constant operand for torch: arrays become float64 tensors, numbers stay numbers."""
    if isinstance(c, np.ndarray):
        return torch.from_numpy(np.asarray(c, dtype=np.float64))
    return float(c)


def _torch_reduce(name):
    def twin(x, axis, keepdims):
        dims = axes_of(axis, x.ndim)
        if not dims:  # NumPy: reduce over no axis; torch would reduce over all of them
            x, dims, keepdims = x.unsqueeze(-1), (-1,), False
        if name == "std":
            return torch.std(x, dim=dims, correction=0, keepdim=keepdims)
        return getattr(torch, name)(x, dim=dims, keepdim=keepdims)
    return twin


def _np_std(x, axis, keepdims):
    return np.std(x, axis=axes_of(axis, x.ndim), keepdims=keepdims)


def _keep(a, axis, keepdims, like):
    """`a` (reduced with keepdims=True) shaped like the op's output."""
    return a if keepdims else np.squeeze(a, axis=axes_of(axis, a.ndim)).reshape(like.shape)


def _std_rows(x, axis):
    """(row maximum of |x|, population std) over `axis`, keepdims=True."""
    ax = axes_of(axis, x.ndim)
    return np.max(np.abs(x), axis=ax, keepdims=True), np.std(x, axis=ax, keepdims=True)


def _std_kinks(operands, args):
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


def _std_out_abs(operands, out, args):
    (x,) = operands
    k = count_of(x.shape, args["axis"])
    m, _ = _std_rows(x, args["axis"])
    return _keep((k + 2) * m, args["axis"], args["keepdims"], out)


def _std_bwd(operands, out, g, args):
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


def _softmax_np(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_np(x, axis):
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


def _softmax_out_abs(operands, out, args):
    return _softmax_rel(operands[0], out, args["axis"]) * out


def _softmax_bwd(operands, out, g, args):
    (x,) = operands
    ax = args["axis"]
    gy = np.abs(g) * out
    return [_softmax_rel(x, out, ax) * (gy + out * np.sum(gy, axis=ax, keepdims=True))]


def _log_softmax_out_abs(operands, out, args):
    (x,) = operands
    ax = args["axis"]
    s = x - np.max(x, axis=ax, keepdims=True)
    lse = np.log(np.sum(np.exp(s), axis=ax, keepdims=True))
    return np.abs(s) + np.abs(lse) + x.shape[ax] + 2


def _log_softmax_bwd(operands, out, g, args):
    (x,) = operands
    ax = args["axis"]
    k = x.shape[ax]
    return [np.abs(g) + (k + 4) * np.exp(out) * np.sum(np.abs(g), axis=ax, keepdims=True)]


def _flat_positions(shape, idx) -> np.ndarray:
    """The flat positions NumPy's `x[idx]` reads, laid out like its result."""
    return np.asarray(np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[idx])


def _torch_getitem(x, idx):
    # NumPy indexing semantics (negative steps, mixed advanced indices) expressed as a gather.
    pos = _flat_positions(tuple(x.shape), idx)
    flat = torch.from_numpy(np.ascontiguousarray(pos.reshape(-1)))
    return x.reshape(-1)[flat].reshape(pos.shape)


def _np_getitem(x, idx):
    return np.asarray(x[idx])


def _mask_of(shape, idcs) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[idcs] = True
    return m


def _torch_mask(x, idcs, value):
    m = torch.from_numpy(_mask_of(tuple(x.shape), idcs))
    return torch.where(m, torch.tensor(float(value), dtype=x.dtype), x)


def _np_mask(x, idcs, value):
    out = np.array(x, copy=True)
    out[idcs] = value
    return out


def _torch_conv(k, x, stride, padding):
    if k.shape[0] == 1:
        return tF.conv2d(x, k[0], stride=stride, padding=padding)
    b, c, h, w = x.shape
    _, o, _, kh, kw = k.shape
    out = tF.conv2d(x.reshape(1, b * c, h, w), k.reshape(b * o, c, kh, kw),
                    stride=stride, padding=padding, groups=b)
    return out.reshape(b, o, out.shape[-2], out.shape[-1])


def _np_conv(k, x, stride, padding):
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


def _is_int(p) -> bool:
    return float(p) == round(float(p))


def _pow_domain(args):
    p = args["p"]
    if not _is_int(p):
        return ("pos",)
    return ("nonzero",) if p < 0 else ("real",)


def _pow_kinks(operands, args):
    (x,) = operands
    p = args["p"]
    if _is_int(p) and p >= 0:
        return []
    # Domain edge (non-integer p) or pole (negative p) at 0. torch defines the derivative
    # at an exact 0 only for non-integer p > 1 (it is 0 there).
    exact = (x == 0) if (not _is_int(p) and p > 1) else np.zeros(x.shape, dtype=bool)
    return [(x, exact)]


def _pow_sign(signs, args):
    p = args["p"]
    if signs[0] == "pos":
        return "pos"
    if _is_int(p) and p % 2 == 0:
        return "nonneg" if p > 0 else "pos" if p == 0 else "any"
    return "any"


# ---------------------------------------------------------------------------- sign rules
def _keep_sign(signs, args):
    return signs[0]


def _pos(signs, args):
    return "pos"


def _nonneg(signs, args):
    return "nonneg"


def _any(signs, args):
    return "any"


def _sum_sign(signs, args):
    if all(s == "pos" for s in signs):
        return "pos"
    return "nonneg" if all(s in ("pos", "nonneg") for s in signs) else "any"


def _both_pos(signs, args):
    return "pos" if all(s == "pos" for s in signs) else "any"


def _mul_sign(signs, args):
    if all(s == "pos" for s in signs):
        return "pos"
    return "nonneg" if all(s in ("pos", "nonneg") for s in signs) else "any"


def _mask_sign(signs, args):
    v = args.get("value", 0.0)
    if signs[0] == "pos" and v > 0:
        return "pos"
    return "nonneg" if signs[0] in ("pos", "nonneg") and v >= 0 else "any"


# ---------------------------------------------------------------------------- the table
def _binary(name, sym, fn, **kw):
    return OpSpec(name=name, arity=2, code="{0} %s {1}" % sym, torch=fn, numpy=fn,
                  shapes="broadcast", out_ulps=2, **kw)


def _reflected(name, sym, fn, **kw):
    kw.setdefault("domain", lambda args: ("real",))
    return OpSpec(name=name, arity=1, code="{const} %s {0}" % sym,
                  torch=lambda x, const: fn(_tt(const), x), numpy=lambda x, const: fn(const, x),
                  shapes="reflected", out_ulps=2, **kw)


def _unary(name, tfn, nfn, code=None, **kw):
    kw.setdefault("domain", lambda args: ("real",))
    return OpSpec(name=name, arity=1, code=code or "{0}.%s()" % name, torch=tfn, numpy=nfn,
                  shapes="elementwise", **kw)


def _relu_kinks(operands, args):
    (x,) = operands
    return [(x, x == 0)]


def _reduce(name, npfn, defaults, **kw):
    def in_ulps(operands, args):
        return count_of(operands[0].shape, args["axis"]) + 1
    return OpSpec(name=name, arity=1, code="{0}.%s({args})" % name, torch=_torch_reduce(name),
                  numpy=lambda x, axis, keepdims: npfn(x, axis=axes_of(axis, x.ndim), keepdims=keepdims),
                  shapes="reduce", kwargs=("axis", "keepdims"), defaults=defaults,
                  domain=lambda args: ("real",), out_ulps=2, in_ulps=in_ulps, **kw)


def _matmul_in_ulps(operands, args):
    return operands[0].shape[-1] + 1


_LIST = [
    _binary("add", "+", lambda a, b: a + b, sign=_sum_sign),
    _reflected("radd", "+", lambda c, x: c + x, sign=_any),
    _binary("sub", "-", lambda a, b: a - b, sign=_any),
    _reflected("rsub", "-", lambda c, x: c - x, sign=_any),
    _binary("mul", "*", lambda a, b: a * b, sign=_mul_sign),
    _reflected("rmul", "*", lambda c, x: c * x, sign=_any),
    _binary("div", "/", lambda a, b: a / b, sign=_both_pos,
            domain=lambda args: ("real", "nonzero"),
            kinks=lambda ops, args: [(ops[1], np.zeros(ops[1].shape, dtype=bool))]),
    _reflected("rdiv", "/", lambda c, x: c / x, sign=_any,
               domain=lambda args: ("nonzero",),
               kinks=lambda ops, args: [(ops[0], np.zeros(ops[0].shape, dtype=bool))]),
    OpSpec(name="pow", arity=1, code="{0} ** {p}", torch=lambda x, p: x ** p,
           numpy=lambda x, p: np.power(x, p), shapes="pow_scalar", domain=_pow_domain,
           kinks=_pow_kinks, exact_kinks="zeros", sign=_pow_sign, out_ulps=4,
           notes="exponent a Python float; 0 ** p at an exact 0 follows torch"),
    _binary("pow_tensor", "**", lambda a, b: a ** b, sign=lambda s, a: "pos" if s[0] == "pos" else "any",
            domain=lambda args: ("pos", "real"),
            kinks=lambda ops, args: [(ops[0], ops[0] == 0)], exact_kinks="zeros",
            in_ulps=4),
    OpSpec(name="rpow", arity=1, code="{const} ** {0}", torch=lambda x, const: _tt(const) ** x,
           numpy=lambda x, const: np.power(const, x), shapes="rpow",
           domain=lambda args: ("real",), sign=_pos, out_ulps=4, in_ulps=4,
           notes="a positive Python float base"),
    _unary("neg", lambda x: -x, lambda x: -x, code="-{0}", sign=_any),
    OpSpec(name="matmul", arity=2, code="{0} @ {1}", torch=lambda a, b: a @ b, numpy=np.matmul,
           shapes="matmul", sign=_both_pos, out_ulps=1, in_ulps=_matmul_in_ulps),
    OpSpec(name="rmatmul", arity=1, code="{const} @ {0}", torch=lambda x, const: _tt(const) @ x,
           numpy=lambda x, const: np.matmul(const, x), shapes="rmatmul",
           domain=lambda args: ("real",), sign=_any, out_ulps=1,
           in_ulps=lambda ops, args: np.shape(args["const"])[-1] + 1),
    _reduce("sum", np.sum, {"axis": None, "keepdims": False}, sign=_keep_sign),
    _reduce("mean", np.mean, {"axis": -1, "keepdims": True}, sign=_keep_sign),
    OpSpec(name="std", arity=1, code="{0}.std({args})", torch=_torch_reduce("std"), numpy=_np_std,
           shapes="reduce", kwargs=("axis", "keepdims"), defaults={"axis": -1, "keepdims": True},
           domain=lambda args: ("real",), kinks=_std_kinks, exact_kinks="rows", sign=_nonneg,
           out_ulps=4, out_abs=_std_out_abs, bwd_abs=_std_bwd, fd_min_side=2,
           notes="population std (ddof=0); a constant row is a kink (gradient 0 in torch)"),
    OpSpec(name="reshape", arity=1, code="{0}.reshape({args})",
           torch=lambda x, shape: x.reshape(shape), numpy=lambda x, shape: np.reshape(x, shape),
           shapes="reshape", posargs=("shape",), domain=lambda args: ("real",), sign=_keep_sign),
    OpSpec(name="transpose", arity=1, code="{0}.transpose({args})",
           torch=lambda x, axes: x.permute(tuple(range(x.ndim))[::-1] if axes is None else axes),
           numpy=lambda x, axes: np.transpose(x, axes), shapes="transpose", posargs=("axes",),
           defaults={"axes": None}, domain=lambda args: ("real",), sign=_keep_sign),
    OpSpec(name="T", arity=1, code="{0}.T", torch=lambda x: x if x.ndim < 2 else x.mT,
           numpy=lambda x: x if x.ndim < 2 else np.swapaxes(x, -1, -2), shapes="T",
           domain=lambda args: ("real",), sign=_keep_sign,
           notes="0-D and 1-D tensors are returned as is (same Tensor)"),
    OpSpec(name="getitem", arity=1, code="{0}[{idx}]", torch=_torch_getitem, numpy=_np_getitem,
           shapes="index", domain=lambda args: ("real",), sign=_keep_sign,
           notes="basic and advanced indexing; repeated indices accumulate"),
    _unary("relu", lambda x: torch.relu(x), lambda x: np.maximum(x, 0), kinks=_relu_kinks,
           exact_kinks="zeros", sign=_nonneg),
    _unary("tanh", torch.tanh, np.tanh, sign=_any, out_ulps=4,
           bwd_abs=lambda ops, out, g, args: [4 * np.abs(g)], wide_range=True),
    _unary("sigmoid", torch.sigmoid, lambda x: np.exp(-np.logaddexp(0.0, -x)), sign=_pos, out_ulps=4,
           bwd_abs=lambda ops, out, g, args: [4 * np.abs(g)], wide_range=True),
    _unary("exp", torch.exp, np.exp, sign=_pos, out_ulps=4),
    _unary("log", torch.log, np.log, sign=_any, out_ulps=4, domain=lambda args: ("pos",),
           kinks=lambda ops, args: [(ops[0], np.zeros(ops[0].shape, dtype=bool))]),
    OpSpec(name="softmax", arity=1, code="{0}.softmax({args})",
           torch=lambda x, axis: torch.softmax(x, dim=axis), numpy=_softmax_np, shapes="softmax",
           kwargs=("axis",), defaults={"axis": -1}, domain=lambda args: ("real",), sign=_pos,
           out_ulps=0, out_abs=_softmax_out_abs, bwd_abs=_softmax_bwd, wide_range=True),
    OpSpec(name="softmax_log", arity=1, code="{0}.softmax_log({args})",
           torch=lambda x, axis: torch.log_softmax(x, dim=axis), numpy=_log_softmax_np,
           shapes="softmax", kwargs=("axis",), defaults={"axis": -1},
           domain=lambda args: ("real",), sign=_any, out_abs=_log_softmax_out_abs,
           bwd_abs=_log_softmax_bwd, wide_range=True),
    OpSpec(name="mask_idcs", arity=1, code="{0}.mask_idcs({args})", torch=_torch_mask,
           numpy=_np_mask, shapes="mask", posargs=("idcs",), kwargs=("value",),
           defaults={"value": 0.0}, domain=lambda args: ("real",), sign=_mask_sign,
           notes="gradient 0 at the written positions"),
    OpSpec(name="conv2D", arity=2, code="{0}.conv2D({1}{targs})", torch=_torch_conv,
           numpy=_np_conv, shapes="conv2d", kwargs=("stride", "padding"),
           defaults={"stride": 1, "padding": 0}, sign=_both_pos, out_ulps=1,
           in_ulps=lambda ops, args: math.prod(ops[0].shape[2:]) + 1,
           notes="kernel (1 or B, outC, inC, kH, kW) is the first operand"),
]

OPS: dict[str, OpSpec] = {spec.name: spec for spec in _LIST}
"""Op name -> spec; one entry per public Tensor operation."""

# Every Tensor method or operator an entry covers (tests check this against pygrad's API).
COVERS = {
    "__add__": "add", "__radd__": "radd", "__sub__": "sub", "__rsub__": "rsub",
    "__mul__": "mul", "__rmul__": "rmul", "__truediv__": "div", "__rtruediv__": "rdiv",
    "__pow__": "pow", "__rpow__": "rpow", "__neg__": "neg", "__matmul__": "matmul",
    "__rmatmul__": "rmatmul", "sum": "sum", "mean": "mean", "std": "std", "reshape": "reshape",
    "transpose": "transpose", "T": "T", "__getitem__": "getitem", "relu": "relu",
    "tanh": "tanh", "sigmoid": "sigmoid", "exp": "exp", "log": "log", "softmax": "softmax",
    "softmax_log": "softmax_log", "mask_idcs": "mask_idcs", "conv2D": "conv2D",
}
