"""Rules of two operands: broadcasting, reflected constants, x ** p, matmul, conv2D."""
from __future__ import annotations

import math
import zlib
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry import makers
from reference.registry.rules.base import (F32, FLOAT32, MATMUL, MAX_SIZE, SIDES, ZERO_D, Rule, array_operand,
                                           broadcast_out, gains_dims, mixed, one_element, sample_rng, stretched)
from reference.registry.spec import Condition, ErrorInput, Infeasible, Plan, Sample, replace_args
from reference.value_strategies import constant


@st.composite
def broadcast_constant(draw, shape, dtype: str, fd: bool, domain: str = "real"):
    """A reflected op's constant: a Python float, or an array that broadcasts with `shape`
    (in `dtype` or float64)."""
    cshape = None
    if draw(st.booleans()):
        cshape = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape, max_dims=4,
                                                        max_side=4)).input_shapes[0]
    cdtype = draw(st.sampled_from([dtype, "float64"])) if cshape is not None else dtype
    return draw(constant(cshape, cdtype, fd, domain))


# ---------------------------------------------------------------------------- binary broadcasting
SIDE_FORMS = ("size-1 dim stretched", "gains leading dims", "0-D", "1-element")
USED_TWICE = Condition("operand used twice", lambda u: u.same_operand, makers.same_operand)


class Broadcast(Rule):
    """Two operands broadcast against each other, in any pattern, either side."""

    name = "broadcast"
    conditions = (FLOAT32,) + tuple(
        c for i, side in enumerate(SIDES) for c in (
            Condition(f"{side} size-1 dim stretched", lambda u, i=i: stretched(u, i), makers.stretched(i)),
            Condition(f"{side} gains leading dims", lambda u, i=i: gains_dims(u, i), makers.gains_dims(i)),
            Condition(f"{side} 0-D", lambda u, i=i: len(u.shapes[i]) == 0 and len(broadcast_out(u)) > 0,
                      makers.zero_d(i)),
            Condition(f"{side} 1-element", lambda u, i=i: one_element(u, i), makers.one_element(i)),
            mixed(side))) + (USED_TWICE, array_operand("right", 1))
    infeasible = {
        **makers.excludes([f"{side} 0-D" for side in SIDES], [f"{s} {form}" for s in SIDES for form in SIDE_FORMS],
                          "a 0-D operand has no dims; the output has the other operand's shape"),
        **makers.excludes("left 1-element", ["right 1-element", "right size-1 dim stretched"],
                          "all the left operand's dims are 1: the output's dims are the right operand's"),
        **makers.excludes("right 1-element", ["left size-1 dim stretched"],
                          "all the right operand's dims are 1: the output's dims are the left operand's"),
        **makers.excludes("left gains leading dims", ["right gains leading dims"],
                          "one operand has as many dims as the output"),
        **makers.excludes("operand used twice", [f"{side} {form}" for side in SIDES for form in SIDE_FORMS]
                          + [f"mixed dtypes, float32 {side}" for side in SIDES] + ["right a plain array"],
                          "one tensor in both slots: one shape, one dtype, a Tensor")}

    def samples(self, spec):
        out = [Sample(((2, 3), (2, 3))),
               Sample(((2, 3), (2, 1))), Sample(((2, 1), (2, 3))), Sample(((2, 1), (1, 3))),
               Sample(((2, 3), (3,))), Sample(((3,), (2, 3))),
               Sample(((2, 3), ())), Sample(((), (2, 3))),
               Sample(((2, 3), (1,))), Sample(((1,), (2, 3))), Sample(((1, 1), (2, 3))),
               Sample(((2, 3), (2, 3)), same_operand=True),
               Sample(((2, 3), (2, 3)), dtypes=F32 * 2),
               Sample(((2, 3), (3,)), dtypes=("float32", "float64")),
               Sample(((2, 3), (3,)), dtypes=("float64", "float32")),
               Sample(((2, 3), (2, 3)), dtypes=("float64", "float32")),
               Sample(((2, 3), (3,)), arrays=(1,)), Sample(((2, 3), (2, 3)), dtypes=("float32", "float64"), arrays=(1,)),
               Sample(((2, 3), ()), dtypes=("float64", "float32"), arrays=(1,))]
        return out

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3), (4,)), match=spec.op_name), ErrorInput(((2, 3), (3, 2)), match=spec.op_name)]

    def fits(self, spec, shape, sign):
        size = math.prod(shape)
        return 0 < size <= MAX_SIZE and (sign == "pos" or "real" in spec.domains({}))

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            other = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape, max_dims=4,
                                                           max_side=4)).input_shapes[0]
            slot = draw(st.integers(0, 1))
            doms = spec.domains({})
            if sign != "pos" and doms[slot] != "real":
                slot = 1 - slot
            return Plan({}, slot=slot, others=(other,), broadcast=True)
        return draw_plan()

    def operands(self, spec, fd, dtype):
        return hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4).map(
            lambda bs: (list(bs.input_shapes), {}))


