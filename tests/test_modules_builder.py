"""reference.modules: the random Module builder agrees with its torch twin, and prints itself."""
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.strategies import module_specs
from reference.modules import (OPTIMIZERS, Layer, ModuleSpec, OptimSpec, SpecError, build, loss_fn,
                               make_batch, mismatches, print_module, run_batch, shapes, torch_weights,
                               train, weight)

RTOL, ATOL = 1e-7, 1e-9

SPECS = {
    "mlp": ModuleSpec((3, 5), (Layer("linear", out=8), Layer("tanh"), Layer("linear", out=4),
                               Layer("relu"), Layer("linear", out=2)), loss="sse"),
    "conv_stack": ModuleSpec((2, 7, 6), (
        Layer("conv", out=3, kernel=(3, 2)), Layer("relu"),
        Layer("conv", out=2, kernel=(2, 2), stride=2, padding=1, bias=False), Layer("sigmoid"),
        Layer("flatten"), Layer("linear", out=3)), loss="mse"),
    "addnorm_block": ModuleSpec((4, 6), (
        Layer("linear", out=6), Layer("relu"), Layer("addnorm", skip=0, gain=1.5, shift=0.2, epsilon=1e-5),
        Layer("linear", out=6, bias=False), Layer("addnorm"), Layer("dropout", rate=0.3),
        Layer("linear", out=3)), loss="sse"),
    "softmax_cce": ModuleSpec((2, 5), (Layer("linear", out=6), Layer("softmax", axis=1),
                                       Layer("linear", out=4)), loss="cce"),
    "sigmoid_bce": ModuleSpec((3, 4), (Layer("linear", out=5), Layer("relu"), Layer("linear", out=4),
                                       Layer("sigmoid")), loss="bce"),
    "conv_linear_softmax_bce": ModuleSpec((2, 5, 5), (Layer("conv", out=2, kernel=(2, 2)),
                                                      Layer("linear", out=3), Layer("softmax", axis=1)),
                                          loss="bce"),
}


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("name", SPECS)
def test_twin_outputs_loss_and_gradients_equal_pygrads(name, batch):
    spec = SPECS[name]
    pg, twin, pairs = build(spec, seed=11)
    x, target = make_batch(spec, batch, seed=batch)
    r = run_batch(spec, pg, twin, pairs, x, target)
    assert mismatches(r, RTOL, ATOL) == []
    assert r.pg_out.shape == (batch,) + shapes(spec)[-1]
    # not vacuous: every weight and the input received gradient
    for n, g in r.pg_grads.items():
        assert np.any(g != 0), f"gradient of {n} is all zeros"
    assert np.any(r.pg_x_grad != 0)
    # the weights never change shape, whatever the batch
    for p in pairs:
        assert weight(pg, p.name).shape == p.shape == weight(pg.copy, p.name).grad.shape


@pytest.mark.parametrize("name", SPECS)
def test_twin_starts_from_pygrads_weights_and_pairs_cover_the_model(name):
    spec = SPECS[name]
    pg, twin, pairs = build(spec, seed=3)
    assert {p.torch_name for p in pairs} == {n for n, _ in twin.named_parameters()}
    assert {p.name for p in pairs} == {n for n, _ in pg.named_weights()}
    for n, value in torch_weights(twin, pairs).items():
        np.testing.assert_array_equal(value, weight(pg, n).value)


@pytest.mark.parametrize("name", SPECS)
def test_print_module_executes_and_builds_an_equivalent_model(name):
    spec = SPECS[name]
    code = print_module(spec, seed=5)
    compile(code, "<printed>", "exec")
    state = np.random.get_state()
    ns = {}
    exec(code, ns)  # noqa: S102
    np.random.set_state(state)
    printed, ref = ns["model"], build(spec, seed=5)[0]
    assert [n for n, _ in printed.named_weights()] == [n for n, _ in ref.named_weights()]
    for (n, a), (_, b) in zip(printed.named_weights(), ref.named_weights()):
        np.testing.assert_array_equal(a.value, b.value, err_msg=n)
    x, target = make_batch(spec, 3, seed=0)
    from pygrad import Tensor
    l1 = ns["loss_fn"](printed(x=Tensor(x, leaf=True)), Tensor(target, leaf=True))
    l2 = loss_fn(spec)(ref(x=Tensor(x, leaf=True)), Tensor(target, leaf=True))
    assert l1.value == l2.value


def test_printed_training_script_reproduces_train():
    spec = SPECS["addnorm_block"]
    opt = OptimSpec("Adam", lr=0.05, beta=0.8, beta2=0.99)
    batches = [make_batch(spec, b, seed=b) for b in (2, 4, 1)]
    steps = train(spec, opt, seed=9, batches=batches)
    ns = {}
    state = np.random.get_state()
    exec(print_module(spec, seed=9, optim=opt, batches=batches), ns)  # noqa: S102
    np.random.set_state(state)
    for n, w in ns["model"].named_weights():
        np.testing.assert_array_equal(w.value, steps[-1].pg_weights[n], err_msg=n)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_twins_follow_the_same_trajectory(kind):
    spec = SPECS["conv_stack"]
    opt = OptimSpec(kind, lr=0.05, beta=0.7, beta2=0.9, eps=1e-3)
    batches = [make_batch(spec, b, seed=10 + b) for b in (3, 1, 5, 2)]
    for k, s in enumerate(train(spec, opt, seed=1, batches=batches)):
        assert mismatches(s.batch, RTOL, ATOL) == [], f"step {k}"
        for n, w in s.pg_weights.items():
            np.testing.assert_allclose(w, s.torch_weights[n], rtol=1e-10, atol=1e-12,
                                       err_msg=f"step {k}, {n}")


