"""Tests of the reference suite itself: registry coverage, printer round trips, that the
checks can fail (and blame the right node), and the gate's command-line interface."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pygrad
from pygrad import Tensor
from reference import check
from reference.check import Mismatch, check_program
from reference.programs import (CODE_HEADER, Input, Node, backward_pygrad, literal,
                                program_code, run_pygrad, subscript, with_loss)
from reference.properties import PROPERTIES
from reference.registry import COVERS, OPS

ROOT = Path(__file__).resolve().parent.parent
DESIGN_OPS = {"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__pow__", "__rpow__", "__neg__", "__matmul__", "__rmatmul__", "sum",
              "mean", "std", "reshape", "transpose", "T", "__getitem__", "relu", "tanh", "sigmoid",
              "exp", "log", "softmax", "softmax_log", "mask_idcs", "conv2D"}


# ---------------------------------------------------------------------------- registry
def test_registry_has_an_entry_per_public_operation():
    assert len(OPS) >= 25
    assert DESIGN_OPS <= set(COVERS), DESIGN_OPS - set(COVERS)
    assert set(COVERS.values()) <= set(OPS)
    # every op pygrad installs on Tensor is covered (a new op needs a registry entry)
    installed = {name for name, v in vars(Tensor).items()
                 if getattr(v, "__module__", "").startswith("pygrad.ops")
                 or getattr(getattr(v, "fget", None), "__module__", "").startswith("pygrad.ops")}
    assert installed <= set(COVERS), installed - set(COVERS)
    for name in COVERS:
        assert hasattr(Tensor, name), name


def test_every_shape_rule_has_a_strategy():
    from fuzz.strategies import PLANS
    assert {spec.shapes for spec in OPS.values()} <= set(PLANS)


# ---------------------------------------------------------------------------- strategies
def _reaches(strategy, feature):
    from hypothesis import HealthCheck, Phase, find
    quiet = settings(max_examples=2000, derandomize=True, database=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))
    return find(strategy, lambda case: feature in case.features, settings=quiet)


@pytest.mark.parametrize("feature, where", [
    ("broadcast operand", "mul"), ("reflected operator", "rsub"), ("tuple axis", "sum"),
    ("negative axis", "mean"), ("non-last softmax axis", "softmax"), ("outC > 1", "conv2D"),
    ("advanced indexing", "getitem"), ("repeated indices", "getitem"),
    ("exact zero at a kink", "relu"), ("constant std row", "std"), ("0-D operand", "add"),
    ("1-D operand", "matmul"), ("float32", "exp"), ("large magnitudes", "softmax"),
    ("operand used twice", "dag"), ("fan-out", "dag")])
def test_strategies_reach_the_conditions_bugs_hide_behind(feature, where):
    from fuzz.strategies import op_cases, programs
    strategy = programs(form="dag") if where == "dag" else op_cases(OPS[where], mode="torch")
    assert feature in _reaches(strategy, feature).features


# ---------------------------------------------------------------------------- printer
@pytest.mark.parametrize("value", [
    np.array([[0.1, -2.5e-7], [np.pi, 1e300]]), np.array([0.1, 3.3], dtype=np.float32),
    np.array(2.5), np.zeros((0, 3)), np.array([[1, -2]]), np.array([True, False]),
    1.5, -0.0, 3, None, (1, -1), (), (np.array([0, 0, 2]),)])
def test_literals_round_trip(value):
    ns = {}
    exec(CODE_HEADER, ns)
    got = eval(literal(value), ns)
    if isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and got.shape == value.shape
        assert np.array_equal(got, value)
    elif isinstance(value, tuple) and value and isinstance(value[0], np.ndarray):
        assert np.array_equal(got[0], value[0])
    else:
        assert got == value and type(got) is type(value)


def test_subscripts_round_trip():
    x = np.arange(60).reshape(3, 4, 5)
    ns = {"x": x}
    exec(CODE_HEADER, ns)
    for idx in [(slice(None, None, -2), None, Ellipsis), (np.array([0, 0, 2]),), 1,
                (slice(1, None), np.array([[1, 1]]), -1), ()]:
        assert np.array_equal(eval(f"x[{subscript(idx)}]", ns), x[idx]), idx


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_printed_program_reexecutes_to_the_same_values(data):
    """A printed program, run as plain pygrad code, gives bit-identical values and grads."""
    from fuzz.strategies import programs
    case = data.draw(programs(min_ops=1, max_ops=8))
    prog, vals = case.program, case.values
    env = run_pygrad(prog, vals)
    backward_pygrad(env, prog.root)
    ns = {}
    exec(CODE_HEADER + "\n" + program_code(prog, vals), ns)
    for name in prog.names:
        assert ns[name].value.dtype == env[name].value.dtype
        assert np.array_equal(ns[name].value, env[name].value), name
        assert np.array_equal(ns[name].grad, env[name].grad), name


# ---------------------------------------------------------------------------- the checks can fail
def _program(op, shapes, args=None, dtype="float64"):
    inputs = [Input(f"x{i}", s) for i, s in enumerate(shapes)]
    body = [Node(f"v{len(shapes)}", op, tuple(i.name for i in inputs), args or {})]
    prog, cots = with_loss(dtype, inputs, body)
    rng = np.random.default_rng(0)
    vals = {i.name: rng.uniform(0.5, 2, i.shape).astype(dtype) for i in prog.inputs}
    return prog, vals


def _break_backward(monkeypatch, name, factor):
    """Make Tensor.<name>'s backward rule send `factor` times the gradient."""
    original = getattr(Tensor, name)

    def broken(*args, **kwargs):
        out = original(*args, **kwargs)
        rule = out._backward
        out._backward = lambda g: rule(factor * g)
        return out
    monkeypatch.setattr(Tensor, name, broken)


