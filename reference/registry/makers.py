"""Makers of op conditions: how a coverage draft (a `Sample`) is changed to reach a condition.

A maker (`Condition.make`) returns a new Sample (dataclasses.replace) that should reach its
condition while keeping what it can of the draft, or raises `Infeasible`. Each kind of
condition has one maker here, shared by every rule that states it (a side's shape form, a
dtype, an operand used twice, an argument, the values' regime); makers of a
rule's own conditions sit beside the rule. Nothing trusts a maker: the covering builder
(`reference.covering`) judges every draft by the conditions' predicates on the case built
from it.

Also here: `excludes`, the helper rows use to declare pairs of conditions that cannot hold
in one use (`OpSpec.infeasible`, `Rule.infeasible`, ...), with the reason.
"""
from __future__ import annotations

import math
from dataclasses import replace

from reference.registry.spec import Infeasible, Sample


# ---------------------------------------------------------------------------- declarations
def excludes(conditions, others, reason: str) -> dict:
    """{frozenset({condition, other}): reason} for each of `conditions` (a name or several)
    and each of `others` but itself: pairs that cannot meet."""
    names = (conditions,) if isinstance(conditions, str) else tuple(conditions)
    return {frozenset({c, other}): reason for c in names for other in others if other != c}


# ---------------------------------------------------------------------------- shapes
def reshaped(sample: Sample, shapes) -> Sample:
    """`sample` with new operand shapes; a value fill (`Sample.make`) follows them when it
    knows how (`for_shapes`), else the draft cannot change shape; an operand's memory layout
    is kept only while its number of dims is (a transposed view of a 1-D operand is none)."""
    shapes = tuple(tuple(s) for s in shapes)
    layouts = tuple(layout if k < len(shapes) and len(shapes[k]) == len(sample.shapes[k]) else ""
                    for k, layout in enumerate(sample.layouts))
    if sample.make is None:
        return replace(sample, shapes=shapes, layouts=layouts)
    if not hasattr(sample.make, "for_shapes"):
        raise Infeasible("the draft's values are made for its shapes")
    return replace(sample, shapes=shapes, layouts=layouts, make=sample.make.for_shapes(shapes))


def _set(shapes, i: int, shape) -> tuple:
    out = list(shapes)
    out[i] = tuple(shape)
    return tuple(out)


def _two(sample: Sample) -> tuple:
    if len(sample.shapes) < 2 or sample.same_operand:
        raise Infeasible("needs two distinct operands")
    return tuple(sample.shapes)


def zero_d(i: int):
    """Operand i is 0-D."""
    def make(sample: Sample) -> Sample:
        return reshaped(sample, _set(sample.shapes, i, ()))
    return make


def one_element(i: int):
    """Operand i has one element but at least one dim (its dims all 1); the other operand, if
    any, is made to carry more than one element."""
    def make(sample: Sample) -> Sample:
        shapes = list(sample.shapes)
        shapes[i] = (1,) * max(1, len(shapes[i]))
        if len(shapes) == 2 and math.prod(shapes[1 - i]) == 1 and not sample.same_operand:
            shapes[1 - i] = tuple(shapes[1 - i][:-1]) + (3,) if shapes[1 - i] else (3,)
        return reshaped(sample, shapes)
    return make


def stretched(i: int):
    """Operand i has a size-1 dim that broadcasting stretches (a dim the other operand has > 1)."""
    def make(sample: Sample) -> Sample:
        mine, other = (list(s) for s in (_two(sample)[i], sample.shapes[1 - i]))
        if not other:
            other = [3]
        if not mine:
            mine = [1]
        k = min(len(mine), len(other))
        if all(n == 1 for n in other[-k:]):
            other[-1] = 3
        j = next(j for j in range(1, k + 1) if other[-j] > 1)
        mine[-j] = 1
        return reshaped(sample, _set(_set(sample.shapes, i, mine), 1 - i, other))
    return make


def gains_dims(i: int):
    """Operand i (1-D or more) has fewer dims than the output: the other gains leading dims."""
    def make(sample: Sample) -> Sample:
        mine, other = (tuple(s) for s in (_two(sample)[i], sample.shapes[1 - i]))
        if not mine:
            mine = other[-1:] or (3,)
        if len(other) <= len(mine):   # new leading dims: the operand's own, then one more
            other = (2,) + mine[:len(mine) - len(other)] + other
        return reshaped(sample, _set(_set(sample.shapes, i, mine), 1 - i, other))
    return make


def dims(i: int, **sizes):
    """Operand i with the given sizes at the given axes (`dims(0, a1=2)`: axis 1 is 2)."""
    def make(sample: Sample) -> Sample:
        shape = list(sample.shapes[i])
        for key, n in sizes.items():
            a = int(key[1:])
            if a >= len(shape):
                raise Infeasible(f"operand {i} has no axis {a}")
            shape[a] = n
        return reshaped(sample, _set(sample.shapes, i, shape))
    return make


# ---------------------------------------------------------------------------- dtypes and roles
def float32(sample: Sample) -> Sample:
    """Some operand is float32 (all of them, unless one already is)."""
    if "float32" in sample.operand_dtypes():
        return sample
    return replace(sample, dtypes=("float32",) * len(sample.shapes))


def mixed(i: int):
    """Operands of different dtypes, the float32 one at slot i."""
    def make(sample: Sample) -> Sample:
        n = len(_two(sample))
        return replace(sample, dtypes=tuple("float32" if k == i else "float64" for k in range(n)))
    return make


def same_operand(sample: Sample) -> Sample:
    """One tensor in both operand slots (its shape and dtype are the left operand's)."""
    if len(sample.shapes) < 2:
        raise Infeasible("needs two operand slots")
    dtype = sample.operand_dtypes()[0]
    return replace(reshaped(sample, (sample.shapes[0],) * 2), same_operand=True, dtypes=(dtype, dtype),
                   arrays=(), constant=())


def array_operand(i: int):
    """Operand i is a plain ndarray (a constant that gets no gradient work)."""
    def make(sample: Sample) -> Sample:
        _two(sample)
        return replace(sample, arrays=tuple(sorted(set(sample.arrays) | {i})),
                       constant=tuple(k for k in sample.constant if k != i))
    return make


# ---------------------------------------------------------------------------- arguments
def args(**kw):
    """The given arguments set (the rest kept)."""
    def make(sample: Sample) -> Sample:
        return replace(sample, args={**sample.args, **kw})
    return make
