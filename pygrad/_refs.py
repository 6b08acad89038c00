"""Does anything besides its known holders refer to an array? (CPython reference counts)

The engine may hand out, keep or overwrite an array without copying it only when nothing
else can see it: no other tensor, closure, view or user variable. CPython counts the strong
references to every object, so "its only references are the ones I know of" is an exact test
(NumPy elides temporaries on the same test). A view counts as unshared only when its base
array is, too, so memory reached through any other view is never taken for private.

The counting convention is measured at import and checked on known cases; on an interpreter
where that check fails (another implementation, a free-threaded build, a change in how
CPython counts), `unshared` always answers False and every caller falls back to copying.
"""
from __future__ import annotations

import sys

import numpy as np


def _count(a) -> int:
    return sys.getrefcount(a)


def _calibrate() -> int:
    # the count `_count` reads for an array held by exactly one local variable of its caller
    one = np.empty(1)
    return _count(one)


_ONE = _calibrate()


def _unshared(a, holders: int) -> bool:
    """True when `a` (an ndarray) is referred to by exactly `holders` references of the
    caller (each local variable, argument, attribute or list slot holding it counts one),
    and, for a view, its base array only by that view."""
    if _count(a) - _ONE > holders:
        return False
    base = a.base
    if base is None:
        return True
    # held by the view's base pointer and by the local `base` here; a base that is itself a
    # view (or not an ndarray at all) is never taken for private
    return type(base) is np.ndarray and base.base is None and _count(base) - _ONE <= 1


def _works() -> bool:
    if sys.implementation.name != "cpython" or not getattr(sys, "_is_gil_enabled", lambda: True)():
        return False
    a = np.empty(3)
    if not _unshared(a, 1):
        return False
    b = a
    if _unshared(a, 1) or not _unshared(b, 2):
        return False
    del b
    view = np.empty(4)[1:]
    if not _unshared(view, 1):
        return False
    other = view[:2]
    return not _unshared(view, 1) and not _unshared(other, 1)


if _works():
    unshared = _unshared
else:  # pragma: no cover - only on interpreters without CPython's reference counting
    def unshared(a, holders: int) -> bool:
        return False
unshared.__doc__ = _unshared.__doc__
