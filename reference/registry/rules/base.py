"""What every shape rule shares: the base class, the broadcast predicates, the elementwise rule."""
from __future__ import annotations

import math
import zlib

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry import makers
from reference.registry.spec import Condition, Plan, Sample, Use

MAX_SIZE = 256     # largest tensor a program may hold
MATMUL = "(m?,n),(n,p?)->(m?,p?)"
F32 = ("float32",)


def _shapes(min_dims=0, max_dims=4, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def sample_rng(spec) -> np.random.Generator:
    """The coverage samples' own generator: stable per op, independent of everything else."""
    return np.random.default_rng(zlib.crc32(spec.name.encode()))


def broadcast_out(use: Use) -> tuple:
    return np.broadcast_shapes(*use.shapes)


def stretched(use: Use, i: int) -> bool:
    """Operand i has a size-1 dim that broadcasting stretches."""
    s, out = use.shapes[i], broadcast_out(use)
    return any(n == 1 and m > 1 for n, m in zip(s[::-1], out[::-1]))


def gains_dims(use: Use, i: int) -> bool:
    return len(use.shapes[i]) < len(broadcast_out(use)) and len(use.shapes[i]) > 0


def one_element(use: Use, i: int) -> bool:
    s = use.shapes[i]
    return len(s) > 0 and math.prod(s) == 1 and math.prod(broadcast_out(use)) > 1


SIDES = ("left", "right")
FLOAT32 = Condition("float32", lambda u: "float32" in u.dtypes, makers.float32)
ZERO_D = Condition("0-D operand", lambda u: 0 in u.ndims, makers.zero_d(0), group="operand shape")


def array_operand(side: str, i: int) -> Condition:
    """Operand i is a plain ndarray, not a Tensor (`x - c`, `x @ c`): a constant that gets no
    gradient work."""
    return Condition(f"{side} a plain array", lambda u: len(u.roles) > i and u.roles[i] == "array",
                     makers.array_operand(i))


def mixed(side: str) -> Condition:
    """Operands of different float dtypes, the float32 one on `side`."""
    i = SIDES.index(side)
    return Condition(f"mixed dtypes, float32 {side}", lambda u: len(set(u.dtypes)) > 1 and u.dtypes[i] == "float32",
                     makers.mixed(i), group="mixed dtypes")


class Rule:
    """The defaults every family shares (see the module docstring)."""

    name = "rule"
    conditions: tuple = (FLOAT32,)
    infeasible: dict = {}      # {frozenset({a, b}): reason}: pairs of conditions that cannot meet
    min_dims = 0

    def samples(self, spec) -> list:
        return []

    def refit(self, spec, sample):
        """`sample` with its shape-dependent arguments fitted again after a maker changed its
        shapes (a reshape target, an index, an axis); raise `Infeasible` if none fits."""
        return sample

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
                  Condition("1-element operand", lambda u: len(u.shapes[0]) > 0 and math.prod(u.shapes[0]) == 1,
                            makers.one_element(0), group="operand shape"))

    def samples(self, spec):
        out = [Sample(((2, 3),)), Sample(((),)), Sample(((1,),)), Sample(((2, 3),), dtypes=F32)]
        if spec.exact_kinks:
            out += [Sample(((2, 3),), values="kinks"), Sample(((2, 3),), dtypes=F32, values="kinks")]
        if spec.wide_range:
            out += [Sample(((2, 3),), values="wide"), Sample(((2, 3),), dtypes=F32, values="wide")]
        return out
