"""The op table: one `OpSpec` per public pygrad Tensor operation (the suite's OpInfo).

Each entry is complete: call template, torch twin, NumPy forward, shape rule (random
operands, coverage samples, conditions), domain and kinks, error model. Adding an op to
pygrad means its implementation plus one entry here; `COVERS` (which Tensor method or
operator each entry exercises) is derived from the templates. The user-defined ops of
`reference.registry.functions` (made with `pygrad.function`) join the table after them.
"""
from __future__ import annotations

import numpy as np
import torch

from reference.registry import op_models as nm
from reference.registry import rules
from reference.registry.makers import excludes
from reference.registry.functions import FUNCTION_OPS
from reference.registry.spec import OpSpec, Sample


def _binary(name, sym, fn, **kw):
    kw.setdefault("overflow", nm.sum_overflow(2))
    return OpSpec(name=name, arity=2, code="{0} %s {1}" % sym, torch=fn, numpy=fn, rule=rules.BROADCAST,
                  broadcast=True, out_ulps=2, **kw)


def _reflected(name, sym, fn, op_name, **kw):
    kw.setdefault("domain", lambda args: ("real",))
    kw.setdefault("out_ulps", 2)
    kw.setdefault("overflow", nm.sum_overflow(2))
    return OpSpec(name=name, arity=1, code="{const} %s {0}" % sym,
                  torch=lambda x, const: fn(nm.as_torch_constant(const), x),
                  numpy=lambda x, const: fn(const, x), rule=kw.pop("rule", rules.REFLECTED),
                  reflected=True, broadcast=True, op_name=op_name, **kw)


def _unary(name, tfn, nfn, code=None, **kw):
    kw.setdefault("domain", lambda args: ("real",))
    return OpSpec(name=name, arity=1, code=code or "{0}.%s()" % name, torch=tfn, numpy=nfn,
                  rule=rules.ELEMENTWISE, **kw)


def _reduce(name, npfn, defaults, **kw):
    kw.setdefault("in_ulps", nm.reduction_in_ulps)
    kw.setdefault("out_ulps", 2)
    kw.setdefault("overflow", nm.sum_overflow(1))
    return OpSpec(name=name, arity=1, code="{0}.%s({args})" % name, torch=nm.torch_reduce(name),
                  numpy=nm.numpy_reduce(npfn), rule=rules.REDUCE, kwargs=("axis", "keepdims"),
                  defaults=defaults, domain=lambda args: ("real",), overflow_inside=True, offset=True, **kw)


