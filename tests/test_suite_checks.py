"""The reference suite's checks can fail, and blame the right row, node and condition.

Each test breaks pygrad in-process (monkeypatching one rule) and shows the check that must
catch it does -- and that on correct pygrad the same check passes."""
import numpy as np
import pytest
import torch

from pygrad import SGD, Adam, Dropout, Tensor
from reference.checks import Mismatch, Outcome
from reference.checks.engine import check_backward_twice, check_deep_graph, check_stop, check_structure
from reference.checks.layer_alone import DropoutRun, check_dropout
from reference.checks.programs import check_fd, check_program
from reference.coverage import module_case, sample_case, train_run
from reference.oracles import program_fd
from reference.oracles.oracle import Oracle
from reference.programs.graph import Input, Node, single_op, with_loss
from reference.programs.interpreters import backward_pygrad, run_pygrad
from reference.programs.nets import ModuleSpec
from reference.registry import OPS, Layer
from reference.usercheck.stencil import central_difference
from tests._patch import assert_reproducer_catches, break_backward


def _program(op, shapes, args=None, dtype="float64", seed=0):
    prog, _ = single_op(op, shapes, args, (dtype,) * len(shapes))
    rng = np.random.default_rng(seed)
    return prog, {i.name: rng.uniform(0.5, 2, i.shape).astype(i.dtype) for i in prog.inputs}


# ---------------------------------------------------------------------------- ops and programs
def test_correct_ops_pass_torch_and_finite_differences():
    prog, vals = _program("mul", [(2, 3), (3,)])
    out = check_program(prog, vals, seed=0, fd=True)
    assert out.err_torch <= 1 and out.err_fd is not None and out.err_fd <= 1


def test_a_wrong_rule_is_blamed_on_its_node_and_row(monkeypatch):
    break_backward(monkeypatch, "relu", lambda g: 1.5 * g)
    inputs = [Input("x0", (3,)), Input("x1", (3,))]
    prog, _ = with_loss(inputs, [Node("v2", "relu", ("x0",)), Node("v3", "mul", ("v2", "x1"))])
    vals = {"x0": np.array([1.0, -1.0, 2.0]), "x1": np.array([0.5, 2.0, -1.0]), "w0": np.array([1.0, 2.0, 3.0])}
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "grad" and e.value.row == "relu"
    assert e.value.where.startswith("v2 = x0.relu()")
    assert "def test_" in e.value.reproducer


def test_a_wrong_forward_is_caught(monkeypatch):
    original = Tensor.exp
    monkeypatch.setattr(Tensor, "exp", lambda self: original(self) * (1 + 1e-9))
    prog, vals = _program("exp", [(4,)])
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "value" and e.value.row == "exp"


def test_float32_tolerance_still_sees_a_small_slip(monkeypatch):
    break_backward(monkeypatch, "tanh", lambda g: (1 + 1e-4) * g)
    prog, vals = _program("tanh", [(3, 2)], dtype="float32")
    with pytest.raises(Mismatch):
        check_program(prog, vals, seed=0)


def test_broken_accumulation_is_blamed_on_the_engine(monkeypatch):
    def overwrite(self, g):
        self._grad = g   # forgets what the other consumers sent
    monkeypatch.setattr(Tensor, "_add_grad", overwrite)
    inputs = [Input("x0", (3,))]
    prog, _ = with_loss(inputs, [Node("v1", "exp", ("x0",)), Node("v2", "tanh", ("x0",)),
                                 Node("v3", "add", ("v1", "v2"))])
    vals = {"x0": np.array([0.3, -0.2, 0.1]), "w0": np.array([1.0, -2.0, 0.5])}
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.row == "engine" and "not accumulated correctly" in e.value.message
    assert "fan-out" in e.value.conditions


def test_finite_differences_catch_a_gradient_torch_did_not_judge():
    prog, vals = _program("sigmoid", [(2, 2)])
    oracle = Oracle(prog, vals, 0)
    env = run_pygrad(prog, vals)
    backward_pygrad(env, prog.root)
    env["x0"].grad = env["x0"].grad * (1 + 1e-5)
    with pytest.raises(Mismatch) as e:
        check_fd(prog, vals, oracle, env, Outcome(), seed=0)
    assert e.value.check == "fd" and e.value.row == "sigmoid"


