"""Finite differences of a program's loss, in float64 (also for float32 programs).

`fd_derivative` evaluates the loss with the registry's NumPy references along a direction v
and returns the central difference of `reference.usercheck.stencil` (D(h) and Richardson's
estimate of its truncation error, h shrunk until the estimate holds) -- after checking that
the stencil's reach (x +- 4hv) is clear of every kink the registry knows (each kink
coordinate stays on one side of 0, farther from it than `FD_KINK_MARGIN` times its own
displacement).
"""
from __future__ import annotations

import numpy as np

from reference.numerics import fd_step as step_for
from reference.programs.graph import Program
from reference.programs.interpreters import run_numpy
from reference.usercheck.stencil import FD, central_difference, stencil

FD_KINK_MARGIN = 4     # a kink coordinate must stay 4x farther from 0 than it moves
WHY = {"not finite": "the loss is not finite near x",
       "not smooth": "the loss is not smooth at the finite-difference scale"}


def fd_step(prog: Program, values) -> float:
    m = max((float(np.max(np.abs(values[i.name]), initial=0.0)) for i in prog.learnable_inputs()),
            default=0.0)
    return step_for(m)


def fd_derivative(prog: Program, values, v: dict, h: float, noise=lambda h: 0.0) -> FD:
    """Directional derivative of the loss along `v` (name -> array, learnable inputs), or
    why it cannot be judged (`FD.why`: a kink within reach, a loss that is not finite, or
    not smooth at the finite-difference scale); `noise(h)` bounds the roundoff of one D(h)."""
    base = {k: np.asarray(x, dtype=np.float64) for k, x in values.items()}
    runs = {}

    def at(t):
        if t not in runs:
            pts = {k: (x + t * v[k] if k in v else x) for k, x in base.items()}
            runs[t] = run_numpy(prog, pts, with_kinks=True)
        return runs[t]

    def loss(t):
        return float(at(t)[0][prog.root])

    def blocked(h):
        return _kink_in_reach(at(0.0)[1], {t: at(t) for t in stencil(h)})
    fd = central_difference(loss, h, noise, blocked=blocked)
    return FD(h=fd.h, why=WHY.get(fd.why, fd.why)) if not fd.clear else fd


def _kink_in_reach(k0: dict, runs: dict) -> str:
    """Why the stencil is not clear of kinks ('' if it is)."""
    for name, kinks in k0.items():
        for j, (s0, exact) in enumerate(kinks):
            s0 = np.asarray(s0, dtype=np.float64)
            if np.any(np.asarray(exact)) or np.any(s0 == 0):
                return f"{name} sits exactly on a kink"
            move = np.zeros_like(s0)
            for t, (_, kt) in runs.items():
                st = np.asarray(kt[name][j][0], dtype=np.float64)
                if np.any(np.sign(st) != np.sign(s0)):
                    return f"{name} crosses a kink within the FD stencil"
                move = np.maximum(move, np.abs(st - s0))
            if np.any(np.abs(s0) <= FD_KINK_MARGIN * move):
                return f"{name} is within {FD_KINK_MARGIN}x its FD displacement of a kink"
    return ""


def directions(prog: Program, rng: np.random.Generator, full_max: int) -> list:
    """A random unit direction over every learnable input, then (for at most `full_max`
    entries in all) every coordinate direction."""
    learn = prog.learnable_inputs()
    v = {i.name: rng.standard_normal(tuple(i.shape)) for i in learn}
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in v.values()))
    out = [{k: x / norm for k, x in v.items()} if norm else v]
    if sum(int(np.prod(i.shape)) for i in learn) <= full_max:
        for i in learn:
            for k in range(int(np.prod(i.shape))):
                e = {j.name: np.zeros(tuple(j.shape)) for j in learn}
                e[i.name].reshape(-1)[k] = 1.0
                out.append(e)
    return out
