"""Layers and activations against their torch equivalents (float64 values and gradients)."""
import numpy as np
import pytest
import torch

from pygrad import (AddNorm, Conv2D, Dropout, Flatten, Linear, ReLU, Sigmoid, Softmax, Tanh,
                    Tensor)
from tests._compare import assert_close, compare

rng = np.random.default_rng(1234)


def _backward_both(out, t_out, seed):
    """Back-propagate the same upstream gradient `seed` through a pygrad and a torch output."""
    (out * seed).sum().backward()
    t_out.backward(torch.tensor(seed))


# ---------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch, n", [(1, 1), (5, 3), (16, 1)])
def test_linear_matches_nn_linear(batch, n, bias):
    np.random.seed(0)
    layer = Linear(4, 3, bias=bias)
    t_layer = torch.nn.Linear(4, 3, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        t_layer.weight.copy_(torch.tensor(layer.W.value[0].T))
        if bias:
            t_layer.bias.copy_(torch.tensor(layer.B.value[0, 0]))
    xv = rng.normal(size=(batch, n, 4))
    x, t_x = Tensor(xv, leaf=True), torch.tensor(xv, requires_grad=True)
    out, t_out = layer(x), t_layer(t_x)
    assert_close(out.value, t_out.detach().numpy(), "Linear value")
    _backward_both(out, t_out, rng.normal(size=out.shape))
    assert_close(x.grad, t_x.grad.numpy(), "Linear input grad")
    assert_close(layer.W.grad, t_layer.weight.grad.numpy().T[None], "Linear W grad")
    if bias:
        assert_close(layer.B.grad, t_layer.bias.grad.numpy()[None, None], "Linear B grad")
    assert layer.W.shape == layer.W.grad.shape == (1, 4, 3)


def test_linear_init_shapes_and_range():
    np.random.seed(3)
    layer = Linear(25, 7)
    assert layer.W.shape == (1, 25, 7) and layer.B.shape == (1, 1, 7)
    for w in (layer.W, layer.B):
        assert np.all(np.abs(w.value) <= 1 / 5) and not w.leaf
    assert np.abs(layer.W.value).max() > 0.9 / 5          # uses the whole range
    assert Linear(3, 2, dtype=np.float32).W.dtype == np.float32


def test_linear_weights_never_resized_by_a_batch():
    layer = Linear(6, 2)
    out = layer(Tensor(rng.normal(size=(16, 3, 6)), leaf=True))
    out.sum().backward()
    for w, shape in ((layer.W, (1, 6, 2)), (layer.B, (1, 1, 2))):
        assert w.value.shape == shape and w.grad.shape == shape


def test_linear_rejects_wrong_shapes():
    layer = Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear.*\(2, 5\)"):
        layer(Tensor(np.ones((2, 5)), leaf=True))
    with pytest.raises(ValueError, match=r"Linear.*\(2, 1, 5\)"):
        layer(Tensor(np.ones((2, 1, 5)), leaf=True))
    with pytest.raises(TypeError, match="Linear"):
        layer(np.ones((2, 1, 4)))
    with pytest.raises(TypeError, match="Linear"):
        Linear(0, 3)


# ---------------------------------------------------------------------------- Conv2D
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_nn_conv2d(bias, stride, padding):
    np.random.seed(1)
    layer = Conv2D(3, 2, 3, 2, bias=bias, stride=stride, padding=padding)
    t_layer = torch.nn.Conv2d(2, 3, (3, 2), stride=stride, padding=padding, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        t_layer.weight.copy_(torch.tensor(layer.kw.value[0]))
        if bias:
            t_layer.bias.copy_(torch.tensor(layer.kb.value[0, :, 0, 0]))
    xv = rng.normal(size=(4, 2, 6, 5))
    x, t_x = Tensor(xv, leaf=True), torch.tensor(xv, requires_grad=True)
    out, t_out = layer(x), t_layer(t_x)
    assert_close(out.value, t_out.detach().numpy(), "Conv2D value")
    _backward_both(out, t_out, rng.normal(size=out.shape))
    assert_close(x.grad, t_x.grad.numpy(), "Conv2D input grad")
    assert_close(layer.kw.grad, t_layer.weight.grad.numpy()[None], "Conv2D kernel grad")
    if bias:
        assert_close(layer.kb.grad, t_layer.bias.grad.numpy()[None, :, None, None], "Conv2D bias grad")
    assert layer.kw.shape == layer.kw.grad.shape == (1, 3, 2, 3, 2)


def test_conv2d_init_and_never_resized():
    np.random.seed(2)
    layer = Conv2D(4, 3, 2, 3)
    bound = 1 / np.sqrt(3 * 2 * 3)
    assert layer.kw.shape == (1, 4, 3, 2, 3) and layer.kb.shape == (1, 4, 1, 1)
    assert np.all(np.abs(layer.kw.value) <= bound) and np.abs(layer.kw.value).max() > 0.9 * bound
    assert np.all(np.abs(layer.kb.value) <= bound)
    layer(Tensor(rng.normal(size=(16, 3, 5, 5)), leaf=True)).sum().backward()
    assert layer.kw.value.shape == layer.kw.grad.shape == (1, 4, 3, 2, 3)
    assert layer.kb.value.shape == layer.kb.grad.shape == (1, 4, 1, 1)


def test_conv2d_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2D.*\(2, 3, 5, 5\)"):
        Conv2D(4, 2, 3, 3)(Tensor(np.ones((2, 3, 5, 5)), leaf=True))


# ---------------------------------------------------------------------------- small layers
def test_flatten_softmax_and_activations_match_torch():
    x = rng.normal(size=(3, 2, 4, 5))
    compare(lambda t: Flatten()(t), lambda t: t.reshape(3, 1, -1), x)
    assert Flatten()(Tensor(x)).shape == (3, 1, 40)
    compare(lambda t: Softmax()(t), lambda t: torch.softmax(t, dim=-1), x, seed=rng.normal(size=x.shape))
    compare(lambda t: Softmax(axis=1)(t), lambda t: torch.softmax(t, dim=1), x, seed=rng.normal(size=x.shape))
    x[0, 0, 0, :2] = 0.0   # relu's kink: torch's derivative there is 0
    compare(lambda t: ReLU()(t), torch.relu, x)
    compare(lambda t: Tanh()(t), torch.tanh, x)
    compare(lambda t: Sigmoid()(t), torch.sigmoid, x)


@pytest.mark.parametrize("gain, bias, eps", [(1.0, 0.0, 1e-9), (1.7, -0.3, 1e-5)])
def test_addnorm_matches_torch_expression(gain, bias, eps):
    x, skip = rng.normal(size=(3, 4, 6)), rng.normal(size=(3, 4, 6))

    def torch_addnorm(x, skip):
        y = x + skip
        var = y.var(dim=-1, unbiased=False, keepdim=True)
        return gain * (y - y.mean(dim=-1, keepdim=True)) / torch.sqrt(var + eps) + bias

    compare(lambda a, b: AddNorm(gain, bias, eps)(a, b), torch_addnorm, x, skip, seed=rng.normal(size=x.shape))


def test_addnorm_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"AddNorm.*\(2, 3\).*\(2, 4\)"):
        AddNorm()(Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4))))


