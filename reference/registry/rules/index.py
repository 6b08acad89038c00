"""Rules of an operand and an index: getitem, mask_idcs."""
from __future__ import annotations


import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.registry import makers
from reference.registry.rules.base import F32, FLOAT32, Rule
from reference.registry.spec import Condition, ErrorInput, Plan, Sample
from reference.value_strategies import R, floats, scalar


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
            Condition(k, lambda u, k=k: k in index_kinds(u.args[self.key]), makers.index_item(key, k, index_kinds))
            for k in kinds)

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
