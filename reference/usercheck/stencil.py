"""Central finite differences along a direction: the one implementation the suite's oracles
and the checks of users' code share.

`central_difference(loss, h, roundoff)` evaluates L(x + t v) at t = +-h, +-2h, +-4h and returns
D(h) = (L(x+hv) - L(x-hv)) / 2h with Richardson's estimate of its truncation error
|D(2h) - D(h)| / 3 -- trusted only where D(4h) - D(2h) is about 4 times D(2h) - D(h)
(between 3 and 5 times, `RATIO`, up to the roundoff `roundoff(h)` of one D(h)): else h shrinks by 8, up
to `SHRINKS` times. A caller that knows where the kinks are says when the stencil reaches one
(`blocked`: no step can judge there); one that does not, how a jump shows (`jump`: the step
is shrunk as for a non-smooth loss). Always float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

SHRINKS = 3   # h shrinks by 8 at most three times
RATIO = (3.0, 5.0)
"""The range of (D(4h) - D(2h)) / (D(2h) - D(h)) in which Richardson's estimate is trusted:
4 + O(h^2) where the error is c h^2 + d h^4 (the estimate is then within ~15%). A step far
outside that regime can land in a wider window by chance: [2, 8] accepted h = 2 on a softmax
of values near 2^18 that vary on a scale of 1 (ratio 7.1; D(h) four times the derivative)."""


@dataclass
class FD:
    """A central difference along v, or why none could judge (`clear` False)."""

    d: float = math.nan      # central difference D(h)
    trunc: float = math.nan  # Richardson: |D(2h) - D(h)| / 3
    h: float = math.nan
    clear: bool = False
    why: str = ""            # "kink", "not smooth", "not finite", or the caller's `blocked` reason
    left: float = math.nan   # (L(x) - L(x - hv)) / h
    right: float = math.nan  # (L(x + hv) - L(x)) / h
    central: tuple = ()      # D(h), D(2h), D(4h) of the last try


def stencil(h: float) -> tuple:
    return (-4 * h, -2 * h, -h, h, 2 * h, 4 * h)


def central_difference(loss: Callable, h: float, roundoff: Callable, blocked: Callable | None = None,
                       jump: Callable | None = None) -> FD:
    """D(h) of `loss(t)` = L(x + t v) (see the module docstring; `loss(0.0)` is asked
    first). `roundoff(h)` bounds the roundoff of one D(h); `blocked(h)` (optional): why the
    stencil at h is not clear of a kink, "" if it is; `jump(h, losses)` (optional): do the losses at `stencil(h)` show a
    jump? Returns the last try's FD when no step converged."""
    last, at_x = FD(h=h, why="not smooth"), loss(0.0)
    for _ in range(SHRINKS + 1):
        losses = {t: loss(t) for t in stencil(h)}
        if not all(math.isfinite(x) for x in losses.values()):
            return FD(h=h, why="not finite")
        why = blocked(h) if blocked is not None else ""
        if why:
            return FD(h=h, why=why)
        d1 = (losses[h] - losses[-h]) / (2 * h)
        d2 = (losses[2 * h] - losses[-2 * h]) / (4 * h)
        d4 = (losses[4 * h] - losses[-4 * h]) / (8 * h)
        jumped = jump is not None and jump(h, losses)
        e1, e2, n = abs(d2 - d1), abs(d4 - d2), 6 * roundoff(h)
        last = FD(h=h, why="kink" if jumped else "not smooth", left=(at_x - losses[-h]) / h,
                  right=(losses[h] - at_x) / h, central=(d1, d2, d4))
        if not jumped and RATIO[0] * e1 - n <= e2 <= RATIO[1] * e1 + n:   # error ~ h^2: doubling h quadruples it
            return FD(d1, e1 / 3, h, True)
        h /= 8
    return last
