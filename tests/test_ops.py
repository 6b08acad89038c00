"""Every Tensor operation against PyTorch (float64): values and gradients.

Each test states one fact; `compare` (tests/_compare.py) runs both libraries, back-propagates
a random cotangent and checks values and gradients. Inputs come from fixed-seed generators
and stay away from kinks and poles unless the test is about one.
"""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pygrad import Tensor
from tests._compare import assert_close, compare


def rand(seed, *shape, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def away_from_zero(seed, *shape):
    """Values in ±[0.5, 2]: safe divisors, no kink at 0."""
    r = np.random.default_rng(seed)
    return r.uniform(0.5, 2.0, shape) * r.choice([-1.0, 1.0], shape)


def cot(seed=99):
    """A generator for `compare`'s random output cotangent."""
    return np.random.default_rng(seed)


# Pairs of operand shapes: 0-D and 1-D operands, and broadcasting in both directions.
BINARY_SHAPES = [
    ((), ()), ((3,), ()), ((), (3,)), ((4,), (4,)), ((2, 3), (3,)), ((3,), (2, 3)),
    ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)), ((1, 3), (2, 4, 1)), ((2, 3, 4), (2, 3, 4)),
    ((5, 1, 1), (1,)), ((1,), (5, 4)), ((2, 1, 4), (3, 1)),
]
UNARY_SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


# ------------------------------------------------------------------ + - * / and unary -
@pytest.mark.parametrize("sa,sb", BINARY_SHAPES)
@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
], ids=["add", "sub", "mul", "div"])
def test_binary(op, sa, sb):
    compare(op, op, rand(1, *sa), away_from_zero(2, *sb), seed=cot())


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
], ids=["add", "sub", "mul", "div"])
def test_binary_same_operand_twice(op):
    compare(lambda x: op(x, x), lambda t: op(t, t), away_from_zero(3, 2, 3), seed=cot())


@pytest.mark.parametrize("scale", [1e200, 1e-160])
def test_div_gradient_of_the_divisor_where_its_square_leaves_the_range(scale):
    """d(a/b)/db = -a / b**2 is an ordinary number for a ~ b ~ 1e200 (or 1e-160), although
    b**2 overflows (underflows): the gradient must not become 0."""
    a, b = Tensor([3.0 * scale]), Tensor([2.0 * scale])
    (a / b).backward()
    assert np.allclose(b.grad, -0.75 / scale, rtol=1e-14, atol=0)
    assert np.allclose(a.grad, 0.5 / scale, rtol=1e-14, atol=0)


@pytest.mark.parametrize("op", [
    lambda c, x: c + x, lambda c, x: c - x, lambda c, x: c * x, lambda c, x: c / x,
], ids=["radd", "rsub", "rmul", "rdiv"])
@pytest.mark.parametrize("const", [2.0, 3, np.float64(-1.5)], ids=["float", "int", "np.float64"])
def test_reflected_scalar(op, const):
    compare(lambda x: op(const, x), lambda t: op(const, t), away_from_zero(4, 2, 3), seed=cot())


@pytest.mark.parametrize("cshape,xshape", [((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (4,))])
@pytest.mark.parametrize("op", [
    lambda c, x: c + x, lambda c, x: c - x, lambda c, x: c * x, lambda c, x: c / x,
    lambda c, x: x - c, lambda c, x: x / c,
], ids=["radd", "rsub", "rmul", "rdiv", "sub_array", "div_array"])
def test_ndarray_operand(op, cshape, xshape):
    c = away_from_zero(5, *cshape)
    compare(lambda x: op(c, x), lambda t: op(torch.tensor(c), t), away_from_zero(6, *xshape), seed=cot())


@pytest.mark.parametrize("shape", UNARY_SHAPES)
def test_neg(shape):
    compare(lambda x: -x, lambda t: -t, rand(7, *shape), seed=cot())


# ------------------------------------------------------------------ **
@pytest.mark.parametrize("p", [0, 0.0, 1, 2, 2.0, 3, 3.5, 0.5, -1, -2.5, np.float64(1.5)])
def test_pow_scalar_exponent(p):
    compare(lambda x: x ** p, lambda t: t ** p, rand(8, 3, 4, low=0.5, high=2.0), seed=cot())


@pytest.mark.parametrize("p", [2, 3, -1, -2, 0])
def test_pow_integer_exponent_negative_base(p):
    compare(lambda x: x ** p, lambda t: t ** p, -rand(9, 5, low=0.5, high=2.0), seed=cot())


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # NumPy's inf, as documented
@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3.5])
def test_pow_at_zero_base_follows_torch(p):
    # 0 ** 0.5 has the infinite derivative torch reports; exponent 0 has derivative 0 everywhere
    compare(lambda x: x ** p, lambda t: t ** p, np.array([0.0, 0.0, 1.5, 0.25]), seed=cot())


