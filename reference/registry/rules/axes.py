"""Rules of one operand and its axes: reductions, softmax, reshape, transpose, .T."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry import makers
from reference.registry.rules.base import F32, FLOAT32, ZERO_D, Rule
from reference.registry.spec import Condition, ErrorInput, Infeasible, Plan, Sample, axes_of, replace_args


# ---------------------------------------------------------------------------- reductions
def _axis(u):
    return u.args.get("axis")


def _axis_list(u) -> list:
    a = _axis(u)
    return [] if a is None else list(a) if isinstance(a, tuple) else [a]


def _negative(axis, nd: int):
    """`axis` with one named axis negative (-1 where none is named)."""
    if isinstance(axis, int):
        return axis - nd if axis >= 0 else axis
    if axis:
        return (axis[0] - nd if axis[0] >= 0 else axis[0],) + tuple(axis[1:])
    return -1


def _axis_maker(axis_of):
    """Maker: `axis` set to `axis_of(axis, ndim)` on an operand of 2+ dims (a smaller one
    gains leading dims of size 2)."""
    def make(sample):
        shape = tuple(sample.shapes[0])
        if len(shape) < 2:
            shape = (2,) * (2 - len(shape)) + shape
            sample = makers.reshaped(sample, (shape,) + tuple(sample.shapes[1:]))
        axis = sample.args.get("axis", "default")
        return replace(sample, args={**sample.args, "axis": axis_of(None if axis == "default" else axis, len(shape))})
    return make


class Reduce(Rule):
    """sum / mean / std over `axis` (None, an int, a tuple; negatives) with `keepdims`."""

    name = "reduce"
    conditions = (
        FLOAT32, ZERO_D,
        Condition("axis=None", lambda u: _axis(u) is None and u.ndims[0] >= 2, _axis_maker(lambda a, nd: None),
                  group="axis form"),
        Condition("one axis", lambda u: isinstance(_axis(u), int) and u.ndims[0] >= 2,
                  _axis_maker(lambda a, nd: 0), group="axis form"),
        Condition("negative axis", lambda u: any(a < 0 for a in _axis_list(u)), _axis_maker(_negative)),
        Condition("tuple of axes", lambda u: isinstance(_axis(u), tuple) and len(_axis(u)) > 1,
                  _axis_maker(lambda a, nd: (0, nd - 1)), group="axis form"),
        Condition("empty tuple of axes", lambda u: _axis(u) == (), _axis_maker(lambda a, nd: ()), group="axis form"),
        Condition("keepdims=True", lambda u: bool(u.args.get("keepdims")), makers.args(keepdims=True),
                  group="keepdims"),
        Condition("keepdims=False", lambda u: not u.args.get("keepdims"), makers.args(keepdims=False),
                  group="keepdims"))
    infeasible = {**makers.excludes(ZERO_D.name, ["axis=None", "one axis", "negative axis", "tuple of axes"],
                                    "a 0-D operand has no axis to name (axis=None counts for 2+ dims)"),
                  **makers.excludes("negative axis", ["axis=None", "empty tuple of axes"], "no axis is named")}

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
def _softmax_1d(sample):
    """Maker: a 1-D operand (the draft's last axis), softmax along it."""
    shape = tuple(sample.shapes[0])[-1:] or (3,)
    return replace(makers.reshaped(sample, (shape,)), args={**sample.args, "axis": -1})


def _softmax_axis_of_one(sample):
    """Maker: the softmax axis of size 1 -- a new leading axis 0 where the operand has 2+
    dims (its last two keep their sizes: a transposed view and square matrices stay
    possible), else the axis (default -1) itself."""
    shape = list(sample.shapes[0])
    if len(shape) >= 2:
        return replace_args(makers.reshaped(sample, ((1,) + tuple(shape),)), axis=0)
    shape[sample.args.get("axis", -1)] = 1
    return makers.reshaped(sample, (tuple(shape),))


class Softmax(Rule):
    """Along one axis of a tensor of ndim >= 1; a non-last axis is where Jacobian slips hide."""

    name = "softmax"
    min_dims = 1
    conditions = (
        FLOAT32,
        Condition("non-last axis", lambda u: u.args["axis"] % u.ndims[0] != u.ndims[0] - 1,
                  _axis_maker(lambda a, nd: -nd if a is not None and a < 0 else 0)),
        Condition("negative axis", lambda u: u.args["axis"] < 0 and u.args["axis"] != -1,
                  _axis_maker(lambda a, nd: -nd)),
        Condition("1-D operand", lambda u: u.ndims[0] == 1, _softmax_1d),
        Condition("axis of size 1", lambda u: u.shapes[0][u.args["axis"]] == 1, _softmax_axis_of_one))
    infeasible = makers.excludes("1-D operand", ["non-last axis", "negative axis"],
                                 "a 1-D operand's only axis is its last (-1)")

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
def _reshape_maker(fit):
    """Maker of `x.reshape(target)`: (operand shape, target) = `fit(shape, target)`."""
    def make(sample):
        shape, target = fit(tuple(sample.shapes[0]), tuple(sample.args["shape"]))
        return replace(makers.reshaped(sample, (shape,)), args={**sample.args, "shape": target})
    return make


def _with_minus_one(shape, target):
    if not target:
        return shape, (-1,)
    return shape, (-1,) + target[1:] if -1 not in target else target


def _to_0d(shape, target):
    return (1,) * len(shape), ()


def _from_0d(shape, target):
    return (), tuple(-1 if t == -1 else 1 for t in target)


def _adds_dims(shape, target):
    if not shape:
        raise Infeasible("a 0-D operand has no dims to add to")
    target = target or (math.prod(shape),)
    return shape, target + (1,) * max(0, len(shape) + 1 - len(target))


class Reshape(Rule):
    name = "reshape"
    conditions = (
        FLOAT32,
        Condition("-1 in the shape", lambda u: -1 in tuple(u.args["shape"]), _reshape_maker(_with_minus_one)),
        Condition("to 0-D", lambda u: len(u.args["shape"]) == 0, _reshape_maker(_to_0d)),
        Condition("from 0-D", lambda u: u.ndims[0] == 0, _reshape_maker(_from_0d)),
        Condition("adds dims", lambda u: len(u.args["shape"]) > u.ndims[0] > 0, _reshape_maker(_adds_dims)))
    infeasible = {**makers.excludes("to 0-D", ["-1 in the shape", "adds dims"], "the target () has no entries"),
                  **makers.excludes("from 0-D", ["adds dims"], "a 0-D operand has no dims to add to")}

    def samples(self, spec):
        return [Sample(((2, 3),), {"shape": (3, 2)}), Sample(((2, 3),), {"shape": (-1,)}),
                Sample(((2, 3),), {"shape": (3, 1, 2)}), Sample(((1,),), {"shape": ()}),
                Sample(((),), {"shape": (1, 1)}), Sample(((2, 3, 4),), {"shape": (6, -1)}),
                Sample(((2, 3),), {"shape": (6,)}, dtypes=F32)]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 3),), {"shape": (4,)}, match=spec.op_name)]

    def refit(self, spec, sample):
        """The target: the operand's new shape reversed (its -1 kept in place), or () for
        a single entry that went to 0-D."""
        old, x = tuple(sample.args["shape"]), tuple(sample.shapes[0])
        if not old:
            if math.prod(x) != 1:
                raise Infeasible(f"reshape to 0-D needs a single entry, not shape {x}")
            return sample
        new = list(x[::-1]) or [1]
        if -1 in old:
            new[min(old.index(-1), len(new) - 1)] = -1
        return replace_args(sample, shape=tuple(new))

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