def test_exact_zeros_reach_relu_and_match_torch():
    spec = ModuleSpec((4, 3), (Layer("linear", out=5, bias=False), Layer("relu"), Layer("linear", out=2)))
    x, target = make_batch(spec, 6, seed=4, zeros=0.3)
    assert np.any(np.all(x == 0, axis=-1)), "no zero row drawn"
    pg, twin, pairs = build(spec, seed=0)
    r = run_batch(spec, pg, twin, pairs, x, target)
    assert mismatches(r, RTOL, ATOL) == []
    hidden = (x @ weight(pg, "linear0.W").value)
    assert np.any(hidden == 0), "the ReLU never sat on its kink"


def test_train_with_shuffled_parameters_matches_torch():
    spec = SPECS["addnorm_block"]
    batches = [make_batch(spec, b, seed=b) for b in (2, 3)]
    plain = train(spec, OptimSpec("Adam", lr=0.05), seed=4, batches=batches)
    shuffled = train(spec, OptimSpec("Adam", lr=0.05), seed=4, batches=batches, shuffle=1)
    for n, w in shuffled[-1].pg_weights.items():
        np.testing.assert_array_equal(w, plain[-1].pg_weights[n])
        np.testing.assert_allclose(w, shuffled[-1].torch_weights[n], rtol=1e-10, atol=1e-12)


def test_float32_spec_builds_and_stays_float32():
    spec = dataclasses.replace(SPECS["conv_stack"], dtype="float32")
    pg, twin, pairs = build(spec, seed=2)
    x, target = make_batch(spec, 4, seed=0)
    r = run_batch(spec, pg, twin, pairs, x, target)
    assert r.pg_out.dtype == np.float32 and all(g.dtype == np.float32 for g in r.pg_grads.values())
    assert mismatches(r, rtol=1e-4, atol=1e-5) == []


def test_mismatches_can_fail():
    spec = SPECS["mlp"]
    pg, twin, pairs = build(spec, seed=0)
    with torch.no_grad():
        dict(twin.named_parameters())["linear2.weight"][0, 0] += 1e-3
    x, target = make_batch(spec, 2, seed=0)
    r = run_batch(spec, pg, twin, pairs, x, target)
    kinds = {k for k, _, _ in mismatches(r, RTOL, ATOL)}
    assert {"value", "grad"} <= kinds
    leaked = dataclasses.replace(r, original_grads={**r.original_grads, "linear0.W": np.ones((1, 5, 8))},
                                 original_changed=["linear0.B"], resized={"copy.linear0.W": ((2, 5, 8), (2, 5, 8))})
    assert sum(k == "invariant" for k, _, _ in mismatches(leaked, 1.0, 1.0)) == 3


@pytest.mark.parametrize("spec, why", [
    (ModuleSpec((3, 4), (Layer("conv", out=2),)), "conv needs"),
    (ModuleSpec((3, 4), (Layer("linear", out=5), Layer("addnorm", skip=0))), "skip 0 has shape"),
    (ModuleSpec((3, 4), (Layer("addnorm", skip=3),)), "does not name"),
    (ModuleSpec((2, 4, 4), (Layer("relu"),), loss="cce"), "cce needs"),
    (ModuleSpec((3, 4), (Layer("relu"),), loss="bce"), "bce needs"),
    (ModuleSpec((3, 4), (Layer("softmax", axis=0),)), "softmax axis"),
    (ModuleSpec((2, 3, 3), (Layer("conv", out=1, kernel=(4, 1)),)), "larger than"),
    (ModuleSpec((3,), ()), "input must be"),
])
def test_inconsistent_specs_raise_spec_error(spec, why):
    with pytest.raises(SpecError, match=why):
        build(spec, seed=0)


def test_layer_rejects_an_unknown_kind_and_prints_only_what_it_sets():
    with pytest.raises(SpecError, match="kind"):
        Layer("batchnorm")
    assert repr(Layer("conv", out=3, kernel=[2, 2], stride=2)) == "Layer('conv', out=3, kernel=(2, 2), stride=2)"


# ---------------------------------------------------------------------------- random specs
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(spec=module_specs(dtype="float64"), batch=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_random_specs_agree_with_their_twin(spec, batch, seed):
    pg, twin, pairs = build(spec, seed)
    x, target = make_batch(spec, batch, seed)
    r = run_batch(spec, pg, twin, pairs, x, target)
    assert mismatches(r, 1e-6, 1e-8) == [], print_module(spec, seed)
