"""Hypothesis strategies for the reference suite, derived from `reference.registry.OPS`.

Everything is built from hypothesis' own parts (`mutually_broadcastable_shapes`,
`basic_indices`, `integer_array_indices`, `arrays`, `valid_tuple_axes`, ...), and every
strategy draws *structure first, values last*: shapes, ops and arguments, then the input
arrays, then the seed of the oracles' noise. Shrinking therefore simplifies the program
before it simplifies the numbers.

Each op's shape rule (`OpSpec.shapes`) is interpreted here by one `_plan_<rule>` function:
given the shape of an *anchor* operand (a fresh input in the op tests, an existing node in
programs) it draws the op's arguments and the shapes of its other operands.

Two value modes:
- ``"torch"``: values anywhere in the domain, including exact kinks on purpose (exact
  zeros, small integers that make rows constant) -- torch defines the derivative there;
- ``"fd"``: values at least `MARGIN` away from every kink and domain edge, far more than
  the finite-difference step.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.programs import Input, Node, Program, out_shape, with_loss
from reference.registry import DTYPES, OPS, axes_of, count_of

R = 3.0            # magnitude of drawn values
MARGIN = 1e-2      # FD mode: distance of values from kinks and domain edges
WIDE = 300.0       # scale of the large inputs of `wide_range` ops (torch checks)
MAX_SIZE = 256     # largest tensor a program may hold
POW_EXPONENTS = (2.0, 3.0, 0.5, 1.5, 2.5, -1.0, -2.0, -0.5, 0.0, 1.0)
MATMUL = "(m?,n),(n,p?)->(m?,p?)"


def allowed_ops() -> list:
    """Ops the program strategies may use (`PYGRAD_CHECK_ONLY`, set by the gate's --only)."""
    only = os.environ.get("PYGRAD_CHECK_ONLY", "")
    names = [n for n in only.split(",") if n in OPS] or list(OPS)  # rows like "module" are not ops
    return sorted(names)


@dataclass(frozen=True)
class Case:
    """One example: a program, its input values and the seed of the oracles' noise."""
    program: Program
    values: dict
    seed: int
    features: frozenset = frozenset()

    def __repr__(self):  # what hypothesis prints for a falsifying example
        from reference.programs import program_code
        code = program_code(self.program, self.values).replace("\n", "\n    ")
        return f"Case(seed={self.seed}, program=\n    {code}\n)"


# ---------------------------------------------------------------------------- values
def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _reals(lo=-R, hi=R):
    """Floats in [lo, hi]; magnitudes below 1e-6 become exact zeros (tiny inputs only make
    products underflow)."""
    return _floats(lo, hi).map(lambda x: x if abs(x) >= 1e-6 else 0.0)


def scalar(strategy, dtype: str):
    """A Python float constant, rounded to `dtype`: NumPy casts a Python scalar to the
    tensor's dtype (NEP 50), so the oracles must see the same number."""
    return strategy.map(lambda x: float(np.asarray(x, dtype=dtype)))


def elements(domain: str, mode: str, style: str):
    """The strategy of one entry for `domain` ("real" | "pos" | "nonzero")."""
    if style == "int":
        return {"real": st.integers(-2, 2), "pos": st.integers(1, 3),
                "nonzero": st.sampled_from([-2, -1, 1, 2])}[domain].map(float)
    lo = MARGIN
    if domain == "pos":
        return _floats(lo, R)
    if domain == "nonzero" or (domain == "real" and mode == "fd"):
        return st.one_of(_floats(lo, R), _floats(-R, -lo))
    return _reals()


@st.composite
def values(draw, shape, dtype: str, domain: str = "real", mode: str = "torch", zeros: bool = False):
    """An array of `shape`. In torch mode it may hold small integers (constant rows, exact
    arithmetic) and, where `zeros` (or the domain is real), exact zeros at random places."""
    style = draw(st.sampled_from(["float", "int", "zeros"])) if mode == "torch" else "float"
    a = draw(hnp.arrays(np.float64, shape, elements=elements(domain, mode, style), fill=st.nothing()))
    if style == "zeros" and (domain == "real" or (zeros and domain == "pos")):
        mask = draw(hnp.arrays(np.bool_, shape))
        a = np.where(mask, 0.0, a)
    return np.asarray(a, dtype=dtype)


# ---------------------------------------------------------------------------- shape plans
@dataclass
class Plan:
    """How to apply an op to an anchor: arguments, the anchor's operand position, and the
    shapes of the other operands (None when any shape broadcastable with the anchor's
    will do and a program may reuse an existing node)."""
    args: dict
    slot: int = 0
    others: tuple = ()
    broadcast: bool = False


def _shape_strategy(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _plan_elementwise(spec, shape, fd, dtype):
    return st.just(Plan({}))


@st.composite
def _plan_broadcast(draw, spec, shape, fd, dtype):
    other = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape, max_dims=4,
                                                   max_side=4)).input_shapes[0]
    return Plan({}, slot=draw(st.integers(0, 1)), others=(other,), broadcast=True)


