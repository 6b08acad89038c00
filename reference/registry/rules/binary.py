"""Rules of two operands: broadcasting, reflected constants, x ** p, matmul, conv2D."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry.rules.base import (F32, FLOAT32, MATMUL, MAX_SIZE, SIDES, ZERO_D, Rule, array_operand,
                                           broadcast_out, gains_dims, mixed, one_element, sample_rng, stretched)
from reference.registry.spec import Condition, ErrorInput, Plan, Sample, replace_args
from reference.value_strategies import constant


# ---------------------------------------------------------------------------- binary broadcasting
class Broadcast(Rule):
    """Two operands broadcast against each other, in any pattern, either side."""

    name = "broadcast"
    conditions = (FLOAT32,) + tuple(
        c for side in SIDES for c in (
            Condition(f"{side} size-1 dim stretched", lambda u, i=SIDES.index(side): stretched(u, i)),
            Condition(f"{side} gains leading dims", lambda u, i=SIDES.index(side): gains_dims(u, i)),
            Condition(f"{side} 0-D", lambda u, i=SIDES.index(side): len(u.shapes[i]) == 0
                      and len(broadcast_out(u)) > 0),
            Condition(f"{side} 1-element", lambda u, i=SIDES.index(side): one_element(u, i)),
            mixed(side))) + (Condition("operand used twice", lambda u: u.same_operand), array_operand("right", 1))

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


class Reflected(Rule):
    """`c op x` with a constant on the left: a Python float or an array broadcast with x.
    `const_domain` restricts the constant ("pos" for a power's base)."""

    name = "reflected"

    def __init__(self, const_domain: str = "real"):
        self.const_domain = const_domain
        self.conditions = (
            FLOAT32, ZERO_D,
            Condition("scalar constant", lambda u: not isinstance(u.args.get("const"), np.ndarray)),
            Condition("array constant", lambda u: isinstance(u.args.get("const"), np.ndarray)),
            Condition("constant stretches the tensor", lambda u: isinstance(u.args.get("const"), np.ndarray)
                      and np.broadcast_shapes(u.args["const"].shape, u.shapes[0]) != u.shapes[0]),
            Condition("float64 constant on a float32 tensor",
                      lambda u: u.dtypes[0] == "float32" and isinstance(u.args.get("const"), np.ndarray)
                      and u.args["const"].dtype == np.float64))

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
            cshape = None
            if draw(st.booleans()):
                cshape = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape, max_dims=4,
                                                                max_side=4)).input_shapes[0]
            cdtype = draw(st.sampled_from([dtype, "float64"])) if cshape is not None else dtype
            return Plan({"const": draw(constant(cshape, cdtype, fd, self.const_domain))})
        return draw_plan()


# ---------------------------------------------------------------------------- x ** p
POW_EXPONENTS = (2.0, 3.0, 0.5, 1.5, 2.5, -1.0, -2.0, -0.5, 0.0, 1.0)
_REAL_EXPONENTS = (2.0, 3.0, 0.0, 1.0)   # fine for any base


class PowScalar(Rule):
    """`x ** p` for a Python float p: p is drawn to fit the base's sign class."""

    name = "pow_scalar"
    conditions = (FLOAT32, ZERO_D,
                  Condition("p == 2", lambda u: u.args["p"] == 2),
                  Condition("p == 0", lambda u: u.args["p"] == 0),
                  Condition("p == 1", lambda u: u.args["p"] == 1),
                  Condition("negative p", lambda u: u.args["p"] < 0),
                  Condition("fractional p", lambda u: u.args["p"] != round(u.args["p"])))

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


class Matmul(Rule):
    """`a @ b` with np.matmul semantics: 1-D operands, broadcast batch dims."""

    name = "matmul"
    min_dims = 1
    conditions = (
        FLOAT32, mixed("left"), mixed("right"),
        Condition("left 1-D", lambda u: u.ndims[0] == 1),
        Condition("right 1-D", lambda u: u.ndims[1] == 1),
        Condition("batched left, shared right", lambda u: u.ndims[0] > 2 and u.ndims[1] >= 2
                  and math.prod(_batch(u.shapes[1])) == 1),
        Condition("batched right, shared left", lambda u: u.ndims[1] > 2 and u.ndims[0] >= 2
                  and math.prod(_batch(u.shapes[0])) == 1),
        Condition("broadcast batch dims", lambda u: min(u.ndims) > 2 and _batch(u.shapes[0]) != _batch(u.shapes[1])
                  and math.prod(_batch(u.shapes[0])) > 1 and math.prod(_batch(u.shapes[1])) > 1),
        Condition("operand used twice", lambda u: u.same_operand), array_operand("right", 1))

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


class ReflectedMatmul(Rule):
    """`c @ x` with an array constant on the left."""

    name = "rmatmul"
    min_dims = 1
    conditions = (
        FLOAT32,
        Condition("1-D constant", lambda u: np.ndim(u.args["const"]) == 1),
        Condition("1-D tensor", lambda u: u.ndims[0] == 1),
        Condition("batched constant, shared tensor", lambda u: np.ndim(u.args["const"]) > 2 and u.ndims[0] >= 2
                  and math.prod(_batch(u.shapes[0])) == 1),
        Condition("float64 constant on a float32 tensor",
                  lambda u: u.dtypes[0] == "float32" and np.asarray(u.args["const"]).dtype == np.float64))

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
class Conv(Rule):
    """`kernel.conv2D(x, stride, padding)`: the anchor is x (B, C, H, W); the kernel
    (1 or B, outC, C, kH, kW) is the other operand, in slot 0."""

    name = "conv2d"
    conditions = (
        FLOAT32, mixed("left"), mixed("right"),
        Condition("stride > 1", lambda u: u.args.get("stride", 1) > 1),
        Condition("padding > 0", lambda u: u.args.get("padding", 0) > 0),
        Condition("outC > 1", lambda u: u.shapes[0][1] > 1),
        Condition("inC > 1", lambda u: u.shapes[0][2] > 1),
        Condition("batch > 1", lambda u: u.shapes[1][0] > 1),
        Condition("per-sample kernel", lambda u: u.shapes[0][0] > 1),
        Condition("1x1 kernel", lambda u: u.shapes[0][3:] == (1, 1)), array_operand("input", 1))

    def samples(self, spec):
        k, x = (1, 1, 1, 2, 2), (1, 1, 3, 3)
        return [Sample((k, x)), Sample((k, (1, 1, 5, 4)), {"stride": 2}), Sample((k, x), {"padding": 1}),
                Sample(((1, 3, 1, 2, 2), x)), Sample(((1, 1, 2, 2, 2), (1, 2, 3, 3))), Sample((k, (2, 1, 3, 3))),
                Sample(((2, 2, 1, 2, 2), (2, 1, 3, 3))), Sample(((1, 2, 1, 1, 1), x)),
                Sample(((1, 2, 2, 3, 2), (2, 2, 4, 4)), {"stride": 2, "padding": 1}),
                Sample(((1, 2, 1, 2, 2), x), dtypes=F32 * 2),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float32", "float64")),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float64", "float32")), Sample(((1, 2, 1, 2, 2), x), arrays=(1,))]

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