def test_correct_ops_pass():
    prog, vals = _program("mul", [(2, 3), (3,)])
    out = check_program(prog, vals, seed=0, fd=True)
    assert out.err_torch <= 1 and out.err_fd is not None and out.err_fd <= 1


def test_a_wrong_backward_rule_is_caught_and_blamed(monkeypatch):
    _break_backward(monkeypatch, "relu", 1.5)
    inputs = [Input("x0", (3,)), Input("x1", (3,))]
    body = [Node("v2", "relu", ("x0",)), Node("v3", "mul", ("v2", "x1"))]
    prog, _ = with_loss("float64", inputs, body)
    vals = {"x0": np.array([1.0, -1.0, 2.0]), "x1": np.array([0.5, 2.0, -1.0]),
            "w0": np.array([1.0, 2.0, 3.0])}
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "grad" and e.value.op == "relu"
    assert e.value.first_wrong.startswith("v2 = x0.relu()")
    assert "def test_" in e.value.reproducer


def test_a_wrong_forward_is_caught(monkeypatch):
    original = Tensor.exp
    monkeypatch.setattr(Tensor, "exp", lambda self: original(self) * (1 + 1e-9))
    prog, vals = _program("exp", [(4,)])
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "value"


def test_float32_tolerance_still_sees_a_small_slip(monkeypatch):
    _break_backward(monkeypatch, "tanh", 1 + 1e-4)
    prog, vals = _program("tanh", [(3, 2)], dtype="float32")
    with pytest.raises(Mismatch):
        check_program(prog, vals, seed=0)


def test_broken_accumulation_is_blamed_on_the_fan_out(monkeypatch):
    def overwrite(self, g):
        self._grad = g  # forgets what other consumers sent
    monkeypatch.setattr(Tensor, "_add_grad", overwrite)
    inputs = [Input("x0", (3,))]
    body = [Node("v1", "exp", ("x0",)), Node("v2", "tanh", ("x0",)), Node("v3", "add", ("v1", "v2"))]
    prog, _ = with_loss("float64", inputs, body)
    vals = {"x0": np.array([0.3, -0.2, 0.1]), "w0": np.array([1.0, -2.0, 0.5])}
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert "not accumulated correctly" in e.value.message


