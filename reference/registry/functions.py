"""User-defined ops: functions made with `pygrad.function`, as registry entries.

pygrad's public way to define an op (`pygrad.function`: a NumPy forward that returns its value
and a `backward(g)` rule returning one gradient per operand) is fuzzed like a built-in op. The
functions below are written the way a user writes one (NumPy only, the rule beside the
forward); each entry adds its torch twin and NumPy reference, and `FUNCTION_OPS` joins `OPS`,
so the op alone, random programs, the coverage pass and the report reach them with no other
code. What the entries vary is what `pygrad.function` must get right:

- `muladd(a, b, c, alpha=...)`: three operands, two of them the program's (Tensors,
  learnable=False Tensors, plain arrays, or one Tensor in both places) and a constant (a
  Python float or an array) at any position -- so a Tensor that follows a constant must get
  its own position's gradient, never its neighbour's; broadcasting among all three (gradients
  of the output's shape, summed back by pygrad); a keyword parameter; `alpha=0` makes the
  rule return None for the first two operands while the third still needs its gradient;
- `softplus(x, beta=...)`: one operand, whose rule returns a single array (not a tuple), any
  shape, values far beyond exp's range.

A reproducer that calls one of them carries its source, decorated with `@pygrad.function`
(`definitions_for`), so it runs on its own.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from hypothesis import strategies as st

from reference.registry import op_models as nm
from reference.registry.rules.base import Elementwise
from reference.registry.rules.binary import Broadcast, broadcast_constant, fit_constant
from reference.registry.spec import Condition, OpSpec, Plan, Sample


# ---------------------------------------------------------------------------- the user's functions
# Written as a user writes them; reproducers print their source under `@pygrad.function`.
def muladd(a, b, c, *, alpha=1.0):
    """alpha * a * b + c * c, broadcast over the three operands."""
    def backward(g):
        if alpha == 0:     # a and b do not matter: no gradient for them
            return None, None, 2 * g * c
        return alpha * g * b, alpha * g * a, 2 * g * c
    return alpha * a * b + c * c, backward


def softplus(x, *, beta=1.0):
    """log(1 + exp(beta * x)) / beta, stable for any x; its derivative is sigmoid(beta * x)."""
    def backward(g):
        return g * np.exp(-np.logaddexp(0.0, -beta * x))
    return np.logaddexp(0.0, beta * x) / beta, backward


# ---------------------------------------------------------------------------- twins
def place(operands, args: dict, fmt=None) -> list:
    """The function's operands: the program's, with `args["const"]` (formatted by `fmt` when
    given) inserted at position `args["at"]`."""
    items = list(operands)
    if "const" in args:
        c = args["const"] if fmt is None else fmt("const", args["const"])
        items.insert(args.get("at", 1), c)
    return items


def _muladd_torch(x, y, const, at, alpha=1.0):
    a, b, c = place((x, y), {"const": nm.as_torch_constant(const), "at": at})
    return alpha * a * b + c * c


def _muladd_numpy(x, y, const, at, alpha=1.0):
    a, b, c = place((x, y), {"const": const, "at": at})
    return alpha * a * b + c * c


def _softplus_torch(x, beta=1.0):
    return torch.logaddexp(torch.zeros_like(x), beta * x) / beta


def _softplus_numpy(x, beta=1.0):
    return np.logaddexp(0.0, beta * x) / beta


# ---------------------------------------------------------------------------- the entry type
_MADE: dict = {}


def made(function: Callable):
    """`pygrad.function(function)` with the pygrad imported now (the self-test may swap it)."""
    import pygrad
    key = (pygrad.function, function)
    if key not in _MADE:
        _MADE[key] = pygrad.function(function)
    return _MADE[key]


@dataclass(frozen=True)
class FunctionSpec(OpSpec):
    """An op made by `pygrad.function(function)`. It is called as
    `function(*operands with args["const"] at position args["at"], **keyword parameters)`;
    `code` shows that call for `--list`."""

    function: Callable | None = None

    def call(self, *operands, **args):
        return made(self.function)(*place(operands, args), **{k: args[k] for k in self.kwargs if k in args})

    def render(self, operands: list, args, fmt: Callable) -> str:
        items = place(operands, args, fmt) + [f"{k}={fmt(k, args[k])}" for k in self.kwargs if k in args]
        return f"{self.function.__name__}({', '.join(items)})"


def definitions_for(code: str) -> str:
    """The source of every registry function `code` calls, as `@pygrad.function` definitions."""
    out = []
    for spec in FUNCTION_OPS.values():
        name = spec.function.__name__
        if re.search(rf"\b{name}\(", code) and not re.search(rf"\bdef {name}\(", code):
            out.append("@pygrad.function\n" + inspect.getsource(spec.function))
    return "\n\n".join(out)


# ---------------------------------------------------------------------------- conditions
KEYWORD = "keyword parameter given"


def _set_args(**changes):
    """A maker: the draft with these arguments set."""
    return lambda s: replace(s, args={**s.args, **changes})


def _keyword(name: str, value) -> Condition:
    return Condition(KEYWORD, lambda u: name in u.args, make=_set_args(**{name: value}))


def _at(k: int) -> Condition:
    return Condition(f"constant at position {k}", lambda u: u.args.get("at") == k, make=_set_args(at=k),
                     group="constant position")


def _array_constant(s: Sample) -> Sample:
    """The draft with an array constant along the output's last axis."""
    out = np.broadcast_shapes(*s.shapes)
    return replace(s, args={**s.args, "const": np.linspace(-1.5, 2.0, out[-1] if out else 1)})


