"""The registry is the one table per extension axis: complete, and reached everywhere.

- every public Tensor operation has an entry (`COVERS` is derived from the templates);
- every row's coverage samples reach every one of its conditions (the coverage pass alone
  leaves no row thin) and the plain first sample of an op reaches none beyond its baseline;
- adding an op, a loss, a layer or an optimizer is one table entry: a toy entry of each kind
  is reached by the property tests' strategies, the coverage pass, the report's rows and
  `--list`, without any other edit."""
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st

import pygrad
from pygrad import Tensor
from reference import coverage, harness, registry
from reference.cases import ProgramCase
from reference.gate import listing, report
from reference.generators.modules import module_specs, train_cases
from reference.generators.programs import op_cases, programs
from reference.registry import COVERS, LAYERS, LOSS_OPS, MODULE_LOSSES, OPS, OPTIMIZERS, rows, row_conditions
from reference.registry import layers as layer_table
from reference.registry import ops as op_table
from reference.registry.layers import LayerSpec
from reference.registry.losses import ModuleLoss
from reference.registry.optimizers import COMMON, OptimizerSpec
from reference.registry.regimes import regimes_of
from reference.registry.rules import ELEMENTWISE, F32, FLOAT32, Rule
from reference.registry.spec import Condition, ErrorInput, OpSpec, Plan, Sample
from reference.runstate import session
from reference.runstate.streams import Stream
from tests.test_suite_harness import gate  # noqa: F401 - the fixture: gate mode in this process

DESIGN_OPS = {"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__pow__", "__rpow__", "__neg__", "__matmul__", "__rmatmul__", "sum", "mean", "std", "reshape",
              "transpose", "T", "__getitem__", "relu", "tanh", "sigmoid", "exp", "log", "softmax", "softmax_log",
              "mask_idcs", "conv2D"}
QUIET = settings(max_examples=3000, derandomize=True, database=None, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))


def test_every_public_operation_has_an_entry():
    assert len(OPS) >= 25
    assert DESIGN_OPS <= set(COVERS), DESIGN_OPS - set(COVERS)
    installed = {name for name, v in vars(Tensor).items()
                 if getattr(v, "__module__", "").startswith("pygrad.ops")
                 or getattr(getattr(v, "fget", None), "__module__", "").startswith("pygrad.ops")}
    assert installed <= set(COVERS), installed - set(COVERS)


@pytest.mark.parametrize("row", rows())
def test_coverage_samples_reach_every_condition_of_their_row(row):
    reached = set()
    for case in coverage.row_cases(row):
        reached |= set(case.conditions().get(row, ()))
    assert set(row_conditions(row)) <= reached, set(row_conditions(row)) - reached


@pytest.mark.parametrize("name", sorted(OPS) + sorted(LOSS_OPS))
def test_samples_are_single_op_programs_with_error_inputs_after(name):
    spec = {**OPS, **LOSS_OPS}[name]
    cases = coverage.row_cases(spec.row)
    programs_ = [c for c in cases if isinstance(c, ProgramCase)]
    assert len(programs_) == len(spec.all_samples()) >= 4
    assert all(c.program.ops() == [name] for c in programs_)
    assert cases[:len(programs_)] == programs_


@pytest.mark.parametrize("condition, op", [
    ("right 1-element", "mul"), ("left size-1 dim stretched", "add"), ("tuple of axes", "sum"),
    ("negative axis", "mean"), ("non-last axis", "softmax"), ("outC > 1", "conv2D"),
    ("repeated indices", "getitem"), ("exact kink point", "relu"), ("exact kink point", "std"),
    ("mixed dtypes, float32 left", "pow_tensor"), ("left 1-D", "matmul"), ("large magnitudes", "softmax"),
    ("mask=True with ignored rows", "CCELoss")])
def test_random_op_cases_reach_the_conditions_bugs_hide_behind(condition, op):
    spec = {**OPS, **LOSS_OPS}[op]
    case = find(op_cases(spec, "torch"), lambda c: condition in c.conditions()[spec.row], settings=QUIET)
    assert condition in case.conditions()[spec.row]


@pytest.mark.parametrize("condition", ["fan-out", "several sinks", "weights and inputs"])
def test_random_programs_reach_the_engine_conditions(condition):
    case = find(programs(form="dag"), lambda c: condition in c.conditions()["engine"], settings=QUIET)
    assert condition in case.conditions()["engine"]