# ---------------------------------------------------------------------------- reflected
def fit_constant(sample: Sample, x: tuple) -> Sample:
    """`sample` whose array constant (`args["const"]`, if any) follows the new sizes `x` of
    what it broadcasts with: each of its sides > 1 becomes the aligned side of `x` (or the
    largest of `x`, where that one is 1)."""
    c = sample.args.get("const")
    if not isinstance(c, np.ndarray):
        return sample
    x = tuple(x)
    widest = max(x, default=1)
    aligned = (1,) * (c.ndim - len(x)) + x[-c.ndim:] if c.ndim else ()
    new = tuple(1 if n == 1 else (m if m > 1 else widest) for n, m in zip(c.shape, aligned[-c.ndim:]))
    return replace_args(sample, const=np.resize(c, new))
def const_rng(shape) -> np.random.Generator:
    """The values of a constant a maker makes: fixed per shape."""
    return np.random.default_rng(zlib.crc32(repr(shape).encode()))


def _float64_constant(sample):
    """Maker: a float32 tensor and a float64 array constant (of the tensor's shape, if the
    constant was a Python float)."""
    const = sample.args.get("const")
    if not isinstance(const, np.ndarray):
        const = np.asarray(const_rng(sample.shapes[0]).uniform(0.5, 2.5, sample.shapes[0]))
    return replace(sample, dtypes=("float32",), args={**sample.args, "const": np.asarray(const, dtype=np.float64)})


FLOAT64_CONSTANT = Condition("float64 constant on a float32 tensor",
                             lambda u: u.dtypes[0] == "float32" and isinstance(u.args.get("const"), np.ndarray)
                             and u.args["const"].dtype == np.float64, _float64_constant)


