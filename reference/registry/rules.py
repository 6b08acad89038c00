"""Shape rules: the families of operand layouts that registry entries share.

A rule knows, for every op that names it:
- `conditions`: the bug-prone conditions of the family (broadcast patterns, axis forms,
  1-D matmul operands, ...) as predicates on a `Use`;
- `samples(spec)`: the deterministic examples of the coverage pass, the plain one first and
  then, as far as possible, one per condition (PyTorch OpInfo's `sample_inputs`);
- `error_inputs(spec)`: calls pygrad must refuse;
- `fits(spec, shape, sign)`, `plan(spec, shape, sign, fd, dtype)`: how random programs apply
  the op to an existing node (the anchor), and `operands(spec, fd, dtype)`: fresh operands
  for the op alone. All hypothesis strategies draw structure before values.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry.spec import Condition, ErrorInput, Plan, Sample, Use, axes_of
from reference.strategies.values import MARGIN, R, constant, floats, scalar

MAX_SIZE = 256     # largest tensor a program may hold
MATMUL = "(m?,n),(n,p?)->(m?,p?)"
F32 = ("float32",)


def _shapes(min_dims=0, max_dims=4, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _rng(spec) -> np.random.Generator:
    """The coverage samples' own generator: stable per op, independent of everything else."""
    return np.random.default_rng(zlib.crc32(spec.name.encode()))


def _out_shape(use: Use) -> tuple:
    return np.broadcast_shapes(*use.shapes)


def _stretched(use: Use, i: int) -> bool:
    """Operand i has a size-1 dim that broadcasting stretches."""
    s, out = use.shapes[i], _out_shape(use)
    return any(n == 1 and m > 1 for n, m in zip(s[::-1], out[::-1]))


def _gains_dims(use: Use, i: int) -> bool:
    return len(use.shapes[i]) < len(_out_shape(use)) and len(use.shapes[i]) > 0


def _one_element(use: Use, i: int) -> bool:
    s = use.shapes[i]
    return len(s) > 0 and math.prod(s) == 1 and math.prod(_out_shape(use)) > 1


SIDES = ("left", "right")
FLOAT32 = Condition("float32", lambda u: "float32" in u.dtypes)
ZERO_D = Condition("0-D operand", lambda u: 0 in u.ndims)


def mixed(side: str) -> Condition:
    """Operands of different float dtypes, the float32 one on `side`."""
    i = SIDES.index(side)
    return Condition(f"mixed dtypes, float32 {side}",
                     lambda u: len(set(u.dtypes)) > 1 and u.dtypes[i] == "float32")


class Rule:
    """The defaults every family shares (see the module docstring)."""

    name = "rule"
    conditions: tuple = (FLOAT32,)
    min_dims = 0

    def samples(self, spec) -> list:
        return []

    def error_inputs(self, spec) -> list:
        return []

    def anchors(self, spec, fd: bool):
        min_side = spec.fd_min_side if fd else 1
        return _shapes(min_dims=max(self.min_dims, 1 if min_side > 1 else 0), min_side=min_side)

    def fits_shape(self, shape: tuple) -> bool:
        return len(shape) >= self.min_dims

    def fits(self, spec, shape: tuple, sign: str) -> bool:
        """Can a node of `shape` and sign class `sign` be the op's anchor operand?"""
        size = math.prod(shape)
        if size == 0 or size > MAX_SIZE or not self.fits_shape(shape):
            return False
        return sign == "pos" or "real" in spec.domains({})[:spec.arity]

    def plan(self, spec, shape, sign, fd, dtype):
        return st.builds(lambda: Plan({}))

    def operands(self, spec, fd: bool, dtype: str):
        """(operand shapes, args) for the op alone: an anchor and a plan around it."""
        @st.composite
        def draw_operands(draw):
            anchor = draw(self.anchors(spec, fd))
            p = draw(self.plan(spec, anchor, "pos", fd, dtype))
            shapes = [anchor] + list(p.others)
            return (shapes[::-1] if p.slot == 1 else shapes), p.args
        return draw_operands()


# ---------------------------------------------------------------------------- elementwise
class Elementwise(Rule):
    """One operand of any shape, the output of the same shape."""

    name = "elementwise"
    conditions = (FLOAT32, ZERO_D,
                  Condition("1-element operand", lambda u: len(u.shapes[0]) > 0 and math.prod(u.shapes[0]) == 1))

    def samples(self, spec):
        out = [Sample(((2, 3),)), Sample(((),)), Sample(((1,),)), Sample(((2, 3),), dtypes=F32)]
        if spec.exact_kinks:
            out += [Sample(((2, 3),), values="kinks"), Sample(((2, 3),), dtypes=F32, values="kinks")]
        if spec.wide_range:
            out += [Sample(((2, 3),), values="wide"), Sample(((2, 3),), dtypes=F32, values="wide")]
        return out


