"""The numbers every part of the suite shares: unit roundoffs, the tolerance rule and its
constants, the finite-difference step. NumPy only (no torch, no hypothesis): the checks of
users' own code (`reference.usercheck`) stand on this module alone.

The tolerance of a compared tensor T (a value or a gradient), elementwise:

    tolerance(T) = SAFETY * (spread(T) + u |T_exact| + tiny)

`u` the unit roundoff of T's dtype, `tiny` its smallest normal number, `spread(T)` how far
T moves under rounding-size perturbations (measured by the oracles; 0 gives the floor, a
sound lower bound of the full tolerance).
"""
from __future__ import annotations

import numpy as np

U = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
"""Unit roundoff of each float dtype the suite draws: the scale of every per-dtype tolerance."""
DTYPES = tuple(U)
U64 = U["float64"]

SAFETY = 16            # the factor of every tolerance, never widened per test
RUNS = 4               # perturbed runs that measure a spread
MAX_MAGNITUDE = 1e8    # larger values or gradients: outside what the oracles judge
FD_STEP = 2.0 ** -17   # finite-difference step h relative to the largest input magnitude (at least 1)
INJECT_MIN = 2.0 ** -40  # smallest relative perturbation a float64 run carries faithfully


def unit(dtype) -> float:
    """Unit roundoff of a float dtype (`U` where it has one, eps / 2 for the others)."""
    dt = np.dtype(dtype)
    return U.get(dt.name, float(np.finfo(dt).eps) / 2)


def tiny(dtype) -> float:
    """The smallest normal number of a float dtype."""
    return float(np.finfo(dtype).tiny)


def tolerance(exact, dtype, spread=0.0, extra=0.0):
    """SAFETY * (spread + u |exact| + tiny [+ extra]) elementwise: the rule above (`extra`:
    a further bound, e.g. the resolution of a low-precision computation)."""
    return SAFETY * (spread + unit(dtype) * np.abs(exact) + tiny(dtype) + extra)


class LowerBound(np.ndarray):
    """A tolerance known to be no larger than the full one: the spread measured over fewer
    than RUNS perturbed runs (a spread is a maximum over runs, so it only grows with more).
    An error within it passes whatever the remaining runs would measure."""


def lower_bound(tol) -> LowerBound:
    return np.asarray(tol, dtype=np.float64).view(LowerBound)


def ratio(err: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """err / tol elementwise, 0 where err is 0 and inf where tol is 0 < err."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(err == 0, 0.0, np.where(tol > 0, err / np.where(tol > 0, tol, 1), np.inf))


def first_fit(err: np.ndarray, tolerances, shape) -> tuple:
    """(passed, err/tol ratios, tol) under the first of `tolerances` (cheapest first, each
    broadcast to `shape`) under which every element of `err` passes; under the last when
    none does."""
    for tol in tolerances:
        tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), shape)
        ratios = ratio(err, tol)
        if float(np.max(ratios, initial=0.0)) <= 1:
            return True, ratios, tol
    return False, ratios, tol


def fd_step(xmax: float) -> float:
    """The finite-difference step for inputs of largest magnitude `xmax`."""
    return FD_STEP * max(1.0, xmax)