def test_exact_kinks_are_compared_with_torch(monkeypatch):
    """relu at exact zeros and std of a constant row pass as torch defines them; the same
    comparison fails once relu'(0) is 1."""
    prog, vals = _program("relu", [(4,)])
    vals["x0"] = np.array([0.0, -1.0, 0.0, 2.0])
    check_program(prog, vals, seed=0)
    std, svals = _program("std", [(2, 3)])
    svals["x0"] = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    check_program(std, svals, seed=0)
    original = Tensor.relu

    def relu_with_derivative_one_at_zero(self):
        out = original(self)
        xv = self.value
        out._backward = lambda g: self._add_grad(g * (xv >= 0))
        return out
    monkeypatch.setattr(Tensor, "relu", relu_with_derivative_one_at_zero)
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.row == "relu" and "exact kink point" in e.value.conditions


def test_pygrad_raising_is_an_error_finding_on_its_row(monkeypatch):
    def broken(self):
        raise IndexError("oops")
    monkeypatch.setattr(Tensor, "relu", broken)
    prog, vals = _program("relu", [(3,)])
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "error" and e.value.row == "relu" and "IndexError" in e.value.message


def test_an_exception_in_a_backward_rule_is_blamed_by_replaying_the_nodes(monkeypatch):
    break_backward(monkeypatch, "tanh", lambda g: (_ for _ in ()).throw(ValueError("bad")))
    inputs = [Input("x0", (3,)), Input("x1", (3,))]
    prog, _ = with_loss(inputs, [Node("v2", "mul", ("x0", "x1")), Node("v3", "tanh", ("v2",))])
    rng = np.random.default_rng(1)
    vals = {i.name: rng.uniform(0.5, 1, i.shape) for i in prog.inputs}
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "error" and e.value.row == "tanh"


# ---------------------------------------------------------------------------- engine
def test_structure_check_fails_on_a_wrong_topo(monkeypatch):
    prog, vals = _program("mul", [(2,), (2,)])
    check_structure(prog, vals)
    original = Tensor.create_graph
    monkeypatch.setattr(Tensor, "create_graph", lambda self: tuple(reversed(original(self))))
    with pytest.raises(Mismatch) as e:
        check_structure(prog, vals)
    assert e.value.check == "structure" and e.value.row == "engine"


def test_backward_twice_fails_when_reset_grad_keeps_gradients(monkeypatch):
    prog, vals = _program("tanh", [(3,)])
    check_backward_twice(prog, vals, 0)
    original = Tensor.backward
    monkeypatch.setattr(Tensor, "backward", lambda self, reset_grad=True: original(self, reset_grad=False))
    with pytest.raises(Mismatch) as e:
        check_backward_twice(prog, vals, 0)
    assert e.value.check == "invariant"


def test_learnable_false_check_sees_gradient_passing_through(monkeypatch):
    inputs = [Input("x0", (3,))]
    prog, _ = with_loss(inputs, [Node("v1", "exp", ("x0",)), Node("v2", "tanh", ("v1",))])
    vals = {"x0": np.array([0.3, -0.2, 0.1]), "w0": np.array([1.0, -2.0, 0.5])}
    check_stop(prog, vals, 0, "v1")
    original = Tensor.backward

    def ignores_learnable(self, reset_grad=True):
        for t in self._walk()[1]:
            t.learnable = True
        return original(self, reset_grad)
    monkeypatch.setattr(Tensor, "backward", ignores_learnable)
    with pytest.raises(Mismatch) as e:
        check_stop(prog, vals, 0, "v1")
    assert e.value.check in ("invariant", "structure") and e.value.row == "engine"


def test_learnable_false_gradients_kept_across_backward_calls_are_caught(monkeypatch):
    inputs = [Input("x0", (3,))]
    prog, _ = with_loss(inputs, [Node("v1", "exp", ("x0",)), Node("v2", "tanh", ("v1",))])
    vals = {"x0": np.array([0.3, -0.2, 0.1]), "w0": np.array([1.0, -2.0, 0.5])}
    walk = Tensor._walk
    monkeypatch.setattr(Tensor, "_walk", lambda self: (walk(self)[0], []))   # the stops are never reset
    with pytest.raises(Mismatch) as e:
        check_stop(prog, vals, 0, "v1")
    assert e.value.check == "invariant" and e.value.what == "backward() resets learnable=False gradients"
    assert e.value.reproducer.count("backward()") >= 2