class Reflected(Rule):
    """`c op x` with a constant on the left: a Python float or an array broadcast with x.
    `const_domain` restricts the constant ("pos" for a power's base)."""

    name = "reflected"

    def __init__(self, const_domain: str = "real"):
        self.const_domain = const_domain
        self.conditions = (
            FLOAT32, ZERO_D,
            Condition("scalar constant", lambda u: not isinstance(u.args.get("const"), np.ndarray),
                      self._with_const(lambda s: None), group="constant"),
            Condition("array constant", lambda u: isinstance(u.args.get("const"), np.ndarray),
                      self._with_const(lambda s: s.shapes[0]), group="constant"),
            Condition("constant stretches the tensor", lambda u: isinstance(u.args.get("const"), np.ndarray)
                      and np.broadcast_shapes(u.args["const"].shape, u.shapes[0]) != u.shapes[0],
                      self._with_const(lambda s: (2,) + tuple(s.shapes[0]))),
            FLOAT64_CONSTANT)
        self.infeasible = makers.excludes("scalar constant", ["constant stretches the tensor",
                                                              FLOAT64_CONSTANT.name], "a Python float is no array")

    def _with_const(self, shape_of):
        """Maker: the constant replaced by one of shape `shape_of(sample)` (None: a Python
        float) in the constant's dtype (float64 unless it is a float32 array)."""
        def make(sample):
            shape, old = shape_of(sample), sample.args.get("const")
            dtype = old.dtype if isinstance(old, np.ndarray) else "float64"
            return replace(sample, args={**sample.args, "const": self._const(const_rng(shape), shape, dtype)})
        return make

    def _const(self, rng, shape, dtype="float64"):
        if shape is None:
            v = rng.uniform(0.5, 2.5) * (1 if self.const_domain == "pos" else rng.choice([-1, 1]))
            return float(np.asarray(v, dtype=dtype))
        lo = 0.5 if self.const_domain == "pos" else -2.5
        return np.asarray(rng.uniform(lo, 2.5, shape), dtype=dtype)

    def samples(self, spec):
        r = sample_rng(spec)
        return [Sample(((2, 3),), {"const": self._const(r, None)}),
                Sample(((2, 3),), {"const": self._const(r, (2, 3))}),
                Sample(((3,),), {"const": self._const(r, (2, 3))}),
                Sample(((2, 1),), {"const": self._const(r, (2, 3))}),
                Sample(((2, 3),), {"const": self._const(r, (3,))}),
                Sample(((),), {"const": self._const(r, (2,))}),
                Sample(((2, 3),), {"const": self._const(r, None, "float32")}, dtypes=F32),
                Sample(((2, 3),), {"const": self._const(r, (2, 3))}, dtypes=F32),
                Sample(((2, 3),), {"const": self._const(r, (3,), "float32")}, dtypes=F32)]

    def refit(self, spec, sample):
        return fit_constant(sample, sample.shapes[0])

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            return Plan({"const": draw(broadcast_constant(shape, dtype, fd, self.const_domain))})
        return draw_plan()


# ---------------------------------------------------------------------------- x ** p
POW_EXPONENTS = (2.0, 3.0, 0.5, 1.5, 2.5, -1.0, -2.0, -0.5, 0.0, 1.0)
_REAL_EXPONENTS = (2.0, 3.0, 0.0, 1.0)   # fine for any base


def _fractional(p) -> bool:
    return p != round(p)


class PowScalar(Rule):
    """`x ** p` for a Python float p: p is drawn to fit the base's sign class."""

    name = "pow_scalar"
    conditions = (FLOAT32, ZERO_D,
                  Condition("p == 2", lambda u: u.args["p"] == 2, makers.args(p=2.0), group="p"),
                  Condition("p == 0", lambda u: u.args["p"] == 0, makers.args(p=0.0), group="p"),
                  Condition("p == 1", lambda u: u.args["p"] == 1, makers.args(p=1.0), group="p"),
                  Condition("negative p", lambda u: u.args["p"] < 0,
                            lambda s: replace(s, args={**s.args, "p": -0.5 if _fractional(s.args["p"]) else -2.0})),
                  Condition("fractional p", lambda u: _fractional(u.args["p"]),
                            lambda s: replace(s, args={**s.args, "p": -0.5 if s.args["p"] < 0 else 1.5})))
    infeasible = makers.excludes(("p == 2", "p == 0", "p == 1"), ["negative p", "fractional p"],
                                 "p is a non-negative integer there")

    def samples(self, spec):
        out = [Sample(((2, 3),), {"p": 3.0})]
        out += [Sample(((2, 3),), {"p": p}) for p in POW_EXPONENTS if p != 3.0]
        out += [Sample(((),), {"p": 3.0}), Sample(((2, 3),), {"p": 2.0}, dtypes=F32),
                Sample(((2, 3),), {"p": 0.5}, dtypes=F32), Sample(((2, 3),), {"p": 1.5}, values="kinks")]
        return out

    def fits(self, spec, shape, sign):
        return 0 < math.prod(shape) <= MAX_SIZE

    def plan(self, spec, shape, sign, fd, dtype):
        return st.sampled_from(POW_EXPONENTS if sign == "pos" else _REAL_EXPONENTS).map(
            lambda p: Plan({"p": p}))