def test_finite_differences_catch_a_gradient_torch_did_not_judge():
    prog, vals = _program("sigmoid", [(2, 2)])
    exp = check.expect(prog, vals, seed=0)
    env = run_pygrad(prog, vals)
    backward_pygrad(env, prog.root)
    env["x0"].grad = env["x0"].grad * (1 + 1e-5)
    with pytest.raises(Mismatch) as e:
        check._check_fd(prog, vals, exp, env, check.Outcome(), seed=0)
    assert e.value.check == "fd"


def test_tolerances_are_tight():
    """The rule scales with conditioning; on a benign example it is a few ulps."""
    prog, vals = _program("matmul", [(3, 4), (4, 2)])
    exp = check.expect(prog, vals, seed=0)
    for name in ("x0", "x1", "v2"):
        rel = exp.gtols[0][name] / np.maximum(np.abs(exp.grads[0][name]), 1e-300)
        assert np.max(rel) < 1e-12, name


def test_exact_kinks_are_compared_with_torch():
    prog, vals = _program("relu", [(4,)])
    vals["x0"] = np.array([0.0, -1.0, 0.0, 2.0])
    check_program(prog, vals, seed=0)  # relu'(0) = 0 in both
    prog, vals = _program("std", [(2, 3)])
    vals["x0"] = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    check_program(prog, vals, seed=0)  # std of a constant row: gradient 0 in both


def test_pygrad_raising_is_an_error_finding(monkeypatch):
    def broken(self):
        raise IndexError("oops")
    monkeypatch.setattr(Tensor, "relu", broken)
    prog, vals = _program("relu", [(3,)])
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "error" and e.value.op == "relu" and "IndexError" in e.value.message


def test_structure_check_fails_on_a_wrong_topo(monkeypatch):
    from reference.check import check_structure
    prog, vals = _program("mul", [(2,), (2,)])
    check_structure(prog, vals)
    original = Tensor.create_graph
    monkeypatch.setattr(Tensor, "create_graph", lambda self: tuple(reversed(original(self))))
    with pytest.raises(Mismatch) as e:
        check_structure(prog, vals)
    assert e.value.check == "structure"


