"""The rows that reach the public surface find the bugs that hide there.

Each test breaks pygrad in-process (monkeypatch, as tests/test_suite_checks.py does) the way
a real autodiff library once was, and shows the row's coverage samples catch it, with the
condition that shows it -- and that on correct pygrad the same samples pass."""
import sys

import numpy as np
import pytest

import pygrad
from pygrad import Tensor
from pygrad.ops._core import operand, result, unbroadcast
from reference.checks import Mismatch
from reference.coverage import row_cases
from reference.registry import OPS, OPTIMIZERS

function_module = sys.modules["pygrad.function"]
optims = sys.modules["pygrad.optims"]


def _findings(row: str, condition: str | None = None) -> list:
    """The Mismatches of the row's coverage samples (those reaching `condition`, if given)."""
    found = []
    for case in row_cases(row):
        if condition is not None and condition not in case.conditions().get(row, ()):
            continue
        try:
            case.run()
        except Mismatch as m:
            found.append(m)
    return found


# ---------------------------------------------------------------------------- pygrad.function
def _tensors_take_gradients_in_turn(self, *operands, **params):
    """pygrad.function with a bug: the k-th Tensor operand takes the k-th gradient, so a Tensor
    that follows a constant gets its neighbour's."""
    tensors, values = zip(*(operand(x, self.name) for x in operands))
    value, rule = self.fn(*values, **params)
    live = [t for x, t in zip(operands, tensors) if isinstance(x, Tensor)]

    def backward(g):
        grads = function_module._gradients(rule(g), len(values), self.name)
        for t, gi in zip(live, grads):
            if gi is not None:
                t._add_grad(unbroadcast(np.asarray(gi), t._value))
    return result(function_module._as_value(value, self.name), tuple(tensors), backward)


def test_user_ops_pass_on_correct_pygrad():
    for spec in OPS.values():
        if spec.row.startswith("function:"):
            assert _findings(spec.row) == [], spec.row


def test_a_tensor_after_a_constant_given_the_wrong_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(function_module.Function, "__call__", _tensors_take_gradients_in_turn)
    found = _findings("function:muladd")
    assert found and all(m.check == "grad" and m.row == "function:muladd" for m in found)
    assert {"constant at position 0", "constant at position 1"} & set().union(*(m.conditions for m in found))
    assert not any("constant at position 2" in m.conditions for m in found)   # constant last: right
    # the reproducer defines the op with @pygrad.function and fails under the bug, passes without it
    namespace = {}
    exec(compile(found[0].reproducer, "reproducer", "exec"), namespace)  # noqa: S102 - our own output
    test = next(v for k, v in namespace.items() if k.startswith("test_"))
    assert "@pygrad.function\ndef muladd(" in found[0].reproducer
    with pytest.raises(AssertionError):
        test()
    monkeypatch.undo()
    test()


# ---------------------------------------------------------------------------- optimizers
def _skip_zero_gradients(monkeypatch):
    original = optims.Optimizer._apply

    def apply(self, i, grad, twins):
        if not np.any(grad):      # "nothing to do": but torch decays the moments and counts the step
            return None
        return original(self, i, grad, twins)
    monkeypatch.setattr(optims.Optimizer, "_apply", apply)


def _divide_by_calls(monkeypatch):
    original = optims.Optimizer.step_single

    def step_single(self, loss, batch_size, modify=False):
        calls = getattr(self, "_calls", 0)
        self._calls = 0 if modify else calls + 1
        return original(self, loss, calls if modify else batch_size, modify)
    monkeypatch.setattr(optims.Optimizer, "step_single", step_single)


def _update_absent_parameters(monkeypatch):
    original = optims.Optimizer._gradients

    def gradients(self, loss, op, need_grad=True):
        found = original(self, loss, op, need_grad)
        if op == "step":     # a parameter absent from the graph updated as if its gradient were 0
            for i, p in enumerate(self.model_parameters):
                found.setdefault(i, (np.zeros_like(p.value), []))
        return found
    monkeypatch.setattr(optims.Optimizer, "_gradients", gradients)