# ---------------------------------------------------------------------------- matmul
def _batch(s: tuple) -> tuple:
    return s[:-2]


def _matrix(s: tuple, n: int, slot: int) -> tuple:
    """The matrix part of matmul operand `s` (contraction size n) at `slot`, 2-D."""
    return tuple(s[-2:]) if len(s) >= 2 else ((2, n) if slot == 0 else (n, 3))


def _matmul_maker(shapes_of):
    """Maker: matmul operands `shapes_of(left, right, n, same)` (n: the contraction size;
    `same`: one tensor in both slots, which must then get one shape)."""
    def make(sample):
        left, right = _two_slots(sample)
        new = shapes_of(tuple(left), tuple(right), left[-1], sample.same_operand)
        if sample.same_operand and new[0] != new[1]:
            raise Infeasible("one tensor in both slots has one shape")
        return makers.reshaped(sample, new)
    return make


def _two_slots(sample):
    if len(sample.shapes) < 2:
        raise Infeasible("needs two operand slots")
    return sample.shapes


def _shared(slot: int):
    """The operand at `slot` batched, the other's batch 1 (x @ x: both (1, n, n))."""
    def shapes_of(left, right, n, same):
        if same:
            return ((1, n, n),) * 2
        mine, other = (left, right) if slot == 0 else (right, left)
        mine = (2,) + _matrix(mine, n, slot)
        if len(other) < 2 or math.prod(_batch(other)) > 1:
            other = _matrix(other, n, 1 - slot)
        return (mine, other) if slot == 0 else (other, mine)
    return shapes_of


MATMUL_SHAPES = {
    "left 1-D": lambda left, right, n, same: ((n,), (n,) if same else right),
    "right 1-D": lambda left, right, n, same: ((n,) if same else left, (n,)),
    "batched left, shared right": _shared(0),
    "batched right, shared left": _shared(1),
    "broadcast batch dims": lambda left, right, n, same: ((2, 1) + _matrix(left, n, 0), (3,) + _matrix(right, n, 1)),
}


def _used_twice(sample):
    """Maker: one tensor in both slots of `@` (square in its last two dims)."""
    left = tuple(_two_slots(sample)[0])
    square = left if len(left) == 1 else left[:-2] + (left[-1], left[-1])
    return makers.same_operand(makers.reshaped(sample, (square, square)))