def test_deep_graph_passes_and_fails_on_a_wrong_chain(monkeypatch):
    check_deep_graph(5000)
    break_backward(monkeypatch, "__neg__", lambda g: -g)   # -y passes g on unchanged
    with pytest.raises(Mismatch) as e:
        check_deep_graph(5000)
    assert e.value.check == "grad" and "deep graph (10 000 ops)" in e.value.conditions


# ---------------------------------------------------------------------------- Modules, optimizers, layers
MLP = (Layer.make("linear", out=3, bias=True), Layer.make("relu"), Layer.make("linear", out=2, bias=True))


def test_module_check_passes_and_catches_a_leak_into_the_original_weights(monkeypatch):
    case = module_case(ModuleSpec((2, 3), MLP, "sse"), (2, 1))
    case.run()
    from pygrad import Module
    monkeypatch.setattr(Module, "__call__", lambda self, **inputs: self.forward(**inputs))
    with pytest.raises(Mismatch) as e:
        case.run()
    assert e.value.check == "invariant" and e.value.row == "module"


def test_module_check_blames_a_wrong_op_inside_a_layer(monkeypatch):
    break_backward(monkeypatch, "__matmul__", lambda g: 2 * g)
    with pytest.raises(Mismatch) as e:
        module_case(ModuleSpec((2, 3), MLP, "sse"), (2,)).run()
    assert e.value.check == "grad" and e.value.row == "matmul"


def test_training_check_catches_a_wrong_update_from_the_third_step(monkeypatch):
    case = train_run("Adam", {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8}, steps=4)
    case.run()
    original = Adam._update
    calls = {}

    def drifts(self, i, value, grad):
        calls[i] = calls.get(i, 0) + 1
        new = original(self, i, value, grad)
        return new * (1 + 1e-6) if calls[i] >= 3 else new
    monkeypatch.setattr(Adam, "_update", drifts)
    with pytest.raises(Mismatch) as e:
        case.run()
    assert e.value.check == "invariant" and e.value.row == "optim:Adam" and "step 2" in e.value.message


def test_dropout_check_sees_rescaling(monkeypatch):
    check_dropout(DropoutRun((3, 4), 0.5, 7))
    original = Dropout.__call__
    monkeypatch.setattr(Dropout, "__call__", lambda self, x, training=True: original(self, x, training) * 2.0)
    with pytest.raises(Mismatch) as e:
        check_dropout(DropoutRun((3, 4), 0.5, 7))
    assert e.value.row == "layer:Dropout"


def test_every_coverage_sample_of_an_op_passes_on_pygrad():
    for name in ("add", "matmul", "softmax", "conv2D"):
        for k in range(len(OPS[name].all_samples())):
            sample_case(OPS[name], k).run()


def test_fd_is_not_run_where_a_masked_cce_target_ties():
    """CCELoss(mask=True) counts a row by its target's argmax: where the first entry ties with
    the largest other one the loss jumps, and a finite difference there measures the jump
    (a gate run found this as a false mismatch). Off the tie the stencil is clear."""
    prog, _ = single_op("CCELoss", [(1, 2, 2), (1, 2, 2)], {"mask": True}, ("float64", "float64"))
    pred, target = (i.name for i in prog.learnable_inputs())
    rng = np.random.default_rng(0)
    v = {i.name: rng.standard_normal(i.shape) for i in prog.learnable_inputs()}
    values = {i.name: np.ones(i.shape) for i in prog.inputs}
    values[target] = np.full((1, 2, 2), 0.5)
    fd = program_fd.fd_derivative(prog, values, v, 1e-5)
    assert not fd.clear and "kink" in fd.why
    values[target] = np.array([[[0.6, 0.4], [0.3, 0.7]]])
    assert program_fd.fd_derivative(prog, values, v, 1e-5).clear


