"""Input regimes: axes of their own, declared once and attached to every row they fit.

A regime is a bug-prone condition of an op's *inputs* rather than of its shape rule: the
memory layout of pygrad's operands, the magnitude of the values, sizes that coincide. Each
`Regime` has a name and a group (the factor whose levels exclude each other), `fits(spec)`
(a predicate on the entry, never per-op code), `test(spec, use)` (reached by a use),
`make(spec, sample)` (a coverage draft changed to reach it, or `Infeasible`) and `fd`
(whether finite differences mean something under it). Installed into `OpSpec`, the regimes
that fit an entry, and whose maker succeeds on one of its samples, join its conditions
(`Condition`s with `make` and `group`) and its coverage samples (one per regime, made from
the first draft that takes it). The random phase draws them through `layouts_for`,
`magnitudes_for` and `coincide` (`reference.generators.programs`).

- Layouts (group "layout"): the same values in another memory layout, given to pygrad only
  (torch is unaffected): `LAYOUTS`, each a code template that both makes the view and
  prints it in reproducers.
- Magnitudes (group "magnitude"): near the op's overflow or underflow threshold (the
  scales `OpSpec.overflow` / `underflow` of its error model), subnormal entries, a large
  offset with a small spread (entries with `OpSpec.offset`), exact small integers (the 0s,
  1s and ties where rules branch). Torch is the oracle there;
  finite differences do not run.
- Shapes (group "shape"): square matrices, equal sizes on different axes, size 1 on every
  axis; the rule re-fits its shape-dependent arguments (`Rule.refit`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from reference.registry.spec import Condition, Infeasible, OpSpec, Sample, Use, install_regimes

SCALED_DOMAINS = ("real", "pos", "nonzero")   # operands a magnitude regime rescales (subnormals: "real" only)
BAND = (0.25, 2.0)                              # "near" a scale s: the largest entry in [s/4, 2s]
COINCIDE = 3                                    # the one size of the shape regimes


# ---------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class Layout:
    """A memory layout of pygrad's operand: `code` is an expression of `{0}` (a C-contiguous
    array) with the same values in this layout; it makes the view and prints it."""

    key: str
    name: str
    code: str
    fits_shape: Callable

    def view(self, a: np.ndarray) -> np.ndarray:
        fn = _VIEWS.get(self.code)
        if fn is None:
            fn = _VIEWS[self.code] = eval("lambda a: " + self.code.format("a"), {"np": np})  # noqa: S307
        return fn(np.array(a, order="C"))   # a C-contiguous copy, as a Tensor's value (0-D stays 0-D)


_VIEWS: dict = {}


def _two_axes_over_one(shape) -> bool:
    return len(shape) >= 2 and sum(n > 1 for n in shape) >= 2


LAYOUTS = {layout.key: layout for layout in (
    Layout("transposed", "transposed view", "np.swapaxes(np.swapaxes({0}, -1, -2).copy(), -1, -2)",
           lambda s: len(s) >= 2 and s[-1] > 1 and s[-2] > 1),
    Layout("reversed", "negative strides", "np.flip(np.flip({0}).copy())", lambda s: math.prod(s) > 1),
    Layout("strided", "strided slice", "np.repeat({0}, 2, axis=-1)[..., ::2]", lambda s: len(s) >= 1 and math.prod(s) > 1),
    Layout("fortran", "Fortran order", "np.asfortranarray({0})", _two_axes_over_one),
    Layout("broadcast", "read-only broadcast view", "np.broadcast_to({0}, {0}.shape)", lambda s: True),
)}


def layouts_for(shape) -> list:
    """The layout keys that change something for an operand of `shape`."""
    return [k for k, layout in LAYOUTS.items() if layout.fits_shape(tuple(shape))]


def apply_layout(key: str, a):
    """`a` (an ndarray) in layout `key` ("" = as it is)."""
    return LAYOUTS[key].view(a) if key else a


def layout_code(key: str, expr: str) -> str:
    return LAYOUTS[key].code.format(expr) if key else expr


def fitting_layout(key: str, shape) -> str:
    """`key` where it changes something for an operand of `shape`, else "" (as it is)."""
    return key if key and LAYOUTS[key].fits_shape(tuple(shape)) else ""


def spread_layouts(shapes) -> tuple:
    """One layout key per operand of `shapes`, so that every layout is on some operand it
    changes, where the operands allow: the layouts that fit the fewest operands are placed
    first; operands left over keep "" (C-contiguous)."""
    out = [""] * len(shapes)
    for key in sorted(LAYOUTS, key=lambda k: sum(bool(fitting_layout(k, s)) for s in shapes)):
        free = [i for i, s in enumerate(shapes) if not out[i] and fitting_layout(key, s)]
        if free:
            out[free[0]] = key
    return tuple(out)


def layout_reached(key: str, layouts, shapes) -> bool:
    """Whether some operand is in layout `key` with a shape that the layout changes
    (`layouts` and `shapes` per operand)."""
    return any(k == key and LAYOUTS[key].fits_shape(tuple(s)) for k, s in zip(layouts, shapes))


# ---------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Regime:
    """See the module docstring."""

    name: str
    group: str
    fits: Callable
    test: Callable
    make: Callable
    fd: bool
    doc: str
    form: str = ""      # shape regimes: the form of `coincide`

    def condition(self, spec: OpSpec) -> Condition:
        return Condition(self.name, lambda use: self.test(spec, use), lambda sample: self.make(spec, sample),
                         self.group)


def _operands(sample: Sample) -> int:
    return 1 if sample.same_operand else len(sample.shapes)


# ------------------------------------------------------------------ layout regimes
def _layout_regime(layout: Layout) -> Regime:
    def make(spec, sample):
        n = _operands(sample)
        old = tuple(sample.layouts) + ("",) * (n - len(sample.layouts))
        new = tuple(layout.key if layout.fits_shape(tuple(sample.shapes[i])) else old[i] for i in range(n))
        if layout.key not in new:
            raise Infeasible(f"no operand of shapes {sample.shapes} takes a {layout.name}")
        return dataclasses.replace(sample, layouts=new)
    def test(spec, use: Use) -> bool:
        return layout_reached(layout.key, use.layouts, use.shapes)
    return Regime(layout.name, "layout", lambda spec: True, test, make,
                  fd=True, doc=f"pygrad's operands as a {layout.name} (`{layout.code.format('a')}`)")


# ------------------------------------------------------------------ magnitude regimes
def regime_dtype(dtypes) -> str:
    """The narrowest float dtype among the operands': the one whose range a regime fills."""
    return min(dtypes, key=lambda d: float(np.finfo(d).max))