# ---------------------------------------------------------------------------- Dropout
def test_dropout_contract_example():
    np.random.seed(0)
    x = Tensor([1.0, 1.0, 1.0, 1.0])
    out = Dropout(0.5)(x)
    assert sorted(out.value.tolist()) == [0.0, 0.0, 1.0, 1.0]
    out.backward()
    np.testing.assert_array_equal(x.grad, out.value)   # the same pattern in the gradient


@pytest.mark.parametrize("shape, rate", [((4, 5), 0.35), ((3, 2, 7), 0.1), ((6,), 0.0), ((2, 3), 1.0)])
def test_dropout_exact_count_no_rescale_and_gradient(shape, rate):
    xv = rng.uniform(1.0, 2.0, size=shape)   # no entry is 0 by chance
    np.random.seed(42)
    x = Tensor(xv)
    out = Dropout(rate)(x)
    dropped = out.value == 0
    assert dropped.sum() == int(xv.size * rate)
    np.testing.assert_array_equal(out.value[~dropped], xv[~dropped])   # survivors are not rescaled
    seed = rng.normal(size=shape)
    (out * seed).sum().backward()
    np.testing.assert_array_equal(x.grad, np.where(dropped, 0.0, seed))
    np.random.seed(42)                                                   # seedable
    np.testing.assert_array_equal(Dropout(rate)(Tensor(xv)).value, out.value)


def test_dropout_not_training_returns_input_and_rejects_bad_rate():
    x = Tensor(np.ones((2, 3)))
    assert Dropout(0.5)(x, training=False) is x
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(1.5)
    with pytest.raises(TypeError, match="Dropout"):
        Dropout("0.1")