# ---------------------------------------------------------------------------- binary broadcasting
class Broadcast(Rule):
    """Two operands broadcast against each other, in any pattern, either side."""

    name = "broadcast"
    conditions = (FLOAT32,) + tuple(
        c for side in SIDES for c in (
            Condition(f"{side} size-1 dim stretched", lambda u, i=SIDES.index(side): _stretched(u, i)),
            Condition(f"{side} gains leading dims", lambda u, i=SIDES.index(side): _gains_dims(u, i)),
            Condition(f"{side} 0-D", lambda u, i=SIDES.index(side): len(u.shapes[i]) == 0
                      and len(_out_shape(u)) > 0),
            Condition(f"{side} 1-element", lambda u, i=SIDES.index(side): _one_element(u, i)),
            mixed(side))) + (Condition("operand used twice", lambda u: u.same_operand),)

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
               Sample(((2, 3), (2, 3)), dtypes=("float64", "float32"))]
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
        r = _rng(spec)
        return [Sample(((2, 3),), {"const": self._const(r, None)}),
                Sample(((2, 3),), {"const": self._const(r, (2, 3))}),
                Sample(((3,),), {"const": self._const(r, (2, 3))}),
                Sample(((2, 1),), {"const": self._const(r, (2, 3))}),
                Sample(((2, 3),), {"const": self._const(r, (3,))}),
                Sample(((),), {"const": self._const(r, (2,))}),
                Sample(((2, 3),), {"const": self._const(r, None, "float32")}, dtypes=F32),
                Sample(((2, 3),), {"const": self._const(r, (2, 3))}, dtypes=F32),
                Sample(((2, 3),), {"const": self._const(r, (3,), "float32")}, dtypes=F32)]

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
        Condition("operand used twice", lambda u: u.same_operand))

    def samples(self, spec):
        return [Sample(((2, 3), (3, 4))),
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
        r = _rng(spec)
        c = lambda *s, dt="float64": np.asarray(r.uniform(-2, 2, s), dtype=dt)  # noqa: E731
        return [Sample(((3, 4),), {"const": c(2, 3)}), Sample(((3, 4),), {"const": c(3)}),
                Sample(((3,),), {"const": c(2, 3)}), Sample(((3, 4),), {"const": c(2, 2, 3)}),
                Sample(((3, 4),), {"const": c(2, 3)}, dtypes=F32),
                Sample(((3, 4),), {"const": c(2, 3, dt="float32")}, dtypes=F32)]

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            cshape = draw(matmul_partner(shape, 1))
            return Plan({"const": draw(constant(cshape, draw(st.sampled_from([dtype, "float64"])), fd))})
        return draw_plan()


# ---------------------------------------------------------------------------- reductions
def _axis(u):
    return u.args.get("axis")


def _axis_list(u) -> list:
    a = _axis(u)
    return [] if a is None else list(a) if isinstance(a, tuple) else [a]


class Reduce(Rule):
    """sum / mean / std over `axis` (None, an int, a tuple; negatives) with `keepdims`."""

    name = "reduce"
    conditions = (
        FLOAT32, ZERO_D,
        Condition("axis=None", lambda u: _axis(u) is None and u.ndims[0] >= 2),
        Condition("one axis", lambda u: isinstance(_axis(u), int) and u.ndims[0] >= 2),
        Condition("negative axis", lambda u: any(a < 0 for a in _axis_list(u))),
        Condition("tuple of axes", lambda u: isinstance(_axis(u), tuple) and len(_axis(u)) > 1),
        Condition("empty tuple of axes", lambda u: _axis(u) == ()),
        Condition("keepdims=True", lambda u: bool(u.args.get("keepdims"))),
        Condition("keepdims=False", lambda u: not u.args.get("keepdims")))

    def samples(self, spec):
        kinks = "kinks" if spec.fd_min_side > 1 else "smooth"   # a single-entry row is a kink
        out = [Sample(((2, 3),)),
               Sample(((2, 3),), {"axis": 0}), Sample(((2, 3),), {"axis": -1}),
               Sample(((2, 3),), {"axis": None}), Sample(((2, 3, 4),), {"axis": (0, 2)}),
               Sample(((2, 3, 4),), {"axis": (-1, 0), "keepdims": True}),
               Sample(((2, 3),), {"axis": 1, "keepdims": False}), Sample(((2, 3),), {"axis": 1, "keepdims": True}),
               Sample(((2, 3),), {"axis": ()}, values=kinks),
               Sample(((),), {"axis": None}, values=kinks), Sample(((2, 3),), {"axis": 0}, dtypes=F32)]
        if spec.exact_kinks:
            out += [Sample(((3, 4),), {"axis": -1}, values="kinks"),
                    Sample(((3, 4),), {"axis": 0}, dtypes=F32, values="kinks")]
        return out

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3),), {"axis": 2}, match=spec.op_name),
                ErrorInput(((2, 3),), {"axis": (0, -2)}, match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            args = {}
            needs_axis = len(shape) == 0 and spec.defaults.get("axis") is not None
            if needs_axis or draw(st.booleans()):
                args["axis"] = draw(axis_args(shape))
            if draw(st.booleans()):
                args["keepdims"] = draw(st.booleans())
            if fd and math.prod(shape[a] for a in axes_of(spec.all_args(args)["axis"], len(shape))) \
                    < spec.fd_min_side:
                args["axis"] = None   # finite differences need rows of fd_min_side entries
            return Plan(args)
        return draw_plan()


@st.composite
def axis_args(draw, shape):
    """axis: None, an int (maybe negative), a tuple (maybe empty, maybe negative entries)."""
    nd = len(shape)
    kind = draw(st.sampled_from(["none"] + (["int", "tuple"] if nd else ["empty"])))
    if kind == "none":
        return None
    if kind == "empty":
        return ()
    if kind == "int":
        return draw(st.integers(-nd, nd - 1))
    return draw(hnp.valid_tuple_axes(nd, min_size=0))  # entries may be negative


# ---------------------------------------------------------------------------- softmax
class Softmax(Rule):
    """Along one axis of a tensor of ndim >= 1; a non-last axis is where Jacobian slips hide."""

    name = "softmax"
    min_dims = 1
    conditions = (
        FLOAT32,
        Condition("non-last axis", lambda u: u.args["axis"] % u.ndims[0] != u.ndims[0] - 1),
        Condition("negative axis", lambda u: u.args["axis"] < 0 and u.args["axis"] != -1),
        Condition("1-D operand", lambda u: u.ndims[0] == 1),
        Condition("axis of size 1", lambda u: u.shapes[0][u.args["axis"]] == 1))

    def samples(self, spec):
        return [Sample(((2, 3),)), Sample(((2, 3),), {"axis": 0}), Sample(((2, 3, 4),), {"axis": -2}),
                Sample(((4,),)), Sample(((3, 1),)), Sample(((2, 3),), {"axis": 0}, dtypes=F32),
                Sample(((2, 3),), values="wide"), Sample(((3, 2),), {"axis": 0}, values="wide"),
                Sample(((2, 3),), dtypes=F32, values="wide")]

    def error_inputs(self, spec):
        return [ErrorInput(((),), match=spec.op_name), ErrorInput(((2, 3),), {"axis": (0, 1)}, TypeError, spec.op_name),
                ErrorInput(((2, 3),), {"axis": 2}, match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        nd = len(shape)
        non_last = [a for a in range(-nd, nd) if a % nd != nd - 1]
        return st.one_of(st.builds(lambda: Plan({})), st.integers(-nd, nd - 1).map(lambda a: Plan({"axis": a})),
                         *([st.sampled_from(non_last).map(lambda a: Plan({"axis": a}))] if non_last else []))


# ---------------------------------------------------------------------------- layout ops
class Reshape(Rule):
    name = "reshape"
    conditions = (
        FLOAT32,
        Condition("-1 in the shape", lambda u: -1 in tuple(u.args["shape"])),
        Condition("to 0-D", lambda u: len(u.args["shape"]) == 0),
        Condition("from 0-D", lambda u: u.ndims[0] == 0),
        Condition("adds dims", lambda u: len(u.args["shape"]) > u.ndims[0] > 0))

    def samples(self, spec):
        return [Sample(((2, 3),), {"shape": (3, 2)}), Sample(((2, 3),), {"shape": (-1,)}),
                Sample(((2, 3),), {"shape": (3, 1, 2)}), Sample(((1,),), {"shape": ()}),
                Sample(((),), {"shape": (1, 1)}), Sample(((2, 3, 4),), {"shape": (6, -1)}),
                Sample(((2, 3),), {"shape": (6,)}, dtypes=F32)]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3),), {"shape": (4,)}, match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        return new_shape(shape).map(lambda s: Plan({"shape": s}))


@st.composite
def new_shape(draw, shape):
    """A shape of the same size, maybe with one -1."""
    size = math.prod(shape)
    dims, rest = [], size
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        dims.append(d)
        rest //= d
    if rest != 1 or not dims:
        dims.append(rest)
    if size == 1 and draw(st.booleans()):
        dims = []
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


def _perm(u):
    axes = u.args.get("axes")
    nd = u.ndims[0]
    return tuple(range(nd))[::-1] if axes is None else tuple(a % nd for a in axes)


class Transpose(Rule):
    name = "transpose"
    conditions = (
        FLOAT32,
        Condition("explicit permutation", lambda u: u.args.get("axes") is not None),
        Condition("not its own inverse", lambda u: tuple(np.argsort(_perm(u))) != _perm(u)),
        Condition("negative axes", lambda u: any(a < 0 for a in (u.args.get("axes") or ()))))

    def samples(self, spec):
        return [Sample(((2, 3),)), Sample(((2, 3, 4),)), Sample(((2, 3, 4),), {"axes": (1, 2, 0)}),
                Sample(((2, 3, 4),), {"axes": (-1, 0, 1)}), Sample(((2, 3),), {"axes": (0, 1)}),
                Sample(((2, 3, 4),), {"axes": (2, 0, 1)}, dtypes=F32)]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3),), {"axes": (0, 0)}, match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            if draw(st.booleans()):
                return Plan({})
            nd = len(shape)
            perm = draw(st.permutations(range(nd)))
            flips = draw(st.lists(st.booleans(), min_size=nd, max_size=nd))
            return Plan({"axes": tuple(a - nd if f else a for a, f in zip(perm, flips))})
        return draw_plan()