def scaled(spec: OpSpec, args, domains=SCALED_DOMAINS) -> list:
    """The operand slots a magnitude regime rescales: real, positive or nonzero domains (a
    subnormal is put only where the domain is real: elsewhere it is a pole's neighbour)."""
    return [i for i, d in enumerate(spec.domains(args)[:spec.arity]) if d in domains]


def _scale_of(spec, threshold: str, dtypes, args, shapes):
    fn = getattr(spec, threshold)
    return None if fn is None else fn(regime_dtype(dtypes), spec.all_args(args), [tuple(s) for s in shapes])


THRESHOLD = {"near overflow": "overflow", "near underflow": "underflow"}


def has_scale(spec: OpSpec, regime: str, args, shapes, dtypes) -> bool:
    """Whether magnitude regime `regime` has a scale for these arguments (x ** 0 has none)."""
    return regime not in THRESHOLD or _scale_of(spec, THRESHOLD[regime], dtypes, args, shapes) is not None


def _near(threshold: str):
    def test(spec, use: Use) -> bool:
        s = _scale_of(spec, threshold, use.dtypes, use.args, use.shapes)
        slots = [i for i in scaled(spec, use.args) if i < len(use.values or ())]
        if s is None or not slots:
            return False
        top = max(float(np.max(np.abs(use.values[i]), initial=0.0)) for i in slots)
        return BAND[0] * s <= top <= BAND[1] * s * (1 + 2 ** -20)
    return test


def _subnormal(spec, use: Use) -> bool:
    for i in scaled(spec, use.args, ("real",)):
        a = np.abs(np.asarray(use.values[i], dtype=np.float64))
        if np.any((a > 0) & (a < np.finfo(use.dtypes[i]).tiny)):
            return True
    return False


SMALL_INTEGERS = "exact small integers"
INTEGER_LEVELS = {"real": (-2.0, -1.0, 0.0, 1.0, 2.0), "pos": (1.0, 2.0), "nonzero": (-2.0, -1.0, 1.0, 2.0)}


def _small_integers(spec, use: Use) -> bool:
    return any(np.all(np.isin(np.asarray(use.values[i], dtype=np.float64), INTEGER_LEVELS[spec.domains(use.args)[i]]))
               for i in scaled(spec, use.args) if np.size(use.values[i]))


