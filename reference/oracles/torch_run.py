"""The PyTorch oracle: a program run in float64, exact or perturbed.

`run_torch` executes a program in float64 with `retain_grad` on every node and returns every
node's value, every gradient and every op's kink coordinates. Given a `Noise`, it runs a
*perturbed* twin instead: every op sees its operands multiplied by (1 + r in_ulps u), its
output is multiplied by (1 + r out_ulps u) and shifted by r u out_abs, the gradient arriving
at each operand is shifted by r u bwd_abs, and every edge's gradient contribution is
multiplied by (1 + r GRAD_ULPS u) before it is accumulated -- the registry's rounding-error
model at the unit roundoff u of the dtype each op computes in, with r independent standard
normal factors. Gradual underflow adds an absolute error of up to u * tiny to every rounded
result (tiny the dtype's smallest normal number): every nonzero output of an op that rounds,
and every nonzero gradient contribution, is also shifted by r u tiny (exact zeros stay), and
the gradient reaching an operand of an op that rounds by r u tiny sum|g_out| (its derivative
underflows too, and the cotangent multiplies that error). How far the perturbed runs land from the exact run (the *spread*) measures
how much rounding this very example can amplify; `reference.oracles.oracle` turns it
into tolerances. `backward_passes > 1` replays `backward(reset_grad=False)`:
`torch.autograd.backward([root, *intermediates], [ones, *previous_grads])`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reference.numerics import INJECT_MIN, U, U64, tiny
from reference.programs.graph import Program

GRAD_ULPS = 4          # rounding of every gradient accumulation, in ulps

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
            if spec.out_ulps or spec.out_abs is not None:
                out = out + _underflow(raw, dtype, u, noise)
                _hook_underflow(ops, raw, dtype, u, noise)
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
    e.register_hook(lambda g: g * (1 + GRAD_ULPS * u * r) + GRAD_ULPS * _underflow(g, dtype, u, noise))
    return e


def _underflow(t: torch.Tensor, dtype: str, u: float, noise: Noise) -> torch.Tensor:
    """r u tiny(dtype) where `t` is nonzero: the absolute error of gradual underflow."""
    shape = tuple(t.shape)
    return as_tensor(u * tiny(dtype) * noise.factors(shape) * (as_array(t) != 0))


def _hook_underflow(ops, raw, dtype: str, u: float, noise: Noise) -> None:
    """The op's derivatives are computed too, and one that underflows (exp's at -100 in
    float32) carries an absolute error of u tiny, times the cotangent: shift each nonzero
    gradient reaching an operand by r u tiny sum|g_out| (a bound of that error)."""
    if not raw.requires_grad:
        return
    box = {}

    def keep(g):
        box["g"] = float(g.abs().sum())
    raw.register_hook(keep)
    for o in ops:
        if o.requires_grad:
            o.register_hook(lambda g: g + box["g"] * _underflow(g, dtype, u, noise))


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
