"""Reusable buffers for large temporaries that never leave an op.

A fresh multi-megabyte array costs more than the arithmetic on it where the allocator gives
freed memory back to the system and page-faults it in again at the next allocation: conv2D's
im2col matrix made the whole step 3-5x slower that way. Buffers from here are private to the
op that took them -- never a result's value nor a gradient -- so reusing one cannot change an
array a user holds. Each thread keeps its own small pool.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

MAX_PER_SHAPE = 2            # buffers kept per (shape, dtype)
MAX_BYTES = 256 * 2 ** 20    # and at most this much in all, per thread
REUSE_BYTES = 2 ** 16        # below this, a fresh array is as cheap as the pool's bookkeeping

_local = threading.local()


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
        _local.nbytes = 0
    return pool


def take(shape: tuple, dtype) -> np.ndarray:
    """An array of `shape` and `dtype` with arbitrary contents, reused when one was given back."""
    stack = _pool().get((tuple(shape), np.dtype(dtype)))
    if stack:
        a = stack.pop()
        _local.nbytes -= a.nbytes
        return a
    return np.empty(shape, dtype)


def give(a: np.ndarray) -> None:
    """Give back an array from `take`; nothing may use it (or a view of it) afterwards."""
    pool = _pool()
    stack = pool.setdefault((a.shape, a.dtype), [])
    if len(stack) < MAX_PER_SHAPE and _local.nbytes + a.nbytes <= MAX_BYTES:
        stack.append(a)
        _local.nbytes += a.nbytes


def give_when_gone(owner, a: np.ndarray) -> None:
    """Give `a` back once `owner` (the backward closure that alone holds `a`) is garbage."""
    weakref.finalize(owner, give, a)