# ---------------------------------------------------------------------------- the gate's CLI
def _gate(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "reference", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_gate_usage_errors_exit_2():
    assert _gate("--budget", "abc").returncode == 2
    assert _gate("--only", "no_such_op", "--budget", "5").returncode == 2
    assert _gate("-n", "0").returncode == 2


def test_gate_passes_and_writes_the_json_schema(tmp_path):
    report = tmp_path / "report.json"
    summary = tmp_path / "summary.md"
    r = _gate("--budget", 15, "--only", "add", "-n", 1, "--seed", 0, "--json", report,
              "--out", tmp_path / "failures", "--markdown", summary)
    assert r.returncode == 0, r.stdout + r.stderr
    md = summary.read_text()
    assert md.startswith("## pygrad-check: **no failures (exit 0)**") and "seed 0" in md
    assert "| `add` |" in md and "| pass |" in md and "FAIL" not in md
    doc = json.loads(report.read_text())
    assert set(doc) == {"seed", "budget_s", "workers", "elapsed_s", "ops", "failures"}
    assert doc["seed"] == 0 and doc["workers"] == 1 and isinstance(doc["seed"], int)
    assert isinstance(doc["budget_s"], float) and isinstance(doc["elapsed_s"], float)
    assert [row["op"] for row in doc["ops"]] == ["add"]
    for row in doc["ops"]:
        assert set(row) == {"op", "examples", "max_err_torch", "max_err_fd", "status"}
        assert isinstance(row["examples"], int) and row["examples"] > 0
        assert isinstance(row["max_err_torch"], float) and isinstance(row["max_err_fd"], float)
        assert row["status"] == "pass" and row["max_err_torch"] <= 1 and row["max_err_fd"] <= 1
    assert doc["failures"] == []


def test_gate_lists_every_op_and_property():
    r = subprocess.run([sys.executable, "-m", "reference", "--list"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})
    assert r.returncode == 0, r.stdout + r.stderr
    cells = {c.strip() for line in r.stdout.splitlines() for c in line.split("│")}
    assert set(OPS) <= cells
    assert {"x[idx]", "x.conv2D(y, stride=stride, padding=padding)", "x ** p"} <= cells
    assert {p.test for p in PROPERTIES} <= cells


def test_properties_list_every_property_test_of_fuzz_once():
    found = set()
    for path in (ROOT / "fuzz").glob("test_*.py"):
        tree = ast.parse(path.read_text())
        found |= {f"{path.name}::{f.name}" for f in tree.body
                  if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    listed = [p.test for p in PROPERTIES]
    assert len(listed) == len(set(listed))
    assert set(listed) == found
    for p in PROPERTIES:
        assert p.checks and set(p.checks) <= {"value", "grad", "fd", "invariant", "structure", "error"}


def test_gate_replays_a_seed(tmp_path):
    """The dev profile caps examples, so two runs with one seed draw exactly the same ones."""
    docs = []
    for k in range(2):
        path = tmp_path / f"r{k}.json"
        r = _gate("--budget", 60, "--only", "softmax", "-n", 1, "--seed", 7, "--profile", "dev",
                  "--json", path)
        assert r.returncode == 0, r.stdout + r.stderr
        docs.append(json.loads(path.read_text())["ops"])
    assert docs[0] == docs[1]


def test_gate_fails_on_a_broken_gradient_and_writes_a_working_reproducer(tmp_path):
    """A scratch copy of the project with one wrong backward rule: the gate, run from the
    copy (`python -m` puts the current directory first on sys.path), exits 1, names the
    first wrong node and writes a regression test that fails there and passes on pygrad."""
    scratch = tmp_path / "scratch"
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.egg-info")
    for part in ("pygrad", "reference", "fuzz"):
        shutil.copytree(ROOT / part, scratch / part, ignore=ignore)
    for part in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / part, scratch / part)
    src = scratch / "pygrad" / "ops" / "arithmetic.py"
    text = src.read_text()
    good = "a._add_grad(unbroadcast(g * bv, av))"
    assert text.count(good) == 1
    src.write_text(text.replace(good, "a._add_grad(unbroadcast(g * bv * 1.001, av))"))
    report, out = tmp_path / "report.json", tmp_path / "failures"
    summary = tmp_path / "summary.md"
    r = _gate("--budget", 20, "--only", "mul", "-n", 1, "--seed", 0, "--json", report,
              "--out", out, "--markdown", summary, cwd=scratch)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "first wrong node:" in r.stdout
    md = summary.read_text()
    assert "failure(s) (exit 1)**" in md and "| **FAIL** |" in md and "first wrong node:" in md
    assert "```python" in md  # the regression test, folded
    doc = json.loads(report.read_text())
    assert doc["failures"] and all(f["check"] in ("grad", "fd", "invariant") for f in doc["failures"])
    assert any(f["op"] == "mul" for f in doc["failures"])
    assert next(row for row in doc["ops"] if row["op"] == "mul")["status"] == "fail"
    files = sorted(out.glob("test_*.py"))
    assert files
    # the reproducer fails on the broken copy and passes on the real pygrad
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(files[0])]
    broken = subprocess.run(run, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(scratch)},
                            capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1, broken.stdout
    fixed = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stdout


def test_the_ci_workflow_calls_the_gate_with_existing_arguments():
    """examples/ci/pygrad-gate.yml: its `pygrad-check` command parses with the gate's parser."""
    import re
    import shlex
    from reference.cli import parser
    text = (ROOT / "examples" / "ci" / "pygrad-gate.yml").read_text()
    m = re.search(r"run: >-\n((?:\s+.*\n)+?)\s*\n", text)
    assert m and "pygrad-check" in m.group(1)
    words = shlex.split(" ".join(m.group(1).split()).replace("$SEED", "7")
                        .replace("$GITHUB_STEP_SUMMARY", "summary.md"))
    assert words[0] == "pygrad-check"
    args = parser().parse_args(words[1:])
    assert args.seed == 7 and str(args.markdown) == "summary.md" and str(args.json) == "gate.json"
