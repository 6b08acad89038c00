"""Strategies for the numbers in an example: entries of arrays, scalar constants.

Two modes:
- ``"torch"``: values anywhere in the domain, including exact kink points on purpose (exact
  zeros, small integers that make rows constant) -- torch defines the derivative there;
- ``"fd"``: values at least `MARGIN` away from every kink and domain edge, far more than the
  finite-difference step.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

R = 3.0            # magnitude of drawn values
MARGIN = 1e-2      # FD mode: distance of values from kinks and domain edges
WIDE = 300.0       # scale of the large inputs of `wide_range` ops (torch checks)


def floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def reals(lo: float = -R, hi: float = R):
    """Floats in [lo, hi]; magnitudes below 1e-6 become exact zeros (tiny inputs only make
    products underflow)."""
    return floats(lo, hi).map(lambda x: x if abs(x) >= 1e-6 else 0.0)


def scalar(strategy, dtype: str):
    """A Python float constant, rounded to `dtype`: NumPy casts a Python scalar to the
    tensor's dtype (NEP 50), so the oracles must see the same number."""
    return strategy.map(lambda x: float(np.asarray(x, dtype=dtype)))


def elements(domain: str, mode: str, style: str = "float"):
    """The strategy of one entry for `domain` ("real" | "pos" | "nonzero" | "unit", the
    open interval (0, 1) | "simplex", positive entries normalised along the last axis)."""
    if domain == "unit":
        return st.sampled_from([0.25, 0.5, 0.75]) if style == "int" else floats(MARGIN, 1 - MARGIN)
    if domain == "simplex":
        domain = "pos"
    if style == "int":
        return {"real": st.integers(-2, 2), "pos": st.integers(1, 3),
                "nonzero": st.sampled_from([-2, -1, 1, 2])}[domain].map(float)
    if domain == "pos":
        return floats(MARGIN, R)
    if domain == "nonzero" or (domain == "real" and mode == "fd"):
        return st.one_of(floats(MARGIN, R), floats(-R, -MARGIN))
    return reals()


@st.composite
def values(draw, shape, dtype: str = "float64", domain: str = "real", mode: str = "torch",
           zeros: bool = False):
    """An array of `shape` and `dtype`. In torch mode it may hold small integers (constant
    rows, exact arithmetic) and, where `zeros` (or the domain is real), exact zeros at random
    places."""
    style = draw(st.sampled_from(["float", "int", "zeros"])) if mode == "torch" else "float"
    a = draw(hnp.arrays(np.float64, shape, elements=elements(domain, mode, style), fill=st.nothing()))
    if domain == "simplex":
        return np.asarray(simplex_rows(a, one_hot=style != "float"), dtype=dtype)
    if style == "zeros" and (domain == "real" or (zeros and domain == "pos")):
        mask = draw(hnp.arrays(np.bool_, shape))
        a = np.where(mask, 0.0, a)
    return np.asarray(a, dtype=dtype)


def constant(shape, dtype: str, fd: bool, domain: str = "real"):
    """A constant operand: a Python float for shape None, else an array."""
    if shape is None:
        lo = MARGIN if domain != "real" else -R
        return scalar(reals(lo, R) if domain == "real" else floats(MARGIN, R), dtype)
    return values(shape, dtype, domain, "fd" if fd else "torch")


def simplex_rows(a: np.ndarray, one_hot: bool = False) -> np.ndarray:
    """Rows (the last axis) of positive `a` as probability vectors, or as one-hot rows of
    their largest entry."""
    if a.ndim == 0 or a.size == 0:
        return np.ones_like(a)
    if one_hot:
        out = np.zeros_like(a)
        np.put_along_axis(out, np.argmax(a, axis=-1)[..., None], 1.0, axis=-1)
        return out
    return a / a.sum(axis=-1, keepdims=True)
