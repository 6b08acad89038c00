"""Judging a result against its oracle: the one comparison every suite check applies.

`judge(got, want, dtype, tolerances)` takes the tolerances cheapest first (the floor of
`reference.numerics.tolerance`, a sound lower bound, then the full one with the measured
spread): the first under which every element passes decides, so the spread is measured
only when the floor does not decide. The worst err/tol it reports is then taken against the
floor: an upper bound of the ratio against the full tolerance, not a measurement, and said so.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reference.numerics import first_fit


class Judged(NamedTuple):
    problem: str | None     # None: within tolerance
    worst: float            # the worst err/tol
    bound: bool             # `worst` is against the floor: an upper bound of the full ratio


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
    err = np.abs(got.astype(np.float64) - want)
    err = np.where(np.isnan(err), np.inf, err)
    only_one = isinstance(tolerances, (list, tuple)) and len(tolerances) == 1
    drawn = []

    def counted():
        for tol in tolerances:
            drawn.append(tol)
            yield tol
    passed, ratios, tol = first_fit(err, counted(), want.shape)
    worst = float(np.max(ratios, initial=0.0))
    if passed:
        return Judged(None, worst, len(drawn) == 1 and not only_one and worst > 0)
    i = np.unravel_index(int(np.argmax(ratios)), ratios.shape) if ratios.ndim else ()
    return Judged(f"max |error| {float(err[i]):.3g} at index {tuple(int(k) for k in i)} "
                  f"(pygrad {float(got[i]):.17g}, torch {float(want[i]):.17g}, "
                  f"tolerance {float(tol[i]):.3g})", worst, False)
