"""Rules of an operand and an index: getitem, mask_idcs.

The index is NumPy's whole grammar, each form a condition with a maker (a coverage draft's
index rewritten to that form for the draft's shape) that random draws reach too: slices
(negative steps, bounds out of range, empty), integers (negative), `None`, `Ellipsis`,
integer arrays (negative entries, repeats), boolean masks (over every axis, over leading
axes, 0-D), advanced indices mixed with basic ones and separated by a slice (NumPy then
moves their axes first)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry import makers
from reference.registry.rules.base import F32, FLOAT32, Rule
from reference.registry.spec import Condition, ErrorInput, Infeasible, Plan, Sample
from reference.value_strategies import R, floats, scalar


# ---------------------------------------------------------------------------- reading an index
def _items(idx) -> tuple:
    return idx if isinstance(idx, tuple) else (idx,)


def _is_bool(it) -> bool:
    return isinstance(it, (bool, np.bool_)) or isinstance(it, np.ndarray) and it.dtype == np.bool_


def _is_int(it) -> bool:
    return isinstance(it, (int, np.integer)) and not isinstance(it, (bool, np.bool_))


def _consumes(it) -> int:
    """How many axes of the indexed array an item consumes (Ellipsis: see `index_axes`)."""
    if it is None:
        return 0
    if _is_bool(it):
        return np.ndim(it)
    return 1


def index_axes(idx, ndim: int) -> list:
    """[(item, axes it consumes)] for a NumPy index of an array with `ndim` axes."""
    items = _items(idx)
    rest = ndim - sum(_consumes(it) for it in items if it is not Ellipsis)
    out, axis = [], 0
    for it in items:
        k = max(rest, 0) if it is Ellipsis else _consumes(it)
        out.append((it, tuple(range(axis, axis + k))))
        axis += k
    return out


def _advanced(it) -> bool:
    return isinstance(it, np.ndarray) and (it.dtype != np.bool_ or it.ndim > 0)


def index_kinds(idx, shape=None) -> set:
    """The forms an index is made of (the conditions of `Index`); `shape`, the indexed
    array's, tells the forms that depend on it (bounds out of range, an empty selection,
    boolean masks over every axis, repeats of one position written two ways)."""
    items = _items(idx)
    kinds = set()
    sizes = dict(enumerate(shape)) if shape is not None else {}
    for it, axes in index_axes(idx, len(shape)) if shape is not None else [(it, ()) for it in items]:
        n = sizes.get(axes[0]) if axes else None
        if isinstance(it, slice):
            kinds.add("slice")
            if it.step is not None and it.step < 0:
                kinds.add("negative step")
            if n is not None and any(b is not None and not -n <= b <= n for b in (it.start, it.stop)):
                kinds.add("out-of-range slice bounds")
        elif it is None or it is Ellipsis:
            kinds.add("newaxis or ellipsis")
            kinds.add("Ellipsis" if it is Ellipsis else "None (new axis)")
        elif _is_bool(it):
            kinds.add("boolean mask")
            nd = np.ndim(it)
            kinds.add("0-D boolean" if nd == 0 else "full boolean mask" if shape is not None and nd == len(shape)
                      else "partial boolean mask")
        elif isinstance(it, np.ndarray):
            kinds.add("integer array")
            flat = it.reshape(-1).tolist()
            if any(e < 0 for e in flat):
                kinds.add("negative array entries")
            if len(flat) != len({e % n if n else e for e in flat}):
                kinds.add("repeated indices")
        elif _is_int(it):
            kinds.add("integer")
            if it < 0:
                kinds.add("negative integer")
    if "integer array" in kinds and kinds & {"slice", "integer", "newaxis or ellipsis"}:
        kinds.add("advanced and basic mixed")
    adv = [k for k, it in enumerate(items) if _advanced(it) or _is_int(it) and any(map(_advanced, items))]
    if len(adv) >= 2 and adv[-1] - adv[0] + 1 != len(adv):
        kinds.add("advanced indices separated by a slice")
    if shape is not None and math.prod(shape) > 0:
        try:
            if np.empty(shape)[idx].size == 0:
                kinds.add("empty selection")
        except (IndexError, ValueError, TypeError):
            pass
    return kinds


# ---------------------------------------------------------------------------- writing one
def _arr(*v) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def _mask(shape) -> np.ndarray:
    """A boolean mask of `shape`, alternating, its first entry True."""
    return (np.arange(math.prod(shape)) % 2 == 0).reshape(shape)


def index_of_kind(kind: str, shape: tuple):
    """An index of form `kind` for an array of `shape` (Infeasible where it has too few
    axes)."""
    nd, n = len(shape), shape[0] if shape else 0
    need = {"advanced and basic mixed": 2, "partial boolean mask": 2, "advanced indices separated by a slice": 3}
    if nd < need.get(kind, 1) and kind not in ("newaxis or ellipsis", "None (new axis)", "0-D boolean"):
        raise Infeasible(f"an index of form {kind!r} needs more axes than shape {shape} has")
    return {
        "slice": lambda: (slice(1, None),),
        "negative step": lambda: (slice(None, None, -2),),
        "out-of-range slice bounds": lambda: (slice(-n - 2, n + 3),),
        "empty selection": lambda: (slice(1, 1),),
        "integer": lambda: min(1, n - 1),
        "negative integer": lambda: (-1,),
        "newaxis or ellipsis": lambda: (None, Ellipsis),
        "Ellipsis": lambda: (Ellipsis, 0) if nd else (Ellipsis,),
        "None (new axis)": lambda: (None,),
        "integer array": lambda: _arr(0, n - 1),
        "negative array entries": lambda: _arr(-1, 0),
        "repeated indices": lambda: _arr(n - 1, 0, n - 1),
        "boolean mask": lambda: _mask(shape[:1]),
        "full boolean mask": lambda: _mask(shape),
        "partial boolean mask": lambda: _mask(shape[:1]),
        "0-D boolean": lambda: np.True_,
        "advanced and basic mixed": lambda: (_arr(0, n - 1), slice(None, 2)),
        "advanced indices separated by a slice": lambda: (_arr(1 % n, 0), slice(None), _arr(0, -1)),
    }[kind]()


def refit_index(idx, new_shape: tuple):
    """`idx` fitted to `new_shape`: integers and integer-array entries folded into the new
    sizes (keeping their signs), boolean masks resized; slices, None and Ellipsis kept."""
    new_sizes = dict(enumerate(new_shape))
    out = []
    for it, axes in index_axes(idx, len(new_shape)):
        n = new_sizes.get(axes[0], 1) if axes else 1
        if _is_bool(it) and np.ndim(it):
            out.append(np.resize(it, tuple(new_sizes.get(a, 1) for a in axes)))
        elif isinstance(it, np.ndarray) and it.dtype != np.bool_:
            out.append(np.where(it < 0, -((-it - 1) % n) - 1, it % n).astype(it.dtype))
        elif _is_int(it):
            out.append(-((-it - 1) % n) - 1 if it < 0 else it % n)
        else:
            out.append(it)
    return tuple(out) if isinstance(idx, tuple) else out[0]


# ---------------------------------------------------------------------------- the rule
GRAMMAR = ("slice", "negative step", "out-of-range slice bounds", "empty selection", "integer", "negative integer",
           "newaxis or ellipsis", "Ellipsis", "None (new axis)", "integer array", "negative array entries",
           "repeated indices", "boolean mask", "full boolean mask", "partial boolean mask", "0-D boolean",
           "advanced and basic mixed", "advanced indices separated by a slice")


class Index(Rule):
    """`x[idx]` (getitem) or `x.mask_idcs(idcs)`: any NumPy index in the argument `key`.

    The forms are one factor (group "index"): a maker writes the whole index, so a pair of
    forms is not a pair of conditions (one index may still show several)."""

    name = "index"

    def __init__(self, key: str, kinds: tuple = GRAMMAR):
        self.key = key
        self.conditions = (FLOAT32,) + tuple(
            Condition(k, lambda u, k=k: k in index_kinds(u.args[self.key], u.shapes[0]),
                      lambda s, k=k: self._with_kind(s, k), group="index") for k in kinds)

    def _with_kind(self, sample: Sample, kind: str) -> Sample:
        if sample.make is not None:
            raise Infeasible("the draft's values are made for its index")
        return dataclasses.replace(sample, args={**sample.args, self.key: index_of_kind(kind, sample.shapes[0])})

    def _hand_samples(self) -> list:
        k = self.key
        return [Sample(((4, 3),), {k: (slice(1, 3),)}), Sample(((4, 3),), {k: (slice(None, None, -2),)}),
                Sample(((4, 3),), {k: 2}), Sample(((4, 3),), {k: (None, Ellipsis, 1)}),
                Sample(((4, 3),), {k: _arr(0, 2)}), Sample(((4, 3),), {k: _arr(1, 1, 3)}),
                Sample(((4, 3),), {k: np.array([True, False, True, True])}),
                Sample(((4, 3),), {k: (_arr(0, 0, 2), slice(None, 2))}), Sample(((4, 3),), {k: (_arr(1, 3), _arr(2, 0))}),
                Sample(((4, 3),), {k: _arr(3, 0)}, dtypes=F32)]

    def samples(self, spec):
        """The hand-written samples, then one per form they do not reach (made on the plain
        draft, or on a 3-D one where the form needs three axes)."""
        out = self._hand_samples()
        reached = set().union(*(index_kinds(s.args[self.key], s.shapes[0]) for s in out))
        drafts = (out[0], Sample(((2, 3, 4),), {self.key: (slice(None),)}))
        for c in self.conditions:
            if c.make is None or c.name in reached:
                continue
            for draft in drafts:
                try:
                    out.append(c.make(draft))
                    break
                except Infeasible:
                    continue
        return out

    def refit(self, spec, sample):
        old = sample.args[self.key]
        return dataclasses.replace(sample, args={**sample.args, self.key: refit_index(old, sample.shapes[0])})

    def plan(self, spec, shape, sign, fd, dtype):
        return indices(shape).map(lambda idx: Plan({self.key: idx}))


@st.composite
def indices(draw, shape):
    """A NumPy index for `shape`, its form drawn first: basic (hypothesis' basic_indices),
    one of the grammar's forms (`index_of_kind`, its integers and masks then drawn), integer
    arrays with repeats (integer_array_indices), a boolean mask, or a mix of slices (bounds
    beyond the sizes too), ints and arrays (with negative entries)."""
    nd = len(shape)
    forms = ["basic"] + (["advanced", "mixed", "bool"] + ["grammar"] * 3 if nd else ["grammar"])
    kind = draw(st.sampled_from(forms))
    if kind == "basic":
        return draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    if kind == "grammar":
        feasible = [k for k in GRAMMAR if _feasible(k, shape)]
        idx = index_of_kind(draw(st.sampled_from(feasible)), shape)
        return _redraw(draw, idx, shape)
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
            parts.append(slice(draw(st.none() | st.integers(-n - 2, n + 2)), draw(st.none() | st.integers(-n - 2, n + 2)),
                               draw(st.none() | st.sampled_from([1, 2, -1, -2]))))
        elif what == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            parts.append(draw(hnp.arrays(np.int64, rshape, elements=st.integers(-n, n - 1))))
    return tuple(parts)


def _feasible(kind: str, shape) -> bool:
    try:
        index_of_kind(kind, shape)
    except Infeasible:
        return False
    return True


def _redraw(draw, idx, shape):
    """A grammar form's index with its integers and masks drawn (keeping their signs)."""
    out = []
    for it, axes in index_axes(idx, len(shape)):
        n = shape[axes[0]] if axes else 1
        if _is_bool(it) and np.ndim(it):
            out.append(draw(hnp.arrays(np.bool_, np.shape(it))))
        elif isinstance(it, np.ndarray):
            out.append(np.array([draw(st.integers(-n, -1) if e < 0 else st.integers(0, n - 1)) for e in it.tolist()],
                                dtype=np.int64))
        elif _is_int(it):
            out.append(draw(st.integers(-n, -1) if it < 0 else st.integers(0, n - 1)))
        else:
            out.append(it)
    return tuple(out) if isinstance(idx, tuple) else out[0]


class Masked(Index):
    """`x.mask_idcs(idcs, value)`: an index plus the value written there."""

    def __init__(self):
        super().__init__("idcs")
        self.conditions += (Condition("nonzero fill value", lambda u: u.args.get("value", 0.0) != 0,
                                      makers.args(value=1.5)),)

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
