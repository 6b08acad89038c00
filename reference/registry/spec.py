"""The entry types of the registry: what one op (or loss) declares about itself.

An `OpSpec` is complete in the OpInfo sense: how to call the op in pygrad (a code template
that also prints it), its PyTorch twin and NumPy forward reference, its shape rule (which
draws random operands, enumerates the deterministic samples of the coverage pass and states
the bug-prone conditions), its input domain and kinks, its rounding-error model and its
error inputs. Nothing outside the entry branches on the op's name.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Use:
    """One application of an op inside an example, as condition predicates see it."""

    shapes: tuple                 # operand shapes
    dtypes: tuple                 # operand dtypes, e.g. ("float32", "float64")
    args: Mapping                 # every argument, defaults filled in
    values: tuple | None = None   # operand values (float64 arrays), when known
    same_operand: bool = False    # one tensor in both operand slots (x * x)
    roles: tuple = ()             # operand roles: input, weight, constant, array (a plain ndarray)
    layouts: tuple = ()           # operand memory layouts ("" = C-contiguous; see registry regimes)

    @property
    def ndims(self) -> tuple:
        return tuple(len(s) for s in self.shapes)


class Infeasible(Exception):
    """A condition's maker cannot make it hold on this draft (e.g. "left 0-D" on a draft
    whose output is 0-D)."""


@dataclass(frozen=True)
class Condition:
    """A bug-prone condition: a coverage label of the gate's report, reached by an example
    when `test(use)` holds for one of its uses of the op.

    - `make(draft) -> draft`: the coverage draft (a `Sample` for op rows; the row's own draft
      type elsewhere) changed so that the condition holds, keeping what it can of the rest;
      raises `Infeasible` when it cannot. What a draft reaches is always judged by `test`
      on the built example, never by trusting the maker.
    - `group`: conditions of one group are exclusive levels of one factor (a side's shape
      form, the layout of an operand): they are never counted as a pair."""

    name: str
    test: Callable[[Use], bool]
    make: Callable | None = None
    group: str = ""

    def reached(self, use: Use) -> bool:
        try:
            return bool(self.test(use))
        except (TypeError, IndexError, ValueError, KeyError):
            return False


@dataclass(frozen=True)
class Sample:
    """A deterministic example of the coverage pass: operand shapes (and dtypes), arguments,
    and how to fill the values -- "smooth" (inside the domain, away from kinks: finite
    differences apply), "kinks" (exact kink points on purpose: torch only) or "wide"
    (magnitudes up to ~1e3: the large-input paths) -- or `make(rng)`, which returns them."""

    shapes: tuple
    args: Mapping = field(default_factory=dict)
    dtypes: tuple | None = None
    same_operand: bool = False
    values: str = "smooth"
    make: Callable | None = None      # rng -> operand arrays, instead of `values`
    constant: tuple = ()              # operands that are constants (learnable=False)
    arrays: tuple = ()                # operands passed as plain ndarrays, not Tensors
    layouts: tuple = ()               # per operand memory layout, "" = C-contiguous (registry regimes)
    magnitude: str = ""               # a magnitude regime's name, "" = the domain's usual values

    def operand_dtypes(self) -> tuple:
        return self.dtypes or ("float64",) * len(self.shapes)


def replace_args(sample: Sample, **args) -> Sample:
    """`sample` with some of its arguments replaced."""
    return dataclasses.replace(sample, args={**sample.args, **args})


@dataclass(frozen=True)
class ErrorInput:
    """A call pygrad must refuse: operand shapes and arguments (values: ones, or `make(rng)`),
    the exception type, and a text its message must contain (the op's name)."""

    shapes: tuple
    args: Mapping = field(default_factory=dict)
    error: type = ValueError
    match: str = ""
    make: Callable | None = None


@dataclass
class Plan:
    """How to apply an op to an anchor operand: arguments, the anchor's operand slot, the
    shapes of the other operands, and whether any shape broadcastable with the anchor's
    would do (so a program may reuse an existing node there)."""

    args: dict
    slot: int = 0
    others: tuple = ()
    broadcast: bool = False


def _no_kinks(operands, args) -> list:
    return []


def _real(args) -> tuple:
    return ("real", "real")


def _any_sign(signs, args) -> str:
    return "any"


@dataclass(frozen=True)
class OpSpec:
    """One pygrad operation.

    - `code`: a template such as ``"{0} + {1}"`` or ``"{0}.sum({args})"``; the same template
      calls the op (compiled once) and prints it, so the two cannot drift apart;
    - `torch` / `numpy`: the PyTorch twin (float64 oracle) and NumPy forward (finite
      differences), both with NumPy semantics;
    - `rule`: the shape rule (`reference.registry.rules`): random operands, coverage
      samples, conditions; `conditions` / `samples` / `error_inputs` add the op's own;
    - `domain(args)`: per-operand "real" | "pos" | "nonzero"; `kinks(operands, args)`:
      [(s, exact)] with a kink where s == 0 (exact: torch defines the derivative there);
      `exact_kinks`: how samples place exact kink points ("zeros" | "rows");
    - `sign(signs, args)`: the sign class of the output ("pos" | "nonneg" | "any"), so
      programs feed domain-restricted ops only what they accept;
    - the rounding-error model, per dtype through the unit roundoff u: `out_ulps` (relative
      output error), `in_ulps` (backward-stable operand perturbation), `out_abs(operands,
      out, args)` and `bwd_abs(operands, out, g, args)` (absolute errors / u);
    - `computes_in(operand dtypes)`: the dtype whose rounding the error model applies, when
      it is not the promoted one (a loss that computes in its prediction's dtype);
    - `returns_operand(shapes)`: pygrad returns the operand itself (no new node) for these
      operand shapes (`.T` of a 0-D or 1-D tensor);
    - `reflected`: the op is Python's reflected form of a binary operator (a constant on the
      left); `broadcast`: its operands broadcast against each other;
    - `in_programs`: random programs may use it (losses are checked on their own);
      `array_operands`: its second operand may be a plain ndarray (`x - c`, `x @ c`);
    - `row`: the report row its examples count in (default: its name); `op_name`: the name
      pygrad's error messages use for it (`rsub` raises as `sub`);
    - `infeasible`: {frozenset({condition, condition}): reason} -- pairs of the row's
      conditions that cannot hold in one use (besides same-group pairs), with why; the rule's
      own declarations are added (`all_infeasible()`);
    - the magnitudes of its error model, each `(dtype, args, shapes) -> scale | None`, the
      dtype the narrowest of the operands': `overflow`, the input magnitude near which the
      textbook computation of its value or gradient overflows (exp: log max; x * y: sqrt max;
      sums: max / n), chosen so that inputs up to twice it keep every result of a correct
      implementation within `op_models.room`; `underflow`, the same for underflow (products:
      sqrt tiny); `overflow_inside`: it forms intermediates larger than its operands and
      results (partial sums, squares, products before a sum), so operands beyond twice
      `overflow` are outside what the float64 oracle can follow; `offset`: it reduces or
      normalises, so a large offset with a small spread can cancel catastrophically. The
      input regimes built on them are `reference.registry.regimes`."""

    name: str
    arity: int
    code: str
    torch: Callable
    numpy: Callable
    rule: object
    posargs: tuple = ()
    kwargs: tuple = ()
    defaults: Mapping = field(default_factory=dict)
    domain: Callable = _real
    kinks: Callable = _no_kinks
    exact_kinks: str | None = None
    sign: Callable = _any_sign
    out_ulps: float = 0.0
    in_ulps: Callable | float = 0.0
    out_abs: Callable | None = None
    bwd_abs: Callable | None = None
    fd_min_side: int = 1
    wide_range: bool = False
    reflected: bool = False
    broadcast: bool = False
    returns_operand: Callable = lambda shapes: False
    computes_in: Callable | None = None
    in_programs: bool = True
    array_operands: bool = True
    conditions: tuple = ()
    samples: tuple = ()
    error_inputs: tuple = ()
    row: str = ""
    op_name: str = ""
    notes: str = ""
    infeasible: Mapping = field(default_factory=dict)
    overflow: Callable | None = None
    underflow: Callable | None = None
    overflow_inside: bool = False
    offset: bool = False

    def __post_init__(self):
        if self.arity not in (1, 2):
            raise ValueError(f"{self.name}: arity must be 1 or 2")
        if not self.row:
            object.__setattr__(self, "row", self.name)
        if not self.op_name:
            object.__setattr__(self, "op_name", self.name)

    # ------------------------------------------------------------------ arguments
    def all_args(self, args: Mapping) -> dict:
        """`args` with pygrad's defaults filled in (what the twins and references receive)."""
        return {**self.defaults, **args}

    def domains(self, args: Mapping) -> tuple:
        return self.domain(self.all_args(args))

    def operand_in_ulps(self, operands, args) -> float:
        return self.in_ulps(operands, args) if callable(self.in_ulps) else self.in_ulps

    # ------------------------------------------------------------------ the template
    def call(self, *operands, **args):
        """Apply the op in pygrad by evaluating its `code` template."""
        names = tuple(sorted(args))
        key = (self.code, len(operands), names)
        fn = _COMPILED.get(key)
        if fn is None:
            expr = self.render([f"_{i}" for i in range(len(operands))], {k: k for k in names},
                               lambda key, value: value)
            params = ", ".join([f"_{i}" for i in range(len(operands))] + list(names))
            fn = eval(f"lambda {params}: {expr}", _namespace())  # noqa: S307 - our own templates
            _COMPILED[key] = fn
        return fn(*operands, **args)

    def render(self, operands: list, args: Mapping, fmt: Callable) -> str:
        """The template filled with operand expressions and arguments formatted by
        `fmt(name, value)`."""
        parts = [fmt(k, args[k]) for k in self.posargs if k in args]
        parts += [f"{k}={fmt(k, args[k])}" for k in self.kwargs if k in args]
        joined = ", ".join(parts)
        named = {k: fmt(k, v) for k, v in args.items() if k not in self.posargs + self.kwargs}
        return self.code.format(*operands, args=joined, targs=", " + joined if joined else "", **named)

    # ------------------------------------------------------------------ conditions
    def all_conditions(self) -> tuple:
        """The rule's conditions, the op's own, and those its flags imply."""
        extra = []
        if self.exact_kinks:
            extra.append(Condition("exact kink point", _at_exact_kink(self), _values("kinks")))
        if self.wide_range:
            extra.append(Condition("large magnitudes",
                                   lambda use: use.values is not None and any(
                                       np.any(np.abs(v) > 100) for v in use.values), _values("wide")))
        regimes = _REGIMES[0].conditions(self) if _REGIMES else ()
        return tuple(self.rule.conditions) + tuple(self.conditions) + tuple(extra) + tuple(regimes)

    def own_samples(self) -> tuple:
        """The rule's samples and the op's own (the plain one first)."""
        return tuple(self.rule.samples(self)) + tuple(self.samples)

    def all_samples(self) -> tuple:
        """`own_samples()`, then one sample per input regime that fits (`registry.regimes`)."""
        regimes = _REGIMES[0].samples(self) if _REGIMES else ()
        return self.own_samples() + tuple(regimes)

    def all_infeasible(self) -> dict:
        """{frozenset pair of condition names: reason}: the rule's declarations, the op's and
        the input regimes' (`registry.regimes`)."""
        regimes = _REGIMES[0].infeasible(self) if _REGIMES else {}
        return {**regimes, **getattr(self.rule, "infeasible", {}), **self.infeasible}


_REGIMES: list = []


def install_regimes(table) -> None:
    """Attach the input regimes to every entry: `table.conditions(spec)` and
    `table.samples(spec)` join each OpSpec's conditions and coverage samples
    (`reference.registry.regimes` installs itself; this module cannot import it)."""
    _REGIMES[:] = [table]


def _values(kind: str):
    """Maker: the sample's values filled as `kind` ("kinks", "wide")."""
    return lambda sample: replace(sample, values=kind)


def _at_exact_kink(spec: OpSpec):
    def test(use: Use) -> bool:
        if use.values is None:
            return False
        with np.errstate(all="ignore"):
            return any(np.any(np.asarray(exact) & (np.asarray(s) == 0))
                       for s, exact in spec.kinks(list(use.values), dict(use.args)))
    return test


_COMPILED: dict = {}


def _namespace() -> dict:
    """Names the templates may use besides their operands: `pygrad` and its public names
    (the loss classes)."""
    import pygrad
    return {"pygrad": pygrad, **{name: getattr(pygrad, name) for name in pygrad.__all__}}


# ---------------------------------------------------------------------------- axis helpers
def axes_of(axis, ndim: int) -> tuple:
    """NumPy's reading of `axis` as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in items))


def count_of(shape: tuple, axis) -> int:
    return math.prod(shape[a] for a in axes_of(axis, len(shape)))
