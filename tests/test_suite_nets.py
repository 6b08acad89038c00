"""The Module side of the suite: descriptions, printed models, and the oracle cross-checked.

The gate's Module oracle is the Module's forward written as registry ops (`nets.module_program`)
run in torch. Here it is cross-checked against an independent oracle, the layers' torch.nn
twins from the layer table (`LayerSpec.torch` / `torch_forward`) with torch's own losses, on
well-conditioned models -- the torch.nn twin lives in the tests only."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reference.checks.module_calls import pygrad_call
from reference.oracles.oracle import Oracle
from reference.programs.nets import (ModuleSpec, build, complete, make_batch, module_code, module_program, ops_of,
                                    program_values, shapes, valid, weight)
from reference.registry import LAYERS, Layer, SpecError
from reference.registry.losses import torch_bce, torch_cce

LOSS_TWINS = {"sse": lambda p, t: ((p - t) ** 2).sum(), "mse": lambda p, t: ((p - t) ** 2).mean(),
              "cce": lambda p, t: torch_cce(p, t), "cce_mask": lambda p, t: torch_cce(p, t, mask=True),
              "bce": torch_bce}


def torch_twin(spec: ModuleSpec, model, weights):
    """(forward(x) -> output, parameters by weight name) built from the layer table's torch.nn
    twins, holding the pygrad model's initial weights."""
    acts = shapes(spec)
    modules, params = [], {}
    for i, layer in enumerate(spec.layers):
        m = layer.spec.torch(layer, acts[i])
        modules.append(m)
        if m is not None:
            named = dict(m.named_parameters())
            for w in layer.spec.weights(layer):
                ref = next(r for r in weights if r.name == f"{layer.kind}{i}.{w.attr}")
                with torch.no_grad():
                    named[w.torch_name].copy_(torch.from_numpy(np.ascontiguousarray(w.to_torch(
                        np.asarray(weight(model, ref.name).value, dtype=np.float64)))))
                params[ref.name] = (named[w.torch_name], w)

    def forward(x):
        h = [x]
        for m, layer in zip(modules, spec.layers):
            h.append(layer.spec.torch_forward(m, layer, h[-1], h))
        return h[-1]
    return forward, params


SPECS = [
    ModuleSpec((2, 3), (Layer.make("linear", out=4, bias=True), Layer.make("tanh"), Layer.make("linear", out=2,
                                                                                               bias=False)), "sse"),
    ModuleSpec((1, 4, 4), (Layer.make("conv", out=2, kernel=(2, 2), stride=1, padding=1, bias=True),
                           Layer.make("relu"), Layer.make("flatten"), Layer.make("linear", out=3, bias=True)), "cce"),
    ModuleSpec((3, 4), (Layer.make("addnorm", skip=None, gain=2.0, shift=0.25, epsilon=1e-5),
                        Layer.make("softmax", axis=1)), "bce"),
    ModuleSpec((3, 3), (Layer.make("linear", out=3, bias=True), Layer.make("sigmoid"),
                        Layer.make("dropout", rate=0.1)), "mse"),
    ModuleSpec((3, 3), (Layer.make("linear", out=4, bias=True),), "cce_mask"),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.loss for s in SPECS])
def test_program_oracle_agrees_with_the_torch_nn_twin(spec):
    model, weights = build(spec, seed=3)
    x, target = make_batch(spec, 3, seed=4)
    prog, h = module_program(spec, 3, weights)
    oracle = Oracle(prog, program_values(spec, weights, {w.name: weight(model, w.name).value for w in weights},
                                         x, target), seed=0)
    forward, params = torch_twin(spec, model, weights)
    tx = torch.tensor(x, requires_grad=True)
    out = forward(tx)
    loss = LOSS_TWINS[spec.loss](out, torch.tensor(target))
    loss.backward()
    np.testing.assert_allclose(oracle.values[h[-1]], out.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(oracle.values[prog.root], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(oracle.grads()["x"], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, (p, w) in params.items():
        np.testing.assert_allclose(w.to_torch(oracle.grads()[name.replace(".", "_")]), p.grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("spec", SPECS, ids=[s.loss for s in SPECS])
def test_printed_model_is_the_model_that_runs(spec):
    ns = {"np": np}
    exec("from pygrad import *\n" + module_code(spec), ns)
    np.random.seed(3)
    printed = ns["Model"]()
    model, weights = build(spec, seed=3)
    for w in weights:
        assert np.array_equal(weight(printed, w.name).value, weight(model, w.name).value), w.name
    x, target = make_batch(spec, 2, seed=5)
    got = pygrad_call(spec, model, weights, x, target, reset=True)
    assert got.out.shape == (2,) + shapes(spec)[-1]


def test_inconsistent_specs_are_refused():
    assert not valid(ModuleSpec((2, 3), (Layer.make("conv", out=1, kernel=(2, 2), bias=True),), "sse"))
    assert not valid(ModuleSpec((2, 3), (Layer.make("linear", out=2, bias=True),), "bce"))   # no sigmoid/softmax
    assert not valid(ModuleSpec((2, 3), (Layer.make("addnorm", skip=3, gain=1.0, shift=0.0, epsilon=1e-5),), "sse"))
    assert not valid(ModuleSpec((2, 3), (), "no_such_loss"))
    with pytest.raises(SpecError):
        shapes(ModuleSpec((2, 3), (Layer.make("no_such_layer"),), "sse"))


def test_complete_appends_what_the_loss_needs():
    layers = complete([Layer.make("linear", out=2, bias=True)], [(1, 2, 2), (1, 2, 2)], "cce")
    assert [layer.kind for layer in layers] == ["linear", "flatten"]
    assert [layer.kind for layer in complete([], [(2, 3)], "bce")] == ["sigmoid"]


def test_ops_of_lists_the_ops_a_module_uses():
    assert ops_of(SPECS[0]) == {"matmul", "add", "tanh", "sub", "pow", "sum"}
    assert {"conv2D", "relu", "reshape", "CCELoss"} <= ops_of(SPECS[1])


def test_every_layer_kind_has_a_torch_twin_forward():
    assert all(spec.torch_forward is not None for spec in LAYERS.values())


def test_bce_twin_is_torch_nn_bce():
    p = torch.tensor([[0.2, 0.7], [0.9, 0.4]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0], [0.5, 0.3]], dtype=torch.float64)
    assert torch.isclose(torch_bce(p, t), F.binary_cross_entropy(p, t, reduction="sum") / 2)