@st.composite
def _plan_reflected(draw, spec, shape, fd, dtype):
    if draw(st.booleans()):
        const = draw(scalar(_reals() if spec.name != "rdiv" else _floats(MARGIN, R), dtype))
    else:
        cshape = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=shape, max_dims=4,
                                                        max_side=4)).input_shapes[0]
        const = draw(values(cshape, dtype, "real", "fd" if fd else "torch"))
    return Plan({"const": const})


@st.composite
def _plan_pow_scalar(draw, spec, shape, fd, dtype):
    return Plan({"p": draw(st.sampled_from(POW_EXPONENTS))})


@st.composite
def _plan_rpow(draw, spec, shape, fd, dtype):
    return Plan({"const": draw(scalar(_floats(0.25, 3.0), dtype))})


@st.composite
def _matmul_partner(draw, shape, slot):
    """The other operand of `@` when the anchor (ndim >= 1) sits at `slot`."""
    if slot == 0:
        n = shape[-1]
        batch = shape[:-2]
    else:
        n = shape[-2] if len(shape) > 1 else shape[0]
        batch = shape[:-2]
    other_batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=1, base_shape=batch, max_dims=3,
                                                         max_side=3)).input_shapes[0]
    side = draw(st.integers(1, 4))
    if draw(st.booleans()):       # a 1-D partner
        return (n,)
    return other_batch + ((n, side) if slot == 0 else (side, n))


@st.composite
def _plan_matmul(draw, spec, shape, fd, dtype):
    slot = draw(st.integers(0, 1))
    return Plan({}, slot=slot, others=(draw(_matmul_partner(shape, slot)),))


@st.composite
def _plan_rmatmul(draw, spec, shape, fd, dtype):
    cshape = draw(_matmul_partner(shape, 1))
    return Plan({"const": draw(values(cshape, dtype, "real", "fd" if fd else "torch"))})


@st.composite
def axis_args(draw, shape):
    """axis: None, an int (maybe negative), a tuple (maybe empty, maybe negative entries)."""
    nd = len(shape)
    kinds = ["none"] + (["int", "tuple"] if nd else ["empty"])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "empty":
        return ()
    if kind == "int":
        return draw(st.integers(-nd, nd - 1))
    return draw(hnp.valid_tuple_axes(nd, min_size=0))  # entries may be negative


@st.composite
def _plan_reduce(draw, spec, shape, fd, dtype):
    args = {}
    needs_axis = len(shape) == 0 and spec.defaults.get("axis") is not None
    if needs_axis or draw(st.booleans()):
        args["axis"] = draw(axis_args(shape))
    if draw(st.booleans()):
        args["keepdims"] = draw(st.booleans())
    return Plan(args)


@st.composite
def _plan_softmax(draw, spec, shape, fd, dtype):
    """The default axis, any explicit axis, or (as often) a non-last one: a Jacobian rule
    that only holds on the last axis hides there, and a uniform axis is the last one half of
    the time on the small shapes drawn."""
    nd = len(shape)
    kind = draw(st.sampled_from(["default", "any", "non-last"] if nd > 1 else ["default", "any"]))
    if kind == "default":
        return Plan({})
    if kind == "any":
        return Plan({"axis": draw(st.integers(-nd, nd - 1))})
    return Plan({"axis": draw(st.sampled_from([a for a in range(-nd, nd) if a % nd != nd - 1]))})


