"""Hypothesis strategies for checking your own code: `reference.strategies`.

    from hypothesis import given
    from reference import strategies as rs

    @given(rs.tensors((2, 3), away_from=(0.0, 6.0)))      # relu6 has kinks at 0 and 6
    def test_relu6(gradcheck, x):                          # `gradcheck`: the pytest plugin's fixture
        assert gradcheck(relu6, x)

- `arrays(shape, dtype, domain, away_from, margin)` / `tensors(...)`: values of a domain
  ("real" [-R, R], "pos" [MARGIN, R], "unit" [MARGIN, 1 - MARGIN], "nonzero"), at least
  `margin` away from every point of `away_from` (your function's kinks; 0 by default) --
  farther than the finite-difference stencil reaches, as the suite's "fd" mode draws;
- `broadcastable(num_shapes, ...)`: a tuple of Tensors of mutually broadcastable shapes;
- `batches(sample_shape, ...)`: a Tensor whose first axis is a batch of 1 to `max_batch`;
- `shapes(...)`, `dtypes()`: the structure alone.

Like the suite's own strategies they draw structure first (shapes, dtype), values last, so
hypothesis shrinks a failure to the smallest shapes before the numbers. `dtype=None` draws
float64 or float32. (The suite's generators of random programs and Modules for pygrad itself
are in `reference.generators`.)
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.numerics import DTYPES
from reference.value_strategies import MARGIN, R, floats

__all__ = ["arrays", "tensors", "broadcastable", "batches", "shapes", "dtypes", "MARGIN", "R"]

DOMAINS = ("real", "pos", "unit", "nonzero")


def dtypes():
    """float64 or float32 (pygrad's tested dtypes)."""
    return st.sampled_from(DTYPES)


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4):
    """Array shapes with sides 1 to `max_side`."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def _bounds(domain: str, lo, hi) -> tuple:
    if domain not in DOMAINS:
        raise ValueError(f"reference.strategies: domain must be one of {DOMAINS}, got {domain!r}")
    d_lo, d_hi = {"real": (-R, R), "nonzero": (-R, R), "pos": (MARGIN, R), "unit": (MARGIN, 1 - MARGIN)}[domain]
    lo, hi = (d_lo if lo is None else float(lo)), (d_hi if hi is None else float(hi))
    if not lo < hi:
        raise ValueError(f"reference.strategies: empty range [{lo}, {hi}] for domain {domain!r}")
    return lo, hi


def elements(domain: str = "real", away_from=(0.0,), margin: float = MARGIN, lo=None, hi=None):
    """One entry: a float of `domain` (or [lo, hi]) at least `margin` from every point of
    `away_from` ("nonzero" adds 0)."""
    lo, hi = _bounds(domain, lo, hi)
    kinks = tuple(float(k) for k in away_from) + ((0.0,) if domain == "nonzero" else ())
    base = floats(lo, hi)
    if not kinks:
        return base
    return base.filter(lambda v: all(abs(v - k) >= margin for k in kinks))


def _dtype(draw, dtype):
    if dtype is None:
        return draw(dtypes())
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"reference.strategies: dtype must be a float dtype, got {dtype!r}")
    return np.dtype(dtype).name


@st.composite
def arrays(draw, shape, dtype="float64", domain: str = "real", away_from=(0.0,), margin: float = MARGIN,
           lo=None, hi=None):
    """An ndarray of `shape` (a tuple, or a strategy of shapes) and `dtype`, entries from
    `elements(domain, away_from, margin, lo, hi)` (rounded to `dtype`)."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    dt = _dtype(draw, dtype)
    a = draw(hnp.arrays(np.float64, shape, elements=elements(domain, away_from, margin, lo, hi), fill=st.nothing()))
    return a.astype(dt)


def _tensor(a: np.ndarray, leaf: bool, label: str = ""):
    from pygrad import Tensor
    return Tensor(a, dtype=a.dtype, leaf=leaf, label=label)


def tensors(shape, dtype="float64", domain: str = "real", away_from=(0.0,), margin: float = MARGIN,
            lo=None, hi=None, leaf: bool = True):
    """A pygrad Tensor (leaf=True by default: an input, not a weight) of `arrays(...)`."""
    return arrays(shape, dtype, domain, away_from, margin, lo, hi).map(lambda a: _tensor(a, leaf))


@st.composite
def broadcastable(draw, num_shapes: int = 2, dtype="float64", domain: str = "real", away_from=(0.0,),
                  margin: float = MARGIN, min_dims: int = 0, max_dims: int = 3, max_side: int = 4,
                  leaf: bool = True):
    """A tuple of `num_shapes` Tensors whose shapes broadcast together (NumPy's rules: some
    have fewer dimensions, some sides are 1), all of one dtype."""
    found = draw(hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                                   min_side=1, max_side=max_side))
    dt = _dtype(draw, dtype)
    return tuple(_tensor(draw(arrays(s, dt, domain, away_from, margin)), leaf) for s in found.input_shapes)


@st.composite
def batches(draw, sample_shape, min_batch: int = 1, max_batch: int = 4, dtype="float64", domain: str = "real",
            away_from=(0.0,), margin: float = MARGIN, lo=None, hi=None):
    """A leaf Tensor of shape (batch, *sample_shape), batch from `min_batch` to `max_batch`
    (1 included by default): a Module's input."""
    if not 1 <= min_batch <= max_batch:
        raise ValueError(f"reference.strategies.batches: need 1 <= min_batch <= max_batch, "
                         f"got {min_batch}, {max_batch}")
    b = draw(st.integers(min_batch, max_batch))
    return _tensor(draw(arrays((b,) + tuple(sample_shape), dtype, domain, away_from, margin, lo, hi)), True)
