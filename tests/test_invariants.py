"""reference.invariants: Module, optimizer and learnable=False checks pass on pygrad, fail
with the right check kind when pygrad is broken, and print reproducers that fail there."""
import numpy as np
import pytest

import pygrad
from pygrad import Module, Tensor
from reference import check
from reference.check import InvalidExample, Mismatch
from reference.invariants import (ModuleCase, TrainCase, check_module, check_stop, check_training,
                                  module_program, program_values, weight_input)
from reference.modules import Layer, ModuleSpec, OptimSpec, build, make_batch, torch_batch, weight
from reference.programs import Input, Node, with_loss

MLP = ModuleSpec((2, 3), (Layer("linear", out=4, bias=False), Layer("relu"), Layer("linear", out=2)))
SPECS = {
    "mlp": MLP,
    "conv": ModuleSpec((2, 5, 4), (Layer("conv", out=3, kernel=(2, 2), padding=1), Layer("tanh"),
                                   Layer("flatten"), Layer("linear", out=3)), loss="mse"),
    "addnorm_cce": ModuleSpec((3, 4), (Layer("linear", out=4), Layer("addnorm", skip=0, gain=0.5, epsilon=1e-5),
                                       Layer("softmax", axis=1), Layer("linear", out=3)), loss="cce"),
    "bce32": ModuleSpec((2, 3), (Layer("linear", out=3), Layer("sigmoid")), loss="bce", dtype="float32"),
}


def _calls(spec, sizes=(3, 1), resets=(True, False), optim=None):
    return ModuleCase(spec, 7, tuple(make_batch(spec, b, 10 + b, zeros=0.3) for b in sizes), resets, 0, optim)


def _training(spec, kind, steps=4, accumulate=False, **kw):
    batches = []
    for k in range(steps):
        x, t = make_batch(spec, 4 if accumulate else 2 + k % 2, k)
        batches.append(((x[:2], t[:2]), (x[2:], t[2:])) if accumulate else ((x, t),))
    return TrainCase(spec, 3, OptimSpec(kind, lr=0.05, beta=0.8, beta2=0.95, eps=1e-3), tuple(batches), **kw)


def _run_reproducer(code: str):
    ns = {}
    exec(compile(code, "<reproducer>", "exec"), ns)  # noqa: S102 - the suite's own output
    [test] = [v for k, v in ns.items() if k.startswith("test_")]
    test()


@pytest.mark.parametrize("name", SPECS)
def test_the_program_of_a_module_computes_what_the_torch_twin_does(name):
    spec = SPECS[name]
    pg, twin, pairs = build(spec, 1)
    x, t = make_batch(spec, 3, 0)
    prog, out = module_program(spec, 3, pairs)
    exp = check.expect(prog, program_values(spec, prog, pairs, {p.name: weight(pg, p.name).value for p in pairs},
                                            x, t), seed=0)
    t_out, t_loss, t_grads, t_xg = torch_batch(spec, twin, pairs, x.astype(spec.dtype), t.astype(spec.dtype))
    assert np.all(np.abs(exp.values[out] - t_out) <= exp.vtol[out])
    assert abs(exp.values[prog.root] - t_loss) <= exp.vtol[prog.root]
    for p in pairs:
        g = exp.grads[0][weight_input(p.name)]
        assert np.all(np.abs(g - t_grads[p.name]) <= exp.gtols[0][weight_input(p.name)]), p.name


@pytest.mark.parametrize("name", SPECS)
def test_module_calls_and_steps_pass_on_pygrad(name):
    assert check_module(_calls(SPECS[name])) <= 1
    assert check_module(_calls(SPECS[name], resets=(True, True), optim=OptimSpec("Adam", lr=0.1))) <= 1
    assert check_module(_calls(SPECS[name], resets=(True, False), optim=OptimSpec("SGD", lr=0.1))) <= 1


@pytest.mark.parametrize("kind", ["SGD", "SGD_Momentum", "RMSProp", "Adam"])
def test_training_follows_torch_optim_on_pygrad(kind):
    assert check_training(_training(SPECS["conv"], kind)) <= 1
    assert check_training(_training(MLP, kind, reset=False, target_leaf=False, order=(2, 0, 1))) <= 1
    assert check_training(_training(SPECS["addnorm_cce"], kind, steps=2, accumulate=True)) <= 1


def _fails(fn, case, kind):
    with pytest.raises(Mismatch) as e:
        fn(case)
    assert e.value.check == kind, e.value
    return e.value


def test_a_wrong_gradient_in_the_copy_is_a_grad_finding(monkeypatch):
    original = Tensor.tanh

    def slipped(self):
        out = original(self)
        rule = out._backward
        out._backward = lambda g: rule(1.001 * g)
        return out
    monkeypatch.setattr(Tensor, "tanh", slipped)
    e = _fails(check_module, _calls(SPECS["conv"]), "grad")
    assert e.op == "module" and "batched copy" in e.message
    with pytest.raises(AssertionError):
        _run_reproducer(e.reproducer)
    monkeypatch.undo()
    _run_reproducer(e.reproducer)     # passes on the real pygrad


def test_a_call_that_leaks_into_the_originals_is_an_invariant_finding(monkeypatch):
    original = Module.__call__

    def leaky(self, **kw):
        original(self, **kw)          # makes the batched copy...
        return self.forward(**kw)     # ...but runs on the model itself
    monkeypatch.setattr(Module, "__call__", leaky)
    e = _fails(check_module, _calls(MLP), "invariant")
    assert "original" in e.message
    with pytest.raises(AssertionError):
        _run_reproducer(e.reproducer)


