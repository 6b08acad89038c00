"""The contract's examples, the seed's models and training loop, and the README quick start."""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pygrad import SGD, Adam, Conv2D, Flatten, Linear, Module, ReLU, Tensor
from tests._compare import assert_close

ROOT = pathlib.Path(__file__).resolve().parent.parent
rng = np.random.default_rng(5)


def test_sgd_reference_example():
    x = Tensor([1])
    y = x ** 2 + 1
    optim = SGD(y.create_graph()[1], lr=0.01)
    for _ in range(100):
        optim.zero_grad()
        y = x ** 2 + 1
        loss = (y - 1.5) ** 2
        loss.backward()
        optim.step(loss)
    # the figures are given to 7-9 significant digits: compare at their precision
    np.testing.assert_allclose(x.value, [0.7100436], rtol=1e-7, atol=0)
    np.testing.assert_allclose(y.value, [1.50433688], rtol=1e-8, atol=0)
    np.testing.assert_allclose(loss.value, [1.88085134e-05], rtol=1e-8, atol=0)


class DNN2(Module):
    def __init__(self):
        self.flatten = Flatten(); self.dense1 = Linear(28*28, 100); self.relu1 = ReLU(); self.dense2 = Linear(100, 10)  # noqa: E702,E501
        super().__init__(x=Tensor(np.ones((1, 1, 28, 28)), leaf=True))   # example inputs, keyword only

    def forward(self, x):
        return self.dense2(self.relu1(self.dense1(self.flatten(x))))

    @staticmethod
    def torch_twin(p, x):
        h = torch.relu(x.reshape(x.shape[0], 1, -1) @ p["dense1.W"] + p["dense1.B"])
        return h @ p["dense2.W"] + p["dense2.B"]


class DNN3(Module):
    def __init__(self):
        self.conv = Conv2D(4, 1, 5, 5); self.relu = ReLU(); self.flatten = Flatten(); self.dense = Linear(4*24*24, 10)  # noqa: E702,E501
        super().__init__(x=Tensor(np.ones((1, 1, 28, 28)), leaf=True))

    def forward(self, x):
        return self.dense(self.flatten(self.relu(self.conv(x))))

    @staticmethod
    def torch_twin(p, x):
        h = torch.relu(F.conv2d(x, p["conv.kw"][0], p["conv.kb"][0, :, 0, 0]))
        return h.reshape(x.shape[0], 1, -1) @ p["dense.W"] + p["dense.B"]


def _data(batch):
    x = rng.uniform(0, 1, size=(batch, 1, 28, 28))
    y = np.eye(10)[rng.integers(0, 10, size=batch)][:, None, :]
    return Tensor(x, leaf=True), Tensor(y, leaf=True)


def _seed_loss(y_pred, y_true):
    """The seed's loss: squared error summed over classes, averaged over the batch."""
    return ((y_pred - y_true) ** 2).sum(axis=-1).mean(axis=0, keepdims=False)


@pytest.mark.parametrize("batch", [1, 16, 33])
@pytest.mark.parametrize("model_cls", [DNN2, DNN3])
def test_seed_models_match_a_torch_twin(model_cls, batch):
    np.random.seed(batch)
    model = model_cls()
    x, y = _data(batch)
    params = {name: torch.tensor(w.value.copy(), requires_grad=True) for name, w in model.named_weights()}
    y_pred = model(x=x)
    t_pred = model_cls.torch_twin(params, torch.tensor(x.value))
    assert y_pred.shape == (batch, 1, 10)
    assert_close(y_pred.value, t_pred.detach().numpy(), "output")
    _seed_loss(y_pred, y).backward()
    ((t_pred - torch.tensor(y.value)) ** 2).sum(dim=-1).mean(dim=0).sum().backward()
    for (name, w), twin in zip(model.named_weights(), model.copy.weights):
        assert_close(twin.grad, params[name].grad.numpy(), f"grad of {name}")
        assert w.grad.shape == w.shape and not np.any(w.grad)


@pytest.mark.parametrize("batch", [1, 16, 33])
@pytest.mark.parametrize("model_cls", [DNN2, DNN3])
def test_seed_training_loop_drops_the_loss(model_cls, batch):
    np.random.seed(100 + batch)
    model = model_cls()
    shapes = [w.shape for w in model.weights]
    optim = Adam(model.weights, lr=1e-3)
    x, y_true = _data(batch)
    losses = []
    for _ in range(15):
        model.model_reset(); optim.zero_grad(); y_pred = model(x=x)  # noqa: E702
        loss = ((y_pred - y_true)**2).sum(axis=-1).mean(axis=0, keepdims=False); loss.backward(); optim.step(loss)  # noqa: E702,E501
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
    assert [w.shape for w in model.weights] == shapes


def test_step_single_accumulation_equals_one_big_batch_step_on_dnn2():
    np.random.seed(7)
    big, small = DNN2(), DNN2()
    small.load_state_dict(big.state_dict())
    x, y = _data(6)
    big_optim, small_optim = SGD(big.weights, lr=0.1), SGD(small.weights, lr=0.1)
    loss = _seed_loss(big(x=x), y)
    loss.backward()
    big_optim.step(loss)
    for i in range(6):
        loss = _seed_loss(small(x=Tensor(x.value[i:i + 1], leaf=True)), Tensor(y.value[i:i + 1], leaf=True))
        loss.backward()
        small_optim.step_single(loss, batch_size=6)
    small_optim.step_single(loss, batch_size=6, modify=True)
    for a, b in zip(small.weights, big.weights):
        assert_close(a.value, b.value, "accumulated vs big batch", rtol=1e-10, atol=1e-12)


def test_the_readme_quick_start_runs_and_prints_the_loss_it_states():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    section = section[:section.index("\n## ")]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    stated = float(re.search(r"-> ([0-9.]+) after 300", block).group(1))
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    # the README states the loss to 3 significant digits
    np.testing.assert_allclose(float(result.stdout), stated, rtol=2e-3, atol=0)


def test_quickstart_runs_and_drops_the_loss():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    before = float(re.search(r"loss before:\s*([0-9.eE+-]+)", result.stdout).group(1))
    after = float(re.search(r"loss after:\s*([0-9.eE+-]+)", result.stdout).group(1))
    assert after < before / 100, result.stdout
