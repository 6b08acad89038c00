"""The oracles: PyTorch in float64, and central finite differences in float64.

PyTorch
-------
`run_torch` executes a program in float64 with `retain_grad` on every node and returns every
node's value, every gradient and every op's kink coordinates. Given a `Noise`, it runs a
*perturbed* twin instead: every op sees its operands multiplied by (1 + r in_ulps u), its
output is multiplied by (1 + r out_ulps u) and shifted by r u out_abs, the gradient arriving
at each operand is shifted by r u bwd_abs, and every edge's gradient contribution is
multiplied by (1 + r GRAD_ULPS u) before it is accumulated -- the registry's rounding-error
model at the unit roundoff u of the dtype each op computes in, with r independent standard
normal factors. How far the perturbed runs land from the exact run (the *spread*) measures
how much rounding this very example can amplify; `reference.compare` turns it into
tolerances. `backward_passes > 1` replays `backward(reset_grad=False)`:
`torch.autograd.backward([root, *intermediates], [ones, *previous_grads])`.

Finite differences
------------------
`fd_derivative` evaluates the loss with the NumPy references at x +- h v, x +- 2h v and
x +- 4h v and returns the central difference D(h) = (L(x+hv) - L(x-hv)) / 2h and
Richardson's estimate of its truncation error |D(2h) - D(h)| / 3 -- after checking that the
stencil's reach (x +- 4hv) is clear of every kink (each kink coordinate stays on one side of
0, farther from it than `FD_KINK_MARGIN` times its own displacement) and that h is small
enough for the estimate to hold (shrinking h when it is not). Always float64, also for
float32 programs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reference.program import Program, run_numpy
from reference.registry import U

GRAD_ULPS = 4          # rounding of every gradient accumulation, in ulps
FD_STEP = 2.0 ** -17   # h relative to the largest input magnitude (at least 1)
FD_KINK_MARGIN = 4     # a kink coordinate must stay 4x farther from 0 than it moves
INJECT_MIN = 2.0 ** -40  # smallest noise unit a float64 run can carry faithfully
U64 = U["float64"]

torch.set_num_threads(1)  # the programs are tiny; threads only add noise and contention


@dataclass
class Noise:
    """Random factors for the perturbed runs of a program whose ops compute in `dtypes`.

    An op computing in dtype d is perturbed at `unit(d)`. A float64 run cannot carry a
    perturbation of 2**-53 (1 + 2**-53 r rounds to 1), so a program whose ops are all
    float64 is perturbed at 2**-40 and the measured spread scaled back by `scale` = 2**-13
    (first order: the spread is linear in u). A program mixing float32 and float64 ops is
    perturbed at each op's own unit, float64 ops at 2**-40, and not scaled back: its float64
    ops get a bound up to 2**13 looser than in a pure float64 program (still ~1e-11
    relative). Standard normal factors, not random signs: with +-1 two equal error sources
    cancel exactly half of the time."""

    rng: np.random.Generator
    dtypes: frozenset

    def unit(self, dtype: str) -> float:
        return max(U[dtype], INJECT_MIN)

    @property
    def scale(self) -> float:
        if self.dtypes == {"float64"}:
            return U64 / INJECT_MIN
        return 1.0

    def factors(self, shape) -> np.ndarray:
        return self.rng.standard_normal(size=shape)


@dataclass
class TorchRun:
    values: dict       # name -> float64 ndarray
    kinks: dict        # node name -> [(s, exact)] as seen by the op
    history: list      # name -> gradient, after each backward pass

    @property
    def grads(self) -> dict:
        return self.history[-1]


def as_tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64, copy=True))


def as_array(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def run_torch(prog: Program, values, noise: Noise | None = None, backward_passes: int = 1,
              stops=()) -> TorchRun:
    """`stops`: nodes marked learnable=False in pygrad. Each is detached into a leaf of its
    own: it receives the gradient of its consumers and passes none to its operands."""
    env = {i.name: as_tensor(values[i.name]).requires_grad_(i.learnable) for i in prog.inputs}
    kinks = {}
    for n in prog.nodes:
        spec, args = n.spec, n.spec.all_args(n.args)
        ops = [env[o] for o in n.operands]
        np_ops = [as_array(o) for o in ops]
        alias = spec.returns_operand([tuple(o.shape) for o in ops])   # pygrad returns the operand itself
        dtype = spec.computes_in([prog.dtype(o) for o in n.operands]) if spec.computes_in else prog.dtype(n.name)
        u = noise.unit(dtype) if noise is not None else 0.0
        if noise is not None and not alias:
            ops = [_edge(o, prog.dtype(name), spec.operand_in_ulps(np_ops, args) * u, noise) if o.requires_grad
                   else o * (1 + spec.operand_in_ulps(np_ops, args) * u * as_tensor(noise.factors(tuple(o.shape))))
                   for o, name in zip(ops, n.operands)]
            np_ops = [as_array(o) for o in ops]
        kinks[n.name] = spec.kinks(np_ops, args)
        raw = spec.torch(*ops, **args)
        out = raw
        if noise is not None:
            if spec.out_ulps:
                out = out * (1 + spec.out_ulps * u * as_tensor(noise.factors(tuple(out.shape))))
            if spec.out_abs is not None:
                mag = np.broadcast_to(spec.out_abs(np_ops, as_array(raw), args), tuple(raw.shape))
                out = out + as_tensor(u * mag * noise.factors(mag.shape))
            if spec.bwd_abs is not None:
                _hook_bwd(spec, args, ops, np_ops, raw, u, noise)
        if n.name in stops:
            out = out.detach().requires_grad_(True)
        elif out.requires_grad and out.grad_fn is not None:
            out.retain_grad()
        env[n.name] = out

    root = env[prog.root]
    torch.autograd.backward([root], [torch.ones_like(root)], retain_graph=backward_passes > 1)
    history = [_grads(prog, env)]
    for _ in range(backward_passes - 1):
        inter = _intermediates(prog, env)
        seeds = [as_tensor(history[-1][name]) for name, _ in inter]
        for _, t in inter + [(prog.root, root)]:
            t.grad = None
        torch.autograd.backward([root] + [t for _, t in inter], [torch.ones_like(root)] + seeds,
                                retain_graph=True)
        history.append(_grads(prog, env))
    return TorchRun({k: as_array(v) for k, v in env.items()}, kinks, history)


def _edge(o, dtype: str, rel: float, noise: Noise):
    """The operand as this op sees it in a perturbed run: a copy multiplied by (1 + r rel),
    whose gradient -- this edge's contribution to the operand's gradient, before it is
    accumulated with other consumers' -- is multiplied by (1 + r GRAD_ULPS u)."""
    shape = tuple(o.shape)
    e = o * (1 + rel * as_tensor(noise.factors(shape))) if rel else o * 1.0
    r = as_tensor(noise.factors(shape))
    u = noise.unit(dtype)
    e.register_hook(lambda g: g * (1 + GRAD_ULPS * u * r))
    return e