@pytest.mark.parametrize("sa,sb", [((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (4,)), ((4,), ())])
def test_pow_tensor_exponent(sa, sb):
    compare(lambda a, b: a ** b, lambda a, b: a ** b, rand(10, *sa, low=0.5, high=2.0), rand(11, *sb), seed=cot())


def test_pow_tensor_exponent_zero_base_nonnegative_exponent():
    base, expo = np.array([0.0, 0.0, 0.0, 1.5, 2.0]), np.array([0.0, 2.0, 0.5, 0.0, -1.0])
    compare(lambda a, b: a ** b, lambda a, b: a ** b, base, expo, seed=cot())


@pytest.mark.parametrize("base", [2.0, 0.5, 3, np.float64(1.5)])
def test_scalar_pow_tensor(base):
    compare(lambda x: base ** x, lambda t: base ** t, rand(12, 2, 3), seed=cot())


def test_zero_pow_tensor_nonnegative_exponent():
    compare(lambda x: 0.0 ** x, lambda t: 0.0 ** t, np.array([0.0, 0.5, 1.0, 2.0, 3.5]), seed=cot())


def test_ndarray_pow_tensor():
    c = rand(13, 2, 3, low=0.5, high=2.0)
    compare(lambda x: c ** x, lambda t: torch.tensor(c) ** t, rand(14, 3), seed=cot())


# ------------------------------------------------------------------ @
MATMUL_SHAPES = [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((1, 3), (3, 1)),
    ((5, 1, 2, 3), (4, 3, 2)), ((4, 2, 3), (5, 1, 3, 2)), ((6, 1, 7), (1, 7, 3)), ((1, 6, 7), (4, 7, 3)),
    ((4, 1, 5), (1, 5, 3)), ((4, 2, 5), (1, 5, 3)), ((3,), (2, 3, 4)), ((2, 3, 4), (4,)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (4, 2)), ((2, 3), (1, 1, 3, 2)),
    # zero-size dimensions (an empty batch, an empty inner dimension)
    ((2, 0), (0, 3)), ((0, 3), (3, 2)), ((4, 2, 0), (0, 3)), ((0,), (0,)), ((3, 1, 2, 0), (5, 0, 4)),
    ((3, 1, 2, 3), (5, 3, 0)), ((0, 2, 3), (1, 3, 2)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    compare(lambda a, b: a @ b, lambda a, b: a @ b, rand(15, *sa), rand(16, *sb), seed=cot())


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((3,), (3, 2)), ((4, 3), (2, 3, 1))])
def test_ndarray_matmul_tensor(sa, sb):
    c = rand(17, *sa)
    out = compare(lambda x: c @ x, lambda t: torch.tensor(c) @ t, rand(18, *sb), seed=cot())[1]
    assert isinstance(out, Tensor)


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 4)), ((4, 2, 3), (1, 3, 5)), ((3,), (3,))])
def test_tensor_matmul_ndarray(sa, sb):
    c = rand(19, *sb)
    compare(lambda x: x @ c, lambda t: t @ torch.tensor(c), rand(20, *sa), seed=cot())


def test_matmul_same_operand_twice():
    compare(lambda x: x @ x, lambda t: t @ t, rand(21, 2, 3, 3), seed=cot())


# ------------------------------------------------------------------ reductions
REDUCE_CASES = [
    ((), None), ((5,), None), ((5,), 0), ((5,), -1), ((3, 4), None), ((3, 4), 0), ((3, 4), -1),
    ((3, 4), (0, 1)), ((2, 3, 4), 1), ((2, 3, 4), -2), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0)),
    ((2, 3, 4), (0, 1, 2)), ((2, 1, 4), 1),
]


