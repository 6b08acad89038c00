"""Module: batched copy, gradients vs a torch twin, untouched originals, state dicts."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pygrad import SGD, Adam, Conv2D, Flatten, Linear, Module, ReLU, Tanh, Tensor
from tests._compare import assert_close

rng = np.random.default_rng(2024)


class MLP(Module):
    def __init__(self):
        self.dense1, self.act, self.dense2 = Linear(5, 8), Tanh(), Linear(8, 3)
        super().__init__(x=Tensor(np.zeros((1, 2, 5)), leaf=True))

    def forward(self, x):
        return self.dense2(self.act(self.dense1(x)))

    @staticmethod
    def torch_twin(p, x):
        return torch.tanh(x @ p["dense1.W"] + p["dense1.B"]) @ p["dense2.W"] + p["dense2.B"]

    @staticmethod
    def inputs(batch):
        return rng.normal(size=(batch, 2, 5))


class CNN(Module):
    def __init__(self):
        self.conv, self.relu, self.flatten, self.dense = Conv2D(3, 2, 3, 3), ReLU(), Flatten(), Linear(3 * 4 * 4, 4)
        super().__init__(x=Tensor(np.zeros((1, 2, 6, 6)), leaf=True))

    def forward(self, x):
        return self.dense(self.flatten(self.relu(self.conv(x))))

    @staticmethod
    def torch_twin(p, x):
        h = torch.relu(F.conv2d(x, p["conv.kw"][0], p["conv.kb"][0, :, 0, 0]))
        return h.reshape(x.shape[0], 1, -1) @ p["dense.W"] + p["dense.B"]

    @staticmethod
    def inputs(batch):
        return rng.normal(size=(batch, 2, 6, 6))


MODELS = [MLP, CNN]


@pytest.mark.parametrize("batch", [1, 16, 33])
@pytest.mark.parametrize("model_cls", MODELS)
def test_batched_output_equals_per_sample_outputs(model_cls, batch):
    np.random.seed(0)
    model = model_cls()
    xv = model_cls.inputs(batch)
    out = model(x=Tensor(xv, leaf=True)).value
    singles = np.concatenate([model(x=Tensor(xv[i:i + 1], leaf=True)).value for i in range(batch)])
    assert_close(out, singles, "batched vs per-sample")


@pytest.mark.parametrize("batch", [1, 16, 33])
@pytest.mark.parametrize("model_cls", MODELS)
def test_copy_gradients_equal_a_torch_twin(model_cls, batch):
    np.random.seed(1)
    model = model_cls()
    params = {name: torch.tensor(w.value.copy(), requires_grad=True) for name, w in model.named_weights()}
    xv = model_cls.inputs(batch)
    x, t_x = Tensor(xv, leaf=True), torch.tensor(xv, requires_grad=True)
    out, t_out = model(x=x), model_cls.torch_twin(params, t_x)
    assert_close(out.value, t_out.detach().numpy(), "output")
    seed = rng.normal(size=out.shape)
    (out * seed).sum().backward()
    t_out.backward(torch.tensor(seed))
    assert_close(x.grad, t_x.grad.numpy(), "input grad")
    for (name, w), twin in zip(model.named_weights(), model.copy.weights):
        assert twin.uid == w.uid and twin.shape == w.shape
        assert_close(twin.grad, params[name].grad.numpy(), f"grad of {name}")


@pytest.mark.parametrize("model_cls", MODELS)
def test_originals_untouched_until_step(model_cls):
    np.random.seed(2)
    model = model_cls()
    before = [w.value.copy() for w in model.weights]
    optim = SGD(model.weights, lr=0.1)
    loss = (model(x=Tensor(model_cls.inputs(4), leaf=True)) ** 2).sum()
    loss.backward()
    for w, v in zip(model.weights, before):
        np.testing.assert_array_equal(w.value, v)
        np.testing.assert_array_equal(w.grad, np.zeros_like(v))
    assert any(np.any(t.grad != 0) for t in model.copy.weights)
    optim.step(loss)
    for w, twin, v in zip(model.weights, model.copy.weights, before):
        np.testing.assert_allclose(w.value, v - 0.1 * twin.grad, rtol=1e-12)
        np.testing.assert_array_equal(twin.value, w.value)


@pytest.mark.parametrize("model_cls", MODELS)
def test_weight_shapes_never_change_with_changing_batch_sizes(model_cls):
    model = model_cls()
    shapes = [w.shape for w in model.weights]
    optim = Adam(model.weights, lr=1e-3)
    for batch in (1, 16, 33, 5):
        optim.zero_grad()
        loss = model(x=Tensor(model_cls.inputs(batch), leaf=True)).sum()
        loss.backward()
        optim.step(loss)
        for w, twin, s in zip(model.weights, model.copy.weights, shapes):
            assert w.value.shape == w.grad.shape == twin.value.shape == twin.grad.shape == s


def test_target_not_marked_leaf_does_not_corrupt_the_update():
    np.random.seed(3)
    a, b = MLP(), MLP()
    b.load_state_dict(a.state_dict())
    xv, yv = MLP.inputs(6), rng.normal(size=(6, 2, 3))
    for model, target in ((a, Tensor(yv, leaf=True)), (b, Tensor(yv))):
        optim = Adam(model.weights, lr=0.01)
        for _ in range(3):
            optim.zero_grad()
            loss = ((target - model(x=Tensor(xv, leaf=True))) ** 2).sum()
            loss.backward()
            optim.step(loss)
        np.testing.assert_array_equal(target.value, yv)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.value, wb.value)


def test_copy_lifecycle():
    model = MLP()
    assert model.copy is None
    x = Tensor(MLP.inputs(3), leaf=True)
    model(x=x)
    first = model.copy
    assert first is not None and first.copy is None
    model(x=x)
    assert model.copy is first                      # reused across calls
    model.dense1.W.value = model.dense1.W.value + 1.0
    model.model_reset()
    assert model.copy is None
    model(x=x)
    assert model.copy is not first
    np.testing.assert_array_equal(model.copy.dense1.W.value, model.dense1.W.value)
    assert model.copy.weights[0] is model.copy.dense1.W  # the copy's layers and weights agree


def test_deepcopy_of_a_model_keeps_uids_and_drops_the_copy():
    model = MLP()
    model(x=Tensor(MLP.inputs(2), leaf=True))
    twin = copy.deepcopy(model)
    assert twin.copy is None
    assert [w.uid for w in twin.weights] == [w.uid for w in model.weights]
    assert all(t is not w for t, w in zip(twin.weights, model.weights))


def test_inputs_are_keyword_only():
    model = MLP()
    with pytest.raises(TypeError, match="keyword-only"):
        model(Tensor(MLP.inputs(2), leaf=True))

    class Positional(MLP):
        def __init__(self):
            self.dense1, self.act, self.dense2 = Linear(5, 8), Tanh(), Linear(8, 3)
            Module.__init__(self, Tensor(np.zeros((1, 2, 5)), leaf=True))

    with pytest.raises(TypeError, match="keyword-only"):
        Positional()

    class NoInit(Module):
        def __init__(self):
            self.dense = Linear(2, 2)

        def forward(self, x):
            return self.dense(x)

    with pytest.raises(TypeError, match="super"):
        NoInit()(x=Tensor(np.ones((1, 1, 2)), leaf=True))


def test_example_inputs_are_never_weights():
    class Forgetful(Module):
        def __init__(self):
            self.dense = Linear(3, 2)
            super().__init__(x=Tensor(np.ones((1, 1, 3))))   # not marked leaf=True

        def forward(self, x):
            return self.dense(x)

    model = Forgetful()
    assert model.weights == [model.dense.W, model.dense.B]


def test_state_dict_roundtrip_through_npz(tmp_path):
    np.random.seed(4)
    model = CNN()
    sd = model.state_dict()
    assert list(sd) == ["conv.kw", "conv.kb", "dense.W", "dense.B"]
    assert all(type(v) is np.ndarray for v in sd.values())
    np.savez(tmp_path / "cnn.npz", **sd)
    other = CNN()
    x = Tensor(CNN.inputs(3), leaf=True)
    other(x=x)
    with np.load(tmp_path / "cnn.npz") as data:
        other.load_state_dict(data)
    assert other.copy is None                          # the next call copies the loaded weights
    assert_close(other(x=x).value, model(x=x).value, "loaded model output")
    sd["dense.W"] = sd["dense.W"].copy()
    model.dense.W.value = model.dense.W.value * 0       # state_dict holds copies
    assert np.any(sd["dense.W"] != 0)


def test_load_state_dict_rejects_bad_keys_and_shapes():
    model = MLP()
    sd = model.state_dict()
    with pytest.raises(ValueError, match=r"MLP.*dense1\.W.*\(1, 5, 8\)"):
        model.load_state_dict({**sd, "dense1.W": np.zeros((1, 5, 9))})
    with pytest.raises(ValueError, match="missing.*dense2.B"):
        model.load_state_dict({k: v for k, v in sd.items() if k != "dense2.B"})
    with pytest.raises(ValueError, match="unexpected.*extra"):
        model.load_state_dict({**sd, "extra": np.zeros(1)})


class Block(Module):
    def __init__(self):
        self.dense, self.act = Linear(4, 4), Tanh()
        super().__init__(h=Tensor(np.zeros((1, 1, 4)), leaf=True))

    def forward(self, h):
        return self.act(self.dense(h))


class Stacked(Module):
    def __init__(self):
        self.block, self.head = Block(), Linear(4, 1)
        super().__init__(x=Tensor(np.zeros((1, 1, 4)), leaf=True))

    def forward(self, x):
        return self.head(self.block(h=x))


def test_nested_modules_train_their_original_weights():
    np.random.seed(5)
    model = Stacked()
    assert model.weights == [model.block.dense.W, model.block.dense.B, model.head.W, model.head.B]
    assert model.block.copy is None                   # the inner block ran as part of the outer model
    before = model.block.dense.W.value.copy()
    optim = SGD(model.weights, lr=0.1)
    loss = (model(x=Tensor(rng.normal(size=(3, 1, 4)), leaf=True)) ** 2).sum()
    loss.backward()
    twin = model.copy.block.dense.W
    assert twin.uid == model.block.dense.W.uid and np.any(twin.grad != 0)
    optim.step(loss)
    np.testing.assert_allclose(model.block.dense.W.value, before - 0.1 * twin.grad, rtol=1e-12)
    assert [n for n, _ in model.named_weights()] == ["block.dense.W", "block.dense.B", "head.W", "head.B"]