def _learnable_false(s: Sample) -> Sample:
    """The draft with its second operand a Tensor marked learnable=False."""
    return replace(s, same_operand=False, arrays=(), constant=(1,))


class ConstantAt(Broadcast):
    """Two broadcast operands of a three-operand function, and a constant -- a Python float
    or an array broadcast with them -- at position `at` (0, 1 or 2); `params`: keyword
    parameters ({name: values}) drawn now and then."""

    name = "constant at"

    def __init__(self, **params):
        self.params = params
        key, values = next(iter(params.items()))
        self.conditions = Broadcast.conditions + (
            _at(0), _at(1), _at(2),
            Condition("scalar constant", lambda u: not isinstance(u.args.get("const"), np.ndarray),
                      make=_set_args(const=1.5), group="constant kind"),
            Condition("array constant", lambda u: isinstance(u.args.get("const"), np.ndarray),
                      make=_array_constant, group="constant kind"),
            Condition("a learnable=False Tensor operand", lambda u: "constant" in u.roles, make=_learnable_false),
            _keyword(key, values[-1]))
        self.infeasible = {
            **Broadcast.infeasible,
            frozenset({"a learnable=False Tensor operand", "right a plain array"}):
                "the second operand is either a Tensor or a plain array",
            frozenset({"a learnable=False Tensor operand", "operand used twice"}):
                "one Tensor in both places is a learnable one (the program's input)"}

    def samples(self, spec):
        consts = (1.5, np.array([0.5, -2.0, 1.25]), -0.75)
        out = [replace(s, args={"const": consts[k % 3], "at": (1, 0, 2)[k % 3]})
               for k, s in enumerate(super().samples(spec))]
        key, values = next(iter(self.params.items()))
        out += [Sample(((2, 3), (2, 3)), {"const": 1.5, "at": 1, key: values[-1]}),
                Sample(((2, 3), (3,)), {"const": np.ones((2, 1)) * 0.5, "at": 0}, constant=(1,)),
                Sample(((2, 3), (2, 3)), {"const": 2.0, "at": 2}, same_operand=True)]
        return out

    def error_inputs(self, spec):
        return []      # what a user's forward raises on bad operands is the user's own business

    def refit(self, spec, sample):
        """An array constant follows the operands' new output (the shape regimes)."""
        return fit_constant(sample, np.broadcast_shapes(*[tuple(x) for x in sample.shapes]))

    def _args(self, shape, fd, dtype):
        """The constant (broadcast with `shape`, the operands' output), its position and
        keyword parameters."""
        @st.composite
        def draw_args(draw):
            args = {"const": draw(broadcast_constant(shape, dtype, fd)), "at": draw(st.integers(0, 2))}
            for key, values in self.params.items():
                if draw(st.booleans()):
                    args[key] = draw(st.sampled_from(values))
            return args
        return draw_args()

    def plan(self, spec, shape, sign, fd, dtype):
        @st.composite
        def draw_plan(draw):
            p = draw(super(ConstantAt, self).plan(spec, shape, sign, fd, dtype))
            p.args = draw(self._args(np.broadcast_shapes(shape, *p.others), fd, dtype))
            return p
        return draw_plan()

    def operands(self, spec, fd, dtype):
        @st.composite
        def draw_operands(draw):
            shapes, _ = draw(super(ConstantAt, self).operands(spec, fd, dtype))
            return shapes, draw(self._args(np.broadcast_shapes(*shapes), fd, dtype))
        return draw_operands()