def torch_dims(axis, ndim):
    """pygrad's axis as torch's dim (torch reads an empty tuple as 'all axes', like None)."""
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", REDUCE_CASES)
def test_sum(shape, axis, keepdims):
    compare(lambda x: x.sum(axis=axis, keepdims=keepdims),
            lambda t: t.sum(dim=torch_dims(axis, t.ndim), keepdim=keepdims), rand(22, *shape), seed=cot())


def test_sum_defaults_reduce_everything():
    compare(lambda x: x.sum(), lambda t: t.sum(), rand(23, 2, 3, 4), seed=cot())


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", REDUCE_CASES)
def test_mean(shape, axis, keepdims):
    compare(lambda x: x.mean(axis=axis, keepdims=keepdims),
            lambda t: t.mean(dim=torch_dims(axis, t.ndim), keepdim=keepdims), rand(24, *shape), seed=cot())


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_mean_defaults_last_axis_keepdims(shape):
    compare(lambda x: x.mean(), lambda t: t.mean(dim=-1, keepdim=True), rand(25, *shape), seed=cot())


STD_CASES = [case for case in REDUCE_CASES if case[0] != () and case != ((2, 1, 4), 1)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape,axis", STD_CASES)
def test_std_population(shape, axis, keepdims):
    compare(lambda x: x.std(axis=axis, keepdims=keepdims),
            lambda t: t.std(dim=torch_dims(axis, t.ndim), keepdim=keepdims, correction=0),
            rand(26, *shape), seed=cot())


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_std_defaults_last_axis_keepdims(shape):
    compare(lambda x: x.std(), lambda t: t.std(dim=-1, keepdim=True, correction=0), rand(27, *shape), seed=cot())


@pytest.mark.parametrize("keepdims", [False, True])
def test_std_constant_row_has_zero_grad(keepdims):
    x = rand(28, 3, 4)
    x[1] = 2.5
    xs, _ = compare(lambda x: x.std(axis=-1, keepdims=keepdims),
                    lambda t: t.std(dim=-1, keepdim=keepdims, correction=0), x, seed=cot())
    assert np.all(xs[0].grad[1] == 0)


@pytest.mark.parametrize("scale", [1e-21, 1e-30, 1e-40])
def test_std_of_a_tiny_float32_row_is_not_lost_to_underflow(scale):
    # the float32 squares of these deviations underflow; torch sums them in float64, so must pygrad
    x = (np.array([[1.0, 2.0, 4.0, -3.0]]) * scale).astype(np.float32)
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    expected = t.std(dim=-1, keepdim=True, correction=0)
    expected.backward(torch.ones_like(expected))
    p = Tensor(x, dtype=np.float32)
    out = p.std()
    out.backward()
    np.testing.assert_allclose(out.value, expected.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-5)


def test_std_of_size_one_axis_has_zero_grad():
    compare(lambda x: x.std(axis=1), lambda t: t.std(dim=1, keepdim=True, correction=0), rand(29, 2, 1, 4), seed=cot())


# ------------------------------------------------------------------ shape ops
@pytest.mark.parametrize("shape,new", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (4, -1)), ((2, 3, 4), (-1,)), ((2, 3, 4), (2, 1, 12)),
    ((6,), (2, 3)), ((), (1, 1)), ((1, 1), ()), ((3, 4), [4, 3]),
])
def test_reshape_tuple(shape, new):
    compare(lambda x: x.reshape(new), lambda t: t.reshape(tuple(new)), rand(30, *shape), seed=cot())


@pytest.mark.parametrize("new", [(4, 6), (-1, 2), (24,), (2, -1, 3)])
def test_reshape_ints(new):
    compare(lambda x: x.reshape(*new), lambda t: t.reshape(*new), rand(31, 2, 3, 4), seed=cot())


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4)])
def test_transpose_default_reverses_axes(shape):
    compare(lambda x: x.transpose(), lambda t: t.permute(tuple(reversed(range(t.ndim)))), rand(32, *shape), seed=cot())


