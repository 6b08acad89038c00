"""The engine skips copies only where nothing else can see the array (pygrad._refs).

`Tensor.grad` hands out an op rule's fresh gradient without copying it, optimizers update a
parameter's array in place when nothing else refers to it, and a Module copies its weights
with `Tensor.__deepcopy__`. Each test below is a case where an array IS shared, and checks
that the sharing never shows: an in-place write reaches one tensor only, an old graph keeps
its values, an array a user holds does not change under them."""
import copy
import sys

import numpy as np
import pytest

from pygrad import SGD, Linear, Module, ReLU, Tensor, _refs


def test_unshared_counts_holders_exactly():
    assert _refs.unshared is _refs._unshared, "CPython should use the reference-count test"
    a = np.zeros(4)
    assert _refs.unshared(a, 1)
    b = a
    assert not _refs.unshared(a, 1) and _refs.unshared(a, 2)
    del b
    holder = [a]
    assert not _refs.unshared(a, 1)
    del holder
    view = np.zeros(6)[1:]
    assert _refs.unshared(view, 1)              # its base is held by the view only
    other = view[2:]
    assert not _refs.unshared(view, 1) and not _refs.unshared(other, 1)
    assert not _refs.unshared(np.frombuffer(bytearray(16)), 1)   # base is not an ndarray


def _writes_reach_only(tensor, others):
    """Write into tensor.grad in place; return the others whose grad changed."""
    before = [o.grad.copy() for o in others]
    tensor.grad[...] = 12345.0
    return [o for o, b in zip(others, before) if not np.array_equal(o.grad, b)]


@pytest.mark.parametrize("build", [
    lambda x, w: x + w,                       # add passes its incoming gradient to both operands
    lambda x, w: (x + w) * 2.0,
    lambda x, w: (x - w).reshape(6),          # reshape's gradient is a view of the incoming one
    lambda x, w: (x + w).T,
    lambda x, w: x * w + x,                   # fan-out: x gets two contributions
    lambda x, w: (x @ w.T).sum(axis=0),
])
def test_a_grad_written_in_place_reaches_its_tensor_only(build):
    rng = np.random.default_rng(0)
    x, w = Tensor(rng.standard_normal((2, 3))), Tensor(rng.standard_normal((2, 3)))
    y = build(x, w)
    loss = (y * y).sum()
    loss.backward()
    nodes = loss.topo
    for t in nodes:
        others = [o for o in nodes if o is not t]
        assert _writes_reach_only(t, others) == [], t


def test_the_root_grad_is_never_handed_out_as_the_shared_seed():
    x = Tensor(np.ones((2, 2)))
    y = x * 3.0
    y.backward()
    g = y.grad
    g[...] = 7.0                                # the seed is a read-only view: the getter copied it
    y2 = x * 3.0
    y2.backward()
    np.testing.assert_array_equal(y2.grad, np.ones((2, 2)))
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 3.0))


def test_grad_is_not_copied_when_nothing_else_holds_it():
    x, w = Tensor(np.ones((4, 3))), Tensor(np.ones((3, 2)))
    (x @ w).sum().backward()
    assert w.grad is w.grad                      # handed out once, then owned
    g = w._grad
    assert g.base is None or g.base.base is None
    # the same array object, no copy: what the matmul rule made for w alone
    assert w.grad is g


def test_a_held_grad_is_not_changed_by_later_passes():
    x = Tensor([1.0])
    y = x ** 2 + x + 1
    y.backward()
    held = x.grad
    y.backward(reset_grad=False)
    np.testing.assert_array_equal(held, [3.0])   # the engine rebinds, never writes into it
    np.testing.assert_array_equal(x.grad, [11.0])   # the documented accumulation


class _MLP(Module):
    def __init__(self):
        self.dense1, self.relu, self.dense2 = Linear(3, 4), ReLU(), Linear(4, 2)
        super().__init__(x=Tensor(np.ones((1, 1, 3)), leaf=True))

    def forward(self, x):
        return self.dense2(self.relu(self.dense1(x)))


def test_sgd_keeps_an_array_that_a_graph_or_a_user_holds():
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((3, 2)))
    x = Tensor(rng.standard_normal((4, 3)), leaf=True)
    loss = (x @ w).sum()
    loss.backward()
    grads_before = x.grad.copy()
    value_before = w.value
    saved = value_before.copy()
    SGD([w], lr=0.1).step(loss)
    # the graph (and the user, through `value_before`) hold w's old array: it is not overwritten
    np.testing.assert_array_equal(value_before, saved)
    np.testing.assert_array_equal(w.value, saved - 0.1 * w.grad)
    loss.backward()                              # the old graph still computes with the old value
    np.testing.assert_array_equal(x.grad, grads_before)


