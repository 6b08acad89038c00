"""One helper that runs a computation in pygrad and in PyTorch and compares values and grads."""
from __future__ import annotations

import numpy as np
import torch

from pygrad import Tensor

RTOL, ATOL = 1e-7, 1e-9  # float64; the loosest tolerance any unit test may use


def assert_close(actual, expected, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def compare(pg_fn, torch_fn, *arrays, seed=None, rtol: float = RTOL, atol: float = ATOL,
            dtype=np.float64):
    """Evaluate `pg_fn(*Tensors)` and `torch_fn(*torch tensors)` on copies of `arrays`,
    back-propagate `seed` through both, and assert equal values and gradients.

    `seed` is the output's cotangent: None (ones), an array, or a `np.random.Generator`
    (a standard-normal cotangent of the output's shape; use it whenever ones could hide an
    error, e.g. softmax, whose outputs always sum to 1). pygrad runs in `dtype` and must
    keep it in its value and every gradient; torch always runs in float64 (the oracle).

    Returns (pygrad inputs, pygrad output) for further checks."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    xs = [Tensor(a, dtype=dtype) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, t_out = pg_fn(*xs), torch_fn(*ts)
    assert isinstance(out, Tensor), f"pygrad returned {type(out).__name__}, not a Tensor"
    assert out.dtype == dtype, f"value dtype {out.dtype}, expected {np.dtype(dtype)}"
    assert_close(out.value, t_out.detach().numpy(), "value", rtol, atol)
    if isinstance(seed, np.random.Generator):
        seed = seed.standard_normal(out.shape)
    seed = np.ones(out.shape) if seed is None else np.asarray(seed, dtype=np.float64)
    (out * seed.astype(out.dtype)).sum().backward()
    t_out.backward(torch.tensor(seed))
    for i, (x, t) in enumerate(zip(xs, ts)):
        expected = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        assert x.grad.dtype == x.value.dtype, f"grad of input {i}: dtype {x.grad.dtype}"
        assert_close(x.grad, expected, f"grad of input {i}", rtol, atol)
    return xs, out
