"""The rounding noise of a black-box computation, and the resolution of a low precision.

The suite perturbs every op of a program by the op's rounding-error model
(`reference.oracles.torch_run.Noise`) and measures how far the results move; a user's
function is a black box, so its rounding noise is measured directly, as one measures the
noise of any computed function: along `RUNS` random directions d, the computation is
repeated at x (1 + s d) and x (1 - s d), s = 2**13 units in the last place of the dtype it
runs in (2**-40 in float64, the oracles' perturbation unit; at most sqrt(u)), with the
cotangent of its output moved alike. Every intermediate then moves by many units in the last
place, so its rounding changes, while the exact result barely moves. The noise is the largest
|f(x + sd) - 2 f(x) + f(x - sd)| / 2, measured at s and at s/4 (the smaller when they
disagree: a kink that the larger move reaches adds a jump, not noise). Rounding errors that
change erratically from point to point show in it -- including cancellations inside the
forward and the backward rules, which moving the inputs by a few ulps would not reveal (a
saturated softmax hardly moves) -- whereas a wrong rule, wrong the same way at neighbouring
points, does not inflate it.
"""
from __future__ import annotations

import math

import numpy as np

from reference.numerics import RUNS, U64, first_fit, unit

NOISE_ULPS = 2 ** 13   # the noise runs move every entry by this many units in the last place


def step(dtype) -> float:
    """The relative move of the noise runs for a dtype: 2**13 units in the last place (2**-40
    for float64, the oracles' `INJECT_MIN`), at most sqrt(u)."""
    u = unit(dtype)
    return min(NOISE_ULPS * u, math.sqrt(u))


def resolution(dtypes: list, scale: float, low: float, eps_in: list, xmax: float, low_only: bool = True) -> float:
    """The roundoff model of one central difference in the lowest precision u' among
    `dtypes`, at its best step h' = cbrt(u') max(1, xmax): 2 (u' scale + low + sum eps_in) / h'
    (`low`: L's measured rounding in that precision; `eps_in`: each array's u_i sum |g_i|
    |x_i|). With `low_only`, 0 when every dtype is float64 (the finite differences' own
    roundoff term is that bound already)."""
    u = max(unit(d) for d in dtypes)
    if low_only and u <= U64:
        return 0.0
    return 2 * (u * scale + low + sum(eps_in)) / (u ** (1 / 3) * max(1.0, xmax))


def measure_noise(f, arrays: list, dtypes: list, center: list, seed) -> list:
    """The rounding noise of `f(arrays) -> list of arrays` at `arrays` (see the module
    docstring), elementwise: the largest |f(x + sd) - 2 f(x) + f(x - sd)| / 2 over `RUNS`
    random directions d, each entry moved relatively by s = `step` of its dtype (and rounded
    to it) -- measured at s and at s/4: the larger where they agree within a factor 2, else
    the smaller (a kink within reach of the larger move adds a jump, not noise). `center` is
    f(arrays). 0 where the center is not finite (that fails on its own); inf where a moved
    point is not finite."""
    rng = np.random.default_rng(seed)
    center = [np.asarray(c, dtype=np.float64) for c in center]
    finite = [np.isfinite(c) for c in center]
    found = []
    for scale in (1.0, 0.25):
        out = [np.zeros(c.shape) for c in center]
        for _ in range(RUNS):
            d = [scale * step(dt) * rng.standard_normal(np.shape(x)) for x, dt in zip(arrays, dtypes)]
            plus = f([np.asarray(x * (1 + dk)).astype(dt) for x, dk, dt in zip(arrays, d, dtypes)])
            minus = f([np.asarray(x * (1 - dk)).astype(dt) for x, dk, dt in zip(arrays, d, dtypes)])
            for j, c in enumerate(center):
                second = np.abs(np.asarray(plus[j], dtype=np.float64) - 2 * np.where(finite[j], c, 0)
                                + np.asarray(minus[j], dtype=np.float64)) / 2
                out[j] = np.maximum(out[j], np.where(finite[j], np.where(np.isnan(second), np.inf, second), 0.0))
        found.append(out)
    # the two moves agree up to the scatter of a maximum of a few draws: noise, keep the larger;
    # a jump that only the larger move reaches (a kink), or a term growing with the move: the smaller
    return [np.where(a <= 2 * b, np.maximum(a, b), b) for a, b in zip(*found)]


def worst_element(got, want, tolerances) -> tuple:
    """(None, None) when every element of `got` is within the first tolerance that holds,
    else (flat index of the worst element, its tolerance). NaN in `got` always fails."""
    got = np.asarray(got, dtype=np.float64)
    err = np.abs(got - want)
    err = np.where(np.isnan(err), np.inf, err)
    passed, r, tol = first_fit(err, tolerances, np.shape(want))
    if passed:
        return None, None
    i = int(np.argmax(r))
    return i, float(tol.reshape(-1)[i])