class SwapLast(Rule):
    """`.T`: the last two axes swapped; 0-D and 1-D tensors are returned as is."""

    name = "T"
    conditions = (FLOAT32,
                  Condition("0-D or 1-D (itself)", lambda u: u.ndims[0] < 2),
                  Condition("batched (3+ dims)", lambda u: u.ndims[0] > 2),
                  Condition("square", lambda u: u.ndims[0] >= 2 and u.shapes[0][-1] == u.shapes[0][-2]))

    def samples(self, spec):
        return [Sample(((2, 3),)), Sample(((3,),)), Sample(((),)), Sample(((2, 3, 4),)), Sample(((3, 3),)),
                Sample(((2, 3),), dtypes=F32)]


# ---------------------------------------------------------------------------- indexing
def index_kinds(idx) -> set:
    """What an index is made of: basic slices, negative steps, ints, newaxis/ellipsis,
    integer arrays (with repeats), boolean masks."""
    items = idx if isinstance(idx, tuple) else (idx,)
    kinds = set()
    for it in items:
        if isinstance(it, slice):
            kinds.add("slice")
            if it.step is not None and it.step < 0:
                kinds.add("negative step")
        elif it is None or it is Ellipsis:
            kinds.add("newaxis or ellipsis")
        elif isinstance(it, np.ndarray) and it.dtype == np.bool_:
            kinds.add("boolean mask")
        elif isinstance(it, np.ndarray):
            kinds.add("integer array")
            flat = it.reshape(-1).tolist()
            if len(flat) != len(set(flat)):
                kinds.add("repeated indices")
        elif isinstance(it, (int, np.integer)):
            kinds.add("integer")
    if "integer array" in kinds and kinds & {"slice", "integer", "newaxis or ellipsis"}:
        kinds.add("advanced and basic mixed")
    return kinds


