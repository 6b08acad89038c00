"""BCELoss and CCELoss against torch.nn.BCELoss and torch.nn.CrossEntropyLoss (float64)."""
import numpy as np
import pytest
import torch

from pygrad import BCELoss, CCELoss, Tensor
from tests._compare import assert_close, compare

rng = np.random.default_rng(99)


# ---------------------------------------------------------------------------- BCELoss
def test_bce_matches_torch_mean_on_b11():
    pred, target = rng.uniform(0.05, 0.95, size=(6, 1, 1)), rng.uniform(0, 1, size=(6, 1, 1))
    compare(lambda p, t: BCELoss()(p, t), lambda p, t: torch.nn.BCELoss()(p, t), pred, target)


def test_bce_sums_all_elements_and_divides_by_batch():
    pred, target = rng.uniform(0.01, 0.99, size=(4, 3, 2)), (rng.uniform(size=(4, 3, 2)) > 0.5) * 1.0
    compare(lambda p, t: BCELoss()(p, t), lambda p, t: torch.nn.BCELoss(reduction="sum")(p, t) / 4, pred, target)


def test_bce_clamps_and_matches_torch_gradient_at_0_and_1():
    # pred exactly 0 and 1 against every kind of target, and values so small that log clamps
    pred = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1e-50, 1 - 1e-16, 0.3, 1e-13])[:, None, None]
    target = np.array([0.0, 1.0, 0.4, 0.0, 1.0, 0.7, 0.6, 0.2, 0.3, 1.0])[:, None, None]
    p = Tensor(pred)
    loss = BCELoss()(p, Tensor(target, leaf=True, learnable=False))
    tp = torch.tensor(pred, requires_grad=True)
    t_loss = torch.nn.BCELoss()(tp, torch.tensor(target))
    t_loss.backward()
    assert np.isfinite(loss.value).all()
    assert_close(loss.value, t_loss.detach().numpy(), "BCE value")
    loss.backward()
    assert_close(p.grad, tp.grad.numpy(), "BCE grad w.r.t. pred")
    # the values the clamping implies, by hand: log(0) counts as -100, and p*(1-p) >= 1e-12
    assert_close(torch.nn.BCELoss(reduction="none")(torch.tensor([0.0]), torch.tensor([1.0])).numpy(), [100.0],
                 "torch's clamp")
    np.testing.assert_allclose(p.grad[1, 0, 0], -1e12 / 10)


def test_bce_target_gradient_matches_torch_where_finite():
    pred = np.array([0.2, 0.5, 1e-50, 1 - 1e-13, 0.9])[:, None, None]
    target = np.array([0.1, 0.5, 0.6, 0.2, 1.0])[:, None, None]
    compare(lambda p, t: BCELoss()(p, t), lambda p, t: torch.nn.BCELoss()(p, t), pred, target)


def test_bce_target_gradient_at_0_and_1_is_the_clamped_derivative():
    # torch's is +-inf there; pygrad's is d/dt of the clamped loss: (log(1-p) - log(p)) clamped
    target = Tensor(np.array([[0.5], [0.5]]))
    BCELoss()(Tensor(np.array([[0.0], [1.0]])), target).backward()
    np.testing.assert_array_equal(target.grad, np.array([[100.0], [-100.0]]) / 2)


def test_bce_accepts_array_targets():
    pred = rng.uniform(0.1, 0.9, size=(3, 1, 2))
    target = (rng.uniform(size=(3, 1, 2)) > 0.5) * 1.0
    expected = torch.nn.BCELoss(reduction="sum")(torch.tensor(pred), torch.tensor(target)) / 3
    assert_close(BCELoss()(Tensor(pred), target).value, expected.numpy(), "BCE with an array target")


@pytest.mark.parametrize("bad", [1.2, -0.1, np.nan])
def test_bce_rejects_pred_outside_unit_interval(bad):
    pred = np.full((2, 1, 1), 0.5)
    pred[1, 0, 0] = bad
    with pytest.raises(ValueError, match=r"BCELoss.*\(2, 1, 1\)"):
        BCELoss()(Tensor(pred), Tensor(np.ones((2, 1, 1)), leaf=True))


