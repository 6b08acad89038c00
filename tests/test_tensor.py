"""The Tensor object: construction, dtypes, attributes, flags and helpers."""
import numpy as np
import pytest
import torch

import pygrad
from pygrad import Tensor
from pygrad.constants import PRECISION
from pygrad.tensor import array
from tests._compare import assert_close, compare


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize("value,shape", [
    (3, ()), (2.5, ()), (np.float32(1.5), ()), (np.int64(4), ()), (True, ()), ([1, 2, 3], (3,)),
    ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], (3, 2)), (np.arange(6).reshape(2, 3), (2, 3)),
    (np.ones((2, 1, 3), dtype=np.float32), (2, 1, 3)), ([], (0,)),
])
def test_construction_stores_a_float64_ndarray(value, shape):
    x = Tensor(value)
    assert type(x.value) is np.ndarray and x.value.dtype == PRECISION == np.float64
    assert x.shape == shape
    np.testing.assert_array_equal(x.value, np.asarray(value, dtype=np.float64))


def test_construction_copies_an_ndarray():
    a = np.array([1.0, 2.0])
    x = Tensor(a)
    a[0] = 7.0
    assert x.value[0] == 1.0


def test_tensor_value_is_copied_without_graph():
    x = Tensor([1.0, 2.0])
    y = x * 3
    z = Tensor(y, label="z")
    assert z._prev == () and z.value is not y.value and not z.leaf and z.learnable
    np.testing.assert_array_equal(z.value, [3.0, 6.0])
    y.value[0] = -1.0
    assert z.value[0] == 3.0


def test_array_is_the_constructor():
    x = array([1, 2], label="a", dtype=np.float32, leaf=True)
    assert isinstance(x, Tensor) and x.label == "a" and x.dtype == np.float32 and x.leaf
    assert pygrad.array is array


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble, "float32"])
def test_floating_dtypes(dtype):
    x = Tensor([[1, 2, 3]], dtype=dtype)
    assert x.dtype == np.dtype(dtype) and x.value.dtype == np.dtype(dtype)
    assert x.grad.dtype == np.dtype(dtype) and x.grad.shape == (1, 3)
    y = (x * x).sum()
    assert y.dtype == np.dtype(dtype)
    y.backward()
    assert x.grad.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(x.grad, [[2, 4, 6]])


# ------------------------------------------------------------------ attributes
def test_defaults():
    x = Tensor(1.0)
    assert x.label == "" and x.learnable and not x.leaf and x._prev == ()


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_grad_is_zeros_of_the_value_shape_and_dtype_at_creation(shape):
    x = Tensor(np.ones(shape), dtype=np.float32)
    assert type(x.grad) is np.ndarray and x.grad.shape == shape and x.grad.dtype == np.float32
    assert not x.grad.any()


def test_value_is_assignable_for_a_gradient_step():
    x = Tensor([1.0, -2.0])
    (x * x).sum().backward()
    x.value = x.value - 0.1 * x.grad
    assert_close(x.value, [0.8, -1.6], "value")


def test_shape_follows_the_current_value():
    x = Tensor([1.0, 2.0])
    x.value = np.ones((3, 4))
    assert x.shape == (3, 4) and x.value.shape == (3, 4)


def test_value_assignment_keeps_the_dtype():
    x = Tensor([1.0, 2.0], dtype=np.float32)
    x.value = np.array([3.0, 4.0])
    assert x.dtype == np.float32
    x.value = [5, 6]
    assert x.dtype == np.float32 and x.value.tolist() == [5.0, 6.0]


def test_grad_is_an_ndarray_after_backward_also_for_0d():
    x = Tensor(2.0)
    (x * x).backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad.item() == 4.0


def test_each_tensor_owns_its_grad_array():
    # As in torch: writing into one tensor's .grad in place changes no other tensor's.
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    c = a + b
    d = c.reshape(2, 1)
    d.backward()
    a.grad[0] = 10.0
    b.grad += 1.0
    d.grad *= 5.0
    assert a.grad.tolist() == [10.0, 1.0] and b.grad.tolist() == [2.0, 2.0]
    assert c.grad.tolist() == [1.0, 1.0] and d.grad.tolist() == [[5.0], [5.0]]
    d.backward(reset_grad=False)  # the held grads are the ones written above
    assert a.grad.tolist() == [12.0, 3.0] and b.grad.tolist() == [4.0, 4.0]  # root reseeded with ones


def test_grad_is_assignable():
    x = Tensor([1.0, 2.0])
    x.grad = [3.0, 4.0]
    assert x.grad.dtype == x.dtype and x.grad.tolist() == [3.0, 4.0]


def test_ndim_size_len():
    x = Tensor(np.ones((2, 3)))
    assert (x.ndim, x.size, len(x)) == (2, 6, 2)


# ------------------------------------------------------------------ learnable and leaf
def test_op_results_are_learnable_leaves():
    x = Tensor(2.0)
    y = x * 3
    assert y.leaf and y.learnable and y._prev[0] is x


def test_non_tensor_operands_become_constants():
    x = Tensor([1.0, 2.0])
    for y in (x + 1, 2.0 * x, x - np.ones(2), [1.0, 1.0] / x):
        const = next(p for p in y._prev if p is not x)
        assert isinstance(const, Tensor) and not const.learnable and const.leaf


