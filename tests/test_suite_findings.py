"""No finding hides another, in-process: a finding's signature says what went wrong, every
check of one example runs and reports each distinct failure, and pygrad raising inside any
check is a finding (never a crash of the suite). Also the Markdown summary's Mermaid graph
and the table's bound marking. Each test breaks pygrad by monkeypatching, as
tests/test_suite_checks.py does."""
import sys

import numpy as np
import pytest

from pygrad import Adam, Dropout, Tensor
from reference import harness
from reference.cases import DeepGraphCase, DropoutCase, ProgramCase
from reference.checks import Mismatch, Outcome
from reference.checks.layer_alone import DropoutRun
from reference.coverage import module_case, row_cases, train_run
from reference.gate import render, report
from reference.numerics import lower_bound
from reference.programs import mermaid
from reference.programs.graph import Input, Node, single_op, with_loss
from reference.programs.nets import ModuleSpec
from reference.registry import OPTIMIZERS, Layer
from reference.runstate import session
from reference.runstate.streams import Stream
from reference.tolerances import judge
from tests._patch import break_backward


@pytest.fixture
def gate(tmp_path, monkeypatch):
    """Gate mode in this process: streams under tmp_path, a fixed number of examples."""
    monkeypatch.setenv(session.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(session.ENV_EXAMPLES, "50")
    monkeypatch.setenv(session.ENV_TIMEOUT, "20")
    for attr, value in (("writer", None), ("current", None), ("stream", None), ("known", []), ("fatal", set()),
                        ("tests", {}), ("inflight", None)):
        monkeypatch.setattr(session.S, attr, value)
    yield tmp_path
    session.S.writer = None


def _findings(directory) -> list:
    s = Stream(directory)
    s.poll()
    return [r for r in s.records if r["kind"] == "finding"]


def _coverage(cases, name) -> None:
    """`cases` as one coverage test of the gate, whose findings are recorded."""
    session.begin(name, "coverage")
    with pytest.raises(harness.FindingsRecorded):
        harness.run_samples(cases, name)
    session.end("failed")


def _chain():
    """x0 -> exp -> tanh -> loss: a small program and its values."""
    prog, _ = with_loss([Input("x0", (3,))], [Node("v1", "exp", ("x0",)), Node("v2", "tanh", ("v1",))])
    return prog, {"x0": np.array([0.3, -0.2, 0.1]), "w0": np.array([1.0, -2.0, 0.5])}


def _adam_drifts_from_the_third_step(monkeypatch):
    original, calls = Adam._update, {}

    def drifts(self, i, value, grad):
        calls[i] = calls.get(i, 0) + 1
        new = original(self, i, value, grad)
        return new * (1 + 1e-6) if calls[i] >= 3 else new
    monkeypatch.setattr(Adam, "_update", drifts)


# ---------------------------------------------------------------------------- signatures
def test_an_exception_without_conditions_does_not_hide_another_of_its_row(gate, monkeypatch):
    """The older pygrad's story: an engine error with no conditions set aside every later
    engine error, so a RecursionError on the 10 000-op graph was never reported."""
    def recursion(self, reset_grad=True):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(Tensor, "create_graph", lambda self: [][0])          # IndexError, any graph
    monkeypatch.setattr(Tensor, "backward", recursion)
    prog, vals = _chain()
    _coverage([ProgramCase(prog, vals, 0, check="structure")], "cov[engine structure]")
    [first] = _findings(gate)
    assert (first["row"], first["check"], first["signature"]) == ("engine", "error", [])   # no conditions
    assert first["what"] == "IndexError in create_graph"
    _coverage([DeepGraphCase(60)], "cov[engine deep]")                        # run after it: not set aside
    second = _findings(gate)[1]
    assert (second["row"], second["check"]) == ("engine", "error")
    assert second["what"] == "RecursionError in the backward pass of a deep graph"
    assert "deep graph (10 000 ops)" in second["signature"]


# ---------------------------------------------------------------------------- every check of an example
def test_a_wrong_gradient_does_not_hide_a_wrong_update_in_the_same_example(gate, monkeypatch):
    case = train_run("Adam", {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8}, steps=4)
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)        # wrong from step 0
    _adam_drifts_from_the_third_step(monkeypatch)                      # behind it, from step 2
    with pytest.raises(Mismatch) as e:
        case.run()
    kinds = {(m.row, m.check, m.what) for m in e.value.all()}
    assert ("matmul", "grad", "matmul") in kinds
    assert ("optim:Adam", "invariant", "the update follows torch.optim") in kinds
    update = next(m for m in e.value.all() if m.row == "optim:Adam")
    assert "step 2" in update.message and "pygrad's own weights and gradients" in update.message
    _coverage([case], "cov[optim:Adam]")                               # the harness records both
    assert {(f["row"], f["check"]) for f in _findings(gate)} == {("matmul", "grad"), ("optim:Adam", "invariant")}