@pytest.mark.parametrize("axes", [(1, 0, 2), (2, 0, 1), (-1, 0, 1), (0, 1, 2)])
def test_transpose_axes(axes):
    compare(lambda x: x.transpose(axes), lambda t: t.permute(*axes), rand(33, 2, 3, 4), seed=cot())
    compare(lambda x: x.transpose(*axes), lambda t: t.permute(*axes), rand(34, 2, 3, 4), seed=cot())


@pytest.mark.parametrize("shape", [(), (4,)])
def test_T_of_0d_and_1d_is_self(shape):
    x = Tensor(rand(35, *shape))
    assert x.T is x


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 1, 3, 4)])
def test_T_swaps_last_two_axes_like_mT(shape):
    compare(lambda x: x.T, lambda t: t.mT, rand(36, *shape), seed=cot())


# ------------------------------------------------------------------ indexing
A = np.array
GETITEM_CASES = [
    ((5,), 2), ((5,), -1), ((5,), slice(1, 4)), ((5,), slice(None, None, 2)),
    ((3, 4), (1, slice(None))), ((3, 4), (slice(None), -2)), ((3, 4), (None, slice(1, 3))),
    ((2, 3, 4), (Ellipsis, 1)), ((2, 3, 4), (0, Ellipsis, None)), ((2, 3, 4), (slice(None), None, slice(0, 3, 2), -1)),
    # advanced, with repeated indices whose gradients must accumulate
    ((5,), A([0, 2, 2, 4, 2])), ((3, 4), A([2, 0, 2])), ((3, 4), (A([0, 0, 2]), A([1, 1, 3]))),
    ((3, 4), (slice(None), A([3, 3, 0]))), ((2, 3, 4), (Ellipsis, A([[0, 1], [3, 3]]))),
    ((2, 3, 4), (A([1, 1]), slice(None), A([0, 0]))), ((2, 3, 4), (1, A([2, 2, 0]), slice(1, 3))),
    ((5,), [1, 1, 3]),
    # boolean masks
    ((3, 4), A([[True, False, True, True], [False, False, False, True], [True, True, False, False]])),
    ((3, 4), A([True, False, True])), ((2, 3, 4), (slice(None), A([False, True, True]))),
]


def torch_index(idx):
    if isinstance(idx, tuple):
        return tuple(torch_index(i) for i in idx)
    return torch.from_numpy(idx) if isinstance(idx, np.ndarray) else idx


@pytest.mark.parametrize("shape,idx", GETITEM_CASES)
def test_getitem(shape, idx):
    compare(lambda x: x[idx], lambda t: t[torch_index(idx)], rand(37, *shape), seed=cot())


def test_getitem_negative_step():
    compare(lambda x: x[::-1, 1:], lambda t: t.flip(0)[:, 1:], rand(60, 3, 4), seed=cot())


def test_getitem_repeated_index_accumulates():
    x = Tensor([1.0, 2.0, 3.0])
    x[A([0, 0, 0, 2])].sum().backward()
    assert_close(x.grad, [3.0, 0.0, 1.0], "grad")


def test_getitem_with_a_tensor_index():
    idx = A([2, 0, 2])
    compare(lambda x: x[Tensor(idx)], lambda t: t[torch.from_numpy(idx)], rand(38, 3, 4), seed=cot())


# ------------------------------------------------------------------ elementwise
@pytest.mark.parametrize("shape", UNARY_SHAPES)
@pytest.mark.parametrize("name,gen", [
    ("relu", lambda s: away_from_zero(39, *s)), ("tanh", lambda s: rand(40, *s, low=-3, high=3)),
    ("sigmoid", lambda s: rand(41, *s, low=-5, high=5)), ("exp", lambda s: rand(42, *s)),
    ("log", lambda s: rand(43, *s, low=0.1, high=5.0)),
])
def test_unary(name, gen, shape):
    compare(lambda x: getattr(x, name)(), lambda t: getattr(t, name)(), gen(shape), seed=cot())


