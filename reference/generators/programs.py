"""Hypothesis strategies for ops and programs, derived from the registry.

Everything is built from hypothesis' own parts and every strategy draws *structure first,
values last*: shapes, ops and arguments, then the input arrays; the seed of the oracles'
noise is a hash of the example (not drawn: hypothesis' `target()` would hill-climb it toward
the rare perturbations that measure the smallest spread, i.e. search the oracle rather than
pygrad). Shrinking therefore simplifies the program before the numbers.

Shapes and arguments come from each entry's shape rule (`OpSpec.rule`): `operands` for an op
alone, `fits`/`plan` to apply an op to an existing node of a program (the anchor).

The input regimes (`reference.registry.regimes`) are drawn as structure too, each from a
list whose first entry is the plain regime (so shrinking goes there): coinciding sizes
(an op alone, a program's first input), every input's memory layout, a magnitude regime
for an op alone (torch mode) and a large offset with a small spread for a program's inputs
that feed a reduction or normalisation (torch mode).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import numpy as np
from hypothesis import strategies as st

from reference.cases import ProgramCase
from reference.programs.graph import Input, Node, Program, node_layout, with_loss
from reference.registry import DTYPES, OPS, Infeasible, Sample
from reference.registry.regimes import (SHAPE_FORMS, coincide, has_scale, layouts_for, magnitude_values,
                                        magnitudes_for, refit, with_offset)
from reference.registry.rules import MAX_SIZE
from reference.value_strategies import WIDE, values

ENV_ONLY = "PYGRAD_CHECK_ONLY"


def oracle_seed(*parts) -> int:
    """The seed of the oracle's perturbations: a hash of the example."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return int.from_bytes(h.digest()[:4], "little")


def allowed_ops() -> list:
    """Ops random programs may use: every entry with `in_programs`, or those named by the
    gate's --only (env PYGRAD_CHECK_ONLY)."""
    usable = sorted(n for n, s in OPS.items() if s.in_programs)
    only = [n for n in os.environ.get(ENV_ONLY, "").split(",") if n in usable]
    return only or usable


def _other(dtype: str) -> str:
    return DTYPES[1 - DTYPES.index(dtype)]


def _values_of(draw, prog: Program, mode: str, zeros: bool = False) -> dict:
    vals = {}
    for i in prog.inputs:
        if i.learnable:
            vals[i.name] = draw(values(i.shape, i.dtype, i.domain, mode, zeros=zeros))
        else:   # constants (cotangents, targets): smooth values of their domain
            vals[i.name] = draw(values(i.shape, i.dtype, i.domain, "fd"))
    return vals


@st.composite
def op_cases(draw, spec, mode: str = "torch", dtype: str | None = None):
    """One op applied to fresh inputs: structure (shapes, arguments, dtypes, roles), then
    values. In torch mode the values may sit exactly on kinks; in fd mode they stay away."""
    fd = mode == "fd"
    dtype = dtype or draw(st.sampled_from(DTYPES))
    shapes, args = draw(spec.rule.operands(spec, fd, dtype))
    shapes, args = _coincide(draw, spec, shapes, args, fd)
    dtypes = [dtype] * len(shapes)
    if len(shapes) == 2 and draw(st.integers(0, 3)) == 0:   # operands of different float dtypes
        k = draw(st.integers(0, 1))
        dtypes[k] = _other(dtype)
    domains = spec.domains(args)
    roles = [draw(st.sampled_from(["input", "weight"] + (["constant"] + ["array"] * spec.array_operands if k else [])))
             for k in range(len(shapes))]
    inputs = [Input(f"x{i}", tuple(s), dtypes[i], roles[i], domains[i], draw(_layout(s))) for i, s in enumerate(shapes)]
    magnitude = draw(st.sampled_from([""] + magnitudes_for(spec, fd)))
    prog, _ = with_loss(inputs, [Node(f"v{len(inputs)}", spec.name, tuple(i.name for i in inputs), args)])
    vals = _values_of(draw, prog, mode, zeros=spec.exact_kinks == "zeros")
    if spec.wide_range and mode == "torch" and draw(st.integers(0, 2)) == 0:
        # beyond exp's range: the ops' large-input paths (max-shift, saturation)
        vals = {k: (np.asarray(v * WIDE, dtype=v.dtype) if prog.input(k).learnable else v) for k, v in vals.items()}
    elif magnitude and has_scale(spec, magnitude, args, shapes, dtypes):
        moved = magnitude_values(spec, magnitude, args, shapes, dtypes, [vals[i.name] for i in inputs])
        vals.update({i.name: np.asarray(a, dtype=i.dtype) for i, a in zip(inputs, moved)})
    return ProgramCase(prog, vals, oracle_seed(prog.nodes, *[vals[k] for k in sorted(vals)]), fd=fd, require_fd=fd)