class WithParams(Elementwise):
    """One operand of any shape, and keyword parameters ({name: values}) drawn now and then."""

    name = "elementwise with parameters"

    def __init__(self, **params):
        self.params = params
        key, values = next(iter(params.items()))
        self.conditions = Elementwise.conditions + (_keyword(key, values[-1]),)

    def samples(self, spec):
        key, values = next(iter(self.params.items()))
        return super().samples(spec) + [Sample(((2, 3),), {key: v}) for v in values[1:]]

    def plan(self, spec, shape, sign, fd, dtype):
        return st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in self.params.items()}).map(
            lambda args: Plan(dict(args)))

    def operands(self, spec, fd, dtype):
        @st.composite
        def draw_operands(draw):
            shape = draw(self.anchors(spec, fd))
            return [shape], draw(self.plan(spec, shape, "pos", fd, dtype)).args
        return draw_operands()


# ---------------------------------------------------------------------------- the entries
def _lowest(dtypes) -> str:
    """muladd multiplies its operands before NumPy promotes them: with a float32 operand
    part of it rounds in float32 whatever the output's dtype."""
    return "float32" if "float32" in dtypes else "float64"


def _softplus_overflow(dtype, args, shapes, headroom=nm.HEADROOM) -> float:
    """The textbook log(1 + exp(beta x)) overflows where beta x passes log max: the regime
    crosses it (the result stays about x)."""
    return nm.exp_inside_overflow(dtype, args, shapes) / abs(float(args.get("beta", 1.0)))


_NONE_RULE = Condition("a rule returning None", lambda u: u.args.get("alpha") == 0, make=_set_args(alpha=0.0))

_LIST = [
    FunctionSpec(name="fn_muladd", arity=2, code="muladd({0}, {const}, {1}{targs})", function=muladd,
                 torch=_muladd_torch, numpy=_muladd_numpy, rule=ConstantAt(alpha=(1.0, 0.0, -0.5, 2.0)),
                 kwargs=("alpha",), in_ulps=3, out_ulps=2, computes_in=_lowest, conditions=(_NONE_RULE,),
                 overflow=nm.product_overflow, underflow=nm.product_underflow, overflow_inside=True,
                 samples=(Sample(((2, 3), (2, 1)), {"const": -1.25, "at": 1, "alpha": 0.0}),),
                 row="function:muladd", op_name="muladd",
                 notes="pygrad.function: three operands, a constant at any position, alpha=0 returns None"),
    FunctionSpec(name="fn_softplus", arity=1, code="softplus({0}{targs})", function=softplus,
                 torch=_softplus_torch, numpy=_softplus_numpy, rule=WithParams(beta=(1.0, 2.0, 0.5)),
                 kwargs=("beta",), domain=lambda args: ("real",), sign=nm.nonnegative, in_ulps=1, out_ulps=4,
                 bwd_abs=nm.smooth_bwd_abs(4), wide_range=True, overflow=_softplus_overflow,
                 row="function:softplus", op_name="softplus",
                 notes="pygrad.function: one operand, the rule returns a single array"),
]

FUNCTION_OPS: dict = {spec.name: spec for spec in _LIST}
"""Entry name -> spec of each user-defined op (they are in `OPS` too)."""