def test_constants_receive_no_gradient_work():
    x = Tensor([1.0, 2.0])
    y = x * np.array([3.0, 4.0])
    y.backward()
    const = y._prev[1]
    assert const._grad is None or not np.any(const._grad)


def test_user_leaf_is_in_topo_but_not_in_weights():
    w, x = Tensor(2.0), Tensor(3.0, leaf=True)
    y = w * x
    topo, weights = y.create_graph()
    assert [t for t in topo if t is x] == [x] and weights == [w]


def test_constants_are_absent_from_both_graphs():
    x = Tensor(1.0)
    y = (x + 1) * np.float64(2.0) - [3.0]
    topo, weights = y.create_graph()
    assert all(t.learnable for t in topo) and len(topo) == 4 and weights == [x]


# ------------------------------------------------------------------ NumPy interplay and identity
@pytest.mark.parametrize("op", [
    lambda a, x: a + x, lambda a, x: a - x, lambda a, x: a * x, lambda a, x: a / x, lambda a, x: a ** x,
    lambda a, x: np.float64(2.0) * x, lambda a, x: np.float32(2.0) + x,
], ids=["add", "sub", "mul", "div", "pow", "np.float64*", "np.float32+"])
def test_ndarray_op_tensor_gives_a_tensor(op):
    x = Tensor([1.0, 2.0])
    out = op(np.array([[2.0, 3.0]]), x)
    assert isinstance(out, Tensor) and out._prev
    out.backward()
    assert x.grad.shape == (2,) and x.grad.any()


def test_ndarray_matmul_tensor_gives_a_tensor():
    x = Tensor(np.ones((3, 2)))
    out = np.ones((4, 3)) @ x
    assert isinstance(out, Tensor) and out.shape == (4, 2)


def test_tensors_are_hashed_and_compared_by_identity():
    a, b = Tensor(1.0), Tensor(1.0)
    assert Tensor.__eq__ is object.__eq__ and Tensor.__hash__ is object.__hash__
    assert len({a, b, a}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"


# ------------------------------------------------------------------ helpers
def test_reset_grad_zeroes_the_gradient():
    x = Tensor([1.0, 2.0], dtype=np.float32)
    (x * x).backward()
    x.reset_grad()
    assert x.grad.shape == (2,) and x.grad.dtype == np.float32 and not x.grad.any()


def test_new_value_replaces_value_zeroes_grad_keeps_graph():
    x = Tensor([1.0, 2.0])
    y = x * 3
    y.backward()
    x.new_value([5.0, 6.0])
    assert x.value.tolist() == [5.0, 6.0] and not x.grad.any() and y._prev[0] is x
    y.backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_item():
    assert Tensor(2.5).item() == 2.5 and Tensor([[4.0]]).item() == 4.0
    assert isinstance(Tensor(2.5).item(), float)


def test_numpy_is_the_value():
    x = Tensor([1.0, 2.0])
    assert x.numpy() is x.value


def test_detach_is_an_independent_leaf():
    x = Tensor([1.0, 2.0], dtype=np.float32)
    y = (x * 2).detach()
    assert isinstance(y, Tensor) and y._prev == () and y.leaf and y.dtype == np.float32
    assert y.value.tolist() == [2.0, 4.0]
    z = y * y
    z.backward()
    assert z.create_graph()[0] == [y, z] and not x.grad.any()


def test_repr():
    text = repr(Tensor([1.0, 2.5], label="w"))
    assert text.startswith("Tensor([1") and "2.5" in text and "label='w'" in text
    text = repr(Tensor(3.0, dtype=np.float32, learnable=False, leaf=True))
    assert text.startswith("Tensor(3.") and "float32" in text and "learnable=False" in text and "leaf=True" in text


# ------------------------------------------------------------------ the seed's examples, as corrected
@pytest.mark.parametrize("shape", [(2, 30), (4, 30), (3, 2, 30), (2, 1, 5, 30)])
def test_matmul_with_a_batched_ndarray_broadcasts(shape):
    w = np.ones((1, 30, 20))
    _, out = compare(lambda x: x @ w, lambda t: t @ torch.tensor(w),
                     np.random.default_rng(0).normal(size=shape), seed=np.random.default_rng(1))
    assert out.shape == np.broadcast_shapes(shape[:-2], (1,)) + (shape[-2], 20)


def test_seed_example_graph():
    x = Tensor(1, label="x")
    y = x ** 2 + x + 1
    assert y.item() == 3.0
    y.backward()
    assert x.grad.item() == 3.0


def test_seed_example_weights_of_a_linear_layer():
    w = Tensor(np.random.default_rng(2).uniform(-1, 1, (1, 3, 2)), label="W")
    b = Tensor(np.zeros((1, 1, 2)), label="B")
    x = Tensor(np.ones((5, 1, 3)), leaf=True)
    y = x @ w + b
    y.backward()
    assert y.weights == [w, b] and w.grad.shape == (1, 3, 2) and b.grad.shape == (1, 1, 2)
    assert_close(w.grad, np.full((1, 3, 2), 5.0), "grad of W")
    assert_close(b.grad, np.full((1, 1, 2), 5.0), "grad of B")
