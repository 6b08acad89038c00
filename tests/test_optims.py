"""Optimizers against torch.optim: parameter trajectories over 20 steps, equal to rtol=1e-10."""
import copy

import numpy as np
import pytest
import torch

from pygrad import SGD, SGD_Momentum, RMSProp, Adam, Linear, Module, Tanh, Tensor
from tests._compare import assert_close

TRAJ_RTOL, TRAJ_ATOL = 1e-10, 1e-12

# (pygrad class, its kwargs, torch class, the equivalent kwargs)
OPTIMIZERS = {
    "SGD": (SGD, dict(lr=0.1), torch.optim.SGD, dict(lr=0.1)),
    "SGD_Momentum": (SGD_Momentum, dict(beta=0.8, lr=0.05), torch.optim.SGD, dict(lr=0.05, momentum=0.8)),
    "RMSProp": (RMSProp, dict(beta=0.9, lr=0.01), torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-8)),
    "RMSProp_big_eps": (RMSProp, dict(beta=0.7, lr=0.02, eps=1e-2), torch.optim.RMSprop,
                        dict(lr=0.02, alpha=0.7, eps=1e-2)),
    "Adam": (Adam, dict(beta1=0.85, beta2=0.99, lr=0.01), torch.optim.Adam, dict(lr=0.01, betas=(0.85, 0.99))),
    "Adam_big_eps": (Adam, dict(beta1=0.9, beta2=0.999, eps=1e-2, lr=0.05), torch.optim.Adam,
                     dict(lr=0.05, betas=(0.9, 0.999), eps=1e-2)),
}

rng = np.random.default_rng(7)
X = rng.normal(size=(8, 1, 3))
Y = rng.normal(size=(8, 1, 2))


def _init_weights(seed):
    r = np.random.default_rng(seed)
    return [r.uniform(-0.6, 0.6, size=s) for s in ((1, 3, 4), (1, 1, 4), (1, 4, 2), (1, 1, 2))]


def _net(w1, b1, w2, b2, x):
    """The same small network for pygrad and torch: tanh(x @ w1 + b1) @ w2 + b2."""
    h = x @ w1 + b1
    return (h.tanh() if isinstance(h, Tensor) else torch.tanh(h)) @ w2 + b2


def _torch_trajectory(torch_cls, torch_kwargs, init, steps, unused=None):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    extra = [torch.tensor(unused.copy(), requires_grad=True)] if unused is not None else []
    optim = torch_cls(params + extra, **torch_kwargs)
    x, y = torch.tensor(X), torch.tensor(Y)
    out = []
    for _ in range(steps):
        optim.zero_grad()
        loss = ((_net(*params, x) - y) ** 2).mean()
        loss.backward()
        optim.step()
        out.append([p.detach().numpy().copy() for p in params + extra])
    return out


def _assert_trajectory(step, actual, expected):
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, f"step {step}, parameter {k}", rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trajectory_matches_torch_optim(name):
    cls, kwargs, torch_cls, torch_kwargs = OPTIMIZERS[name]
    init = _init_weights(0)
    unused_init = rng.normal(size=(2, 2))
    params = [Tensor(a) for a in init]
    unused = Tensor(unused_init)   # never in the loss's graph: torch skips it (grad None), so must we
    # parameters handed over in an order unrelated to the graph's
    optim = cls([unused] + params[::-1], **kwargs)
    expected = _torch_trajectory(torch_cls, torch_kwargs, init, 20, unused=unused_init)
    x, y = Tensor(X, leaf=True), Tensor(Y, leaf=True)
    for step in range(20):
        optim.zero_grad()
        loss = ((_net(*params, x) - y) ** 2).mean(axis=None, keepdims=False)
        loss.backward()
        optim.step(loss)
        _assert_trajectory(step, [p.value for p in params + [unused]], expected[step])


class _Net(Module):
    def __init__(self, init):
        self.l1, self.act, self.l2 = Linear(3, 4), Tanh(), Linear(4, 2)
        self.l1.W.value, self.l1.B.value, self.l2.W.value, self.l2.B.value = (a.copy() for a in init)
        super().__init__(x=Tensor(np.zeros((1, 1, 3)), leaf=True))

    def forward(self, x):
        return self.l2(self.act(self.l1(x)))