def test_bce_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"BCELoss.*\(2, 1, 1\).*\(2, 1\)"):
        BCELoss()(Tensor(np.full((2, 1, 1), 0.5)), Tensor(np.ones((2, 1)), leaf=True))
    with pytest.raises(TypeError, match="BCELoss"):
        BCELoss()(np.full((2, 1, 1), 0.5), np.ones((2, 1, 1)))


# ---------------------------------------------------------------------------- CCELoss
def _probabilities(shape):
    e = np.exp(rng.normal(size=shape))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(5, 1, 4), (3, 4, 6)])
def test_cce_matches_cross_entropy_with_probability_targets(shape):
    w = shape[-1]
    compare(lambda p, t: CCELoss()(p, t),
            lambda p, t: torch.nn.CrossEntropyLoss()(p.reshape(-1, w), t.reshape(-1, w)),
            rng.normal(size=shape) * 3, _probabilities(shape))


def test_cce_matches_cross_entropy_with_one_hot_targets():
    classes = rng.integers(0, 5, size=(4, 3))
    logits = rng.normal(size=(4, 3, 5))
    p = Tensor(logits)
    loss = CCELoss()(p, Tensor(np.eye(5)[classes], leaf=True))
    tp = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.CrossEntropyLoss()(tp.reshape(-1, 5), torch.tensor(classes.reshape(-1)))
    t_loss.backward()
    loss.backward()
    assert_close(loss.value, t_loss.detach().numpy(), "CCE value")
    assert_close(p.grad, tp.grad.numpy(), "CCE grad")


def test_cce_mask_rule_by_hand():
    # sequence 0: classes 2 1 0 0 -> rows 0, 1, 2 count (the first class-0 row), row 3 does not
    # sequence 1: classes 0 2 0 1 -> rows 0, 1, 3 count; row 2 is a second class-0 row
    classes = np.array([[2, 1, 0, 0], [0, 2, 0, 1]])
    counted = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 3)]
    logits = rng.normal(size=(2, 4, 3))
    p = Tensor(logits)
    loss = CCELoss()(p, Tensor(np.eye(3)[classes], leaf=True), mask=True)
    loss.backward()

    log_softmax = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    expected = -np.mean([log_softmax[b, i, classes[b, i]] for b, i in counted])
    expected_grad = np.zeros_like(logits)
    for b, i in counted:
        expected_grad[b, i] = (np.exp(log_softmax[b, i]) - np.eye(3)[classes[b, i]]) / len(counted)
    assert_close(loss.value, expected, "masked CCE value")
    assert_close(p.grad, expected_grad.reshape(2, 4, 3), "masked CCE grad")

    # the same, with torch's cross-entropy on the counted rows only
    tp = torch.tensor(logits, requires_grad=True)
    rows = torch.stack([tp[b, i] for b, i in counted])
    t_loss = torch.nn.CrossEntropyLoss()(rows, torch.tensor([classes[b, i] for b, i in counted]))
    t_loss.backward()
    assert_close(loss.value, t_loss.detach().numpy(), "masked CCE vs torch")
    assert_close(p.grad, tp.grad.numpy(), "masked CCE grad vs torch")


def test_cce_mask_without_class_0_counts_every_row():
    targets = np.eye(4)[rng.integers(1, 4, size=(3, 5))]
    logits = rng.normal(size=(3, 5, 4))
    masked = CCELoss()(Tensor(logits), Tensor(targets, leaf=True), mask=True).value
    assert_close(masked, CCELoss()(Tensor(logits), Tensor(targets, leaf=True)).value, "mask with no class 0")


def test_cce_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"CCELoss.*\(2, 3, 4\).*\(2, 3, 5\)"):
        CCELoss()(Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((2, 3, 5)), leaf=True))
    with pytest.raises(ValueError, match=r"CCELoss.*\(2, 4\)"):
        CCELoss()(Tensor(np.zeros((2, 4))), Tensor(np.zeros((2, 4)), leaf=True))
