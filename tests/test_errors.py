"""Bad inputs raise TypeError/ValueError naming the operation and the shapes, at forward time.

Every `pytest.raises` block below holds only the forward call: an error is never deferred
to `backward`.
"""
import re

import numpy as np
import pytest

from pygrad import Tensor


def T(*shape):
    return Tensor(np.ones(shape))


def shapes_pattern(op, *shapes):
    """A regex: the op's name, then each shape, in this order."""
    return ".*".join([re.escape(op)] + [re.escape(str(s)) for s in shapes])


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize("value,exc", [
    (1 + 2j, TypeError), (np.complex128(1), TypeError), (np.array([1 + 1j]), TypeError), ([1j, 2], TypeError),
    ("abc", TypeError), (b"abc", TypeError), (["a", "b"], TypeError), (np.array(["a"]), TypeError),
    (None, TypeError), ([1.0, None], TypeError), (object(), TypeError), (np.array([1, "a"], dtype=object), TypeError),
    ([[1, 2], [3]], ValueError), ([1, [2, 3]], ValueError),
], ids=["complex", "np.complex128", "complex array", "complex list", "str", "bytes", "str list", "str array",
        "None", "None in list", "object", "object array", "ragged", "ragged nesting"])
def test_bad_values(value, exc):
    with pytest.raises(exc, match="Tensor: value"):
        Tensor(value)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool, np.bool_, "U", np.complex128, object, "nonsense"])
def test_non_float_dtype(dtype):
    with pytest.raises(TypeError, match="Tensor: dtype"):
        Tensor(1.0, dtype=dtype)


@pytest.mark.parametrize("value", ["abc", None, 1j, [[1, 2], [3]]])
def test_bad_value_assignment(value):
    x = T(2)
    with pytest.raises((TypeError, ValueError), match="Tensor.value"):
        x.value = value


# ------------------------------------------------------------------ binary ops
BINARY = [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
          ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b)]


@pytest.mark.parametrize("sa,sb", [((2, 3), (4,)), ((2, 3), (3, 2)), ((5,), (4,)), ((2, 1, 3), (4, 2))])
@pytest.mark.parametrize("op,fn", BINARY, ids=[b[0] for b in BINARY])
def test_incompatible_shapes(op, fn, sa, sb):
    with pytest.raises(ValueError, match=shapes_pattern(op, sa, sb)):
        fn(T(*sa), T(*sb))


@pytest.mark.parametrize("op,fn", BINARY, ids=[b[0] for b in BINARY])
def test_incompatible_ndarray_operand(op, fn):
    with pytest.raises(ValueError, match=shapes_pattern(op, (2, 3), (4,))):
        fn(T(2, 3), np.ones(4))


@pytest.mark.parametrize("op,fn", [("add", lambda x, c: c + x), ("sub", lambda x, c: c - x),
                                   ("mul", lambda x, c: c * x), ("div", lambda x, c: c / x),
                                   ("pow", lambda x, c: c ** x)], ids=["radd", "rsub", "rmul", "rdiv", "rpow"])
def test_incompatible_reflected_operand(op, fn):
    either_order = f"{shapes_pattern(op, (2, 3), (4,))}|{shapes_pattern(op, (4,), (2, 3))}"
    with pytest.raises(ValueError, match=either_order):
        fn(T(2, 3), np.ones(4))


@pytest.mark.parametrize("operand,exc", [(None, TypeError), ("a", TypeError), (1j, TypeError),
                                         (np.array(["a"]), TypeError), ([[1, 2], [3]], ValueError)])
@pytest.mark.parametrize("op,fn", BINARY, ids=[b[0] for b in BINARY])
def test_bad_operand_values(op, fn, operand, exc):
    with pytest.raises(exc, match=f"{op}: operand"):
        fn(T(2), operand)


def test_tensor_exponent_with_incompatible_shape():
    with pytest.raises(ValueError, match=shapes_pattern("pow", (2, 3), (4,))):
        T(2, 3) ** Tensor(np.ones(4))


# ------------------------------------------------------------------ matmul
@pytest.mark.parametrize("sa,sb,why", [
    ((2, 3), (2, 3), "not aligned"), ((3,), (4,), "not aligned"), ((2, 3), (4,), "not aligned"),
    ((4,), (3, 2), "not aligned"), ((5, 2, 3), (5, 4, 2), "not aligned"),
    ((), (3,), "at least 1-D"), ((3,), (), "at least 1-D"), ((), (), "at least 1-D"),
    ((2, 2, 3), (3, 3, 2), "batch"), ((4, 2, 2, 3), (5, 3, 2), "batch"),
])
def test_matmul_bad_shapes(sa, sb, why):
    with pytest.raises(ValueError, match=shapes_pattern("matmul", sa, sb)) as info:
        T(*sa) @ T(*sb)
    assert why in str(info.value)


def test_ndarray_matmul_tensor_bad_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("matmul", (2, 4), (3, 2))):
        np.ones((2, 4)) @ T(3, 2)


def test_matmul_bad_operand():
    with pytest.raises(TypeError, match="matmul: operand"):
        T(2, 2) @ "ab"


