"""Input regimes (reference/registry/regimes.py, the index grammar of rules/index.py): each
reaches the rows it fits, in the coverage pass and in random draws; correct pygrad passes
under every one; a bug of each regime class, put into pygrad in-process, is caught by that
regime's sample (and not by the plain one), and the printed reproducer reproduces it."""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from pygrad import Tensor
from reference.checks import Mismatch
from reference.coverage import sample_case
from reference.findings import signature_of
from reference.generators.programs import op_cases, programs
from reference.oracles.oracle import InvalidExample, Oracle
from reference.checks.programs import check_program
from reference.programs.graph import Input, Node, single_op, with_loss
from reference.programs.printer import input_code
from reference.registry import OPS, LOSS_OPS, axes_of
from reference.registry.regimes import LAYOUTS, REGIMES, apply_layout, regimes_of
from tests._patch import assert_reproducer_catches
from reference.registry.rules.index import GRAMMAR
from reference.tolerances import judge

QUIET = settings(max_examples=2000, derandomize=True, database=None, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))
ALL = {**OPS, **LOSS_OPS}


def regime_case(op: str, condition: str):
    """The coverage sample of `op` made for `condition` (a regime), or the first that
    reaches it (an index form)."""
    spec = ALL[op]
    if condition in regimes_of(spec):
        return sample_case(spec, len(spec.own_samples()) + regimes_of(spec).index(condition))
    for k in range(len(spec.all_samples())):
        case = sample_case(spec, k)
        if condition in case.conditions()[spec.row]:
            return case
    raise AssertionError(f"no coverage sample of {op} reaches {condition!r}")


# ---------------------------------------------------------------------------- the table
def test_layouts_hold_the_same_values_in_another_memory_layout():
    a = np.arange(24.0).reshape(2, 3, 4)
    expect = {"transposed": lambda v: not v.flags.c_contiguous and v.strides[-1] > v.strides[-2],
              "reversed": lambda v: all(s < 0 for s in v.strides),
              "strided": lambda v: not v.flags.c_contiguous and not v.flags.f_contiguous,
              "fortran": lambda v: v.flags.f_contiguous and not v.flags.c_contiguous,
              "broadcast": lambda v: not v.flags.writeable}
    assert set(expect) == set(LAYOUTS)
    for key, layout in LAYOUTS.items():
        view = apply_layout(key, a)
        printed = eval(layout.code.format("a"), {"np": np, "a": a})   # what a reproducer runs
        assert np.array_equal(view, a) and view.dtype == a.dtype and expect[key](view), key
        assert np.array_equal(printed, a) and printed.strides == view.strides, key


def test_every_regime_fits_some_row_and_is_declared_once():
    names = [r.name for r in REGIMES]
    assert len(names) == len(set(names)) == 13
    for regime in REGIMES:
        assert any(regime.name in regimes_of(spec) for spec in ALL.values()), regime.name
    assert {r.name for r in REGIMES if r.fd} == {r.name for r in REGIMES if r.group in ("layout", "shape")}


def test_layouts_keep_0d_operands_0d():
    for key in ("broadcast",):
        assert apply_layout(key, np.array(0.5)).shape == ()


def test_a_reproducer_gives_pygrad_the_layout():
    prog, _ = single_op("exp", [(2, 3)], layouts=("fortran",))
    code = input_code(prog.input("x0"), np.ones((2, 3)))
    env = {"np": np, "Tensor": Tensor, "array": np.array}
    exec(code, env)
    assert env["x0"].value.flags.f_contiguous and not env["x0"].value.flags.c_contiguous


# ---------------------------------------------------------------------------- the oracle at extremes
def test_the_comparison_at_extremes():
    inf = np.array([np.inf, -np.inf, 1.0])
    tol = iter([np.full(3, 1e-9)])
    assert judge(inf.copy(), inf, "float64", tol)[0] is None                    # equal infinities
    for got in ([np.inf, np.inf, 1.0], [np.inf, -np.inf, np.nan], [np.inf, -np.inf, np.inf], [1e308, -np.inf, 1.0]):
        assert judge(np.array(got), inf, "float64", iter([np.full(3, 1e-9)]))[0] is not None, got