@pytest.mark.parametrize("chunks", [1, 2])
def test_a_wrong_gradient_alone_is_one_finding_and_a_right_update_stays_quiet(monkeypatch, chunks):
    case = train_run("Adam", {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8}, steps=4 // chunks, chunks=chunks)
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    with pytest.raises(Mismatch) as e:
        case.run()
    # the rest follows from it; with step_single the accumulated gradient is blamed on the op too
    assert {(m.row, m.check) for m in e.value.all()} == {("matmul", "grad")}


def test_a_resized_weight_does_not_hide_a_wrong_op_of_the_same_module_call(monkeypatch):
    from pygrad import Module
    mlp = (Layer.make("linear", out=3, bias=True), Layer.make("relu"), Layer.make("linear", out=2, bias=True))
    case = module_case(ModuleSpec((2, 3), mlp, "sse"), (2,))
    original = Module.__call__

    def resizes(self, **inputs):       # the original's first weight gets a gradient of another shape
        out = original(self, **inputs)
        w = self.weights[0]
        w.grad = np.zeros((1,) + w.shape)
        return out
    monkeypatch.setattr(Module, "__call__", resizes)
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    with pytest.raises(Mismatch) as e:
        case.run()
    found = {(m.row, m.check, m.what) for m in e.value.all()}
    assert ("layer:Linear", "invariant", "weights keep their shapes") in found
    assert ("module", "invariant", "the original gradients stay") in found
    assert ("matmul", "grad", "matmul") in found


def test_a_program_reports_a_wrong_value_and_an_unrelated_wrong_rule():
    prog, vals = _chain()
    original_exp, mp = Tensor.exp, pytest.MonkeyPatch()
    try:
        mp.setattr(Tensor, "exp", lambda self: original_exp(self) * (1 + 1e-6))      # forward of exp
        break_backward(mp, "tanh", lambda g: 1.5 * g)                              # backward of tanh
        with pytest.raises(Mismatch) as e:
            ProgramCase(prog, vals, 0).run()
    finally:
        mp.undo()
    assert [(m.row, m.check) for m in e.value.all()] == [("exp", "value"), ("tanh", "grad")]
    assert e.value.all()[1].where.startswith("v2 = v1.tanh()")


# ---------------------------------------------------------------------------- the surface's rows
VISIBLE = {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8}
optims = sys.modules["pygrad.optims"]


def _optimizers_skip_zero_gradients(monkeypatch):
    """The zero-gradient edge broken: an all-zero gradient leaves a parameter and its state
    alone (torch decays the moments and counts the step)."""
    original = optims.Optimizer._apply
    monkeypatch.setattr(optims.Optimizer, "_apply",
                        lambda self, i, grad, twins: original(self, i, grad, twins) if np.any(grad) else None)


def _optimizers_update_absent_parameters(monkeypatch):
    """The absent-parameter edge broken: a parameter outside the step's graph is updated as
    if its gradient were 0."""
    original = optims.Optimizer._gradients

    def gradients(self, loss, op, need_grad=True):
        found = original(self, loss, op, need_grad)
        if op == "step":
            for i, p in enumerate(self.model_parameters):
                found.setdefault(i, (np.zeros_like(p.value), []))
        return found
    monkeypatch.setattr(optims.Optimizer, "_gradients", gradients)


def test_a_broken_tensor_helper_and_a_broken_optimizer_edge_are_both_reported(gate, monkeypatch):
    """One pygrad, four bugs: two Tensor helpers, an op's rule and the optimizers' zero-gradient
    edge. The tensor row's example reports both helpers (and no consequence: its second pass
    adds to the gradient new_value left); the training example reports the wrong rule and,
    behind it, the edge; one gate run records all four."""
    monkeypatch.setattr(Tensor, "new_value", lambda self, x: setattr(self, "value", x))     # keeps the gradient
    monkeypatch.setattr(Tensor, "item", lambda self: self.value.reshape(-1)[0])              # a NumPy scalar
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    _optimizers_skip_zero_gradients(monkeypatch)
    helpers = next(c for c in row_cases("tensor") if "new_value, then a pass" in c.conditions()["tensor"])
    with pytest.raises(Mismatch) as e:
        helpers.run()
    assert {(m.row, m.check, m.what, frozenset(m.conditions)) for m in e.value.all()} == {
        ("tensor", "invariant", "item() is a Python float", frozenset()),
        ("tensor", "invariant", "the gradient after new_value(v)", frozenset({"new_value, then a pass"}))}
    training = train_run("Adam", VISIBLE, steps=4, zero_steps=(1, 2), unused=True, extra_steps=(0, 2))
    with pytest.raises(Mismatch) as e:
        training.run()
    found = {(m.row, m.check, m.what) for m in e.value.all()}
    assert found == {("matmul", "grad", "matmul"), ("optim:Adam", "invariant", "the update follows torch.optim")}
    update = next(m for m in e.value.all() if m.row == "optim:Adam")
    assert "a weight's gradient exactly 0 at a step" in update.conditions and "step 1" in update.message
    _coverage([helpers], "cov[tensor]")
    _coverage([training], "cov[optim:Adam]")
    assert {(f["row"], f["what"]) for f in _findings(gate)} == {
        ("tensor", "item() is a Python float"), ("tensor", "the gradient after new_value(v)"),
        ("matmul", "matmul"), ("optim:Adam", "the update follows torch.optim")}


def test_a_parameter_absent_from_a_step_is_replayed_absent_once_the_trajectory_has_left(monkeypatch):
    """Behind a wrong gradient the updates are judged alone: a parameter absent from a step's
    graph is skipped there by torch.optim too (fed a zero gradient, Adam's moments would move
    it at the next step it is in), so a wrong gradient alone stays one finding."""
    case = train_run("Adam", VISIBLE, steps=4, unused=True, extra_steps=(0, 2))
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    with pytest.raises(Mismatch) as e:
        case.run()
    assert {(m.row, m.check) for m in e.value.all()} == {("matmul", "grad")}


@pytest.mark.parametrize("name", ["RMSProp", "Adam"])
def test_a_parameter_absent_from_a_step_updated_anyway_is_seen_behind_a_wrong_gradient(monkeypatch, name):
    """Adam moves it at once (the parameter outside the graph must stay); RMSProp's update is 0
    there but its state decayed, which the next step it is in shows (its update alone)."""
    case = train_run(name, OPTIMIZERS[name].samples[-1], steps=4, unused=True, extra_steps=(0, 2))
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    _optimizers_update_absent_parameters(monkeypatch)
    with pytest.raises(Mismatch) as e:
        case.run()
    found = e.value.all()
    assert ("matmul", "grad") in {(m.row, m.check) for m in found}
    extra = [m for m in found if m.row == f"optim:{name}"]
    assert len(extra) == 1 and extra[0].where in {"extra", "extra after step 2"}
    assert extra[0].what == {"RMSProp": "the update follows torch.optim",
                             "Adam": "a parameter outside the graph stays"}[name]


def test_pygrad_raising_in_a_tensor_method_is_an_error_finding_and_the_other_parts_still_run(monkeypatch):
    monkeypatch.setattr(Tensor, "detach", lambda self: self.reshape(self.size + 1))      # pygrad refuses the shape
    monkeypatch.setattr(Tensor, "new_value", lambda self, x: setattr(self, "value", x))
    helpers = next(c for c in row_cases("tensor") if "new_value, then a pass" in c.conditions()["tensor"])
    with pytest.raises(Mismatch) as e:
        helpers.run()
    error, helper = e.value.all()
    assert (error.row, error.check) == ("tensor", "error") and error.what.startswith("ValueError in pygrad's")
    assert (helper.row, helper.what) == ("tensor", "the gradient after new_value(v)")


def test_a_state_round_trip_reports_each_broken_part_of_load_state_dict(monkeypatch):
    module = sys.modules["pygrad.module"]
    original = module.Module.load_state_dict

    def load(self, state):          # keeps the batched copy and the gradients
        copy, grads = self.copy, [np.array(w.grad) for w in self.weights]
        original(self, state)
        self.copy = copy
        for w, g in zip(self.weights, grads):
            w.grad = g + 1.0
    monkeypatch.setattr(module.Module, "load_state_dict", load)
    cases = [c for c in row_cases("module") if "state_dict round trip" in c.conditions()["module"]]
    assert len(cases) == 2      # a plain model and one with a Module inside
    for case in cases:
        with pytest.raises(Mismatch) as e:
            case.run()
        assert [(m.row, m.what) for m in e.value.all()] == [("module", "load_state_dict zeroes the gradients"),
                                                            ("module", "load_state_dict drops the batched copy")]


# ---------------------------------------------------------------------------- pygrad raising inside a check
@pytest.mark.parametrize("check", ["structure", "stop", "twice", "torch"])
def test_a_forward_raising_inside_any_program_check_is_an_error_finding(monkeypatch, check):
    def broken(self):
        raise IndexError("oops")
    monkeypatch.setattr(Tensor, "tanh", broken)
    prog, vals = _chain()
    status, m = harness.attempt(ProgramCase(prog, vals, 0, check=check, stop="v1" if check == "stop" else None))
    assert status == "failed" and (m.check, m.row, m.what) == ("error", "tanh", "IndexError in tanh")
    assert "v2 = v1.tanh()" in m.where and "def test_" in m.reproducer


def test_pygrad_raising_in_dropout_a_module_or_where_no_check_expects_it_is_a_finding(monkeypatch):
    def broken(self, x, training=True):
        raise ValueError("no")
    monkeypatch.setattr(Dropout, "__call__", broken)
    status, m = harness.attempt(DropoutCase(DropoutRun((3, 4), 0.5, 7)))
    assert status == "failed" and m.check == "error" and m.what.startswith("ValueError in Dropout")
    monkeypatch.setattr(Tensor, "relu", lambda self: self.reshape(-7))             # pygrad refuses the shape
    mlp = (Layer.make("linear", out=3, bias=True), Layer.make("relu"), Layer.make("linear", out=2, bias=True))
    status, m = harness.attempt(module_case(ModuleSpec((2, 3), mlp, "sse"), (2,)))
    assert status == "failed" and m.check == "error" and "ValueError" in m.what
    topo = Tensor.topo
    monkeypatch.setattr(Tensor, "topo", property(lambda self: self.topo_, topo.fset))   # a check reads it
    prog, vals = _chain()
    status, m = harness.attempt(ProgramCase(prog, vals, 0, check="stop", stop="v1"))
    assert status == "failed" and (m.check, m.row, m.what) == ("error", "engine", "AttributeError in topo")


def test_the_suite_raising_is_not_a_finding_and_pygrad_raising_is():
    class Case:
        row = "engine"

        def __init__(self, run):
            self.run = run

        def rows(self):
            return {"engine"}

        def script(self):
            return "", ["Tensor([1.0, 2.0]).reshape(5)"]
    status, m = harness.attempt(Case(lambda: Tensor([1.0, 2.0]).reshape(5)))
    assert status == "failed" and m.check == "error" and m.what.startswith("ValueError in pygrad's")
    with pytest.raises(ZeroDivisionError):
        harness.attempt(Case(lambda: 1 / 0))                                   # the suite's own bug


# ---------------------------------------------------------------------------- what people read
def test_the_mermaid_graph_has_every_node_an_edge_per_operand_and_the_first_wrong_node_marked():
    prog, _ = single_op("mul", [(2, 3), (3,)])
    text = mermaid.flowchart(prog, "v2")
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    for name in prog.names:
        assert any(line.strip().startswith(f'{mermaid.node_id(name)}["') for line in lines), name
    assert "  n_x0 -->|0| n_v2" in lines and "  n_x1 -->|1| n_v2" in lines
    assert lines[-1] == "  class n_v2 wrong" and "first wrong node" in text
    assert sum("first wrong node" in line for line in lines) == 1
    assert "class n_L0,n_L1 loss" in text                                          # the loss, grey
    assert '"' not in mermaid._text('a["b"] < c')                                  # labels stay quoted


def test_a_finding_carries_its_graph_to_the_markdown_summary(monkeypatch):
    break_backward(monkeypatch, "tanh", lambda g: 1.5 * g)
    prog, vals = _chain()
    with pytest.raises(Mismatch) as e:
        ProgramCase(prog, vals, 0).run()
    m = e.value
    assert "class n_v2 wrong" in m.graph
    failure = {"test": "t", "op": m.row, "check": m.check, "message": m.message, "reproducer": m.reproducer,
               "what": m.what, "signature": sorted(m.conditions), "graph": m.graph, "found_at_s": 1.0}
    doc = {"seed": 1, "elapsed_s": 2.0, "workers": 1, "ops": [], "failures": [failure]}
    md = render.markdown(doc, "1 finding(s)")
    start = md.index("```mermaid\n")
    assert md[start:].split("```")[1].strip().splitlines()[-1].strip() == "class n_v2 wrong"
    assert md.index("```mermaid") < md.index("```python")                          # beside the pasteable test


def test_a_figure_against_the_floor_is_marked_as_a_bound_never_as_a_warning():
    want = np.array([1.0, 2.0])
    floor, full = np.full(2, 1e-15), np.full(2, 1e-9)
    near = judge(want + 0.9e-15, want, "float64", iter([floor, full]))
    assert near.problem is None and near.bound and 0.8 < near.worst <= 1            # decided by the floor
    measured = judge(want + 5e-15, want, "float64", iter([floor, full]))
    assert measured.problem is None and not measured.bound and measured.worst < 0.01
    assert not judge(want, want, "float64", iter([floor, full])).bound              # exactly 0: measured
    partial = judge(want + 5e-15, want, "float64", iter([floor, lower_bound(np.full(2, 1e-14)), full]))
    assert partial.problem is None and partial.bound                          # decided by fewer runs: a bound
    assert partial.worst == pytest.approx(0.5, rel=0.05)
    inf = np.array([np.inf, 2.0])
    assert judge(inf + [0, 5e-15], inf, "float64", iter([floor, lower_bound(np.full(2, 1e-14)), full])).bound
    out = Outcome()
    out.note("add", near.worst, near.bound)
    out.note("add", measured.worst, measured.bound)
    assert out.bound_rows["add"] is True                                             # the max is the bound
    row = {"op": "optim:Adam", "examples": 4, "max_err_torch": 0.98, "max_err_fd": 0.0, "status": "pass",
           "conditions": {}, "max_err_torch_bound": True, "max_err_fd_bound": False, "fd_ran": False}
    cells = render.table([row]).columns
    assert cells[2]._cells == ["<= 0.98"] and cells[4]._cells == ["[dim]<= 0.98[/]"]    # no yellow
    measured_row = dict(row, max_err_torch_bound=False)
    assert render.table([measured_row]).columns[4]._cells == ["[yellow]0.98[/]"]
    md = render.markdown({"seed": 1, "elapsed_s": 1.0, "workers": 1, "ops": [row], "failures": []}, "no failures")
    assert "| `optim:Adam` | 4 | <= 0.98 | 0 | <= 0.98 |" in md


def test_bounds_survive_the_report_and_merge():
    records = [{"kind": "test", "test": "t", "kind_of_test": "coverage", "examples": 3, "rows":
                {"add": [3, 0.9, 0.2, {}]}, "bounds": {"add": [True, False]}},
               {"kind": "test", "test": "u", "kind_of_test": "random", "examples": 2, "rows":
                {"add": [2, 0.5, 0.4, {}]}, "bounds": {"add": [False, True]}}]
    [row] = report.summarize(records, ["add"], {"add": []}).rows
    assert (row["max_err_torch"], row["max_err_torch_bound"]) == (0.9, True)
    assert (row["max_err_fd"], row["max_err_fd_bound"]) == (0.4, True)
    doc = {"seed": 1, "budget_s": 1.0, "workers": 1, "elapsed_s": 1.0, "failures": [], "shard": [1, 2],
           "ops": [dict(row, max_err_torch=0.95, max_err_torch_bound=False)]}
    merged = report.merge([doc, dict(doc, shard=[2, 2], ops=[row])])
    assert merged["ops"][0]["max_err_torch"] == 0.95 and merged["ops"][0]["max_err_torch_bound"] is False