def as_small_integers(a, domain: str) -> np.ndarray:
    """`a` (float64) mapped onto the levels of its domain in INTEGER_LEVELS (each entry to a
    level picked by its own value, so the levels mix)."""
    levels = np.array(INTEGER_LEVELS[domain])
    a = np.asarray(a, dtype=np.float64)
    return levels[(np.floor(np.abs(a) * 7919.0).astype(np.int64) + (a < 0)) % levels.size]


def offset_of(dtype) -> float:
    """The offset of the large-offset regime: u ** (-1/3) as a power of two (2**18 for
    float64, 2**8 for float32), so that E[x**2] - E[x]**2 loses ~u**(1/3) relative accuracy,
    far beyond a tolerance of u**(2/3), while a two-pass formula stays accurate."""
    return 2.0 ** round(-math.log2(float(np.finfo(dtype).eps) / 2) / 3)


OFFSET = "large offset, small spread"


def has_offset(a) -> bool:
    """Entries with a large offset and a small spread: |mean| >= 16 (max - min) > 0."""
    a = np.asarray(a, dtype=np.float64)
    spread = float(np.ptp(a)) if a.size > 1 else 0.0
    return spread > 0 and abs(float(np.mean(a))) >= 16 * spread


def _offset(spec, use: Use) -> bool:
    return any(has_offset(use.values[i]) for i in scaled(spec, use.args))


def offset_input_condition(make=None) -> Condition:
    """The large-offset regime of a layer that normalises (`LayerSpec.offset`): its input is
    the Module's input, whose entries have a large offset and a small spread
    (`LayerUse.offset`; the coverage pass and random Modules give such batches)."""
    return Condition(OFFSET, lambda use: use.offset, make, group="magnitude")


def magnitude_values(spec: OpSpec, regime: str, args, shapes, dtypes, arrays) -> list:
    """The operand arrays of an example (float64, in the domain's usual range) moved into
    magnitude regime `regime` ("" leaves them)."""
    if not regime:
        return list(arrays)
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    slots = [i for i in scaled(spec, args) if i < len(out)]
    if regime in THRESHOLD:
        s = _scale_of(spec, THRESHOLD[regime], dtypes, args, shapes)
        for i in slots:
            top = float(np.max(np.abs(out[i]), initial=0.0))
            if top > 0:
                out[i] = out[i] * (BAND[1] * s / top)
    elif regime == "subnormal values":
        for i in scaled(spec, args, ("real",)):
            a = out[i].copy()
            flat = a.reshape(-1)
            k = np.arange(flat.size)
            sub = np.where(flat < 0, -1.0, 1.0) * np.finfo(dtypes[i]).tiny * 2.0 ** -(1 + k % 20)
            at = np.flatnonzero(flat != 0)[::2]   # exact kink points (zeros) stay
            flat[at] = sub[at]
            out[i] = a
    elif regime == OFFSET:
        for i in slots:
            out[i] = with_offset(out[i], dtypes[i], spec.domains(args)[i])
    elif regime == SMALL_INTEGERS:
        for i in slots:
            out[i] = as_small_integers(out[i], spec.domains(args)[i])
    return out


def with_offset(a, dtype, domain: str) -> np.ndarray:
    """`a` (float64) moved by the large offset of `dtype`, negative when `a`'s first entry is
    and the domain allows it."""
    a = np.asarray(a, dtype=np.float64)
    first = a.reshape(-1)[:1]
    sign = -1.0 if first.size and first[0] < 0 and domain == "real" else 1.0
    return sign * offset_of(dtype) + a


def _magnitude_regime(name: str, fits, test, doc: str, domains=SCALED_DOMAINS) -> Regime:
    def make(spec, sample):
        if not [i for i in scaled(spec, sample.args, domains) if i < len(sample.shapes)]:
            raise Infeasible(f"{spec.name}: no operand in a domain of {domains}")
        if not has_scale(spec, name, sample.args, sample.shapes, sample.operand_dtypes()):
            narrow = ("float32",) * len(sample.shapes)    # a scale some dtypes have (std's underflow: float32)
            if not has_scale(spec, name, sample.args, sample.shapes, narrow):
                raise Infeasible(f"{spec.name}: no {name} scale for arguments {dict(sample.args)}")
            sample = dataclasses.replace(sample, dtypes=narrow)
        keep = ("kinks",) if name == "subnormal values" else ()   # subnormals go beside exact zeros
        values = "smooth" if sample.values in ("kinks", "wide") and sample.values not in keep else sample.values
        return dataclasses.replace(sample, magnitude=name, values=values)
    return Regime(name, "magnitude", fits, test, make, fd=False, doc=doc)