@st.composite
def programs(draw, dtype: str | None = None, form: str = "dag", min_ops: int = 2, max_ops: int = 12,
             mode: str = "torch", ops: list | None = None):
    """A random program: `form="chain"` feeds each op the previous node; `"dag"` picks anchors
    anywhere, reuses nodes as second operands (an operand used twice, fan-out into several
    consumers) and may leave several sinks. A fresh operand is sometimes of the other float
    dtype (type promotion)."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    names = ops or allowed_ops()
    fd = mode == "fd"
    counter = iter(range(10 ** 6))
    first_spec = OPS[draw(st.sampled_from(names))]
    first = tuple(draw(first_spec.rule.anchors(first_spec, fd).filter(
        lambda s: first_spec.rule.fits(first_spec, s, "pos"))))
    form = draw(st.sampled_from([""] + SHAPE_FORMS))
    if form and first_spec.rule.fits(first_spec, coincide([first], form)[0], "pos"):
        first = coincide([first], form)[0]      # coinciding sizes from the first input on
    dom0 = draw(st.sampled_from(["real", "pos"]))
    inputs = [Input(f"x{next(counter)}", first, dtype, draw(st.sampled_from(["input", "weight"])), dom0)]
    layout = {inputs[0].name: (first, dtype)}
    signs = {inputs[0].name: "pos" if dom0 == "pos" else "any"}
    nodes: list = []
    arrays: set = set()    # plain-ndarray inputs: never an anchor, only ever a right operand
    for _ in range(draw(st.integers(min_ops, max_ops))):
        live = [n for n in layout if math.prod(layout[n][0]) > 0 and n not in arrays]
        anchor = (live[-1] if form == "chain" else draw(st.sampled_from(live[::-1]))) if live else None
        choices = [n for n in names if anchor and OPS[n].rule.fits(OPS[n], layout[anchor][0], signs[anchor])]
        if not choices:
            # Nothing fits (e.g. --only conv2D and a 3-D node): a new input shaped for an allowed op.
            spec = OPS[draw(st.sampled_from(names))]
            anchor = f"x{next(counter)}"
            shape = tuple(draw(spec.rule.anchors(spec, fd).filter(lambda s: spec.rule.fits(spec, s, "pos"))))
            inputs.append(Input(anchor, shape, dtype, draw(st.sampled_from(["input", "weight"])), "pos"))
            layout[anchor], signs[anchor] = (shape, dtype), "pos"
            choices = [n for n in names if OPS[n].rule.fits(OPS[n], shape, "pos")]
        spec = OPS[draw(st.sampled_from(choices))]
        a_shape, a_sign = layout[anchor][0], signs[anchor]
        p = draw(spec.rule.plan(spec, a_shape, a_sign, fd, dtype))
        doms = spec.domains(p.args)
        if a_sign != "pos" and doms[p.slot] != "real":
            continue
        operands = [anchor]
        for other in p.others:
            slot, dom = 1 - p.slot, doms[1 - p.slot]
            pick = _reuse(draw, layout, signs, anchor, other, p.broadcast, dom, form, arrays if slot == 0 else ())
            if pick is None:
                pick = f"x{next(counter)}"
                odt = _other(dtype) if draw(st.integers(0, 5)) == 0 else dtype
                roles = ["input", "weight"] + (["array"] if slot == 1 and spec.array_operands else [])
                inputs.append(Input(pick, tuple(other), odt, draw(st.sampled_from(roles)), dom))
                layout[pick], signs[pick] = (tuple(other), odt), "pos" if dom == "pos" else "any"
                if inputs[-1].role == "array":
                    arrays.add(pick)
            operands.insert(0, pick) if slot == 0 else operands.append(pick)
        node = Node(f"v{next(counter)}", spec.name, tuple(operands), p.args)
        try:
            shape, out_dtype = node_layout(node, [layout[o] for o in operands])
        except (ValueError, IndexError):
            continue
        if math.prod(shape) > MAX_SIZE:
            continue
        nodes.append(node)
        layout[node.name] = (shape, out_dtype)
        signs[node.name] = spec.sign([signs[o] for o in operands], spec.all_args(p.args))
    if not nodes:
        nodes.append(Node(f"v{next(counter)}", "neg", (inputs[0].name,), {}))
    inputs = [dataclasses.replace(i, layout=draw(_layout(i.shape))) for i in inputs]
    fed = {o for n in nodes if OPS[n.op].offset for o in n.operands}
    offset = draw(st.sampled_from([""] + (["large offset, small spread"] if fed and not fd else [])))
    prog, _ = with_loss(inputs, nodes)
    vals = _values_of(draw, prog, mode)
    for i in inputs:
        if offset and i.name in fed and i.learnable and i.domain in ("real", "pos"):
            vals[i.name] = np.asarray(with_offset(vals[i.name], i.dtype, i.domain), dtype=i.dtype)
    return ProgramCase(prog, vals, oracle_seed(prog.nodes, *[vals[k] for k in sorted(vals)]), fd=True)


def _layout(shape):
    """An input's memory layout: C-contiguous first, then those that change something."""
    return st.sampled_from([""] + layouts_for(shape))


def _coincide(draw, spec, shapes, args, fd: bool) -> tuple:
    """(shapes, args), maybe with coinciding sizes (`regimes.coincide`, the rule re-fitting
    its arguments); kept as drawn where the op refuses them."""
    forms = [f for f in SHAPE_FORMS if not (fd and f == "ones" and spec.fd_min_side > 1)]
    form = draw(st.sampled_from([""] + forms))
    if not form:
        return shapes, args
    try:
        fitted = refit(spec, Sample(coincide(shapes, form), args))
    except Infeasible:
        return shapes, args
    if math.prod(math.prod(s) for s in fitted.shapes) > MAX_SIZE ** 2:
        return shapes, args
    return [tuple(s) for s in fitted.shapes], dict(fitted.args)


def _reuse(draw, layout, signs, anchor, need, broadcast, dom, form, exclude=()):
    """An existing node usable as the other operand, or None for a fresh input."""
    def fits(n):
        if n in exclude or dom != "real" and signs[n] != "pos":
            return False
        s = layout[n][0]
        if broadcast:
            try:
                return math.prod(np.broadcast_shapes(s, layout[anchor][0])) <= MAX_SIZE
            except ValueError:
                return False
        return s == tuple(need)
    candidates = [n for n in layout if fits(n)]
    if form == "chain":
        candidates = [n for n in candidates if n == anchor]
    if not candidates or not draw(st.booleans()):
        return None
    return draw(st.sampled_from(candidates[::-1]))