class Matmul(Rule):
    """`a @ b` with np.matmul semantics: 1-D operands, broadcast batch dims."""

    name = "matmul"
    min_dims = 1
    conditions = (
        FLOAT32, mixed("left"), mixed("right"),
        Condition("left 1-D", lambda u: u.ndims[0] == 1, _matmul_maker(MATMUL_SHAPES["left 1-D"])),
        Condition("right 1-D", lambda u: u.ndims[1] == 1, _matmul_maker(MATMUL_SHAPES["right 1-D"])),
        Condition("batched left, shared right", lambda u: u.ndims[0] > 2 and u.ndims[1] >= 2
                  and math.prod(_batch(u.shapes[1])) == 1, _matmul_maker(MATMUL_SHAPES["batched left, shared right"])),
        Condition("batched right, shared left", lambda u: u.ndims[1] > 2 and u.ndims[0] >= 2
                  and math.prod(_batch(u.shapes[0])) == 1, _matmul_maker(MATMUL_SHAPES["batched right, shared left"])),
        Condition("broadcast batch dims", lambda u: min(u.ndims) > 2 and _batch(u.shapes[0]) != _batch(u.shapes[1])
                  and math.prod(_batch(u.shapes[0])) > 1 and math.prod(_batch(u.shapes[1])) > 1,
                  _matmul_maker(MATMUL_SHAPES["broadcast batch dims"])),
        replace(USED_TWICE, make=_used_twice), array_operand("right", 1))
    infeasible = {
        **makers.excludes(("left 1-D", "right 1-D"), ["batched left, shared right", "batched right, shared left",
                                                      "broadcast batch dims"],
                          "a 1-D operand has no batch dims, and a batched one needs 2+ dims on the other side"),
        **makers.excludes("broadcast batch dims", ["batched left, shared right", "batched right, shared left"],
                          "broadcast batch dims need a batch of 2+ on both sides; shared means a batch of 1"),
        **makers.excludes("operand used twice", ["broadcast batch dims", "mixed dtypes, float32 left",
                                                 "mixed dtypes, float32 right", "right a plain array"],
                          "one tensor in both slots: one batch shape, one dtype, a Tensor")}

    def samples(self, spec):
        return [Sample(((2, 3), (3, 4))), Sample(((2, 3), (3, 4)), arrays=(1,)), Sample(((3,), (2, 3, 4)), arrays=(1,)),
                Sample(((3,), (3, 4))), Sample(((2, 3), (3,))), Sample(((3,), (3,))),
                Sample(((2, 2, 3), (3, 4))), Sample(((2, 2, 3), (1, 3, 4))),
                Sample(((2, 3), (2, 3, 4))), Sample(((3,), (2, 3, 4))),
                Sample(((2, 1, 2, 3), (3, 3, 2))), Sample(((3, 3), (3, 3)), same_operand=True),
                Sample(((2, 3), (3, 4)), dtypes=F32 * 2),
                Sample(((2, 3), (3, 4)), dtypes=("float32", "float64")),
                Sample(((2, 2, 3), (3, 4)), dtypes=("float64", "float32"))]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3), (4, 2)), match=spec.op_name), ErrorInput(((), (3,)), match=spec.op_name),
                ErrorInput(((2, 2, 3), (3, 3, 4)), match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            slot = draw(st.integers(0, 1))
            return Plan({}, slot=slot, others=(draw(matmul_partner(shape, slot)),))
        return draw_plan()

    def operands(self, spec, fd, dtype):
        return hnp.mutually_broadcastable_shapes(signature=MATMUL, max_dims=2, max_side=4).map(
            lambda bs: (list(bs.input_shapes), {}))


@st.composite
def matmul_partner(draw, shape, slot):
    """The other operand of `@` when the anchor (ndim >= 1) sits at `slot`."""
    n = shape[-1] if slot == 0 else (shape[-2] if len(shape) > 1 else shape[0])
    other_batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape[:-2], max_dims=3,
                                                         max_side=3)).input_shapes[0]
    side = draw(st.integers(1, 4))
    if draw(st.integers(0, 3)) == 3:
        side = n                  # square: transposition slips hide where sizes coincide
    if draw(st.booleans()):       # a 1-D partner
        return (n,)
    return other_batch + ((n, side) if slot == 0 else (side, n))


def _const_matmul(sample, shapes_of):
    """Maker of `c @ x`: the constant (left) and the tensor (right) get the shapes
    `shapes_of(left, right, n, False)` gives matmul's operands; a new constant keeps the
    old one's dtype."""
    const = np.asarray(sample.args["const"])
    left, right = shapes_of(const.shape, tuple(sample.shapes[0]), const.shape[-1], False)
    if left != const.shape:
        const = np.asarray(const_rng(left).uniform(-2, 2, left), dtype=const.dtype)
    return replace(makers.reshaped(sample, (right,)), args={**sample.args, "const": const})


