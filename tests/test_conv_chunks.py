"""conv2D forms its im2col matrix whole while it fits in pygrad.ops.nn.WHOLE_BYTES, and a few
output rows at a time (pygrad.ops.nn.CHUNK_BYTES) beyond: either way, whatever the chunk
size, values and gradients equal torch's."""
import numpy as np
import pytest
import torch

from pygrad import Tensor
from pygrad.ops import nn

CASES = [  # (kernel shape, input shape, stride, padding)
    ((1, 3, 2, 3, 3), (4, 2, 9, 7), 1, 0),
    ((1, 2, 1, 5, 5), (3, 1, 12, 12), 1, 2),
    ((1, 4, 3, 2, 3), (2, 3, 10, 11), 2, 1),
    ((1, 1, 1, 1, 1), (5, 1, 4, 4), 3, 0),
    ((2, 3, 2, 3, 3), (2, 2, 8, 8), 1, 1),          # a kernel per sample: the unchunked path
    ((1, 2, 2, 3, 2), (1, 2, 6, 9), 2, 0),
]


def _torch(kv, xv, stride, padding):
    k = torch.tensor(kv, requires_grad=True)
    x = torch.tensor(xv, requires_grad=True)
    if kv.shape[0] == 1:
        y = torch.nn.functional.conv2d(x, k[0], stride=stride, padding=padding)
    else:   # per-sample kernels
        y = torch.cat([torch.nn.functional.conv2d(x[b:b + 1], k[b], stride=stride, padding=padding)
                       for b in range(xv.shape[0])])
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), k.grad.numpy(), x.grad.numpy()


@pytest.mark.parametrize("chunk_bytes", [None, 1, 700, 5000, nn.CHUNK_BYTES])
@pytest.mark.parametrize("case", CASES)
def test_chunked_conv_equals_torch(case, chunk_bytes, monkeypatch):
    """chunk_bytes None: the whole matrix (the cases fit in WHOLE_BYTES); else chunks."""
    if chunk_bytes is not None:
        monkeypatch.setattr(nn, "WHOLE_BYTES", 0)
        monkeypatch.setattr(nn, "CHUNK_BYTES", chunk_bytes)
    kshape, xshape, stride, padding = case
    rng = np.random.default_rng(sum(kshape) + sum(xshape) + stride)
    kv, xv = rng.standard_normal(kshape), rng.standard_normal(xshape)
    want = _torch(kv, xv, stride, padding)
    k, x = Tensor(kv), Tensor(xv)
    y = k.conv2D(x, stride=stride, padding=padding)
    for _ in range(2):   # a second pass forms the chunks again from the kept input
        y.backward()
        for got, expected in zip((y.value, k.grad, x.grad), want):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [None, 1, 5000])
def test_chunked_conv_with_non_finite_inputs(chunk_bytes, monkeypatch):
    """An inf in x or in the kernel must not turn the zero gradients of the wide columns into
    nan (0 * inf): the result matches torch's, nan where torch has nan (whole matrix and chunks)."""
    if chunk_bytes is not None:
        monkeypatch.setattr(nn, "WHOLE_BYTES", 0)
        monkeypatch.setattr(nn, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(5)
    kv, xv = rng.standard_normal((1, 2, 1, 3, 3)), rng.standard_normal((2, 1, 7, 8))
    for which in ("x", "k"):
        kv2, xv2 = kv.copy(), xv.copy()
        (xv2 if which == "x" else kv2).flat[5] = np.inf
        want = _torch(kv2, xv2, 1, 0)
        k, x = Tensor(kv2), Tensor(xv2)
        y = k.conv2D(x)
        y.backward()
        for got, expected in zip((y.value, k.grad, x.grad), want):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            ok = np.isfinite(expected)
            np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("whole", [True, False])
def test_float32_conv_chunks(whole, monkeypatch):
    if not whole:
        monkeypatch.setattr(nn, "WHOLE_BYTES", 0)
    monkeypatch.setattr(nn, "CHUNK_BYTES", 900)
    rng = np.random.default_rng(7)
    kv, xv = rng.standard_normal((1, 3, 2, 3, 3)), rng.standard_normal((3, 2, 9, 9))
    want = _torch(kv, xv, 1, 1)
    k, x = Tensor(kv, dtype=np.float32), Tensor(xv, dtype=np.float32)
    y = k.conv2D(x, padding=1)
    y.backward()
    assert y.value.dtype == k.grad.dtype == x.grad.dtype == np.float32
    for got, expected in zip((y.value, k.grad, x.grad), want):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:      # a variable of the other path, never assigned
        return None


def test_the_graph_keeps_the_matrix_only_while_it_fits(monkeypatch):
    """Below WHOLE_BYTES the backward closure holds the im2col matrix (kH*kW times the input);
    beyond it only the padded input: the large-input memory saving."""
    rng = np.random.default_rng(3)
    kv, xv = rng.standard_normal((1, 2, 1, 5, 5)), rng.standard_normal((4, 1, 20, 20))

    def held_bytes():
        y = Tensor(kv).conv2D(Tensor(xv))
        cells = [_contents(c) for c in y._backward.__closure__]
        return max(a.nbytes for a in cells if isinstance(a, np.ndarray))
    whole = held_bytes()
    monkeypatch.setattr(nn, "WHOLE_BYTES", 0)
    chunked = held_bytes()
    assert whole >= 20 * xv.nbytes          # 25 taps of (nearly) the whole input
    assert chunked <= 2 * xv.nbytes         # the padded input, batch last