def test_extreme_values_are_judged_not_rejected():
    """Values far beyond the old 1e8 limit are judged; NaN, a float32 value beyond float32's
    range (the float64 oracle cannot follow its overflow) and a sum's operand beyond its
    overflow scale are not."""
    prog, _ = single_op("mul", [(3,), (3,)])
    big = {"x0": np.full(3, 1e150), "x1": np.full(3, 2e150), "w0": np.ones(3)}
    Oracle(prog, big, 0)
    for dtype, vals in (("float64", {**big, "x1": np.array([np.nan, 1.0, 1.0])}),
                        ("float32", {"x0": np.full(3, 1e20), "x1": np.full(3, 1e20), "w0": np.ones(3)})):
        prog, _ = single_op("mul", [(3,), (3,)], dtypes=(dtype, dtype))
        with pytest.raises(InvalidExample):
            Oracle(prog, {k: np.asarray(v, dtype=dtype) for k, v in vals.items()}, 0)
    prog, _ = single_op("sum", [(4,)], {"axis": None})
    with pytest.raises(InvalidExample, match="overflow scale"):     # its partial sums may overflow
        Oracle(prog, {"x0": np.array([5e307, 5e307, -5e307, 1.0]), "w0": np.ones(())}, 0)


def test_underflow_amplified_by_a_large_cotangent_is_in_the_model():
    """exp(-100) underflows in float32 (a subnormal of a few bits) and its gradient is that
    value times a cotangent of 1e30: the error is real and correct code makes it; the noise
    model's u tiny terms give the tolerance for it (the old rule rejected such examples)."""
    inputs = [Input("x0", (3,), "float32"), Input("x1", (3,), "float32")]
    prog, _ = with_loss(inputs, [Node("v2", "exp", ("x0",)), Node("v3", "mul", ("v2", "x1"))])
    vals = {"x0": np.array([-100.0, -101.5, -99.25], dtype=np.float32), "x1": np.full(3, 1e30, dtype=np.float32),
            "w0": np.array([1.0, -0.5, 2.0], dtype=np.float32)}
    assert check_program(prog, vals, seed=0).err_torch <= 1


# ---------------------------------------------------------------------------- correct pygrad passes
def test_correct_pygrad_passes_every_regime_sample_of_every_row():
    for spec in ALL.values():
        own = len(spec.own_samples())
        for k in range(own, len(spec.all_samples())):
            sample_case(spec, k).run()


# ---------------------------------------------------------------------------- reached by random draws
def drawn(strategy, n: int) -> list:
    """The conditions reached (row -> set) by each of `n` derandomized draws."""
    out = []

    @settings(QUIET, max_examples=n, deadline=None)
    @given(strategy)
    def collect(case):
        out.append(case.conditions())
    collect()
    return out


@pytest.mark.parametrize("op, n, expected", [
    ("getitem", 300, set(GRAMMAR) | {"negative strides", "read-only broadcast view", "subnormal values"}),
    ("matmul", 150, {"transposed view", "Fortran order", "near overflow", "near underflow", "square matrices",
                     "size 1 on every axis"}),
    ("T", 150, {"strided slice", "equal sizes on different axes"}),
    ("std", 150, {"large offset, small spread", "near overflow"})])
def test_random_op_cases_reach_the_regimes(op, n, expected):
    """Each regime (or index form) is reached by some of n draws (a rare one that they miss:
    by a search of up to 2000)."""
    row = ALL[op].row
    strategy = op_cases(ALL[op], "torch")
    reached = set().union(*(c.get(row, ()) for c in drawn(strategy, n)))
    for condition in expected - reached:
        find(strategy, lambda c, condition=condition: condition in c.conditions()[row], settings=QUIET)


@pytest.mark.parametrize("conditions, op", [
    ({"batched (3+ dims)", "square matrices"}, "T"), ({"left 1-D", "square matrices"}, "matmul")])
def test_random_op_cases_reach_coinciding_sizes_with_other_conditions(conditions, op):
    spec = ALL[op]
    find(op_cases(spec, "torch"), lambda c: conditions <= c.conditions()[spec.row], settings=QUIET)


def test_random_programs_reach_layouts_and_offsets():
    """Reached by some of 80 draws (a rarer one: by a search of up to 2000)."""
    reached = set().union(*(c for case in drawn(programs(), 80) for c in case.values()))
    for condition in {"negative strides", "read-only broadcast view", "large offset, small spread"} - reached:
        find(programs(), lambda case, condition=condition: any(condition in c for c in case.conditions().values()),
             settings=QUIET)


# ---------------------------------------------------------------------------- broken pygrad is caught
def _patch_backward(monkeypatch, name, make_backward, prop=False):
    """Tensor.<name> with its backward rule replaced by `make_backward(x, out, *args)`."""
    original = getattr(Tensor, name)
    call = original.fget if prop else original

    def broken(self, *args, **kwargs):
        out = call(self, *args, **kwargs)
        if out is not self:
            out._backward = make_backward(self, out, *args, **kwargs)
        return out
    monkeypatch.setattr(Tensor, name, property(broken) if prop else broken)