class Index(Rule):
    """`x[idx]` (getitem) or `x.mask_idcs(idcs)`: any NumPy index in the argument `key`."""

    name = "index"

    def __init__(self, key: str, kinds: tuple):
        self.key = key
        self.conditions = (FLOAT32,) + tuple(
            Condition(k, lambda u, k=k: k in index_kinds(u.args[self.key])) for k in kinds)

    def samples(self, spec):
        a = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
        k = self.key
        return [Sample(((4, 3),), {k: (slice(1, 3),)}), Sample(((4, 3),), {k: (slice(None, None, -2),)}),
                Sample(((4, 3),), {k: 2}), Sample(((4, 3),), {k: (None, Ellipsis, 1)}),
                Sample(((4, 3),), {k: a(0, 2)}), Sample(((4, 3),), {k: a(1, 1, 3)}),
                Sample(((4, 3),), {k: np.array([True, False, True, True])}),
                Sample(((4, 3),), {k: (a(0, 0, 2), slice(None, 2))}), Sample(((4, 3),), {k: (a(1, 3), a(2, 0))}),
                Sample(((4, 3),), {k: a(3, 0)}, dtypes=F32)]

    def plan(self, spec, shape, sign, fd, dtype):
        return indices(shape).map(lambda idx: Plan({self.key: idx}))