def test_relu_at_exact_zero_has_zero_grad():
    xs, _ = compare(lambda x: x.relu(), lambda t: t.relu(), A([-1.0, 0.0, 0.0, 2.0, -0.0]), seed=cot())
    assert xs[0].grad[1] == xs[0].grad[2] == xs[0].grad[4] == 0


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_tanh_large_inputs_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(lambda x: getattr(x, name)(), lambda t: getattr(t, name)(),
                A([-800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0]), seed=cot())


# ------------------------------------------------------------------ softmax
SOFTMAX_CASES = [((5,), a) for a in (0, -1)] + [((3, 4), a) for a in (0, 1, -1, -2)] + \
                [((2, 3, 4), a) for a in (0, 1, 2, -1, -2, -3)] + [((2, 1, 3), 1)]


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
@pytest.mark.parametrize("name,torch_fn", [("softmax", torch.softmax), ("softmax_log", torch.log_softmax)])
def test_softmax(name, torch_fn, shape, axis):
    compare(lambda x: getattr(x, name)(axis=axis), lambda t: torch_fn(t, dim=axis), rand(44, *shape), seed=cot())


@pytest.mark.parametrize("name,torch_fn", [("softmax", torch.softmax), ("softmax_log", torch.log_softmax)])
def test_softmax_default_axis_is_last(name, torch_fn):
    compare(lambda x: getattr(x, name)(), lambda t: torch_fn(t, dim=-1), rand(45, 2, 3, 4), seed=cot())


