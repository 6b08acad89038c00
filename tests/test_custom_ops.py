"""pygrad.function: user-defined ops behave like built-in ones (values, gradients vs torch,
broadcasting, graphs, reset_grad, learnable=False, Modules) and refuse bad rules clearly."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pygrad
from pygrad import SGD, Linear, Module, Tanh, Tensor
from tests._compare import assert_close, compare

rng = np.random.default_rng(15)


@pygrad.function
def softplus(x):
    """log(1 + e^x)."""
    def backward(g):
        return g * 0.5 * (1 + np.tanh(x / 2))     # g * sigmoid(x), stable
    return np.logaddexp(0.0, x), backward


@pygrad.function
def mul(a, b):
    def backward(g):
        return g * b, g * a                        # output-shaped: pygrad sums the broadcast dims
    return a * b, backward


@pygrad.function
def tanh(x):
    y = np.tanh(x)

    def backward(g):
        return g * (1 - y * y)
    return y, backward


@pygrad.function
def scale(x, factor=1.0):
    return x * factor, lambda g: g * factor


def test_value_and_gradient_equal_torch_any_shape():
    for shape in [(), (4,), (2, 3), (2, 1, 3)]:
        compare(softplus, F.softplus, rng.normal(size=shape) * 3, seed=rng)


def test_float32_operand_keeps_float32_value_and_gradient():
    compare(softplus, F.softplus, rng.normal(size=(3, 2)), seed=rng, dtype=np.float32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sa, sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)),
                                    ((1, 3), (2, 1))])
def test_broadcast_operands_get_gradients_summed_to_their_shapes(sa, sb):
    xs, out = compare(mul, torch.mul, rng.normal(size=sa), rng.normal(size=sb), seed=rng)
    assert xs[0].grad.shape == sa and xs[1].grad.shape == sb


def test_rule_may_return_the_operands_shape_or_none():
    @pygrad.function
    def first(a, b):
        return a + 0 * b, lambda g: (np.sum(g, axis=0), None)   # a is (3,), output (2, 3)
    a, b = Tensor(np.ones(3)), Tensor(np.ones((2, 3)))
    first(a, b).backward()
    assert np.array_equal(a.grad, [2.0, 2.0, 2.0]) and not np.any(b.grad)


def test_constant_operands_and_keyword_parameters():
    x = Tensor(rng.normal(size=(2, 3)), dtype=np.float32)
    y = mul(x, 2.5)                     # a Python float does not upcast float32 (NEP 50), as for x * 2.5
    assert y.dtype == np.float32 and np.array_equal(y.value, (x * 2.5).value)
    z = mul(np.arange(3.0), x)          # an array constant: wrapped like x + array
    z.sum().backward()
    assert np.array_equal(x.grad, np.broadcast_to(np.arange(3.0), (2, 3)).astype(np.float32))
    w = scale(x, factor=3.0)
    w.sum().backward()
    assert np.array_equal(x.grad, np.full((2, 3), 3.0, dtype=np.float32))
    assert all(not t.learnable for t in z._prev[:1])   # the constant is recorded as a constant


def test_graph_structure_fan_out_and_create_graph():
    x = Tensor(0.7, label="x")
    s = softplus(x)
    y = s * x + s
    topo, weights = y.create_graph()
    assert topo[0] is x and topo[1] is s and topo[-1] is y and weights == [x]
    y.backward()
    sig = 1 / (1 + np.exp(-0.7))
    expected = sig * 0.7 + np.logaddexp(0, 0.7) + sig   # s fans out into two consumers
    assert_close(x.grad, expected, "fan-out through a custom op")


def test_reset_grad_false_accumulates_like_a_built_in_op():
    def run(op):
        x = Tensor([0.3, -1.2])
        y = op(x) * op(x) + op(x)
        y.backward()
        y.backward()
        y.backward(reset_grad=False)
        return x.grad
    assert_close(run(tanh), run(lambda t: t.tanh()), "backward x2 then backward(reset_grad=False)", rtol=1e-13)


def test_learnable_false_receives_its_gradient_and_stops_the_flow():
    x = Tensor([0.5, -0.25])
    h = x * 2
    h.learnable = False
    y = softplus(h).sum()
    y.backward()
    sig = 1 / (1 + np.exp(-h.value))
    assert_close(h.grad, sig, "the stopped node's own gradient")
    assert not np.any(x.grad) and h not in y.topo


def test_deep_chain_of_custom_ops_backpropagates():
    x = Tensor([0.1])
    y = x
    for _ in range(20000):
        y = scale(y, factor=1.0)
    y.backward()
    assert x.grad[0] == 1.0


class Net(Module):
    def __init__(self, act):
        self.dense1, self.act, self.dense2 = Linear(3, 6), act, Linear(6, 2)
        super().__init__(x=Tensor(np.zeros((1, 1, 3)), leaf=True))

    def forward(self, x):
        return self.dense2(self.act(self.dense1(x)))


def test_inside_a_module_equals_the_built_in_equivalent_and_leaves_originals_untouched():
    np.random.seed(3)
    custom = Net(tanh)
    np.random.seed(3)
    builtin = Net(Tanh())
    x = Tensor(rng.normal(size=(4, 1, 3)), leaf=True)
    before = [w.value.copy() for w in custom.weights]
    outs = []
    for model in (custom, builtin):
        out = model(x=x)
        (out ** 2).sum().backward()
        outs.append((out.value, [w.grad for w in model.copy.weights]))
    assert_close(outs[0][0], outs[1][0], "output", rtol=1e-13)
    for a, b in zip(outs[0][1], outs[1][1]):
        assert_close(a, b, "batched copy's gradient", rtol=1e-12)
    assert all(np.array_equal(w.value, v) and not np.any(w.grad) for w, v in zip(custom.weights, before))


def test_a_module_with_a_custom_op_trains():
    np.random.seed(0)
    model = Net(softplus)
    x = Tensor(rng.normal(size=(16, 1, 3)), leaf=True)
    y = Tensor(np.sin(x.value[..., :2]), leaf=True)
    optim = SGD(model.weights, lr=0.05)
    losses = []
    for _ in range(50):
        model.model_reset()
        optim.zero_grad()
        loss = ((model(x=x) - y) ** 2).mean(axis=None, keepdims=False)
        loss.backward()
        optim.step(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_operands_and_the_incoming_gradient_are_read_only():
    @pygrad.function
    def bad_forward(x):
        x += 1
        return x, lambda g: g

    @pygrad.function
    def bad_backward(x):
        def backward(g):
            g *= 2
            return g
        return x * 1.0, backward
    x = Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        bad_forward(x)
    assert np.array_equal(x.value, [1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        (bad_backward(x) * 3).sum().backward()


def test_identity_value_is_copied_not_shared_with_the_operand():
    @pygrad.function
    def ident(x):
        return x, lambda g: g
    x = Tensor([1.0, 2.0])
    y = ident(x)
    y.value[0] = 5.0
    assert x.value[0] == 1.0


@pytest.mark.parametrize("make, call, error, match", [
    (lambda: pygrad.function(3), None, TypeError, r"pygrad.function: expected a function"),
    (lambda: pygrad.function(lambda x: x), lambda f: f(Tensor([1.0])), TypeError,
     r"<lambda>: the forward must return \(value, backward\)"),
    (lambda: pygrad.function(lambda x: (x.astype(int), lambda g: g)), lambda f: f(Tensor([1.0])), TypeError,
     r"dtype int64"),
    (lambda: pygrad.function(lambda x: (Tensor(x), lambda g: g)), lambda f: f(Tensor([1.0])), TypeError,
     r"not a Tensor"),
    (lambda: scale, lambda f: f(Tensor([1.0]), factor=Tensor(2.0)), TypeError, r"scale: keyword argument 'factor'"),
    (lambda: pygrad.function(lambda a, b: (a + b, lambda g: g)), lambda f: f(Tensor([1.0]), Tensor([2.0])).backward(),
     ValueError, r"one gradient per operand \(2"),
    (lambda: pygrad.function(lambda a, b: (a * b, lambda g: (g, g[0]))),
     lambda f: f(Tensor(np.ones((2, 3))), Tensor(np.ones((2, 3)))).backward(), ValueError,
     r"gradient of shape \(3,\) for operand 1 of shape \(2, 3\).*output's \(2, 3\)"),
    (lambda: pygrad.function(lambda a, b: (a * b, lambda g: (g, g[0, :2]))),    # (2,) and (2, 3) do not broadcast
     lambda f: f(Tensor(np.ones((2, 3))), Tensor(np.ones((2, 3)))).backward(), ValueError,
     r"gradient of shape \(2,\) for operand 1 of shape \(2, 3\)"),
])
def test_bad_ops_and_rules_raise_naming_the_op_and_shapes(make, call, error, match):
    with pytest.raises(error, match=match):
        f = make()
        call(f)


def test_repr_and_name():
    assert repr(softplus) == "<pygrad.function softplus>" and softplus.__doc__ == "log(1 + e^x)."