@pytest.mark.parametrize("name", ["SGD_Momentum", "RMSProp", "Adam"])
def test_skipping_the_state_update_on_an_exactly_zero_gradient_is_caught(monkeypatch, name):
    condition = "a weight's gradient exactly 0 at a step"
    assert _findings(OPTIMIZERS[name].row, condition) == []
    _skip_zero_gradients(monkeypatch)
    found = _findings(OPTIMIZERS[name].row, condition)
    assert found and all(m.check == "invariant" and condition in m.conditions for m in found)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_single_dividing_by_the_calls_instead_of_batch_size_is_caught(monkeypatch, name):
    condition = "step_single batch_size != calls"
    assert _findings(OPTIMIZERS[name].row, condition) == []
    _divide_by_calls(monkeypatch)
    found = _findings(OPTIMIZERS[name].row, condition)
    assert found and all(condition in m.conditions for m in found)


@pytest.mark.parametrize("name", ["RMSProp", "Adam"])
def test_updating_a_parameter_absent_from_the_steps_graph_is_caught(monkeypatch, name):
    condition = "a parameter absent from some steps' graphs"
    _update_absent_parameters(monkeypatch)
    found = _findings(OPTIMIZERS[name].row, condition)
    assert found and all(condition in m.conditions for m in found)
    # Adam moves it at once (its momentum); RMSProp's update is 0 there but its state decayed
    assert any(m.where == "extra" or m.where.startswith("extra after") for m in found)


# ---------------------------------------------------------------------------- Tensor helpers, Module state
def test_new_value_that_keeps_the_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(Tensor, "new_value", lambda self, x: setattr(self, "value", x))
    found = _findings("tensor")
    assert found and all(m.row == "tensor" and m.check == "invariant" for m in found)
    assert all(m.conditions == {"new_value, then a pass"} for m in found)


def test_a_value_setter_that_drops_the_gradient_is_caught(monkeypatch):
    prop = Tensor.value

    def assign(self, v):
        prop.fset(self, v)
        self.reset_grad()
    monkeypatch.setattr(Tensor, "value", property(prop.fget, assign))
    found = _findings("tensor", "value assigned, grad kept")
    assert found and any("value assigned, grad kept" in m.conditions for m in found)


def test_array_that_is_not_tensor_and_item_that_is_not_a_float_are_caught(monkeypatch):
    monkeypatch.setattr(pygrad, "array", lambda *a, **kw: Tensor(*a, **{**kw, "leaf": True}))
    assert any("pygrad.array" in m.message for m in _findings("tensor"))
    monkeypatch.undo()
    monkeypatch.setattr(Tensor, "item", lambda self: self.value.reshape(-1)[0])
    assert any(".item()" in m.message for m in _findings("tensor"))


def test_load_state_dict_that_keeps_the_batched_copy_is_caught(monkeypatch):
    module = sys.modules["pygrad.module"]
    original = module.Module.load_state_dict

    def load(self, state):
        copy = self.copy
        original(self, state)
        self.copy = copy
    monkeypatch.setattr(module.Module, "load_state_dict", load)
    found = _findings("module", "state_dict round trip")
    assert found and all("state_dict round trip" in m.conditions for m in found)


def test_random_programs_use_the_user_ops_like_built_in_ones():
    from hypothesis import HealthCheck, Phase, find, settings
    from reference.generators.programs import allowed_ops, programs
    assert {"fn_muladd", "fn_softplus"} <= set(allowed_ops())
    quiet = settings(max_examples=500, derandomize=True, database=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))

    def tensor_after_a_constant(case):     # a node (not an input) after the constant
        return any(n.op == "fn_muladd" and n.args.get("at") in (0, 1) and not case.program.is_input(n.operands[1])
                   for n in case.program.body_nodes())
    case = find(programs(ops=["fn_muladd"], min_ops=2, max_ops=3), tensor_after_a_constant, settings=quiet)
    case.run()