@pytest.mark.parametrize("name,torch_fn", [("softmax", torch.softmax), ("softmax_log", torch.log_softmax)])
def test_softmax_is_stable_for_large_inputs(name, torch_fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(lambda x: getattr(x, name)(axis=0), lambda t: torch_fn(t, dim=0),
                A([[1000.0, -1000.0], [0.0, -1000.0], [-1000.0, -999.0]]), seed=cot())


# ------------------------------------------------------------------ mask_idcs
@pytest.mark.parametrize("value", [0.0, 5.0, -1.5])
@pytest.mark.parametrize("shape,idcs", [
    ((3, 4), (A([0, 2, 2]), A([1, 3, 3]))), ((6,), (A([0, 5]),)), ((2, 3, 4), (A([0, 1]), A([2, 2]), A([3, 0]))),
])
def test_mask_idcs(shape, idcs, value):
    xs, _ = compare(lambda x: x.mask_idcs(idcs, value),
                    lambda t: t.index_put(torch_index(idcs), torch.tensor(value, dtype=t.dtype)),
                    rand(46, *shape), seed=cot())
    assert np.all(xs[0].grad[idcs] == 0)


def test_mask_idcs_default_value_is_zero():
    mask = np.zeros((3, 4))
    mask[[0, 1], [2, 0]] = 1.0
    compare(lambda x: x.mask_idcs((A([0, 1]), A([2, 0]))), lambda t: t * torch.tensor(1.0 - mask),
            rand(47, 3, 4), seed=cot())


def test_mask_idcs_boolean_mask():
    mask = rand(48, 3, 4) > 0
    compare(lambda x: x.mask_idcs(mask, 2.0), lambda t: torch.where(torch.from_numpy(mask), 2.0, t),
            rand(49, 3, 4), seed=cot())


# ------------------------------------------------------------------ conv2D
def torch_conv(k, x, stride, padding):
    """pygrad's conv2D in torch: a kernel with leading 1 is shared, otherwise one per sample."""
    if k.shape[0] == 1:
        return F.conv2d(x, k[0], stride=stride, padding=padding)
    return torch.cat([F.conv2d(x[b:b + 1], k[b], stride=stride, padding=padding) for b in range(x.shape[0])])


CONV_CASES = [  # x shape, kernel shape, stride, padding
    ((2, 3, 7, 7), (1, 4, 3, 3, 3), 1, 0), ((3, 2, 8, 6), (1, 5, 2, 3, 2), 2, 1),
    ((2, 1, 5, 6), (1, 3, 1, 2, 3), 1, 2), ((2, 3, 9, 9), (1, 2, 3, 4, 4), 2, 2),
    ((2, 3, 7, 8), (1, 4, 3, 1, 1), 1, 0), ((1, 1, 4, 4), (1, 1, 1, 4, 4), 1, 0),
    ((2, 2, 6, 7), (1, 3, 2, 3, 2), 3, 1), ((4, 2, 5, 5), (1, 2, 2, 5, 5), 1, 1),
    # a kernel per sample
    ((3, 2, 6, 5), (3, 4, 2, 3, 3), 1, 0), ((3, 2, 6, 5), (3, 4, 2, 2, 3), 2, 1),
    ((2, 3, 5, 5), (2, 2, 3, 3, 3), 1, 2),
]


@pytest.mark.parametrize("xshape,kshape,stride,padding", CONV_CASES)
def test_conv2D(xshape, kshape, stride, padding):
    compare(lambda k, x: k.conv2D(x, stride=stride, padding=padding),
            lambda k, x: torch_conv(k, x, stride, padding), rand(50, *kshape), rand(51, *xshape), seed=cot())


def test_conv2D_defaults_stride_1_padding_0():
    compare(lambda k, x: k.conv2D(x), lambda k, x: torch_conv(k, x, 1, 0),
            rand(52, 1, 3, 2, 2, 3), rand(53, 2, 2, 5, 6), seed=cot())


def test_conv2D_input_may_be_an_ndarray():
    x = rand(54, 2, 2, 5, 5)
    compare(lambda k: k.conv2D(x, padding=1), lambda k: torch_conv(k, torch.tensor(x), 1, 1),
            rand(55, 1, 3, 2, 3, 3), seed=cot())


# ------------------------------------------------------------------ zero-size tensors
# NumPy and torch warn about the mean / std of an empty slice (nan, as both libraries return)
@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:std\\(\\):UserWarning")
@pytest.mark.parametrize("shape,pg_fn,torch_fn", [
    ((0, 3), lambda x: x.sum(axis=0), lambda t: t.sum(dim=0)),
    ((0, 3), lambda x: x.mean(axis=0), lambda t: t.mean(dim=0, keepdim=True)),
    ((0, 3), lambda x: x.std(axis=0), lambda t: t.std(dim=0, keepdim=True, correction=0)),
    ((0, 3), lambda x: x.std(axis=1), lambda t: t.std(dim=1, keepdim=True, correction=0)),
    ((3, 0), lambda x: x.softmax(), lambda t: t.softmax(dim=-1)),
    ((0, 3), lambda x: x.softmax_log(axis=0), lambda t: t.log_softmax(dim=0)),
    ((0, 3), lambda x: x.softmax(), lambda t: t.softmax(dim=-1)),
    ((0, 3), lambda x: (x * 2 + np.ones(3)).tanh(), lambda t: (t * 2 + torch.ones(3, dtype=t.dtype)).tanh()),
    ((2, 0), lambda x: x.T.reshape(-1, 2)[np.array([], dtype=int)], lambda t: t.mT.reshape(-1, 2)[[]]),
], ids=["sum", "mean", "std", "std_nonempty_axis", "softmax", "softmax_log", "softmax_nonempty_axis",
        "elementwise", "shape_ops"])
def test_zero_size(shape, pg_fn, torch_fn):
    compare(pg_fn, torch_fn, np.zeros(shape), seed=cot())


# ------------------------------------------------------------------ dtypes
# float32 runs are checked against a float64 torch run: float32 rounding (eps 1.2e-7) over a few
# dozen operations stays well inside rtol=1e-5, atol=1e-6 for these O(1) inputs.
F32 = dict(dtype=np.float32, rtol=1e-5, atol=1e-6)
FLOAT32_CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(2, 3), (3,)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(2, 1), (1, 3)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [(2, 3), (2, 3)]),
    ("rsub_float", lambda a: 2.5 - a, lambda a: 2.5 - a, [(4,)]),
    ("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, [(4,)]),
    ("pow_tensor", lambda a, b: (a * a) ** b, lambda a, b: (a * a) ** b, [(2, 3), (3,)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(4, 2, 3), (1, 3, 5)]),
    ("sum", lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(dim=(0, 2)), [(2, 3, 4)]),
    ("mean", lambda a: a.mean(), lambda a: a.mean(dim=-1, keepdim=True), [(2, 3, 4)]),
    ("std", lambda a: a.std(axis=0), lambda a: a.std(dim=0, keepdim=True, correction=0), [(5, 3)]),
    ("getitem", lambda a: a[A([0, 0, 1])], lambda a: a[torch.tensor([0, 0, 1])], [(3, 2)]),
    ("transpose", lambda a: a.transpose(), lambda a: a.permute(1, 0), [(3, 2)]),
    ("tanh", lambda a: a.tanh(), lambda a: a.tanh(), [(3, 2)]),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: a.sigmoid(), [(3, 2)]),
    ("relu", lambda a: a.relu(), lambda a: a.relu(), [(3, 2)]),
    ("exp", lambda a: a.exp(), lambda a: a.exp(), [(3, 2)]),
    ("log", lambda a: (a * a).log(), lambda a: (a * a).log(), [(3, 2)]),
    ("softmax", lambda a: a.softmax(axis=0), lambda a: a.softmax(dim=0), [(3, 2)]),
    ("softmax_log", lambda a: a.softmax_log(), lambda a: a.log_softmax(dim=-1), [(3, 2)]),
    ("mask_idcs", lambda a: a.mask_idcs((A([1]),)), lambda a: a * torch.tensor([1.0, 0.0, 1.0]), [(3,)]),
    ("conv2D", lambda k, x: k.conv2D(x, stride=2, padding=1), lambda k, x: torch_conv(k, x, 2, 1),
     [(1, 2, 3, 3, 3), (2, 3, 6, 6)]),
]