def test_a_step_that_does_not_sync_the_copy_is_an_invariant_finding(monkeypatch):
    monkeypatch.setattr(pygrad.optims.Optimizer, "_apply",
                        lambda self, i, grad, twins: setattr(self.model_parameters[i], "value",
                                                             self._update(i, self.model_parameters[i].value, grad)))
    e = _fails(check_module, _calls(MLP, resets=(True, False), optim=OptimSpec("SGD", lr=0.1)), "invariant")
    assert "without model_reset" in e.message


def test_a_per_sample_call_that_differs_is_an_invariant_finding(monkeypatch):
    original = Module.__call__

    def batch_one_is_off(self, **kw):
        out = original(self, **kw)
        return out * 1.001 if out.shape[0] == 1 else out
    monkeypatch.setattr(Module, "__call__", batch_one_is_off)
    e = _fails(check_module, _calls(MLP, sizes=(3,), resets=(True,)), "invariant")
    assert "alone" in e.message


def test_pygrad_raising_in_a_module_call_is_an_error_finding(monkeypatch):
    monkeypatch.setattr(pygrad.basics.Linear, "__call__", lambda self, x: x[99])
    e = _fails(check_module, _calls(MLP), "error")
    assert "IndexError" in e.message


def test_a_slipped_optimizer_update_is_an_invariant_finding(monkeypatch):
    original = pygrad.optims.Adam._update
    monkeypatch.setattr(pygrad.optims.Adam, "_update",
                        lambda self, i, v, g: v + 1.0001 * (original(self, i, v, g) - v))
    e = _fails(check_training, _training(MLP, "Adam"), "invariant")
    assert e.op == "optim:Adam" and "trajectory" in e.message
    with pytest.raises(AssertionError):
        _run_reproducer(e.reproducer)
    monkeypatch.undo()
    _run_reproducer(e.reproducer)


def test_step_single_that_forgets_a_chunk_is_an_invariant_finding(monkeypatch):
    original = pygrad.optims.Optimizer.step_single
    seen = []

    def forgetful(self, loss, batch_size, modify=False):
        seen.append(modify)
        if not modify and len(seen) % 2 == 0:
            return None
        return original(self, loss, batch_size, modify)
    monkeypatch.setattr(pygrad.optims.Optimizer, "step_single", forgetful)
    e = _fails(check_training, _training(MLP, "SGD", steps=1, accumulate=True), "invariant")
    assert "accumulated .grad" in e.message


def test_an_unstable_trajectory_is_not_judged():
    spec = ModuleSpec((2, 3), (Layer("linear", out=3),), loss="sse")
    big = tuple(((1e4 * x, t),) for x, t in (make_batch(spec, 4, k) for k in range(6)))
    with pytest.raises(InvalidExample):
        check_training(TrainCase(spec, 0, OptimSpec("SGD", lr=0.3), big))


def _stop_program():
    inputs = [Input("x0", (3,), leaf=False), Input("x1", (3,), leaf=False)]
    body = [Node("v2", "mul", ("x0", "x1")), Node("v3", "exp", ("v2",)), Node("v4", "add", ("v3", "x0"))]
    prog, _ = with_loss("float64", inputs, body)
    vals = {"x0": np.array([0.5, -1.0, 2.0]), "x1": np.array([1.5, 0.25, -0.5]), "w0": np.array([1.0, -2.0, 0.5])}
    return prog, vals


def test_learnable_false_passes_on_pygrad_and_the_node_gets_torchs_gradient():
    prog, vals = _stop_program()
    check_stop(prog, vals, seed=0, stop="v3")   # x1 reaches the loss only through v3


def test_learnable_false_that_lets_gradient_through_is_an_invariant_finding(monkeypatch):
    prog, vals = _stop_program()

    def leaky(self):  # walks through learnable=False intermediates (constants stay out)
        topo, seen = [], set()

        def visit(t):
            seen.add(t)
            for c in t._prev:
                if c not in seen and (c.learnable or c._prev):
                    visit(c)
            topo.append(t)
        visit(self)
        return topo, []
    monkeypatch.setattr(Tensor, "_walk", leaky)
    with pytest.raises(Mismatch) as e:
        check_stop(prog, vals, seed=0, stop="v3")
    assert e.value.check == "invariant" and "detached" in e.value.message
    assert "v3.learnable = False" in e.value.reproducer


def _all(t, seen=None):
    seen = set() if seen is None else seen
    if t in seen:
        return
    seen.add(t)
    yield t
    for c in t._prev:
        yield from _all(c, seen)


def test_learnable_false_left_in_topo_is_a_structure_finding(monkeypatch):
    prog, vals = _stop_program()
    original = Tensor.backward

    def keeps_stops(self, reset_grad=True):
        original(self, reset_grad)
        self.topo = [t for t in _all(self) if t._prev or t.learnable][::-1]
    monkeypatch.setattr(Tensor, "backward", keeps_stops)
    with pytest.raises(Mismatch) as e:
        check_stop(prog, vals, seed=0, stop="v3")
    assert e.value.check == "structure"


def test_the_gate_reports_module_and_optimizer_rows(tmp_path):
    """`--only` takes the rows too; they are counted, pass on pygrad, keep the JSON schema."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "reference", "--budget", "12", "--only", "module", "optim:SGD",
                        "-n", "1", "--seed", "0", "--json", str(report), "--out", str(tmp_path / "f")],
                       cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(report.read_text())
    assert [row["op"] for row in doc["ops"]] == ["module", "optim:SGD"]
    for row in doc["ops"]:
        assert set(row) == {"op", "examples", "max_err_torch", "max_err_fd", "status"}
        # 0 is possible: a short run may only meet examples that agree with torch bit for bit
        assert row["examples"] > 0 and row["status"] == "pass" and 0 <= row["max_err_torch"] <= 1
    assert doc["failures"] == []