def test_sgd_updates_in_place_what_only_the_parameter_holds():
    model = _MLP()
    optim = SGD(model.weights, lr=0.1)
    loss = (model(x=Tensor(np.ones((2, 1, 3)), leaf=True)) ** 2).sum()
    loss.backward()
    w = model.dense1.W
    twin = model.copy.dense1.W
    expected = w.value - 0.1 * twin.grad
    ident = id(w.value)
    optim.step(loss)                              # the graph holds the twin, not w
    assert id(w.value) == ident
    np.testing.assert_array_equal(w.value, expected)
    np.testing.assert_array_equal(twin.value, expected)


def _train(steps, reset):
    np.random.seed(0)
    model = _MLP()
    optim = SGD(model.weights, lr=0.05)
    x = Tensor(np.random.default_rng(2).standard_normal((5, 1, 3)), leaf=True)
    losses, held = [], []
    for _ in range(steps):
        if reset:
            model.model_reset()
        optim.zero_grad()
        loss = (model(x=x) ** 2).sum()
        loss.backward()
        held.append((model.dense1.W.value, model.dense1.W.value.copy()))
        optim.step(loss)
        losses.append(loss.item())
    return model, losses, held


@pytest.mark.parametrize("reset", [True, False])
def test_module_training_is_the_same_with_and_without_in_place_updates(reset, monkeypatch):
    model, losses, _ = _train(6, reset)
    from pygrad import _refs as refs_module
    from pygrad import optims
    monkeypatch.setattr(optims, "unshared", lambda a, holders: False)   # never in place
    monkeypatch.setattr(refs_module, "unshared", lambda a, holders: False)
    model2, losses2, _ = _train(6, reset)
    assert losses == losses2
    for (n1, w1), (n2, w2) in zip(model.named_weights(), model2.named_weights()):
        np.testing.assert_array_equal(w1.value, w2.value)
        if model.copy is not None:
            twin = dict(model.copy.named_weights())[n1]
            np.testing.assert_array_equal(twin.value, w1.value)    # the twin holds the new value
            assert twin.value is not w1.value                        # ... in its own array


def test_module_copy_and_original_never_share_arrays():
    model, _, held = _train(3, reset=True)
    for array, saved in held:                     # arrays handed to the user before a step
        np.testing.assert_array_equal(array, saved)
    x = Tensor(np.ones((2, 1, 3)), leaf=True)
    model.model_reset()
    model(x=x)
    for (name, w), (_, twin) in zip(model.named_weights(), model.copy.named_weights()):
        assert not np.shares_memory(w.value, twin.value), name
        twin.value[...] = 0.0
        assert np.any(w.value != 0.0), name


def test_tensor_deepcopy_is_a_deep_copy():
    w = Tensor(np.arange(6.0).reshape(2, 3), label="w")
    w.grad = np.ones((2, 3))
    c = copy.deepcopy(w)
    assert c.uid == w.uid and c.label == "w" and c.leaf == w.leaf and c.learnable == w.learnable
    assert not np.shares_memory(c.value, w.value) and not np.shares_memory(c.grad, w.grad)
    np.testing.assert_array_equal(c.value, w.value)
    np.testing.assert_array_equal(c.grad, w.grad)
    # tensors sharing one array stay sharing in the copy (deepcopy's memo), as before
    a = Tensor(np.zeros(3))
    b = Tensor(np.zeros(3))
    b._value = a._value
    a2, b2 = copy.deepcopy([a, b])
    assert a2.value is b2.value and a2.value is not a.value
    # a tensor with a graph copies the graph
    y = w * 2.0 + 1.0
    y2 = copy.deepcopy(y)
    assert y2._prev[0] is not y._prev[0] and y2._prev[0]._prev[0].uid == w.uid
    assert y2._prev[0]._prev[0] is not w and y2._backward is y._backward   # closures: as deepcopy does


def test_refs_fall_back_to_copying_where_counts_are_unknown(monkeypatch):
    from pygrad import optims, tensor
    monkeypatch.setattr(tensor, "unshared", lambda a, holders: False)
    monkeypatch.setattr(optims, "unshared", lambda a, holders: False)
    x, w = Tensor(np.ones((4, 3))), Tensor(np.ones((3, 2)))
    (x @ w).sum().backward()
    g = w._grad
    assert w.grad is not g                        # copied, as before this optimisation
    np.testing.assert_array_equal(w.grad, g)
    assert sys.getrefcount(w.grad) >= 2