@pytest.mark.parametrize("reset", [True, False])
@pytest.mark.parametrize("name", ["SGD_Momentum", "Adam"])
def test_trajectory_through_a_module_matches_torch(name, reset):
    """Gradients come from the Module's batched copy; with or without model_reset the
    original weights follow torch's trajectory and the copy's twins hold the same values."""
    cls, kwargs, torch_cls, torch_kwargs = OPTIMIZERS[name]
    init = _init_weights(1)
    model = _Net(init)
    optim = cls(model.weights, **kwargs)
    expected = _torch_trajectory(torch_cls, torch_kwargs, init, 20)
    originals = [model.l1.W, model.l1.B, model.l2.W, model.l2.B]
    assert model.weights == originals
    x = Tensor(X, leaf=True)
    y = Tensor(Y)          # a target the user forgot to mark leaf=True: it is in loss.weights
    for step in range(20):
        if reset:
            model.model_reset()
        optim.zero_grad()
        loss = ((y - model(x=x)) ** 2).mean(axis=None, keepdims=False)
        loss.backward()
        assert loss.weights[0] is y   # first in the graph: a positional match would be off by one
        optim.step(loss)
        _assert_trajectory(step, [p.value for p in originals], expected[step])
        twins = model.copy.weights
        for p, t in zip(originals, twins):
            assert t is not p and t.uid == p.uid
            np.testing.assert_array_equal(t.value, p.value)
    np.testing.assert_array_equal(y.value, Y)   # the unmarked target was not updated


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("use_module", [False, True])
def test_step_single_accumulation_equals_one_big_batch_step(name, use_module):
    cls, kwargs, _, _ = OPTIMIZERS[name]
    init = _init_weights(2)

    def make():
        if use_module:
            model = _Net(init)
            return model, model.weights, lambda x: model(x=x)
        params = [Tensor(a) for a in init]
        return None, params, lambda x: _net(*params, x)

    def sample_loss(run, x, y):
        return ((run(x) - y) ** 2).sum(axis=None, keepdims=False)

    # one step on the mean loss of the whole batch
    _, big_params, big_run = make()
    big = cls(big_params, **kwargs)
    for _ in range(2):
        big.zero_grad()
        loss = sample_loss(big_run, Tensor(X, leaf=True), Tensor(Y, leaf=True)) * (1 / len(X))
        loss.backward()
        big.step(loss)

    # the same, one sample at a time
    model, params, run = make()
    acc = cls(params, **kwargs)
    for _ in range(2):
        acc.zero_grad()
        for i in range(len(X)):
            loss = sample_loss(run, Tensor(X[i:i + 1], leaf=True), Tensor(Y[i:i + 1], leaf=True))
            loss.backward()
            acc.step_single(loss, len(X))
        acc.step_single(loss, len(X), modify=True)
    for p, q in zip(params, big_params):
        assert_close(p.value, q.value, "accumulated vs big batch", rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
    if use_module:
        for p, t in zip(params, model.copy.weights):
            np.testing.assert_array_equal(t.value, p.value)


def test_step_single_adds_into_the_parameters_grad():
    w = Tensor([2.0, -1.0])
    optim = SGD([w], lr=0.5)
    for scale in (1.0, 3.0):
        loss = ((w * scale) ** 2).sum()
        loss.backward()
        optim.step_single(loss, batch_size=2)
    np.testing.assert_allclose(w.grad, 2 * w.value * (1.0 + 9.0))
    optim.step_single(None, batch_size=2, modify=True)
    np.testing.assert_allclose(w.value, np.array([2.0, -1.0]) * (1 - 0.5 * 10.0))


def test_sgd_momentum_buffer_starts_at_the_first_gradient():
    # torch: the buffer is the first gradient itself (not (1 - beta) g), then beta * b + g
    w = Tensor([1.0])
    optim = SGD_Momentum([w], beta=0.9, lr=0.1)
    for expected in (1.0 - 0.1 * 2.0, 0.8 - 0.1 * (0.9 * 2.0 + 1.6)):
        loss = (w ** 2).sum()
        loss.backward()
        optim.step(loss)
        np.testing.assert_allclose(w.value, [expected], rtol=1e-12)


def test_step_needs_a_backward_and_parameters_must_be_weights():
    w = Tensor([1.0])
    with pytest.raises(ValueError, match=r"SGD\.step.*backward"):
        SGD([w], lr=0.1).step(w * 2)
    with pytest.raises(TypeError, match="Adam"):
        Adam([w, np.ones(2)])
    with pytest.raises(ValueError, match="Adam.*twice"):
        Adam([w, w])
    with pytest.raises(ValueError, match="RMSProp"):
        RMSProp([w * 2])
    with pytest.raises(ValueError, match="SGD_Momentum.*beta"):
        SGD_Momentum([w], beta=1.5)
    with pytest.raises(ValueError, match="step_single.*batch_size"):
        SGD([w]).step_single(None, 0, modify=True)


def test_parameters_are_matched_by_uid_across_deepcopy():
    w = Tensor([3.0])
    twin = copy.deepcopy(w)
    loss = (twin * 2.0).sum()
    loss.backward()
    SGD([w], lr=0.25).step(loss)
    np.testing.assert_allclose(w.value, [2.5])
    np.testing.assert_allclose(twin.value, [2.5])
    np.testing.assert_array_equal(w.grad, [0.0])   # the original's grad was never touched