def _hook_bwd(spec, args, ops, np_ops, raw, u, noise):
    """Shift the gradient reaching each operand of this op by +- u * bwd_abs(g_out)."""
    box = {}

    def keep(g):
        box["g"] = g.detach().numpy()
    raw.register_hook(keep)
    for i, o in enumerate(ops):
        def shift(g, i=i, shape=tuple(o.shape)):
            mags = spec.bwd_abs(np_ops, as_array(raw), box["g"], spec.all_args(args))
            mag = np.broadcast_to(mags[i], shape)
            return g + as_tensor(u * mag * noise.factors(shape))
        if o.requires_grad:
            o.register_hook(shift)


def _intermediates(prog: Program, env: dict) -> list:
    """(name, tensor) of every non-leaf node other than the root, each tensor once."""
    seen, out = {id(env[prog.root])}, []
    for n in prog.nodes:
        t = env[n.name]
        if t.grad_fn is not None and id(t) not in seen:
            seen.add(id(t))
            out.append((n.name, t))
    return out


def _grads(prog: Program, env: dict) -> dict:
    out = {}
    for name in prog.names:
        t = env[name]
        out[name] = np.zeros(tuple(t.shape)) if t.grad is None else as_array(t.grad)
    return out


# ---------------------------------------------------------------------------- finite differences
@dataclass
class FD:
    d: float            # central difference D(h)
    trunc: float        # |D(2h) - D(h)| / 3
    h: float
    clear: bool         # no kink within reach of the stencil
    why: str = ""


def fd_step(prog: Program, values) -> float:
    m = max((float(np.max(np.abs(values[i.name]), initial=0.0)) for i in prog.learnable_inputs()),
            default=0.0)
    return FD_STEP * max(1.0, m)


def fd_derivative(prog: Program, values, v: dict, h: float, noise=lambda h: 0.0) -> FD:
    """Directional derivative of the loss along `v` (name -> array, learnable inputs).

    Richardson's error estimate |D(2h) - D(h)| / 3 only holds where the loss is close to its
    Taylor polynomial over the stencil; we check that D(4h) - D(2h) is about 4 times
    D(2h) - D(h) (between 2 and 8 times, up to the roundoff `noise(h)` of one D(h)), and
    shrink h by 8 up to three times until it is."""
    base = {k: np.asarray(x, dtype=np.float64) for k, x in values.items()}

    def at(t):
        pts = {k: (x + t * v[k] if k in v else x) for k, x in base.items()}
        return run_numpy(prog, pts, with_kinks=True)

    _, k0 = at(0.0)
    for _ in range(4):
        runs = {t: at(t) for t in (-4 * h, -2 * h, -h, h, 2 * h, 4 * h)}
        losses = {t: float(env[prog.root]) for t, (env, _) in runs.items()}
        if not all(np.isfinite(list(losses.values()))):
            return FD(np.nan, np.nan, h, False, "the loss is not finite near x")
        blocked = _kink_in_reach(k0, runs)
        if blocked:
            return FD(np.nan, np.nan, h, False, blocked)
        d1 = (losses[h] - losses[-h]) / (2 * h)
        d2 = (losses[2 * h] - losses[-2 * h]) / (4 * h)
        d4 = (losses[4 * h] - losses[-4 * h]) / (8 * h)
        e1, e2, n = abs(d2 - d1), abs(d4 - d2), 6 * noise(h)
        if 2 * e1 - n <= e2 <= 8 * e1 + n:  # error ~ h^2: doubling h quadruples it
            return FD(d1, e1 / 3, h, True)
        h /= 8
    return FD(np.nan, np.nan, h, False, "the loss is not smooth at the finite-difference scale")


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