@st.composite
def indices(draw, shape):
    """A NumPy index for `shape`: basic (hypothesis' basic_indices), integer arrays with
    repeats (integer_array_indices), a boolean mask, or a mix of slices, ints and arrays."""
    nd = len(shape)
    kind = draw(st.sampled_from(["basic"] + (["advanced", "mixed", "bool"] if nd else [])))
    if kind == "basic":
        return draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    if kind == "advanced":
        return draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2,
                                                                                  max_side=4)))
    if kind == "bool":
        return draw(hnp.arrays(np.bool_, shape[:draw(st.integers(1, nd))]))
    rshape = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
    parts = []
    for n in shape[:draw(st.integers(1, nd))]:
        what = draw(st.sampled_from(["slice", "int", "array"]))
        if what == "slice":
            parts.append(slice(draw(st.none() | st.integers(-n, n)), draw(st.none() | st.integers(-n, n)),
                               draw(st.none() | st.sampled_from([1, 2, -1, -2]))))
        elif what == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            parts.append(draw(hnp.arrays(np.int64, rshape, elements=st.integers(-n, n - 1))))
    return tuple(parts)


class Masked(Index):
    """`x.mask_idcs(idcs, value)`: an index plus the value written there."""

    def __init__(self):
        super().__init__("idcs", ("slice", "integer array", "repeated indices", "boolean mask",
                                  "advanced and basic mixed"))
        self.conditions += (Condition("nonzero fill value", lambda u: u.args.get("value", 0.0) != 0),)

    def samples(self, spec):
        return super().samples(spec) + [Sample(((4, 3),), {"idcs": (np.array([0, 3]),), "value": 1.5}),
                                        Sample(((4, 3),), {"idcs": (slice(0, 2),), "value": -0.5}, dtypes=F32)]

    def error_inputs(self, spec):
        return [ErrorInput(((4, 3),), {"idcs": (np.array([5]),)}, match=spec.op_name)]

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            args = {"idcs": draw(indices(shape))}
            if draw(st.booleans()):
                args["value"] = draw(st.just(0.0) | scalar(floats(-R, R), dtype))
            return Plan(args)
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
        Condition("1x1 kernel", lambda u: u.shapes[0][3:] == (1, 1)))

    def samples(self, spec):
        k, x = (1, 1, 1, 2, 2), (1, 1, 3, 3)
        return [Sample((k, x)), Sample((k, (1, 1, 5, 4)), {"stride": 2}), Sample((k, x), {"padding": 1}),
                Sample(((1, 3, 1, 2, 2), x)), Sample(((1, 1, 2, 2, 2), (1, 2, 3, 3))), Sample((k, (2, 1, 3, 3))),
                Sample(((2, 2, 1, 2, 2), (2, 1, 3, 3))), Sample(((1, 2, 1, 1, 1), x)),
                Sample(((1, 2, 2, 3, 2), (2, 2, 4, 4)), {"stride": 2, "padding": 1}),
                Sample(((1, 2, 1, 2, 2), x), dtypes=F32 * 2),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float32", "float64")),
                Sample(((1, 2, 1, 2, 2), x), dtypes=("float64", "float32"))]

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


ELEMENTWISE, BROADCAST, REFLECTED = Elementwise(), Broadcast(), Reflected()
POSITIVE_BASE = Reflected(const_domain="pos")
POW, MATMUL_RULE, RMATMUL, REDUCE, SOFTMAX = PowScalar(), Matmul(), ReflectedMatmul(), Reduce(), Softmax()
RESHAPE, TRANSPOSE, SWAP_LAST, CONV = Reshape(), Transpose(), SwapLast(), Conv()
GETITEM = Index("idx", ("slice", "negative step", "integer", "newaxis or ellipsis", "integer array",
                        "repeated indices", "boolean mask", "advanced and basic mixed"))
MASK = Masked()