# ---------------------------------------------------------------------------- extending the suite
TOY_OP = OpSpec(name="toy_cube", arity=1, code="{0} * {0} * {0}", torch=lambda x: x ** 3, numpy=lambda x: x ** 3,
                rule=ELEMENTWISE, domain=lambda args: ("real",), out_ulps=3, in_ulps=1)


@pytest.fixture
def toy_op(monkeypatch):
    monkeypatch.setitem(OPS, "toy_cube", TOY_OP)
    monkeypatch.setitem(op_table.COVERS, "toy", ["toy_cube"])
    return TOY_OP


def test_a_toy_op_is_one_entry(toy_op):
    assert "toy_cube" in rows() and "float32" in row_conditions("toy_cube")
    for case in coverage.row_cases("toy_cube"):
        case.run()
    find(op_cases(toy_op, "fd"), lambda c: c.run() is not None, settings=QUIET)
    case = find(programs(ops=["toy_cube", "add"]), lambda c: "toy_cube" in c.program.ops(), settings=QUIET)
    case.run()
    assert "toy_cube" in str(listing.ops_table().columns[0]._cells)


# An op of its own: a pygrad function (not built from existing ops), reached through a Tensor
# method added for the test, with a shape rule of its own (a new Rule subclass).
@pygrad.function
def toy_outer(a, b):
    """The outer product of two vectors: (n,) and (m,) -> (n, m)."""
    if np.ndim(a) != 1 or np.ndim(b) != 1:
        raise ValueError(f"toy_outer: operands must be 1-D, got shapes {np.shape(a)} and {np.shape(b)}")

    def backward(g):
        return g @ b, a @ g
    return np.outer(a, b), backward


class Outer(Rule):
    """Two vectors (n,) and (m,), the output (n, m)."""

    name = "outer"
    min_dims = 1
    conditions = (FLOAT32, Condition("1-element vector", lambda u: 1 in (u.shapes[0][0], u.shapes[1][0])),
                  Condition("mixed dtypes", lambda u: len(set(u.dtypes)) > 1))

    def samples(self, spec):
        return [Sample(((3,), (2,))), Sample(((1,), (4,))), Sample(((2,), (3,)), dtypes=("float32", "float64")),
                Sample(((3,), (3,)), dtypes=F32 * 2)]

    def error_inputs(self, spec):
        return [ErrorInput(((2, 2), (3,)), match=spec.op_name)]

    def anchors(self, spec, fd):
        return st.tuples(st.integers(1, 4))

    def fits_shape(self, shape):
        return len(shape) == 1

    def plan(self, spec, shape, sign, fd, dtype):
        return st.integers(1, 4).map(lambda m: Plan({}, slot=0, others=((m,),)))


TOY_OUTER = OpSpec(name="toy_outer", arity=2, code="{0}.toy_outer({1})", torch=torch.outer, numpy=np.outer,
                   rule=Outer(), out_ulps=1, in_ulps=lambda ops, args: max(ops[0].shape[-1], ops[1].shape[-1]) + 1)


@pytest.fixture
def own_op(monkeypatch):
    monkeypatch.setattr(Tensor, "toy_outer", lambda self, other: toy_outer(self, other), raising=False)
    monkeypatch.setitem(OPS, "toy_outer", TOY_OUTER)
    monkeypatch.setitem(op_table.COVERS, op_table.covers(TOY_OUTER), ["toy_outer"])
    return TOY_OUTER


def test_an_op_with_its_own_function_and_shape_rule_is_one_entry(own_op, gate):
    assert op_table.covers(own_op) == "toy_outer"
    regimes = regimes_of(own_op)     # the input regimes that fit it come by construction
    assert {"negative strides", "subnormal values"} <= set(regimes)
    assert "toy_outer" in rows() and set(row_conditions("toy_outer")) == {"float32", "1-element vector",
                                                                        "mixed dtypes"} | set(regimes)
    few = settings(QUIET, max_examples=200)
    for mode in ("torch", "fd"):     # the strategies of the op alone
        case = find(op_cases(own_op, mode), lambda c: c.program.ops() == ["toy_outer"], settings=few)
        case.run()
    case = find(programs(ops=["toy_outer", "add"]), lambda c: {"toy_outer", "add"} <= set(c.program.ops()),
                settings=few)
    case.run()
    cases = coverage.row_cases("toy_outer")       # the coverage pass, through the harness of a gate run
    assert len(cases) == 4 + len(regimes) + 1
    session.begin("cov[toy_outer]", "coverage")
    harness.run_samples(cases, "cov[toy_outer]")
    session.end("passed")
    stream = Stream(gate)
    stream.poll()
    summary = report.summarize(stream.records, rows(), {r: row_conditions(r) for r in rows()})
    row = next(r for r in summary.rows if r["op"] == "toy_outer")     # the report's row
    assert row["examples"] == len(cases) and row["status"] == "pass" and all(row["conditions"].values()), row
    assert "toy_outer" in str(listing.ops_table().columns[0]._cells)    # --list
    assert "toy_outer" in str(listing.rows_table().columns[0]._cells)


