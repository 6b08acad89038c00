"""Judging a result against its oracle: the one comparison every suite check applies.

Equal infinities are equal; pygrad's NaN, or an infinity where torch's value is finite (or
another one), is a mismatch. `judge(got, want, dtype, tolerances)` takes the tolerances
cheapest first (the floor of `reference.numerics.tolerance`, a sound lower bound, then the
spread over one perturbed run, two, ... -- `numerics.LowerBound`s -- then the full one): the
first under which every element passes decides, so each perturbed run is made only when the
cheaper tolerances do not decide. The worst err/tol it reports is then taken against a lower
bound of the tolerance: an upper bound of the ratio against the full one, not a
measurement, and said so.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference.numerics import LowerBound, first_fit


class Judged(NamedTuple):
    problem: str | None     # None: within tolerance
    worst: float            # the worst err/tol
    bound: bool             # `worst` is against the floor or a LowerBound: an upper bound of the full ratio


def _same_kind(tol, new):
    return new.view(LowerBound) if isinstance(tol, LowerBound) else new


def judge(got, want: np.ndarray, dtype: str, tolerances) -> Judged:
    """(problem or None, worst err/tol, whether that is a bound) of pygrad's `got` against
    the oracle's `want`.

    `tolerances` yields tolerance arrays from the cheapest (a sound lower bound) to the
    full one; the first under which every element passes decides."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return Judged(f"shape {got.shape}, torch's {want.shape}", np.inf, False)
    if got.dtype != np.dtype(dtype):
        return Judged(f"dtype {got.dtype}, expected {dtype}", np.inf, False)
    only_one = isinstance(tolerances, (list, tuple)) and len(tolerances) == 1
    got64 = got.astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(got64 - want)
    inf = np.isinf(want)
    if inf.any():    # equal infinities are equal; nothing else passes where torch's is infinite
        err = np.where(inf & (got64 == want), 0.0, err)
        tolerances = (_same_kind(t, np.where(inf, 0.0, np.broadcast_to(t, want.shape))) for t in tolerances)
    err = np.where(np.isnan(err), np.inf, err)
    drawn = []

    def counted():
        for tol in tolerances:
            drawn.append(isinstance(tol, LowerBound))
            yield tol
    passed, ratios, tol = first_fit(err, counted(), want.shape)
    worst = float(np.max(ratios, initial=0.0))
    if passed:
        return Judged(None, worst, (len(drawn) == 1 and not only_one or drawn[-1]) and worst > 0)
    i = np.unravel_index(int(np.argmax(ratios)), ratios.shape) if ratios.ndim else ()
    return Judged(f"max |error| {float(err[i]):.3g} at index {tuple(int(k) for k in i)} "
                  f"(pygrad {float(got[i]):.17g}, torch {float(want[i]):.17g}, "
                  f"tolerance {float(tol[i]):.3g})", worst, False)
