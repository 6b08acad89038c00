"""pygrad.ops._scratch: reused buffers never alias what a user or a live graph holds."""
import gc
import threading

import numpy as np
import torch

from pygrad import Tensor
from pygrad.ops import _scratch


def test_a_given_back_buffer_is_reused_and_the_pool_is_bounded():
    a = _scratch.take((3, 5), np.float64)
    _scratch.give(a)
    assert _scratch.take((3, 5), np.float64) is a
    assert _scratch.take((3, 5), np.float64) is not a          # taken: not handed out twice
    assert _scratch.take((3, 5), np.float32).dtype == np.float32
    kept = [_scratch.take((7,), np.float64) for _ in range(_scratch.MAX_PER_SHAPE + 2)]
    for b in kept:
        _scratch.give(b)
    again = [_scratch.take((7,), np.float64) for _ in range(_scratch.MAX_PER_SHAPE + 2)]
    assert sum(any(b is k for k in kept) for b in again) == _scratch.MAX_PER_SHAPE


def _torch_conv(kv, xv):
    k = torch.tensor(kv[0], requires_grad=True)
    x = torch.tensor(xv, requires_grad=True)
    y = torch.nn.functional.conv2d(x, k)
    y.sum().backward()
    return y.detach().numpy(), k.grad.numpy()[None], x.grad.numpy()


def test_conv_graphs_sharing_the_pool_stay_right():
    """Graphs of the same shapes, alive at once and dying in between, each keep their own
    im2col matrix: values, and gradients of repeated backward passes, equal torch's."""
    rng = np.random.default_rng(0)
    shapes = ((1, 3, 2, 3, 3), (4, 2, 6, 5))
    data = [(rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])) for _ in range(4)]
    live = []
    for k, (kv, xv) in enumerate(data):
        kt, xt = Tensor(kv), Tensor(xv)
        live.append((kt, xt, kt.conv2D(xt), kv, xv))
        if k == 1:
            del live[0]        # its buffers go back to the pool, and the next conv takes them
            gc.collect()
    for kt, xt, y, kv, xv in live:
        want_y, want_k, want_x = _torch_conv(kv, xv)
        for _ in range(2):
            y.backward()
            np.testing.assert_allclose(y.value, want_y, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(kt.grad, want_k, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(xt.grad, want_x, rtol=1e-12, atol=1e-12)


def test_values_and_grads_a_user_holds_survive_later_convs():
    rng = np.random.default_rng(1)
    kv, xv = rng.standard_normal((1, 2, 1, 2, 2)), rng.standard_normal((3, 1, 5, 5))
    kt, xt = Tensor(kv), Tensor(xv)
    y = kt.conv2D(xt)
    y.backward()
    value, gk, gx = y.value, kt.grad, xt.grad           # held, not copied
    saved = [value.copy(), gk.copy(), gx.copy()]
    del y
    gc.collect()
    for _ in range(3):
        z = Tensor(rng.standard_normal(kv.shape)).conv2D(Tensor(rng.standard_normal(xv.shape)))
        z.backward()
    for held, copy in zip((value, gk, gx), saved):
        np.testing.assert_array_equal(held, copy)


def test_threads_have_their_own_pools():
    rng = np.random.default_rng(2)
    jobs = [(rng.standard_normal((1, 3, 2, 3, 3)), rng.standard_normal((8, 2, 12, 12))) for _ in range(4)]
    errors = []

    def work(kv, xv):
        want_y, want_k, want_x = _torch_conv(kv, xv)
        for _ in range(20):
            kt, xt = Tensor(kv), Tensor(xv)
            y = kt.conv2D(xt)
            y.backward()
            ok = (np.allclose(y.value, want_y, rtol=1e-12, atol=1e-12) and
                  np.allclose(kt.grad, want_k, rtol=1e-12, atol=1e-12) and
                  np.allclose(xt.grad, want_x, rtol=1e-12, atol=1e-12))
            if not ok:
                errors.append("wrong conv result under threads")
                return
    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