class ReflectedMatmul(Rule):
    """`c @ x` with an array constant on the left."""

    name = "rmatmul"
    min_dims = 1
    conditions = (
        FLOAT32,
        Condition("1-D constant", lambda u: np.ndim(u.args["const"]) == 1,
                  lambda s: _const_matmul(s, MATMUL_SHAPES["left 1-D"])),
        Condition("1-D tensor", lambda u: u.ndims[0] == 1, lambda s: _const_matmul(s, MATMUL_SHAPES["right 1-D"])),
        Condition("batched constant, shared tensor", lambda u: np.ndim(u.args["const"]) > 2 and u.ndims[0] >= 2
                  and math.prod(_batch(u.shapes[0])) == 1,
                  lambda s: _const_matmul(s, MATMUL_SHAPES["batched left, shared right"])),
        FLOAT64_CONSTANT)
    infeasible = {**makers.excludes("batched constant, shared tensor", ["1-D constant", "1-D tensor"],
                                    "the batched constant needs 3+ dims and the tensor 2+"),
                  **makers.excludes("batched constant, shared tensor", ["equal sizes on different axes"],
                                    "a shared tensor's batch sizes are 1: only its last two sizes exceed 1")}

    def samples(self, spec):
        r = sample_rng(spec)
        c = lambda *s, dt="float64": np.asarray(r.uniform(-2, 2, s), dtype=dt)  # noqa: E731
        return [Sample(((3, 4),), {"const": c(2, 3)}), Sample(((3, 4),), {"const": c(3)}),
                Sample(((3,),), {"const": c(2, 3)}), Sample(((3, 4),), {"const": c(2, 2, 3)}),
                Sample(((3, 4),), {"const": c(2, 3)}, dtypes=F32),
                Sample(((3, 4),), {"const": c(2, 3, dt="float32")}, dtypes=F32)]

    def refit(self, spec, sample):
        """The constant's contracted side follows the tensor's; its other sides > 1 become
        that size too."""
        c = np.asarray(sample.args["const"])
        x = tuple(sample.shapes[0])
        k = x[-2] if len(x) > 1 else x[0]
        new = tuple(1 if n == 1 else k for n in c.shape[:-1]) + (k,)
        return replace_args(sample, const=np.resize(c, new))

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            cshape = draw(matmul_partner(shape, 1))
            return Plan({"const": draw(constant(cshape, draw(st.sampled_from([dtype, "float64"])), fd))})
        return draw_plan()


# ---------------------------------------------------------------------------- conv2D
CHUNKED_ABOVE = 3 * 2 ** 19
"""Bytes of im2col matrix beyond which pygrad's conv2D surely forms it in chunks (1.5 times
its cache-sized threshold, docs/benchmarks.md), re-formed in backward: a code path of its own."""


def im2col_bytes(kernel, x, args, dtypes) -> int:
    """Size of conv2D's im2col matrix (C kH kW, B oH oW) in the narrowest operand dtype."""
    s, p = args.get("stride", 1), args.get("padding", 0)
    oh, ow = (x[2] + 2 * p - kernel[3]) // s + 1, (x[3] + 2 * p - kernel[4]) // s + 1
    item = min(np.dtype(d).itemsize for d in dtypes)
    return kernel[2] * kernel[3] * kernel[4] * x[0] * max(oh, 0) * max(ow, 0) * item


def _chunked(u) -> bool:
    return u.shapes[0][0] == 1 and im2col_bytes(u.shapes[0], u.shapes[1], u.args, u.dtypes) > CHUNKED_ABOVE


def _make_chunked(sample: Sample) -> Sample:
    """The input's sides grown until the im2col matrix is beyond CHUNKED_ABOVE (a stride or
    a smaller kernel made after it may undo it: the covering then makes them first)."""
    kernel, x = sample.shapes[0], sample.shapes[1]
    if kernel[0] != 1:
        raise Infeasible("a per-sample kernel takes the whole im2col matrix")
    c = max(kernel[2], 4)     # more rows of the matrix, smaller inputs
    kernel, x = kernel[:2] + (c,) + kernel[3:], (x[0], c) + x[2:]
    n = max(x[2], x[3], kernel[3], kernel[4])
    while im2col_bytes(kernel, (x[0], x[1], n, n), sample.args, sample.operand_dtypes()) <= 1.25 * CHUNKED_ABOVE:
        n = n * 5 // 4 + 1
    return makers.reshaped(sample, (kernel, (x[0], x[1], n, n)))


