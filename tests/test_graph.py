"""The graph walk (`create_graph`) and the reverse pass (`backward`)."""
import numpy as np
import pytest
import torch

from pygrad import Tensor
from tests._compare import assert_close, compare


def example():
    """The contract's example: x = 1, y = x**2 + x + 1."""
    x = Tensor(1, label="x")
    return x, x ** 2 + x + 1


# ------------------------------------------------------------------ create_graph
def test_create_graph_exact_post_order():
    x, y = example()
    topo, weights = y.create_graph()
    s = y._prev[0]        # x**2 + x
    sq = s._prev[0]       # x**2
    assert len(topo) == 4
    assert all(a is b for a, b in zip(topo, [x, sq, s, y]))
    assert [t.item() for t in topo] == [1.0, 1.0, 2.0, 3.0]
    assert len(weights) == 1 and weights[0] is x


def test_create_graph_excludes_constants():
    _, y = example()
    topo, _ = y.create_graph()
    assert all(t.learnable for t in topo)
    assert not any(t.item() == 1.0 and t.leaf and not t.learnable for t in topo)


def test_create_graph_walks_prev_left_to_right_and_visits_each_node_once():
    w, x = Tensor(2.0, label="w"), Tensor(3.0, label="x")
    a = w * x
    b = a + x
    c = b * a
    topo, weights = c.create_graph()
    assert [id(t) for t in topo] == [id(t) for t in (w, x, a, b, c)]
    assert [id(t) for t in weights] == [id(w), id(x)]
    topo, _ = (x * w).create_graph()
    assert topo[:2] == [x, w]


def test_weights_keep_topo_order_and_skip_leaves():
    w1, inp, w2 = Tensor(1.0), Tensor(2.0, leaf=True), Tensor(3.0)
    y = (inp * w2) + w1
    topo, weights = y.create_graph()
    assert topo[:2] == [inp, w2] and weights == [w2, w1]


def test_backward_stores_topo_and_weights():
    x, y = example()
    y.backward()
    assert y.topo == y.create_graph()[0] and y.weights == [x]


# ------------------------------------------------------------------ backward and reset_grad
def test_reset_grad_semantics_3_3_11():
    x, y = example()
    y.backward()
    assert x.grad.item() == 3.0
    y.backward()
    assert x.grad.item() == 3.0
    y.backward(reset_grad=False)
    assert x.grad.item() == 11.0


def build(lib_ops, x, w):
    """A small DAG with fan-out and reuse, written once for both libraries: returns
    (root, intermediates in creation order)."""
    a = x * w
    b = a + x
    c = lib_ops["tanh"](b)
    d = c * a
    e = d @ w
    sq = x ** 2
    f = e - sq
    root = f.sum()
    return root, [a, b, c, d, e, sq, f]


@pytest.mark.parametrize("passes", [2, 3])
def test_reset_grad_false_matches_torch_oracle(passes):
    # torch oracle: a pass with reset_grad=False equals torch.autograd.backward from the root
    # (seed ones) and from every intermediate (seeded with the gradient it held), with the
    # leaves' gradients accumulating.
    rng = np.random.default_rng(3)
    xv, wv = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (3, 3))
    x, w = Tensor(xv), Tensor(wv)
    root, inter = build({"tanh": lambda t: t.tanh()}, x, w)
    assert len(root.create_graph()[0]) == 2 + len(inter) + 1  # x, w, the intermediates, root
    tx, tw = torch.tensor(xv, requires_grad=True), torch.tensor(wv, requires_grad=True)
    t_root, t_inter = build({"tanh": torch.tanh}, tx, tw)

    root.backward()
    held = list(torch.autograd.grad(t_root, t_inter, retain_graph=True))
    leaves = list(torch.autograd.grad(t_root, [tx, tw], retain_graph=True))
    for _ in range(passes - 1):
        root.backward(reset_grad=False)
        seeds = [torch.ones(())] + held
        new = torch.autograd.grad([t_root, *t_inter], [*t_inter, tx, tw], seeds, retain_graph=True)
        held = list(new[:len(t_inter)])
        leaves = [old + g for old, g in zip(leaves, new[len(t_inter):])]
    for i, (node, expected) in enumerate(zip(inter, held)):
        assert_close(node.grad, expected.numpy(), f"grad of intermediate {i}")
    assert_close(x.grad, leaves[0].numpy(), "grad of x")
    assert_close(w.grad, leaves[1].numpy(), "grad of w")
    assert root.grad.item() == 1.0


def test_non_scalar_root_is_seeded_with_ones():
    x = Tensor([1.0, 2.0, 3.0])
    y = x * x
    y.backward()
    assert y.grad.tolist() == [1.0, 1.0, 1.0] and x.grad.tolist() == [2.0, 4.0, 6.0]