def naive_sigmoid(x, out):
    """exp(-x) / (1 + exp(-x))**2: NaN where exp(-x) overflows, though sigmoid is finite."""
    def backward(g):
        with np.errstate(all="ignore"):
            e = np.exp(-x.value)
            x._add_grad(g * e / (1 + e) ** 2)
    return backward


def cancelling_std(x, out, axis=-1, keepdims=True):
    """std's gradient (x - mean) / (n std) with std from E[x**2] - E[x]**2: cancels
    catastrophically where a large offset carries a small spread."""
    xv = x.value
    axes = axes_of(axis, xv.ndim)

    def backward(g):
        g = g if keepdims else np.expand_dims(g, axes)
        n = max(1, int(np.prod([xv.shape[a] for a in axes])))
        m = xv.mean(axis=axes, keepdims=True)
        s = np.sqrt(np.maximum((xv * xv).mean(axis=axes, keepdims=True) - m * m, 0))
        with np.errstate(all="ignore"):
            x._add_grad(np.where(s == 0, 0, g * (xv - m) / (n * s)).astype(xv.dtype))
    return backward


def memory_order_exp(x, out):
    """exp's gradient computed over the operand's memory order, then shaped in C order."""
    def backward(g):
        x._add_grad(g * np.exp(x.value.ravel(order="K")).reshape(x.value.shape))
    return backward


def negative_index_as_positive(x, out, idx):
    """getitem's scatter with negative integers read as positive ones."""
    fixed = tuple(-i if isinstance(i, int) and i < 0 else i for i in (idx if isinstance(idx, tuple) else (idx,)))

    def backward(g):
        gx = np.zeros_like(x.value)
        np.add.at(gx, fixed, g)
        x._add_grad(gx)
    return backward


def shape_driven_T(x, out):
    """.T's gradient swapped back only when its shape differs from the operand's: wrong
    exactly where the last two sizes are equal."""
    def backward(g):
        x._add_grad(g if g.shape == x.value.shape else g.swapaxes(-1, -2))
    return backward


def textbook_div(a, out, b):
    """a / b with -g a / b**2 for the divisor: 0 where b**2 overflows."""
    def backward(g):
        with np.errstate(all="ignore"):
            a._add_grad(g / b.value)
            b._add_grad(-g * a.value / (b.value * b.value))
    return backward


def _unbroadcast(g, like):
    g = g.sum(axis=tuple(range(g.ndim - like.ndim)))
    return g.sum(axis=tuple(i for i, n in enumerate(like.shape) if n == 1), keepdims=True)


def base_gradient_special_cased_at_one(a, out, b):
    """a ** b with the base's derivative b a**(b-1) special-cased to 0 at b == 1 instead of
    b == 0: right for every exponent but exactly 1 (the slip of a constant)."""
    def backward(g):
        av, bv = a.value, b.value
        with np.errstate(all="ignore"):
            a._add_grad(_unbroadcast(g * np.where(bv == 1, 0.0, bv * av ** (bv - 1)), av))
            b._add_grad(_unbroadcast(g * np.where((av == 0) & (bv >= 0), 0.0, out.value * np.log(av)), bv))
    return backward


@pytest.mark.parametrize("name, make, prop, op, regime", [
    ("sigmoid", naive_sigmoid, False, "sigmoid", "near overflow"),
    ("std", cancelling_std, False, "std", "large offset, small spread"),
    ("exp", memory_order_exp, False, "exp", "transposed view"),
    ("exp", memory_order_exp, False, "exp", "Fortran order"),
    ("__getitem__", negative_index_as_positive, False, "getitem", "negative integer"),
    ("T", shape_driven_T, True, "T", "square matrices"),
    ("__truediv__", textbook_div, False, "div", "near overflow"),
    ("__pow__", base_gradient_special_cased_at_one, False, "pow_tensor", "exact small integers")])
def test_a_bug_of_each_regime_class_is_caught_and_reproduced(monkeypatch, name, make, prop, op, regime):
    spec = ALL[op]
    case = regime_case(op, regime)
    _patch_backward(monkeypatch, name, make, prop)
    sample_case(spec, 0).run()                    # the plain sample does not see it
    with pytest.raises(Mismatch) as e:
        case.run()
    assert e.value.row == spec.row and regime in e.value.conditions, e.value
    # a finding of its own: `what` names the wrong op, and the regime is in its signature
    assert e.value.what == op and regime in signature_of(e.value)[3], e.value
    assert_reproducer_catches(e.value.reproducer, monkeypatch)   # fails on the bug, passes on correct pygrad