_LIST = [
    _binary("add", "+", lambda a, b: a + b, sign=nm.closed_under_positive),
    _reflected("radd", "+", lambda c, x: c + x, "add"),
    _binary("sub", "-", lambda a, b: a - b),
    _reflected("rsub", "-", lambda c, x: c - x, "sub"),
    _binary("mul", "*", lambda a, b: a * b, sign=nm.closed_under_positive, overflow=nm.product_overflow,
            underflow=nm.product_underflow),
    _reflected("rmul", "*", lambda c, x: c * x, "mul", overflow=nm.constant_product_overflow,
               underflow=nm.constant_product_underflow),
    _binary("div", "/", lambda a, b: a / b, sign=nm.positive_if_all, domain=lambda args: ("real", "nonzero"),
            kinks=nm.pole_at_zero(1), overflow=nm.square_root_overflow, underflow=nm.product_underflow),
    _reflected("rdiv", "/", lambda c, x: c / x, "div", domain=lambda args: ("nonzero",), kinks=nm.pole_at_zero(0),
               overflow=nm.square_root_overflow),
    OpSpec(name="pow", arity=1, code="{0} ** {p}", torch=lambda x, p: x ** p, numpy=lambda x, p: np.power(x, p),
           rule=rules.POW, domain=nm.pow_domain, kinks=nm.pow_kinks, exact_kinks="zeros", sign=nm.pow_sign,
           out_ulps=4, overflow=nm.pow_overflow, underflow=nm.pow_underflow,
           notes="exponent a Python float; 0 ** p at an exact 0 follows torch",
           infeasible={**excludes("exact kink point", ["p == 2", "p == 0", "p == 1", "negative p", "subnormal values",
                                                      "exact small integers"],
                                  "torch defines the derivative of x ** p at an exact 0 only for non-integer p > 1 "
                                  "(a positive domain: no subnormal is put there, its small integers are 1 and 2)"),
                       **excludes(["p == 0", "negative p"], ["near overflow", "near underflow"],
                                  "the error model has no overflow or underflow scale for p <= 0 (x ** 0 is 1)"),
                       **excludes(["negative p", "fractional p"], ["subnormal values"],
                                  "the operand's domain is nonzero or positive: subnormals go to real domains only")}),
    _binary("pow_tensor", "**", lambda a, b: a ** b, sign=lambda s, a: "pos" if s[0] == "pos" else "any",
            domain=lambda args: ("pos", "real"), kinks=lambda ops, args: [(ops[0], ops[0] == 0)],
            exact_kinks="zeros", in_ulps=4, op_name="pow", overflow=None,
            infeasible={**excludes("operand used twice", ["subnormal values"],
                                   "x ** x: the one operand is the base (a positive domain), where no subnormal is put"),
                        **excludes("exact kink point", ["exact small integers"],
                                   "the kink is a base of exactly 0; the base's domain is positive, whose small "
                                   "integers are 1 and 2")},
            samples=(Sample(((2, 3), (2, 3)), values="kinks", make=nm.ZeroBases()),
                     Sample(((2, 3), (3,)), dtypes=("float32", "float64"), values="kinks",
                            make=nm.ZeroBases(((2, 3), (3,)))))),
    _reflected("rpow", "**", lambda c, x: c ** x, "pow", rule=rules.POSITIVE_BASE, sign=nm.positive,
               out_ulps=4, in_ulps=4, overflow=None, notes="a positive base: a Python float or an array"),
    _unary("neg", lambda x: -x, lambda x: -x, code="-{0}"),
    OpSpec(name="matmul", arity=2, code="{0} @ {1}", torch=lambda a, b: a @ b, numpy=np.matmul,
           rule=rules.MATMUL_RULE, sign=nm.positive_if_all, out_ulps=1,
           in_ulps=lambda ops, args: ops[0].shape[-1] + 1, overflow=nm.product_overflow,
           underflow=nm.product_underflow, overflow_inside=True),
    OpSpec(name="rmatmul", arity=1, code="{const} @ {0}", torch=lambda x, const: nm.as_torch_constant(const) @ x,
           numpy=lambda x, const: np.matmul(const, x), rule=rules.RMATMUL, domain=lambda args: ("real",),
           reflected=True, out_ulps=1, in_ulps=lambda ops, args: np.shape(args["const"])[-1] + 1,
           op_name="matmul", overflow=nm.constant_product_overflow, underflow=nm.constant_product_underflow,
           overflow_inside=True),
    _reduce("sum", np.sum, {"axis": None, "keepdims": False}, sign=nm.keep_sign),
    _reduce("mean", np.mean, {"axis": -1, "keepdims": True}, sign=nm.keep_sign),
    _reduce("std", np.std, {"axis": -1, "keepdims": True}, kinks=nm.std_kinks, exact_kinks="rows",
            sign=nm.nonnegative, out_ulps=4, in_ulps=0.0, out_abs=nm.std_out_abs, bwd_abs=nm.std_bwd_abs,
            fd_min_side=2, overflow=nm.std_overflow, underflow=nm.std_underflow,
            notes="population std (ddof=0); a constant row is a kink (gradient 0 in torch)"),
    OpSpec(name="reshape", arity=1, code="{0}.reshape({args})", torch=lambda x, shape: x.reshape(shape),
           numpy=lambda x, shape: np.reshape(x, shape), rule=rules.RESHAPE, posargs=("shape",),
           domain=lambda args: ("real",), sign=nm.keep_sign),
    OpSpec(name="transpose", arity=1, code="{0}.transpose({args})",
           torch=lambda x, axes: x.permute(tuple(range(x.ndim))[::-1] if axes is None else axes),
           numpy=lambda x, axes: np.transpose(x, axes), rule=rules.TRANSPOSE, posargs=("axes",),
           defaults={"axes": None}, domain=lambda args: ("real",), sign=nm.keep_sign),
    OpSpec(name="T", arity=1, code="{0}.T", torch=lambda x: x if x.ndim < 2 else x.mT,
           numpy=lambda x: x if x.ndim < 2 else np.swapaxes(x, -1, -2), rule=rules.SWAP_LAST,
           domain=lambda args: ("real",), sign=nm.keep_sign, returns_operand=lambda shapes: len(shapes[0]) < 2,
           notes="0-D and 1-D tensors are returned as is (same Tensor)"),
    OpSpec(name="getitem", arity=1, code="{0}[{idx}]", torch=nm.torch_getitem, numpy=nm.numpy_getitem,
           rule=rules.GETITEM, domain=lambda args: ("real",), sign=nm.keep_sign,
           notes="basic and advanced indexing; repeated indices accumulate"),
    _unary("relu", torch.relu, lambda x: np.maximum(x, 0), kinks=nm.relu_kinks, exact_kinks="zeros",
           sign=nm.nonnegative),
    _unary("tanh", torch.tanh, np.tanh, out_ulps=4, bwd_abs=nm.smooth_bwd_abs(4), wide_range=True,
           overflow=nm.exp_inside_overflow),
    _unary("sigmoid", torch.sigmoid, lambda x: np.exp(-np.logaddexp(0.0, -x)), sign=nm.positive, out_ulps=4,
           bwd_abs=nm.smooth_bwd_abs(4), wide_range=True, overflow=nm.exp_inside_overflow),
    _unary("exp", torch.exp, np.exp, sign=nm.positive, out_ulps=4, overflow=nm.exp_overflow),
    _unary("log", torch.log, np.log, out_ulps=4, domain=lambda args: ("pos",), kinks=nm.pole_at_zero(0),
           underflow=nm.log_underflow),
    OpSpec(name="softmax", arity=1, code="{0}.softmax({args})", torch=lambda x, axis: torch.softmax(x, dim=axis),
           numpy=nm.softmax_np, rule=rules.SOFTMAX, kwargs=("axis",), defaults={"axis": -1},
           domain=lambda args: ("real",), sign=nm.positive, out_abs=nm.softmax_out_abs,
           bwd_abs=nm.softmax_bwd_abs, wide_range=True, overflow=nm.exp_inside_overflow, offset=True),
    OpSpec(name="softmax_log", arity=1, code="{0}.softmax_log({args})",
           torch=lambda x, axis: torch.log_softmax(x, dim=axis), numpy=nm.log_softmax_np, rule=rules.SOFTMAX,
           kwargs=("axis",), defaults={"axis": -1}, domain=lambda args: ("real",),
           out_abs=nm.log_softmax_out_abs, bwd_abs=nm.log_softmax_bwd_abs, wide_range=True,
           overflow=nm.exp_inside_overflow, offset=True),
    OpSpec(name="mask_idcs", arity=1, code="{0}.mask_idcs({args})", torch=nm.torch_mask, numpy=nm.numpy_mask,
           rule=rules.MASK, posargs=("idcs",), kwargs=("value",), defaults={"value": 0.0},
           domain=lambda args: ("real",), sign=nm.mask_sign, notes="gradient 0 at the written positions"),
    OpSpec(name="conv2D", arity=2, code="{0}.conv2D({1}{targs})", torch=nm.torch_conv, numpy=nm.numpy_conv,
           rule=rules.CONV, kwargs=("stride", "padding"), defaults={"stride": 1, "padding": 0},
           sign=nm.positive_if_all, out_ulps=1, in_ulps=nm.conv_in_ulps, overflow=nm.product_overflow,
           underflow=nm.product_underflow, overflow_inside=True,
           notes="kernel (1 or B, outC, inC, kH, kW) is the first operand"),
]

OPS: dict = {spec.name: spec for spec in _LIST}
"""Op name -> spec; one entry per public Tensor operation, then the user-defined ops made
with `pygrad.function` (`reference.registry.functions`)."""

_OPERATORS = {"+": "add", "-": "sub", "*": "mul", "/": "truediv", "**": "pow", "@": "matmul"}


def covers(spec: OpSpec) -> str:
    """The Tensor method or operator (dunder) that the entry's template calls."""
    code = spec.code
    if code.startswith("-{0}"):
        return "__neg__"
    if "[" in code:
        return "__getitem__"
    for sym, name in sorted(_OPERATORS.items(), key=lambda kv: -len(kv[0])):
        if f" {sym} " in code:
            return f"__r{name}__" if spec.reflected else f"__{name}__"
    return code.split(".", 1)[1].split("(")[0]


COVERS: dict = {}
"""Tensor method or operator -> the entries that exercise it (derived from the templates)."""
for _name, _spec in OPS.items():
    COVERS.setdefault(covers(_spec), []).append(_name)

OPS.update(FUNCTION_OPS)