# ------------------------------------------------------------------ shape regimes
def coincide(shapes, form: str) -> tuple:
    """Operand shapes with coinciding sizes: "square" and "equal" turn every side > 1 into
    one size (COINCIDE; "equal" first gives the widest operands a leading axis when no
    operand has three), "ones" turns every side into 1."""
    shapes = [tuple(s) for s in shapes]
    if form == "ones":
        return tuple(tuple(1 for _ in s) for s in shapes)
    if form == "equal" and max((len(s) for s in shapes), default=0) < 3:
        widest = max(len(s) for s in shapes)
        shapes = [(COINCIDE,) + s if len(s) == widest and widest else s for s in shapes]
    return tuple(tuple(COINCIDE if n > 1 else n for n in s) for s in shapes)


def _square(spec, use: Use) -> bool:
    return any(len(s) >= 2 and s[-1] == s[-2] > 1 for s in use.shapes)


def _equal_sizes(spec, use: Use) -> bool:
    for s in use.shapes:
        nd = len(s)
        if any(s[i] == s[j] > 1 for i in range(nd) for j in range(i + 1, nd) if (i, j) != (nd - 2, nd - 1)):
            return True
    return False


def _ones(spec, use: Use) -> bool:
    shapes = use.shapes
    return any(len(s) >= 1 for s in shapes) and all(n == 1 for s in shapes for n in s)


def refit(spec: OpSpec, sample: Sample) -> Sample:
    """`sample` with its arguments re-fitted by the rule to its (changed) shapes, or
    Infeasible when the op refuses the result."""
    sample = spec.rule.refit(spec, sample)
    with np.errstate(all="ignore"):
        try:
            spec.numpy(*[np.ones(s) for s in sample.shapes[:spec.arity]], **spec.all_args(sample.args))
        except Exception as exc:  # noqa: BLE001 - any refusal makes the draft infeasible
            raise Infeasible(f"{spec.name} refuses shapes {sample.shapes}: {exc}") from exc
    return sample


def _shape_regime(name: str, form: str, test, doc: str) -> Regime:
    def make(spec, sample):
        if sample.make is not None:
            raise Infeasible(f"{spec.name}: the draft's values are made for its shapes")
        shapes = coincide(sample.shapes, form)
        layouts = tuple(k if not k or LAYOUTS[k].fits_shape(s) else "" for k, s in zip(sample.layouts, shapes))
        out = refit(spec, dataclasses.replace(sample, shapes=shapes, layouts=layouts))
        if not test(spec, _shape_use(spec, out)):
            raise Infeasible(f"{spec.name}: shapes {shapes} do not reach {name}")
        return out
    return Regime(name, "shape", lambda spec: True, test, make, fd=True, doc=doc, form=form)


def _shape_use(spec, sample) -> Use:
    n = _operands(sample)
    return Use(tuple(tuple(s) for s in sample.shapes[:n]), sample.operand_dtypes()[:n], spec.all_args(sample.args))


REGIMES = tuple(
    [_layout_regime(layout) for layout in LAYOUTS.values()]
    + [_magnitude_regime("near overflow", lambda spec: spec.overflow is not None, _near("overflow"),
                         "the largest entries in [s/4, 2s], s the op's overflow scale (OpSpec.overflow)"),
       _magnitude_regime("near underflow", lambda spec: spec.underflow is not None, _near("underflow"),
                         "the largest entries in [s/4, 2s], s the op's underflow scale (OpSpec.underflow)"),
       _magnitude_regime("subnormal values", lambda spec: True, _subnormal,
                         "every other entry a subnormal number of the operand's dtype", domains=("real",)),
       _magnitude_regime(SMALL_INTEGERS, lambda spec: True, _small_integers,
                         "every entry of the operands an integer in [-2, 2] of their domain: the exact 0s, "
                         "1s and ties where a rule's special cases sit"),
       _magnitude_regime(OFFSET, lambda spec: spec.offset, _offset,
                         "entries c + x, |c| = u**(-1/3) (2**18 float64, 2**8 float32), |x| <= 3")]
    + [_shape_regime("square matrices", "square", _square, "the last two sizes of an operand equal (> 1)"),
       _shape_regime("equal sizes on different axes", "equal", _equal_sizes,
                     "two other axes of an operand of equal size (> 1)"),
       _shape_regime("size 1 on every axis", "ones", _ones, "every operand of ndim >= 1 with all sizes 1")])
