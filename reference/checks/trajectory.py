"""The oracles of a training run (`checks.training`), torch.optim on float64 torch.

- `Trajectory`: the run as it should go -- the Module's program in float64 torch and the
  optimizer's torch.optim twin on each step's whole batch. Its tolerances come, when the
  floor does not decide, from `numerics.RUNS` perturbed trajectories (made one at a time,
  the next only when the comparison fails under the spread of those made so far): every op of the forward
  and backward perturbed by its rounding model, every optimizer state buffer by STATE_ULPS
  and every update by OPT_ULPS before it is applied, every weight rounded to the dtype.
- `UpdatesAlone`: each update alone, once pygrad's trajectory has left torch's.

A training run (`case`) gives the optimizer's `name` and `hyper`, the `steps`, `spec`,
`noise`, and per step `update_scale(k)` and `extra_grad(k)` (see `training.TrainRun`).
"""
from __future__ import annotations

import numpy as np
import torch

from reference.checks import InvalidExample
from reference.numerics import MAX_MAGNITUDE, RUNS, lower_bound, tolerance
from reference.oracles import torch_run
from reference.oracles.oracle import classify_kinks, validate
from reference.programs.nets import module_program, program_values
from reference.registry import OPTIMIZERS

OPT_ULPS = 8      # rounding of one optimizer update, relative to the update, in ulps
STATE_ULPS = 4    # rounding of an optimizer state buffer (momentum, averages), in ulps


class Trajectory:
    """The oracle of a training run: per step the loss, the weights' gradients and the
    weights after the step (exact float64 torch + torch.optim), with tolerances."""

    def __init__(self, case, weights, init: dict):
        self.case, self.weights, self.init = case, weights, init    # init: every parameter's, by name
        self.exact = self._run(None)
        self._noise, self._runs, self._spreads = None, [], None

    def _run(self, noise) -> list:
        case, weights = self.case, self.weights
        spec = case.spec
        tensors = {n: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for n, v in self.init.items()}
        optim = OPTIMIZERS[case.name].torch(list(tensors.values()), dict(case.hyper))
        steps = []
        for k, chunks in enumerate(case.steps):
            x = np.concatenate([np.asarray(c[0]) for c in chunks])
            target = np.concatenate([np.asarray(c[1]) for c in chunks])
            prog, _ = module_program(spec, len(x), weights)
            vals = program_values(spec, weights, {n: t.detach().numpy().copy() for n, t in tensors.items()}, x,
                                  target, cast=False)
            with np.errstate(all="ignore"):
                run = torch_run.run_torch(prog, vals, noise)
            if noise is None:
                validate(prog, run)
            else:
                validate(prog, self._exact_runs[len(steps)], underflow=True)
                classify_kinks(prog, self._exact_runs[len(steps)], [run], noise.scale)
            grads = {w.name: run.grads[w.program_input] for w in weights}
            update = {w.name: grads[w.name] * case.update_scale(k) for w in weights}
            for n, c in case.penalty_grad(k).items():
                update[n] = update[n] + c
            if case.unused:
                update["extra"] = case.extra_grad(k)
            torch_step(optim, tensors, update, noise)
            after = {n: t.detach().numpy().copy() for n, t in tensors.items()}
            if any(np.any(np.abs(a) > MAX_MAGNITUDE) for a in after.values()):
                raise InvalidExample(f"the trajectory exceeds {MAX_MAGNITUDE:g}")
            steps.append({"loss": np.asarray(run.values[prog.root]), "grads": grads, "weights": after, "run": run})
        return steps

    @property
    def _exact_runs(self) -> list:
        return [s["run"] for s in self.exact]

    def _perturbed(self, r: int) -> list:
        """The first `r` perturbed trajectories, made on first need, in order, from one noise
        stream (the same ones whichever `r` is asked first)."""
        if self._noise is None:
            self._noise = torch_run.Noise(np.random.default_rng(self.case.noise), frozenset({self.case.spec.dtype}))
        while len(self._runs) < r:
            self._runs.append(self._run(self._noise))
        return self._runs[:r]

    def _spread(self, runs: list, k: int, get) -> np.ndarray:
        ex = get(self.exact[k])
        s = np.zeros_like(ex)
        for r in runs:
            s = np.maximum(s, self._noise.scale * np.abs(get(r[k]) - ex))
        if not np.all(np.isfinite(s)):
            raise InvalidExample("a rounding-size perturbation makes the trajectory non-finite")
        return s

    def spreads(self) -> list:
        """Per step, the largest deviation of each quantity over all RUNS perturbed
        trajectories (every quantity's, as one judgement of the example)."""
        if self._spreads is None:
            runs = self._perturbed(RUNS)
            self._spreads = [{"loss": self._spread(runs, k, lambda s: s["loss"]),
                              "grads": {n: self._spread(runs, k, lambda s, n=n: s["grads"][n]) for n in ex["grads"]},
                              "weights": {n: self._spread(runs, k, lambda s, n=n: s["weights"][n])
                                          for n in ex["weights"]}}
                             for k, ex in enumerate(self.exact)]
        return self._spreads

    def tols(self, k: int, what: str, name: str | None = None, scale: float = 1.0):
        """Tolerances of quantity `what` ("loss" | "grads" | "weights") at step k, cheapest
        first: the floor, the spread over the first 1 .. RUNS-1 perturbed trajectories (lower
        bounds: a spread only grows with more runs), the full one."""
        def get(d):
            return d[what] if name is None else d[what][name]
        dtype = self.case.spec.dtype
        exact = get(self.exact[k]) * scale
        yield tolerance(exact, dtype)
        for r in range(1, RUNS):
            yield lower_bound(tolerance(exact, dtype, self._spread(self._perturbed(r), k, get) * scale))
        yield tolerance(exact, dtype, get(self.spreads()[k]) * scale)

    def want(self, k: int, what: str, name: str | None = None):
        d = self.exact[k][what]
        return d if name is None else d[name]