def test_fd_does_not_trust_a_step_far_beyond_the_scale_the_loss_varies_on():
    """Softmax chained over values near 2**18 that differ by 1: the step relative to the
    magnitude (h ~ 2) is far beyond that scale, and D(4h) - D(2h) came out 7.1 times
    D(2h) - D(h) by chance. A gate run called correct pygrad wrong there (a false positive);
    the step must shrink until the error behaves like h**2."""
    x = np.array([[262145.0, 262144.0], [262143.0, 262144.0], [262145.0, 262144.0], [262144.0, 262144.0]])
    w = np.array([[0.125, -3.0], [1.0, 1.0], [0.125, -1.25], [-2.0, 2.0]])
    t = torch.tensor(x, requires_grad=True)
    (torch.softmax(torch.softmax(torch.softmax(t, 0), 0), -1) * torch.tensor(w)).sum().backward()
    e = np.zeros_like(x)
    e[2, 0] = 1.0

    def loss(s):
        z = torch.tensor(x + s * e)
        return float((torch.softmax(torch.softmax(torch.softmax(z, 0), 0), -1) * torch.tensor(w)).sum())
    fd = central_difference(loss, 2.0000076293945312, lambda h: 1e-16 * 262144 / h)
    assert fd.clear and fd.h < 1
    assert abs(fd.d - float(t.grad[2, 0])) <= 16 * fd.trunc + 1e-9


def test_grads_that_are_not_arrays_of_their_own_are_an_invariant_finding(monkeypatch):
    prog, vals = _program("add", [(3,), (3,)])
    check_program(prog, vals, seed=0)      # correct pygrad: every .grad its own array
    monkeypatch.setattr(Tensor, "grad", property(lambda self: self._grad, Tensor.grad.fset))   # no copy
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "invariant" and e.value.row == "engine"
    assert "share memory" in e.value.message
    assert_reproducer_catches(e.value.reproducer, monkeypatch)


def test_a_grad_that_is_copied_again_at_a_second_read_is_an_invariant_finding(monkeypatch):
    prog, vals = _program("mul", [(3,), (3,)])
    check_program(prog, vals, seed=0)
    getter = Tensor.grad.fget

    def forgets_it_owns(self):        # as if the first read did not record that the array is the tensor's
        g = getter(self)
        self._grad_own = False
        return g
    monkeypatch.setattr(Tensor, "grad", property(forgets_it_owns, Tensor.grad.fset))
    with pytest.raises(Mismatch) as e:
        check_program(prog, vals, seed=0)
    assert e.value.check == "invariant" and "read again" in e.value.message
    assert_reproducer_catches(e.value.reproducer, monkeypatch)


def test_a_penalty_on_a_weight_beside_its_batched_twin_adds_both_gradients(monkeypatch):
    from pygrad.optims import Optimizer
    case = train_run("SGD", {"lr": 0.1}, steps=3, penalty=True, reset=False)
    assert "a weight used beside its batched twin" in case.conditions()["optim:SGD"]
    case.run()                                     # correct pygrad: twin's gradient + the penalty's
    original = Optimizer._gradients

    def first_twin_only(self, loss, op, need_grad=True):
        return {i: (None if g is None else np.array(twins[0].grad), twins)
                for i, (g, twins) in original(self, loss, op, need_grad).items()}
    monkeypatch.setattr(Optimizer, "_gradients", first_twin_only)
    with pytest.raises(Mismatch) as e:
        case.run()
    assert e.value.row == "optim:SGD" and "model.linear0.W" in e.value.reproducer


def test_step_single_rounds_without_zero_grad_restart_the_accumulation(monkeypatch):
    case = train_run("SGD", {"lr": 0.1}, steps=3, chunks=2, zero_grad=False)
    assert "step_single rounds without zero_grad" in case.conditions()["optim:SGD"]
    case.run()                                     # correct pygrad: as with zero_grad()
    original = SGD.step_single

    def forgets_its_size(self, loss=None, batch_size=1, modify=False):
        original(self, loss, batch_size, modify)
        if modify:
            self._accumulated = [None]             # the restart drops all but one slot
    monkeypatch.setattr(SGD, "step_single", forgets_its_size)
    with pytest.raises(Mismatch) as e:
        case.run()
    assert e.value.row == "optim:SGD"