"""Every input regime, in report order."""

_NEED_SIDES = [LAYOUTS[k].name for k in ("transposed", "reversed", "strided", "fortran")]
_NEED_TWO_AXES = [LAYOUTS[k].name for k in ("transposed", "fortran")] + ["square matrices",
                                                                          "equal sizes on different axes"]
ONE_OPERAND = ("0-D operand", "1-element operand")   # conditions of the (only) operand of a unary op
AT_MOST_1D = ("1-D operand", "1-D tensor", "0-D or 1-D (itself)", "1-D prediction")
"""Rules' conditions that keep every operand a regime could lay out or size at most 1-D."""
NEED_A_SIDE = ("left size-1 dim stretched", "right size-1 dim stretched", "left 1-element", "right 1-element",
               "broadcast batch dims", "outC > 1", "inC > 1", "batch > 1", "per-sample kernel", OFFSET)
"""Rules' conditions (and the offset regime) that need an operand with a side > 1 (the offset: a
spread, two entries in one operand)."""
EXCLUDED = (
    [("size 1 on every axis", name, "this layout changes something only where an operand has a side > 1")
     for name in _NEED_SIDES]
    + [("size 1 on every axis", name, "it needs an operand with a side > 1") for name in NEED_A_SIDE]
    + [(name, regime, "a 0-D operand has no axes to lay out or to size")
       for name in ("0-D operand", "from 0-D")
       for regime in _NEED_SIDES + ["square matrices", "equal sizes on different axes", "size 1 on every axis"]]
    + [(name, regime, "a 1-element operand has no side > 1")
       for name in ("1-element operand", "to 0-D") for regime in _NEED_SIDES + ["square matrices",
                                                                                "equal sizes on different axes"]]
    + [(name, OFFSET, "a 1-element operand has no spread") for name in ONE_OPERAND]
    + [("large magnitudes", SMALL_INTEGERS, "integers in [-2, 2] are not large")]
    + [(name, regime, "an operand of at most one axis has no two axes to transpose, order or size alike")
       for name in AT_MOST_1D for regime in _NEED_TWO_AXES])
"""(condition, condition, why) that no example reaches together (the conditions of
ONE_OPERAND: for unary ops, whose one operand they describe)."""

REGIME_BY_NAME = {r.name: r for r in REGIMES}


class RegimeTable:
    """What `OpSpec.all_conditions()` / `all_samples()` add: per entry, the regimes that fit it
    and the coverage sample each one's maker makes from the first own sample that takes it."""

    def __init__(self):
        self._cache: dict = {}

    def _of(self, spec: OpSpec) -> list:
        hit = self._cache.get(id(spec))
        if hit is None or hit[0] is not spec:
            out = []
            drafts = spec.own_samples()
            for regime in REGIMES:
                if not regime.fits(spec):
                    continue
                for draft in drafts:
                    try:
                        out.append((regime, regime.make(spec, draft)))
                        break
                    except Infeasible:
                        continue
            hit = self._cache[id(spec)] = (spec, out)
        return hit[1]

    def conditions(self, spec: OpSpec) -> tuple:
        return tuple(regime.condition(spec) for regime, _ in self._of(spec))

    def samples(self, spec: OpSpec) -> tuple:
        return tuple(sample for _, sample in self._of(spec))

    def infeasible(self, spec: OpSpec) -> dict:
        """{frozenset({a, b}): reason} for the attached regimes: pairs no example can reach."""
        names = set(regimes_of(spec))
        own = {c.name for c in spec.all_conditions()} - names
        out = {}
        for a, b, why in EXCLUDED:
            for x in ([a] if a in names | own else []):
                for y in ([b] if b in names | own else []):
                    if spec.arity == 1 or x not in ONE_OPERAND and y not in ONE_OPERAND:
                        out[frozenset({x, y})] = why
        return out


def regimes_of(spec: OpSpec) -> list:
    """The names of the regimes attached to `spec` (those that fit it and that its
    coverage samples reach)."""
    return [regime.name for regime, _ in TABLE._of(spec)]


def magnitudes_for(spec: OpSpec, fd: bool) -> list:
    """The magnitude regimes a random example of `spec` may draw (none where finite
    differences must run)."""
    return [r.name for r in REGIMES if r.group == "magnitude" and (r.fd or not fd) and r.fits(spec)]


SHAPE_FORMS = [r.form for r in REGIMES if r.group == "shape"]
"""The forms of `coincide`, as the random phase draws them."""


TABLE = RegimeTable()
install_regimes(TABLE)