class Cube:
    """A toy pygrad layer: x ** 3, elementwise."""

    def __call__(self, x):
        return x * x * x


def test_a_toy_layer_is_one_entry(monkeypatch):
    import pygrad
    monkeypatch.setattr(pygrad, "Cube", Cube, raising=False)
    monkeypatch.setattr(pygrad, "__all__", pygrad.__all__ + ["Cube"])
    spec = LayerSpec("cube", "Cube", draw=lambda shape, earlier: __import__("hypothesis").strategies.just(
        registry.Layer.make("cube")), out_shape=lambda layer, shape, earlier: shape,
        code=lambda layer, shape, dtype, name: "Cube()",
        forward=lambda node, layer, cur, acts, w: node("mul", (node("mul", (cur, cur)), cur)),
        samples=((registry.Layer.make("cube"), (2, 3)),), conditions=layer_table._LIST[3].conditions)
    monkeypatch.setitem(LAYERS, "cube", spec)
    assert "layer:Cube" in rows()
    for case in coverage.row_cases("layer:Cube"):
        case.run()
    found = find(module_specs(), lambda s: any(layer.kind == "cube" for layer in s.layers), settings=QUIET)
    assert any(layer.kind == "cube" for layer in found.layers)


def test_a_toy_optimizer_is_one_entry(monkeypatch):
    toy = OptimizerSpec("ToySGD", "SGD({params}, lr={lr!r})", lambda params, h: torch.optim.SGD(params, lr=h["lr"]),
                        {"lr": OPTIMIZERS["SGD"].hyper["lr"]}, ({"lr": 0.05},), COMMON)
    monkeypatch.setitem(OPTIMIZERS, "ToySGD", toy)
    assert "optim:ToySGD" in rows()
    assert [c.train.name for c in coverage.row_cases("optim:ToySGD")] == ["ToySGD"] * len(toy.drafts())
    for case in coverage.row_cases("optim:ToySGD")[:2]:
        case.run()
    find(train_cases("ToySGD"), lambda c: c.run() is not None, settings=settings(QUIET, max_examples=2))


def test_a_toy_module_loss_is_one_entry(monkeypatch):
    def half_sse(node, out, y):
        return node("rmul", (node("sum", (node("pow", (node("sub", (out, y)),), p=2.0),)),), const=0.5)
    toy = ModuleLoss("half_sse", "((y_pred - y_true) ** 2).sum() * 0.5", lambda rng, shape: rng.standard_normal(shape),
                     forward=half_sse, reduction="sum")
    monkeypatch.setitem(MODULE_LOSSES, "half_sse", toy)
    spec = find(module_specs(), lambda s: s.loss == "half_sse", settings=QUIET)
    coverage.module_case(dataclasses.replace(spec, dtype="float64"), (2, 1)).run()


def test_listing_names_every_row_and_property():
    text = " ".join(str(c) for c in listing.rows_table().columns[0]._cells)
    assert all(row in text for row in rows())
    assert len(listing.properties()) >= 12
    assert all(checks and what for _, checks, what in listing.properties())


def test_tolerance_floor_is_a_sound_lower_bound():
    """Whatever the spread, each tolerance the cheap path uses is at most the next, up to the
    full one; the partial ones are marked as lower bounds, and the full one is the spread over
    the same RUNS runs whichever was asked first."""
    from reference.numerics import RUNS, LowerBound
    from reference.oracles.oracle import Oracle
    case = coverage.sample_case(OPS["matmul"], 0)
    oracle = Oracle(case.program, case.values, case.seed)
    for name in case.program.graded:
        tols = list(oracle.grad_tols(name))
        assert len(tols) == RUNS + 1
        assert [isinstance(t, LowerBound) for t in tols] == [False] + [True] * (RUNS - 1) + [False]
        for cheap, dearer in zip(tols, tols[1:]):
            assert np.all(np.asarray(dearer) >= np.asarray(cheap))
    fresh = Oracle(case.program, case.values, case.seed)
    name = case.program.graded[0]
    np.testing.assert_array_equal(fresh.grad_tol(name), oracle.grad_tol(name))