@st.composite
def new_shape(draw, shape):
    """A shape of the same size, maybe with one -1."""
    size = math.prod(shape)
    dims, rest = [], size
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        rest //= d
    if rest != 1 or not dims:
        dims.append(rest)
    if size == 1 and draw(st.booleans()):
        dims = []
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@st.composite
def _plan_reshape(draw, spec, shape, fd, dtype):
    return Plan({"shape": draw(new_shape(shape))})


@st.composite
def _plan_transpose(draw, spec, shape, fd, dtype):
    if draw(st.booleans()):
        return Plan({})
    nd = len(shape)
    perm = draw(st.permutations(range(nd)))
    flips = draw(st.lists(st.booleans(), min_size=nd, max_size=nd))
    return Plan({"axes": tuple(a - nd if f else a for a, f in zip(perm, flips))})


def _plan_T(spec, shape, fd, dtype):
    return st.just(Plan({}))


@st.composite
def _slice(draw, n):
    start = draw(st.none() | st.integers(-n, n))
    stop = draw(st.none() | st.integers(-n, n))
    step = draw(st.none() | st.sampled_from([1, 2, -1, -2]))
    return slice(start, stop, step)


@st.composite
def indices(draw, shape):
    """A NumPy index for `shape`: basic (hypothesis' basic_indices), integer arrays with
    repeats (integer_array_indices), a boolean mask, or a mix of slices, ints and arrays."""
    nd = len(shape)
    kinds = ["basic"] + (["advanced", "mixed", "bool"] if nd else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "basic":
        return draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    if kind == "advanced":
        return draw(hnp.integer_array_indices(
            shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    if kind == "bool":
        k = draw(st.integers(1, nd))
        return draw(hnp.arrays(np.bool_, shape[:k]))
    rshape = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
    parts = []
    for n in shape[:draw(st.integers(1, nd))]:
        what = draw(st.sampled_from(["slice", "int", "array"]))
        if what == "slice":
            parts.append(draw(_slice(n)))
        elif what == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            parts.append(draw(hnp.arrays(np.int64, rshape, elements=st.integers(-n, n - 1))))
    return tuple(parts)


@st.composite
def _plan_index(draw, spec, shape, fd, dtype):
    return Plan({"idx": draw(indices(shape))})


@st.composite
def _plan_mask(draw, spec, shape, fd, dtype):
    args = {"idcs": draw(indices(shape))}
    if draw(st.booleans()):
        args["value"] = draw(st.just(0.0) | scalar(_reals(), dtype))
    return Plan(args)


@st.composite
def _plan_conv2d(draw, spec, shape, fd, dtype):
    """Anchor = the input x (B, C, H, W); the kernel (1 or B, outC, C, kH, kW) is other."""
    b, c, h, w = shape
    args = {}
    if draw(st.booleans()):
        args["stride"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        args["padding"] = draw(st.integers(0, 1))
    p = args.get("padding", 0)
    kh = draw(st.integers(1, min(3, h + 2 * p)))
    kw = draw(st.integers(1, min(3, w + 2 * p)))
    kb = draw(st.sampled_from([1, b]))
    out_c = draw(st.integers(1, 3))
    return Plan(args, slot=1, others=((kb, out_c, c, kh, kw),))


PLANS = {
    "elementwise": _plan_elementwise, "broadcast": _plan_broadcast, "reflected": _plan_reflected,
    "pow_scalar": _plan_pow_scalar, "rpow": _plan_rpow, "matmul": _plan_matmul,
    "rmatmul": _plan_rmatmul, "reduce": _plan_reduce, "softmax": _plan_softmax,
    "reshape": _plan_reshape, "transpose": _plan_transpose, "T": _plan_T, "index": _plan_index,
    "mask": _plan_mask, "conv2d": _plan_conv2d,
}


def plan(spec, shape, fd: bool, dtype: str):
    return PLANS[spec.shapes](spec, shape, fd, dtype)


def applicable(spec, shape, sign: str) -> bool:
    """Can `spec` take a node of `shape` and static `sign` as its anchor operand?"""
    nd, size = len(shape), math.prod(shape)
    if size == 0 or size > MAX_SIZE:
        return False
    rule = spec.shapes
    if rule in ("matmul", "rmatmul", "softmax") and nd == 0:
        return False
    if rule == "conv2d":
        return nd == 4 and size <= 64
    if spec.name == "pow":
        return True  # the exponent is chosen to fit the anchor's sign
    doms = spec.domain(spec.defaults)
    return sign == "pos" or "real" in doms[:1 if spec.arity == 1 else 2]


def fit_slot(spec, p: Plan, sign: str) -> bool:
    """Put the anchor in an operand slot whose domain its sign satisfies (a fresh or reused
    partner takes the other slot). False if there is none."""
    doms = spec.domain(spec.all_args(p.args))
    if doms[p.slot] == "real" or sign == "pos":
        return True
    if spec.shapes == "broadcast" and doms[1 - p.slot] == "real":
        p.slot = 1 - p.slot
        return True
    return False


# ---------------------------------------------------------------------------- op cases
def _anchor_shapes(spec, fd):
    min_side = spec.fd_min_side if fd else 1
    rule = spec.shapes
    if rule == "conv2d":
        return st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))
    min_dims = 1 if rule in ("matmul", "rmatmul", "softmax") or min_side > 1 else 0
    return _shape_strategy(min_dims=min_dims, max_dims=4, min_side=min_side)


@st.composite
def op_cases(draw, spec, mode: str = "torch", dtype: str | None = None):
    """One op applied to fresh inputs: structure (shapes, arguments), then values."""
    fd = mode == "fd"
    dtype = dtype or draw(st.sampled_from(DTYPES))
    if spec.shapes == "broadcast":
        shapes = list(draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4,
                                                             max_side=4)).input_shapes)
        args = {}
    elif spec.shapes == "matmul":
        shapes = list(draw(hnp.mutually_broadcastable_shapes(signature=MATMUL, max_dims=2,
                                                             max_side=4)).input_shapes)
        args = {}
    else:
        anchor = draw(_anchor_shapes(spec, fd))
        p = draw(plan(spec, anchor, fd, dtype))
        args = p.args
        shapes = [anchor] + list(p.others)
        if p.slot == 1:
            shapes = shapes[::-1]
    if spec.name == "std" and fd and "axis" in args and count_of(shapes[0], args["axis"]) < 2:
        args = {**args, "axis": None}  # FD needs a row of at least two entries
    domains = spec.domain(spec.all_args(args))
    if fd and spec.exact_kinks == "zeros":
        domains = tuple("nonzero" if d == "real" else d for d in domains)
    inputs = [Input(f"x{i}", tuple(s), d, leaf=draw(st.booleans())) for i, (s, d) in
              enumerate(zip(shapes, domains))]
    body = [Node(f"v{len(inputs)}", spec.name, tuple(i.name for i in inputs), args)]
    prog, cots = with_loss(dtype, inputs, body)
    zeros = spec.exact_kinks == "zeros"
    vals = {i.name: draw(values(i.shape, dtype, i.domain, mode, zeros=zeros)) for i in inputs}
    if spec.wide_range and mode == "torch" and draw(st.integers(0, 2)) == 0:
        # beyond exp's range: the ops' large-input paths (max-shift, saturation)
        vals = {k: np.asarray(v * WIDE, dtype=dtype) for k, v in vals.items()}
    shapes_all = {i.name: i.shape for i in prog.inputs}
    for w in cots:
        vals[w] = draw(values(shapes_all[w], dtype, "real", "fd"))
    seed = _oracle_seed(prog, *[vals[k] for k in sorted(vals)])
    return Case(prog, vals, seed, frozenset(features(prog, vals)))