def torch_step(optim, tensors: dict, grads: dict, noise) -> None:
    """One torch.optim step with these gradients (None: the parameter is not in the step's
    graph); with `noise`, the rounding of the state, of the update and of the stored weight
    perturbed."""
    def r(shape):
        return torch.from_numpy(noise.factors(tuple(shape)))
    u = max(noise.unit(d) for d in noise.dtypes) if noise is not None else 0.0
    with torch.no_grad():
        for name, g in grads.items():
            t = tensors[name]
            t.grad = None if g is None else torch.from_numpy(np.array(g, dtype=np.float64))
            if noise is not None:
                for key, buf in optim.state.get(t, {}).items():
                    if key != "step" and torch.is_tensor(buf) and buf.shape == t.shape:
                        buf.mul_(1 + STATE_ULPS * u * r(buf.shape))
        old = {n: t.detach().clone() for n, t in tensors.items()}
        optim.step()
        if noise is not None:
            for n, t in tensors.items():
                delta = (t - old[n]) * (1 + OPT_ULPS * u * r(t.shape))
                t.copy_((old[n] + delta) * (1 + u * r(t.shape)))


class UpdatesAlone:
    """The oracle of an update once the trajectory has left torch's (a wrong gradient or
    loss earlier): torch.optim fed, step by step, with pygrad's own parameters before the
    step and the gradients pygrad's optimizer applied, so a wrong update is still told apart
    from the consequences of a wrong gradient. A parameter absent from a step's graph is
    recorded with the gradient None: torch skips it there, as pygrad must. Recording is
    cheap (copies); the torch runs -- the exact one and RUNS perturbed ones, as in
    `Trajectory` -- start at the first question."""

    def __init__(self, case, shapes: dict):
        self.case, self.shapes = case, shapes   # parameter name -> shape, in the optimizer's order
        self.history: list = []      # per step: (parameters before, gradients applied or None), pygrad's
        self.runs: list | None = None
        self.after: list = []        # per step run so far: [exact parameters after, spread]

    def record(self, before: dict, applied: dict) -> None:
        """Step k's parameters before it and the gradients applied (None: absent from its
        graph)."""
        self.history.append(({n: np.array(v, dtype=np.float64) for n, v in before.items()},
                             {n: None if g is None else np.array(g, dtype=np.float64) for n, g in applied.items()}))

    def judgeable(self, k: int) -> bool:
        """Can step k be replayed (every parameter and gradient of its shape and finite)?"""
        return all(np.shape(before[n]) == shape and (grads[n] is None or np.shape(grads[n]) == shape
                                                     and np.all(np.isfinite(grads[n])))
                   for before, grads in self.history[:k + 1] for n, shape in self.shapes.items())

    def tols(self, k: int, name: str):
        """(torch.optim's parameter `name` after step k, its tolerances cheapest first)."""
        spec = self.case.spec
        if self.runs is None:
            noise = torch_run.Noise(np.random.default_rng(self.case.noise + 7), frozenset({spec.dtype}))
            self.runs = [self._start(None)] + [self._start(noise) for _ in range(RUNS)]
        while len(self.after) <= k:
            before, grads = self.history[len(self.after)]
            results = []
            for tensors, optim, noise in self.runs:
                with torch.no_grad():
                    for n, t in tensors.items():
                        t.copy_(torch.from_numpy(before[n]))
                torch_step(optim, tensors, grads, noise)
                results.append({n: t.detach().numpy().copy() for n, t in tensors.items()})
            scale = self.runs[1][2].scale
            spread = {n: np.max([scale * np.abs(r[n] - results[0][n]) for r in results[1:]], axis=0)
                      for n in results[0]}
            self.after.append((results[0], spread))
        exact, spread = self.after[k][0][name], self.after[k][1][name]
        return exact, (tolerance(exact, spec.dtype), tolerance(exact, spec.dtype, spread))

    def _start(self, noise):
        tensors = {n: torch.zeros(shape, dtype=torch.float64, requires_grad=True) for n, shape in self.shapes.items()}
        return tensors, OPTIMIZERS[self.case.name].torch(list(tensors.values()), dict(self.case.hyper)), noise