class Conv(Rule):
    """`kernel.conv2D(x, stride, padding)`: the anchor is x (B, C, H, W); the kernel
    (1 or B, outC, C, kH, kW) is the other operand, in slot 0."""

    name = "conv2d"
    conditions = (
        FLOAT32, mixed("left"), mixed("right"),
        Condition("stride > 1", lambda u: u.args.get("stride", 1) > 1, makers.args(stride=2)),
        Condition("padding > 0", lambda u: u.args.get("padding", 0) > 0, makers.args(padding=1)),
        Condition("outC > 1", lambda u: u.shapes[0][1] > 1, makers.dims(0, a1=2)),
        Condition("inC > 1", lambda u: u.shapes[0][2] > 1, lambda s: makers.dims(1, a1=2)(makers.dims(0, a2=2)(s))),
        Condition("batch > 1", lambda u: u.shapes[1][0] > 1, makers.dims(1, a0=2)),
        Condition("per-sample kernel", lambda u: u.shapes[0][0] > 1,
                  lambda s: makers.dims(1, a0=2)(makers.dims(0, a0=2)(s))),
        Condition("1x1 kernel", lambda u: u.shapes[0][3:] == (1, 1), makers.dims(0, a3=1, a4=1)),
        Condition("im2col in chunks", _chunked, _make_chunked),
        array_operand("input", 1))
    infeasible = {
        **makers.excludes("im2col in chunks", ["per-sample kernel"], "a per-sample kernel takes the whole matrix"),
        **makers.excludes("im2col in chunks", ["size 1 on every axis"], "a 1x1 input makes a 1-column matrix")}

    def samples(self, spec):
        k, x = (1, 1, 1, 2, 2), (1, 1, 3, 3)
        return [Sample((k, x)), Sample((k, (1, 1, 5, 4)), {"stride": 2}), Sample((k, x), {"padding": 1}),
                Sample(((1, 3, 1, 2, 2), x)), Sample(((1, 1, 2, 2, 2), (1, 2, 3, 3))), Sample((k, (2, 1, 3, 3))),
                Sample(((2, 2, 1, 2, 2), (2, 1, 3, 3))), Sample(((1, 2, 1, 1, 1), x)),
                Sample(((1, 2, 2, 3, 2), (2, 2, 4, 4)), {"stride": 2, "padding": 1}),
                Sample(((1, 2, 1, 2, 2), x), dtypes=F32 * 2),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float32", "float64")),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float64", "float32")), Sample(((1, 2, 1, 2, 2), x), arrays=(1,)),
                Sample(((1, 2, 4, 3, 3), (2, 4, 64, 64)), {"padding": 1}),
                Sample(((1, 2, 4, 3, 3), (2, 4, 128, 128)), {"stride": 2, "padding": 1})]

    def error_inputs(self, spec):
        return [ErrorInput(((1, 1, 2, 2, 2), (1, 1, 3, 3)), match=spec.op_name),
                ErrorInput(((1, 1, 1, 4, 4), (1, 1, 3, 3)), match=spec.op_name)]

    def anchors(self, spec, fd):
        return st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))

    def fits_shape(self, shape):
        return len(shape) == 4 and math.prod(shape) <= 64

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            b, c, h, w = shape
            args = {}
            if draw(st.booleans()):
                args["stride"] = draw(st.integers(1, 2))
            if draw(st.booleans()):
                args["padding"] = draw(st.integers(0, 1))
            p = args.get("padding", 0)
            kh, kw = draw(st.integers(1, min(3, h + 2 * p))), draw(st.integers(1, min(3, w + 2 * p)))
            kernel = (draw(st.sampled_from([1, b])), draw(st.integers(1, 3)), c, kh, kw)
            return Plan(args, slot=1, others=(kernel,))
        return draw_plan()