# ---------------------------------------------------------------------------- programs
@st.composite
def programs(draw, dtype: str | None = None, form: str = "dag", min_ops: int = 2,
             max_ops: int = 12, mode: str = "torch", ops: list | None = None):
    """A random program: `form="chain"` feeds each op the previous node; `"dag"` picks
    anchors anywhere, reuses nodes as second operands (an operand used twice, fan-out into
    several consumers) and may leave several sinks."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    names = ops or allowed_ops()
    fd = mode == "fd"
    n_ops = draw(st.integers(min_ops, max_ops))
    counter = iter(range(10 ** 6))
    first = draw(_shape_strategy(min_dims=0, max_dims=4))
    dom0 = draw(st.sampled_from(["real", "pos"]))
    inputs = [Input(f"x{next(counter)}", first, dom0, leaf=draw(st.booleans()))]
    shapes = {inputs[0].name: first}
    signs = {inputs[0].name: "pos" if dom0 == "pos" else "any"}
    nodes: list = []
    for _ in range(n_ops):
        live = [n for n in shapes if math.prod(shapes[n]) > 0]
        choices = []
        if live:
            anchor = live[-1] if form == "chain" else draw(st.sampled_from(live[::-1]))
            a_shape, a_sign = shapes[anchor], signs[anchor]
            choices = [n for n in names if applicable(OPS[n], a_shape, a_sign)]
        if not choices:
            # Nothing fits (e.g. --only conv2D and a 3-D node, or only empty nodes so far):
            # start a new input shaped for one of the allowed ops.
            spec = OPS[draw(st.sampled_from(names))]
            anchor = f"x{next(counter)}"
            a_shape, a_sign = tuple(draw(_anchor_shapes(spec, fd).filter(
                lambda s: applicable(spec, s, "pos")))), "pos"
            inputs.append(Input(anchor, a_shape, "pos", leaf=draw(st.booleans())))
            shapes[anchor], signs[anchor] = a_shape, a_sign
            choices = [n for n in names if applicable(OPS[n], a_shape, a_sign)]
        spec = OPS[draw(st.sampled_from(choices))]
        p = draw(plan(spec, a_shape, fd, dtype))
        if spec.name == "pow" and a_sign != "pos" and spec.domain(p.args)[0] != "real":
            p.args["p"] = draw(st.sampled_from([2.0, 3.0, 0.0, 1.0]))
        if not fit_slot(spec, p, a_sign):
            continue
        operands = [anchor]
        doms = spec.domain(spec.all_args(p.args))
        for other in p.others:
            slot = 1 - p.slot
            dom = doms[slot]
            pick = _reuse(draw, shapes, signs, anchor, other, p.broadcast, dom, form)
            if pick is None:
                pick = f"x{next(counter)}"
                inputs.append(Input(pick, tuple(other), dom, leaf=draw(st.booleans())))
                shapes[pick] = tuple(other)
                signs[pick] = "pos" if dom == "pos" else "any"
            if slot == 0:
                operands.insert(0, pick)
            else:
                operands.append(pick)
        try:
            shape = out_shape(spec.name, [shapes[o] for o in operands], p.args)
        except (ValueError, IndexError):
            continue
        if math.prod(shape) > MAX_SIZE:
            continue
        name = f"v{next(counter)}"
        nodes.append(Node(name, spec.name, tuple(operands), p.args))
        shapes[name] = shape
        signs[name] = spec.sign([signs[o] for o in operands], spec.all_args(p.args))
    if not nodes:
        nodes.append(Node(f"v{next(counter)}", "neg", (inputs[0].name,), {}))
    prog, cots = with_loss(dtype, inputs, nodes)
    vals = {}
    for i in prog.inputs:
        if i.learnable:
            vals[i.name] = draw(values(i.shape, dtype, i.domain, mode))
        else:
            vals[i.name] = draw(values(i.shape, dtype, "real", "fd"))
    seed = _oracle_seed(prog, *[vals[k] for k in sorted(vals)])
    return Case(prog, vals, seed, frozenset(features(prog, vals)))


def _reuse(draw, shapes, signs, anchor, need, broadcast, dom, form):
    """An existing node usable as the other operand, or None for a fresh input."""
    def fits(n):
        if dom != "real" and signs[n] != "pos":
            return False
        s = shapes[n]
        if broadcast:
            try:
                np.broadcast_shapes(s, shapes[anchor])
            except ValueError:
                return False
            return math.prod(np.broadcast_shapes(s, shapes[anchor])) <= MAX_SIZE
        return s == tuple(need)
    candidates = [n for n in shapes if fits(n)]
    if form == "chain":
        candidates = [n for n in candidates if n == anchor]
    if not candidates or not draw(st.booleans()):
        return None
    return draw(st.sampled_from(candidates[::-1]))


# ---------------------------------------------------------------------------- coverage
def features(prog: Program, vals: dict) -> set:
    """The conditions this example reaches (the gate must reach each within its budget)."""
    out = set()
    shapes = {i.name: tuple(i.shape) for i in prog.inputs}
    for n in prog.nodes:
        shapes[n.name] = out_shape(n.op, [shapes[o] for o in n.operands], n.args)
    body = prog.body_nodes()
    uses: dict = {}
    for n in body:
        for o in n.operands:
            uses[o] = uses.get(o, 0) + 1
        if len(n.operands) == 2 and n.operands[0] == n.operands[1]:
            out.add("operand used twice")
        ins = [shapes[o] for o in n.operands]
        if n.op in ("add", "sub", "mul", "div", "pow_tensor") and ins[0] != ins[1]:
            out.add("broadcast operand")
        if n.op.startswith("r") and n.op not in ("relu", "reshape"):
            out.add("reflected operator")
        axis = n.args.get("axis")
        if isinstance(axis, tuple) and len(axis) > 1:
            out.add("tuple axis")
        if isinstance(axis, int) and n.op in ("sum", "mean", "std", "softmax", "softmax_log") \
                and axis < 0:
            out.add("negative axis")
        if n.op in ("softmax", "softmax_log"):
            nd = len(ins[0])
            if (n.args.get("axis", -1) % nd) != nd - 1:
                out.add("non-last softmax axis")
        if n.op == "conv2D" and shapes[n.operands[0]][1] > 1:
            out.add("outC > 1")
        if n.op in ("getitem", "mask_idcs"):
            idx = n.args.get("idx", n.args.get("idcs"))
            items = idx if isinstance(idx, tuple) else (idx,)
            for it in items:
                if isinstance(it, np.ndarray) and it.dtype != np.bool_:
                    out.add("advanced indexing")
                    flat = it.reshape(-1)
                    if len(flat) != len(set(flat.tolist())) and n.op == "getitem":
                        out.add("repeated indices")
        if any(len(s) == 0 for s in ins):
            out.add("0-D operand")
        if any(len(s) == 1 for s in ins):
            out.add("1-D operand")
        if OPS[n.op].wide_range and n.operands[0] in vals and np.any(np.abs(vals[n.operands[0]]) > 100):
            out.add("large magnitudes")
        if n.op == "relu" and n.operands[0] in vals and np.any(vals[n.operands[0]] == 0):
            out.add("exact zero at a kink")
        if n.op == "std" and n.operands[0] in vals:
            x = np.asarray(vals[n.operands[0]])
            ax = axes_of(OPS["std"].all_args(n.args)["axis"], x.ndim)
            if x.size and np.any(np.ptp(x, axis=ax) == 0):
                out.add("constant std row")
    if any(c > 1 for c in uses.values()):
        out.add("fan-out")
    if prog.dtype == "float32":
        out.add("float32")
    return out


# ---------------------------------------------------------------------------- Modules and optimizers
MODULE_KINDS = ("linear", "flatten", "relu", "tanh", "sigmoid", "softmax", "addnorm", "dropout")
_OPTIMIZERS = ("SGD", "SGD_Momentum", "RMSProp", "Adam")
BATCH = st.integers(1, 4)


@st.composite
def module_specs(draw, dtype: str | None = None, max_layers: int = 5, weights: bool = False):
    """A consistent `ModuleSpec`, drawn layer by layer from the tracked per-sample shape:
    Linear (with or without bias), Conv2D (kernel, stride, padding, outC) on (C, H, W)
    activations, Flatten, ReLU/Tanh/Sigmoid, Softmax on a random non-batch axis, AddNorm
    (skip: its own input or an earlier activation of the same shape), Dropout (eval), then
    the loss: cce needs (n, w) logits (a Flatten is appended to a conv stack), bce a final
    Sigmoid or Softmax (a Sigmoid is appended when missing). `weights`: at least one layer
    with weights (a Linear is appended to a model without)."""
    from reference.modules import LOSSES, Layer, ModuleSpec, shapes
    dtype = dtype or draw(st.sampled_from(DTYPES))
    conv = draw(st.booleans())
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))) if conv \
        else (draw(st.integers(1, 3)), draw(st.integers(1, 5)))
    acts, layers = [shape], []
    for _ in range(draw(st.integers(0, max_layers))):
        cur = acts[-1]
        kind = draw(st.sampled_from(MODULE_KINDS + (("conv",) * 4 if len(cur) == 3 else ())))
        if kind == "linear":
            layer = Layer("linear", out=draw(st.integers(1, 5)), bias=draw(st.booleans()))
        elif kind == "conv":
            pad = draw(st.integers(0, 1))
            kh, kw = draw(st.integers(1, min(3, cur[1] + 2 * pad))), draw(st.integers(1, min(3, cur[2] + 2 * pad)))
            layer = Layer("conv", out=draw(st.integers(1, 3)), kernel=(kh, kw), stride=draw(st.integers(1, 2)),
                          padding=pad, bias=draw(st.booleans()))
        elif kind == "softmax":
            layer = Layer("softmax", axis=draw(st.sampled_from(sorted({-1, 1, -len(cur)}))))
        elif kind == "addnorm":
            if cur[-1] < 2:
                continue   # a row of one entry normalises to exactly 0: nothing to check
            same = [j for j, s in enumerate(acts) if s == cur]
            layer = Layer("addnorm", skip=draw(st.sampled_from([None] + same)),
                          gain=draw(st.sampled_from([1.0, 0.5, 2.0])), shift=draw(st.sampled_from([0.0, 0.25])),
                          epsilon=1e-5)
        else:
            layer = Layer(kind)
        layers.append(layer)
        acts.append(shapes(ModuleSpec(shape, tuple(layers)))[-1])
    if weights and not any(layer.kind in ("linear", "conv") for layer in layers):
        layers.append(Layer("linear", out=draw(st.integers(1, 5)), bias=draw(st.booleans())))
    loss = draw(st.sampled_from(LOSSES))
    if loss == "cce" and len(acts[-1]) != 2:
        layers.append(Layer("flatten"))
    if loss == "bce" and (not layers or layers[-1].kind not in ("sigmoid", "softmax")):
        layers.append(Layer("sigmoid"))
    return ModuleSpec(shape, tuple(layers), loss=loss, dtype=dtype)


@st.composite
def optim_specs(draw, kind: str):
    """Random hyper-parameters of optimizer `kind`: lr in [1e-3, 0.3], beta (SGD_Momentum's,
    RMSProp's, Adam's beta1) in [0, 0.99], Adam's beta2 in [0.5, 0.9999], eps in [1e-8, 0.1]
    (log-uniform), so eps is sometimes comparable to sqrt(v) and matters."""
    from reference.modules import OptimSpec
    lr = 10 ** draw(st.floats(-3, math.log10(0.3)))
    beta = draw(st.floats(0.0, 0.99))
    beta2 = draw(st.floats(0.5, 0.9999))
    eps = 10 ** draw(st.floats(-8, -1))
    return OptimSpec(kind, lr=lr, beta=beta, beta2=beta2, eps=eps)


def _oracle_seed(*parts) -> int:
    """The seed of the oracle's perturbations, a hash of the example. Not drawn: hypothesis'
    `target()` would hill-climb it toward the rare perturbations that measure the smallest
    spread (the tolerance's scale), i.e. search the oracle rather than pygrad."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return int.from_bytes(h.digest()[:4], "little")


def _batch(spec, size: int, seed: int, zeros: float):
    from reference.modules import make_batch
    return make_batch(spec, size, seed, zeros=zeros)


def _module_features(spec, batches) -> set:
    out = {"module call"}
    sizes = [len(x) for x, _ in batches]
    if 1 in sizes:
        out.add("batch size 1")
    if len(set(sizes)) > 1:
        out.add("batch size changes")
    if spec.dtype == "float32":
        out.add("float32")
    kinds = [layer.kind for layer in spec.layers]
    if any(x.size and np.any(np.all(x == 0, axis=-1)) for x, _ in batches) and kinds[:2] == ["linear", "relu"] \
            and not spec.layers[0].bias:
        out.add("exact zero at a kink")
    return out


@st.composite
def module_cases(draw, step: bool = False):
    """Calls of a random Module: 1-3 calls of batch size 1-4 (it changes between calls),
    each maybe after `model_reset()`; with `step`, two calls with an optimizer step between,
    and model_reset() before the second or not. Values last: weights from a seed, batches
    from `make_batch` (zero rows now and then: exact zeros at a ReLU after a bias-free
    Linear)."""
    from reference.invariants import ModuleCase
    spec = draw(module_specs(), label="spec")
    n_calls = 2 if step else draw(st.integers(1, 3))
    sizes = [draw(BATCH) for _ in range(n_calls)]
    resets = tuple([True] + [draw(st.booleans()) for _ in range(n_calls - 1)])
    optim = draw(optim_specs(draw(st.sampled_from(_OPTIMIZERS)))) if step else None
    zeros = draw(st.sampled_from([0.0, 0.3]))
    seed = draw(st.integers(0, 2 ** 16))
    batches = tuple(_batch(spec, b, seed + 1 + k, zeros) for k, b in enumerate(sizes))
    noise = _oracle_seed(spec, seed, resets, optim, *[a for b in batches for a in b])
    feats = _module_features(spec, batches) | ({"optimizer step"} if step else set())
    return ModuleCase(spec, seed, batches, resets, noise, optim, frozenset(feats))


@st.composite
def train_cases(draw, kind: str, accumulate: bool = False):
    """Training a small random Module with optimizer `kind` for 3-10 steps (batch sizes 1-4
    per step), random hyper-parameters, `model_reset()` before every call or never, the
    target marked leaf=True or not, `model.weights` given in a shuffled order or not.
    `accumulate`: each step is 2-3 equal chunks of 1-2 samples through `step_single`."""
    from reference.invariants import TrainCase
    spec = draw(module_specs(max_layers=4, weights=True), label="spec")
    optim = draw(optim_specs(kind), label="optimizer")
    n_steps = draw(st.integers(1, 3) if accumulate else st.integers(3, 10))
    if accumulate:
        shapes_ = [(draw(st.integers(2, 3)), draw(st.integers(1, 2))) for _ in range(n_steps)]
    else:
        shapes_ = [(1, draw(BATCH)) for _ in range(n_steps)]
    reset, target_leaf = draw(st.booleans()), draw(st.booleans())
    order = None
    if draw(st.booleans()):
        n = sum(1 + layer.bias for layer in spec.layers if layer.kind in ("linear", "conv"))
        order = tuple(draw(st.permutations(range(n))))
    zeros = draw(st.sampled_from([0.0, 0.3]))
    seed = draw(st.integers(0, 2 ** 16))
    steps = []
    for k, (chunks, size) in enumerate(shapes_):
        x, t = _batch(spec, chunks * size, seed + 1 + k, zeros)
        steps.append(tuple((x[i * size:(i + 1) * size], t[i * size:(i + 1) * size]) for i in range(chunks)))
    noise = _oracle_seed(spec, seed, optim, reset, target_leaf, order,
                         *[a for s in steps for c in s for a in c])
    flags = {"later optimizer steps": n_steps > 1, "step_single": accumulate,
             "target not leaf": not target_leaf, "no model_reset": not reset,
             "shuffled parameters": order is not None and list(order) != sorted(order)}
    feats = _module_features(spec, [c for s in steps for c in s]) | {k for k, v in flags.items() if v}
    return TrainCase(spec, seed, optim, tuple(steps), reset, target_leaf, order, noise, frozenset(feats))