# ------------------------------------------------------------------ conv2D
@pytest.mark.parametrize("kshape,xshape,kw,why", [
    ((1, 4, 3, 3, 3), (2, 2, 5, 5), {}, "channels"),
    ((1, 4, 3, 6, 3), (2, 3, 5, 5), {}, "larger"),
    ((1, 4, 3, 3, 6), (2, 3, 5, 5), {}, "larger"),
    ((1, 4, 3, 8, 8), (2, 3, 5, 5), {"padding": 1}, "larger"),
    ((4, 3, 3, 3), (2, 3, 5, 5), {}, "5-D"),
    ((1, 1, 4, 3, 3, 3), (2, 3, 5, 5), {}, "5-D"),
    ((1, 4, 3, 3, 3), (3, 5, 5), {}, "4-D"),
    ((1, 4, 3, 3, 3), (1, 2, 3, 5, 5), {}, "4-D"),
    ((3, 4, 3, 3, 3), (2, 3, 5, 5), {}, "batch"),
    ((2, 4, 3, 3, 3), (5, 3, 5, 5), {}, "batch"),
    ((1, 4, 3, 3, 3), (2, 3, 5, 5), {"stride": 0}, "stride"),
    ((1, 4, 3, 3, 3), (2, 3, 5, 5), {"padding": -1}, "padding"),
])
def test_conv2D_bad_shapes(kshape, xshape, kw, why):
    with pytest.raises(ValueError, match=shapes_pattern("conv2D", kshape, xshape)) as info:
        T(*kshape).conv2D(T(*xshape), **kw)
    assert why in str(info.value)


@pytest.mark.parametrize("kw", [{"stride": 1.5}, {"padding": "same"}, {"stride": True}])
def test_conv2D_bad_stride_or_padding_type(kw):
    with pytest.raises(TypeError, match="conv2D"):
        T(1, 1, 1, 2, 2).conv2D(T(1, 1, 4, 4), **kw)


# ------------------------------------------------------------------ axes
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (1, -3)])
@pytest.mark.parametrize("op", ["sum", "mean", "std"])
def test_reduction_axis_out_of_range(op, axis):
    with pytest.raises(ValueError, match=shapes_pattern(op, (2, 3))):
        getattr(T(2, 3), op)(axis=axis)


@pytest.mark.parametrize("op", ["sum", "mean", "std"])
def test_reduction_repeated_axis(op):
    with pytest.raises(ValueError, match=shapes_pattern(op, (2, 3))):
        getattr(T(2, 3), op)(axis=(1, -1))


@pytest.mark.parametrize("axis", [1.5, "0", [0]])
@pytest.mark.parametrize("op", ["sum", "mean", "std"])
def test_reduction_axis_type(op, axis):
    with pytest.raises(TypeError, match=op):
        getattr(T(2, 3), op)(axis=axis)


@pytest.mark.parametrize("axis", [2, -3])
@pytest.mark.parametrize("op", ["softmax", "softmax_log"])
def test_softmax_axis_out_of_range(op, axis):
    with pytest.raises(ValueError, match=shapes_pattern(op, (2, 3))):
        getattr(T(2, 3), op)(axis=axis)


@pytest.mark.parametrize("op", ["softmax", "softmax_log"])
def test_softmax_of_0d(op):
    with pytest.raises(ValueError, match=shapes_pattern(op, ())):
        getattr(T(), op)()


@pytest.mark.parametrize("axis", [None, (0, 1)])
@pytest.mark.parametrize("op", ["softmax", "softmax_log"])
def test_softmax_needs_a_single_axis(op, axis):
    with pytest.raises(TypeError, match=op):
        getattr(T(2, 3), op)(axis=axis)


# ------------------------------------------------------------------ shape ops and indexing
def test_reshape_incompatible_size():
    with pytest.raises(ValueError, match=shapes_pattern("reshape", (2, 3), (4, 2))):
        T(2, 3).reshape(4, 2)


@pytest.mark.parametrize("axes", [(0, 0), (0,), (0, 1, 2), (0, 2)])
def test_transpose_not_a_permutation(axes):
    with pytest.raises(ValueError, match=shapes_pattern("transpose", axes, (2, 3))):
        T(2, 3).transpose(axes)


def test_getitem_out_of_range():
    with pytest.raises(IndexError, match=shapes_pattern("getitem", (2, 3))):
        T(2, 3)[np.array([0, 2])]


@pytest.mark.parametrize("idcs", [(np.array([0, 2]), np.array([0, 1])), (np.array([0]), np.array([3])),
                                  (np.array([-3]), np.array([0]))])
def test_mask_idcs_out_of_range(idcs):
    with pytest.raises(ValueError, match=shapes_pattern("mask_idcs", (2, 3))):
        T(2, 3).mask_idcs(idcs)


def test_a_failed_op_leaves_the_graph_usable():
    x = T(2, 3)
    y = x * 2
    with pytest.raises(ValueError, match="add"):
        y + T(4)
    y.sum().backward()
    assert np.all(x.grad == 2)


# ------------------------------------------------------------------ domain errors are not exceptions
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_numerical_domain_errors_follow_numpy():
    x = Tensor([-1.0, 0.0, 1.0])
    y = x.log() + x / x
    assert np.isnan(y.value[0]) and np.isnan(y.value[1]) and y.value[2] == 1.0
    y.backward()
    assert x.grad.shape == (3,)