def _permutation_maker(perm_of, min_dims: int = 1):
    """Maker of `x.transpose(axes)`: axes = `perm_of(axes, ndim)` on an operand of at least
    `min_dims` dims (a smaller one gains leading dims of size 2)."""
    def make(sample):
        shape = tuple(sample.shapes[0])
        if len(shape) < min_dims:
            shape = (2,) * (min_dims - len(shape)) + shape
            sample = makers.reshaped(sample, (shape,))
        nd = len(shape)
        axes = sample.args.get("axes")
        axes = tuple(range(nd))[::-1] if axes is None or len(axes) != nd else tuple(axes)
        return replace(sample, args={**sample.args, "axes": perm_of(axes, nd)})
    return make


class Transpose(Rule):
    name = "transpose"
    conditions = (
        FLOAT32,
        Condition("explicit permutation", lambda u: u.args.get("axes") is not None,
                  _permutation_maker(lambda axes, nd: axes)),
        Condition("not its own inverse", lambda u: tuple(np.argsort(_perm(u))) != _perm(u),
                  _permutation_maker(lambda axes, nd: tuple(axes[1:]) + tuple(axes[:1]), min_dims=3)),
        Condition("negative axes", lambda u: any(a < 0 for a in (u.args.get("axes") or ())),
                  _permutation_maker(lambda axes, nd: (axes[0] - nd if axes[0] >= 0 else axes[0],) + axes[1:])))

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


def _at_least_2d(shape) -> tuple:
    shape = tuple(shape)
    return shape if len(shape) >= 2 else (2,) * (2 - len(shape)) + shape


def _square(sample):
    """Maker: the operand's last two sizes equal (2+ dims)."""
    shape = _at_least_2d(sample.shapes[0])
    return makers.reshaped(sample, (shape[:-1] + shape[-2:-1],))


class SwapLast(Rule):
    """`.T`: the last two axes swapped; 0-D and 1-D tensors are returned as is."""

    name = "T"
    conditions = (FLOAT32,
                  Condition("0-D or 1-D (itself)", lambda u: u.ndims[0] < 2,
                            lambda s: makers.reshaped(s, (tuple(s.shapes[0][-1:]),))),
                  Condition("batched (3+ dims)", lambda u: u.ndims[0] > 2,
                            lambda s: makers.reshaped(s, ((2,) + _at_least_2d(s.shapes[0]),))),
                  Condition("square", lambda u: u.ndims[0] >= 2 and u.shapes[0][-1] == u.shapes[0][-2], _square))
    infeasible = makers.excludes("0-D or 1-D (itself)", ["batched (3+ dims)", "square"],
                                 "the others need 2+ dims")

    def samples(self, spec):
        return [Sample(((2, 3),)), Sample(((3,),)), Sample(((),)), Sample(((2, 3, 4),)), Sample(((3, 3),)),
                Sample(((2, 3),), dtypes=F32)]