def test_root_grad_is_overwritten_not_accumulated():
    x = Tensor([1.0, 2.0])
    y = x * 2
    y.backward()
    y.backward(reset_grad=False)
    assert y.grad.tolist() == [1.0, 1.0] and x.grad.tolist() == [4.0, 4.0]


def test_repeated_backward_gives_the_same_grads():
    rng = np.random.default_rng(4)
    x, w = Tensor(rng.normal(size=(2, 3))), Tensor(rng.normal(size=(3, 4)))
    y = ((x @ w).tanh() * x.sum(axis=-1, keepdims=True)).softmax(axis=0).sum(axis=1)
    y = (y * np.arange(2.0)).sum()
    y.backward()
    first = x.grad.copy(), w.grad.copy()
    for _ in range(3):
        y.backward()
        np.testing.assert_array_equal(x.grad, first[0])
        np.testing.assert_array_equal(w.grad, first[1])


def test_backward_from_an_intermediate_node():
    x = Tensor(2.0)
    a = x * x
    b = a * 3
    b.backward()
    a.backward()
    assert a.topo == [x, a] and x.grad.item() == 4.0


# ------------------------------------------------------------------ learnable=False
def test_learnable_false_receives_grad_but_passes_none():
    x = Tensor([1.0, 2.0])
    a = x * 3
    a.learnable = False
    y = (a * a).sum()
    y.backward()
    assert a.grad.tolist() == [6.0, 12.0]
    assert not x.grad.any()
    assert all(t is not a and t is not x for t in y.topo) and len(y.topo) == 2


def test_user_tensor_with_learnable_false():
    x, c = Tensor([1.0, 2.0]), Tensor([3.0, 4.0], learnable=False)
    y = (x * c).sum()
    y.backward()
    topo, weights = y.create_graph()
    assert c not in topo and c not in weights and weights == [x]
    assert c.grad.tolist() == [1.0, 2.0] and x.grad.tolist() == [3.0, 4.0]


def test_learnable_false_grad_is_reset_by_the_next_pass():
    x, c = Tensor(1.0), Tensor(2.0, learnable=False)
    y = x * c
    y.backward()
    y.backward()
    assert c.grad.item() == 1.0


# ------------------------------------------------------------------ fan-out
def test_fan_out_x_times_x():
    compare(lambda x: x * x, lambda t: t * t, np.array([1.5, -2.0, 0.5]), seed=np.random.default_rng(5))


def test_fan_out_into_several_consumers():
    compare(lambda x: (x * 2 + x.exp() + x * x - x.tanh()).sum(axis=0) @ x,
            lambda t: (t * 2 + t.exp() + t * t - t.tanh()).sum(dim=0) @ t,
            np.random.default_rng(6).normal(size=(3, 3)), seed=np.random.default_rng(7))


def test_fan_out_of_an_intermediate():
    compare(lambda x, w: (lambda h: h * h + h.sigmoid() - h @ w)(x @ w),
            lambda x, w: (lambda h: h * h + h.sigmoid() - h @ w)(x @ w),
            np.random.default_rng(8).normal(size=(2, 3)), np.random.default_rng(9).normal(size=(3, 3)),
            seed=np.random.default_rng(10))


# ------------------------------------------------------------------ deep graphs
def test_chain_of_100_000_ops_builds_and_backpropagates():
    n, c = 100_000, 1.00001
    x = Tensor(1.0)
    y = x
    for _ in range(n):
        y = y * c
    topo, weights = y.create_graph()
    assert len(topo) == n + 1 and weights == [x]
    y.backward()
    assert_close(y.value, c ** n, "value")
    assert_close(x.grad, c ** n, "grad")


def test_fan_in_of_100_000_ops():
    n = 100_000
    x = Tensor(0.5)
    y = x
    for _ in range(n):
        y = y + x
    y.backward()
    assert x.grad.item() == n + 1


# ------------------------------------------------------------------ gradient descent by hand
def test_gradient_descent_by_hand_matches_torch_and_the_contract():
    x = Tensor([1.0])
    tx = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        y = x ** 2 + 1
        loss = (y - 1.5) ** 2
        loss.backward()
        x.value = x.value - 0.01 * x.grad
        ty = tx ** 2 + 1
        t_loss = (ty - 1.5) ** 2
        t_loss.backward()
        with torch.no_grad():
            tx -= 0.01 * tx.grad
        tx.grad.zero_()
    assert_close(x.value, tx.detach().numpy(), "x")
    assert_close(y.value, ty.detach().numpy(), "y")
    assert_close(loss.value, t_loss.detach().numpy(), "loss")
    # the contract's figures (rounded as printed there)
    np.testing.assert_allclose([x.item(), y.item(), loss.item()], [0.7100436, 1.50433688, 1.88085134e-05],
                               rtol=1e-6)