@pytest.mark.parametrize("name,pg_fn,torch_fn,shapes", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32_in_float32_out(name, pg_fn, torch_fn, shapes):
    arrays = [away_from_zero(56 + i, *s) for i, s in enumerate(shapes)]
    compare(pg_fn, torch_fn, *arrays, seed=cot(), **F32)


@pytest.mark.parametrize("const", [2.5, 3, np.float64(2.5), np.float16(2.5), A([1.0, 2.0]),
                                   A([1.0, 2.0], dtype=np.float32)], ids=str)
@pytest.mark.parametrize("op", [
    lambda x, c: x * c, lambda x, c: c * x, lambda x, c: x + c, lambda x, c: c - x, lambda x, c: x / c,
    lambda x, c: c / x, lambda x, c: x ** c,
], ids=["mul", "rmul", "add", "rsub", "div", "rdiv", "pow"])
def test_result_dtype_follows_numpy_nep50(op, const):
    xv = np.array([1.5, 2.0], dtype=np.float32)
    x = Tensor(xv, dtype=np.float32)
    out = op(x, const)
    assert out.dtype == op(xv, const).dtype
    out.backward()
    assert x.grad.dtype == np.float32


def test_float32_tensor_times_python_float_stays_float32():
    x = Tensor([1.0, 2.0], dtype=np.float32)
    assert (x * 0.1).dtype == np.float32 and (0.1 * x).dtype == np.float32


def test_mixed_dtypes_promote_value_and_keep_each_grad_dtype():
    a, b = Tensor([1.0, 2.0], dtype=np.float32), Tensor([3.0, 4.0], dtype=np.float64)
    y = a * b
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert_close(a.grad, [3.0, 4.0], "grad of a")


@pytest.mark.parametrize("base_dtype,exp_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_mixed_dtype_pow_keeps_the_wider_operands_accuracy(base_dtype, exp_dtype):
    """A float32 base under a float64 exponent (and the reverse): the float64 operand's gradient
    is as accurate as torch's float64 computation on the same (promoted) values."""
    av, bv = np.array([1.3, 2.7, 0.4, 1.1]), np.array([0.7, 1.9, 2.2, -1.3])
    a, b = Tensor(av, dtype=base_dtype), Tensor(bv, dtype=exp_dtype)
    (a ** b).sum().backward()
    ta = torch.tensor(a.value.astype(np.float64), requires_grad=True)
    tb = torch.tensor(b.value.astype(np.float64), requires_grad=True)
    (ta ** tb).sum().backward()
    wide = a if base_dtype == np.float64 else b
    twide = ta if base_dtype == np.float64 else tb
    assert wide.grad.dtype == np.float64
    assert_close(wide.grad, twide.grad.numpy(), "grad of the float64 operand", rtol=1e-14, atol=0)
