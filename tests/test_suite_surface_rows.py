"""The rows that reach the public surface find the bugs that hide there.

Each test breaks pygrad in-process (monkeypatch, as tests/test_suite_checks.py does) the way
a real autodiff library once was, and shows the row's coverage samples catch it, with the
condition that shows it -- and that on correct pygrad the same samples pass."""
import dataclasses
import sys

import numpy as np
import pytest

import pygrad
from pygrad import Tensor
from pygrad.ops._core import operand, result, unbroadcast
from reference.checks import Mismatch, tensor_api
from reference.coverage import row_cases
from reference.programs.interpreters import run_pygrad
from reference.registry import OPS, OPTIMIZERS
from reference.registry.regimes import LAYOUTS, apply_layout, regimes_of
from tests._patch import assert_reproducer_catches

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
    assert "@pygrad.function\ndef muladd(" in found[0].reproducer
    assert_reproducer_catches(found[0].reproducer, monkeypatch)


@pytest.mark.parametrize("op", ["fn_muladd", "fn_softplus"])
def test_user_ops_get_the_input_regimes_and_a_layout_slip_in_pygrad_function_is_caught(monkeypatch, op):
    """User ops are ops: the regimes that fit their entries attach to them (layouts, coinciding
    sizes, magnitudes from their error models). pygrad.function handing the forward its
    operands' entries in memory order is right for C-contiguous operands only: the row's
    layout samples catch it as a finding of the row, its `what` the user op."""
    spec = OPS[op]
    regimes = set(regimes_of(spec))
    assert {layout.name for layout in LAYOUTS.values()} | {"square matrices", "size 1 on every axis",
                                                          "near overflow", "subnormal values"} <= regimes
    original = function_module.operand

    def in_memory_order(x, name):
        t, raw = original(x, name)
        return (t, raw.ravel(order="K").reshape(raw.shape)) if isinstance(raw, np.ndarray) else (t, raw)
    plain = [case for case in row_cases(spec.row) if not any(i.layout for i in case.program.inputs)]
    monkeypatch.setattr(function_module, "operand", in_memory_order)
    for case in plain:
        case.run()
    found = _findings(spec.row, "transposed view")
    assert found and all(m.row == spec.row and m.what == spec.name for m in found)
    assert all("transposed view" in m.conditions for m in found)


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


def test_an_in_place_update_through_a_flattened_copy_is_caught_by_the_parameters_layouts(monkeypatch):
    """SGD's in-place step written into `value.reshape(-1)`: a view of a C-contiguous value,
    a copy of any other -- the update is lost. The optimizer rows' layout sample gives the
    parameters views in every layout; the plain samples cannot see it."""
    def update_in_place(self, i, value, grad):
        flat = value.reshape(-1)
        flat -= self.lr * grad.reshape(-1)
        return True
    cases = row_cases("optim:SGD")
    layouts = {layout.name for layout in LAYOUTS.values()}
    spread = next(c for c in cases if layouts <= c.conditions()["optim:SGD"])   # every layout
    monkeypatch.setattr(optims.SGD, "_update_in_place", update_in_place)
    for case in cases:
        if not layouts & case.conditions()["optim:SGD"]:
            case.run()
    with pytest.raises(Mismatch) as e:
        spread.run()
    found = e.value.all()
    assert all(m.row == "optim:SGD" for m in found)
    assert {"transposed view", "Fortran order"} <= set().union(*(m.conditions for m in found))


# ---------------------------------------------------------------------------- Tensor helpers, Module state
def test_new_value_that_keeps_the_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(Tensor, "new_value", lambda self, x: setattr(self, "value", x))
    found = _findings("tensor")
    assert found and all(m.row == "tensor" and m.check == "invariant" for m in found)
    layouts = {layout.name for layout in LAYOUTS.values()}   # the input's layout, where its sample has one
    assert all(m.conditions - layouts == {"new_value, then a pass"} for m in found)
    assert any(m.conditions == {"new_value, then a pass"} for m in found)


def test_a_helper_that_reads_its_array_in_memory_order_is_caught_by_the_layout_samples(monkeypatch):
    """new_value(v) taking v's entries in memory order: right for a C-contiguous v only. The
    tensor row's layout samples give it views; the reproducer prints the same view."""
    def new_value(self, x):
        x = np.asarray(x)
        self.value = x.ravel(order="K").reshape(x.shape)
        self.reset_grad()
    plain = [case for case in row_cases("tensor") if not any(i.layout for i in case.program.inputs)]
    monkeypatch.setattr(Tensor, "new_value", new_value)
    for case in plain:
        case.run()
    found = _findings("tensor", "transposed view") + _findings("tensor", "Fortran order")
    assert found and all(m.row == "tensor" and "new_value, then a pass" in m.conditions for m in found)
    assert {"transposed view", "Fortran order"} <= set().union(*(m.conditions for m in found))
    assert_reproducer_catches(found[0].reproducer, monkeypatch)


def test_a_random_tensor_row_example_keeps_its_inputs_layouts_in_the_check_and_the_reproducer(monkeypatch):
    """Random programs give inputs memory layouts (registry.regimes): the tensor row's check
    makes its inputs in them (an input's layout is a second statement of the script), and a
    finding's reproducer replays exactly the statements up to the failure."""
    from hypothesis import HealthCheck, Phase, find, settings
    from reference.generators.programs import programs
    quiet = settings(max_examples=500, derandomize=True, database=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))
    keeps_grad = (Tensor, "new_value", lambda self, x: setattr(self, "value", x))

    def helpers(case):
        modes = ("new_value",) * len(case.program.learnable_inputs())
        return dataclasses.replace(case, check="helpers", helpers=modes, fd=False)

    def found(case):
        try:
            helpers(case).run()
        except Mismatch as m:
            return m
        return None
    monkeypatch.setattr(*keeps_grad)
    case = helpers(find(programs(min_ops=1, max_ops=3), lambda c: c.program.inputs[0].layout
                        and c.program.inputs[0].learnable and found(c) is not None, settings=quiet))
    first = case.program.inputs[0]
    seen = {}

    def first_pass(prog, values, inputs=None):     # records what the program's first input holds
        seen.setdefault("value", inputs[first.name].value)
        return run_pygrad(prog, values, inputs)
    monkeypatch.setattr(tensor_api, "run_pygrad", first_pass)
    reproducer = found(case).reproducer
    view = apply_layout(first.layout, np.asarray(case.values[first.name], dtype=first.dtype))
    assert seen["value"].strides == view.strides and seen["value"].flags.writeable == view.flags.writeable
    tensors = [i for i in case.program.inputs if i.role != "array"]     # each made once, before the first pass
    assert reproducer.count(" = pygrad.array(") == len(tensors) and " = Tensor(" not in reproducer
    assert f"\n    {first.name}.value = " in reproducer
    env: dict = {}
    exec(compile(reproducer, "<reproducer>", "exec"), env)
    test_fn = next(fn for key, fn in env.items() if key.startswith("test_"))
    with pytest.raises(AssertionError):
        test_fn()
    monkeypatch.undo()
    case.run()
    test_fn()


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
