"""Optimizer trajectories against torch.optim.

A random Module trained for several steps with an optimizer of the table, the way the README
trains: `zero_grad`, call, loss, `backward`, `step(loss)` -- or `step_single` accumulation
over equal chunks, which must equal one step on their concatenation. What users vary varies:
`model_reset()` every step or never, the target marked leaf=True or not, the parameters
given in another order, a parameter outside the loss's graph (it must not move). At every
step the loss (value) and the batched copy's gradients (grad), or the accumulated `.grad`
(invariant -- or, when the Module's program of registry ops on the step's whole batch shows a
wrong op, that op's finding), and after every step every parameter (invariant) follow the
oracle; once the trajectory has left the oracle's, each update is judged alone
(`UpdatesAlone`), so a wrong update is still seen behind a wrong gradient.

The oracle (`Trajectory`) runs the Module's program in float64 torch and the optimizer's
torch.optim twin on a step's whole batch. Its tolerances come, when the floor does not
decide, from `numerics.RUNS` perturbed trajectories: every op of the forward and backward
perturbed by its rounding model, every optimizer state buffer by STATE_ULPS and every update
by OPT_ULPS before it is applied, every weight rounded to the dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reference.checks import InvalidExample, Outcome
from reference.checks.module_calls import Run, Script, blamer, pygrad_call
from reference.numerics import MAX_MAGNITUDE, RUNS, tolerance
from reference.oracles import torch_run
from reference.oracles.oracle import classify_kinks, validate
from reference.programs import printer
from reference.programs.nets import ModuleSpec, build, module_program, program_values, weight
from reference.registry import MODULE_LOSSES, OPTIMIZERS, TrainUse
from reference.tolerances import judge

OPT_ULPS = 8      # rounding of one optimizer update, relative to the update, in ulps
STATE_ULPS = 4    # rounding of an optimizer state buffer (momentum, averages), in ulps
EXTRA = np.array([0.5, -1.5])   # the value of a parameter outside the loss's graph


@dataclass(frozen=True)
class TrainRun:
    """Training `build(spec, seed)` with optimizer `name` and `hyper` ((key, value) pairs):
    step k uses the chunks `steps[k]` ((x, target) arrays); `reset`: model_reset() before
    every call; `target_leaf`: the target marked leaf=True; `order`: the permutation of
    `model.weights` given to the optimizer (None: as is); `unused`: a parameter outside the
    graph is given too."""

    spec: ModuleSpec
    seed: int
    name: str
    hyper: tuple
    steps: tuple
    reset: bool = True
    target_leaf: bool = True
    order: tuple | None = None
    unused: bool = False
    noise: int = 0

    @property
    def row(self) -> str:
        return OPTIMIZERS[self.name].row

    def use(self, n_weights: int) -> TrainUse:
        return TrainUse(dict(self.hyper), len(self.steps), n_weights + self.unused, any(len(c) > 1 for c in self.steps),
                        self.order is not None and list(self.order) != sorted(self.order), self.target_leaf,
                        self.reset, self.unused, self.spec.dtype)

    def conditions(self, n_weights: int) -> set:
        use = self.use(n_weights)
        return {c.name for c in OPTIMIZERS[self.name].conditions if c.reached(use)}


def accumulation_divisor(spec: ModuleSpec, chunks: int) -> int:
    """`batch_size` for `step_single` so that accumulating equal chunks equals one step on
    their concatenation: 1 for a summed loss, the number of chunks for averaged ones."""
    return 1 if MODULE_LOSSES[spec.loss].reduction == "sum" else chunks


class Trajectory:
    """The oracle of a training run: per step the loss, the weights' gradients and the
    weights after the step (exact float64 torch + torch.optim), with tolerances."""

    def __init__(self, case: TrainRun, weights, init: dict):
        self.case, self.weights, self.init = case, weights, init
        self.exact = self._run(None)
        self._spreads = None

    def _run(self, noise) -> list:
        case, weights = self.case, self.weights
        spec = case.spec
        tensors = {w.name: torch.tensor(np.asarray(self.init[w.name], dtype=np.float64), requires_grad=True)
                   for w in weights}
        optim = OPTIMIZERS[case.name].torch([tensors[w.name] for w in weights], dict(case.hyper))
        steps = []
        for chunks in case.steps:
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
            _torch_step(optim, tensors, weights, grads, noise)
            after = {n: t.detach().numpy().copy() for n, t in tensors.items()}
            if any(np.any(np.abs(a) > MAX_MAGNITUDE) for a in after.values()):
                raise InvalidExample(f"the trajectory exceeds {MAX_MAGNITUDE:g}")
            steps.append({"loss": np.asarray(run.values[prog.root]), "grads": grads, "weights": after, "run": run})
        return steps

    @property
    def _exact_runs(self) -> list:
        return [s["run"] for s in self.exact]

    def spreads(self) -> list:
        """Per step, the largest deviation of each quantity over RUNS perturbed trajectories."""
        if self._spreads is None:
            spec = self.case.spec
            noise = torch_run.Noise(np.random.default_rng(self.case.noise), frozenset({spec.dtype}))
            runs = [self._run(noise) for _ in range(RUNS)]
            out = []
            for k, ex in enumerate(self.exact):
                def spread(get):
                    s = np.zeros_like(get(ex))
                    for r in runs:
                        s = np.maximum(s, noise.scale * np.abs(get(r[k]) - get(ex)))
                    if not np.all(np.isfinite(s)):
                        raise InvalidExample("a rounding-size perturbation makes the trajectory non-finite")
                    return s
                out.append({"loss": spread(lambda s: s["loss"]),
                            "grads": {n: spread(lambda s, n=n: s["grads"][n]) for n in ex["grads"]},
                            "weights": {n: spread(lambda s, n=n: s["weights"][n]) for n in ex["weights"]}})
            self._spreads = out
        return self._spreads

    def tols(self, k: int, what: str, name: str | None = None, scale: float = 1.0):
        """Tolerances of quantity `what` ("loss" | "grads" | "weights") at step k, cheapest
        first."""
        def get(d):
            return d[what] if name is None else d[what][name]
        dtype = self.case.spec.dtype
        exact = get(self.exact[k]) * scale
        yield tolerance(exact, dtype)
        yield tolerance(exact, dtype, get(self.spreads()[k]) * scale)

    def want(self, k: int, what: str, name: str | None = None):
        d = self.exact[k][what]
        return d if name is None else d[name]


def _torch_step(optim, tensors: dict, weights, grads: dict, noise) -> None:
    """One torch.optim step with the program's gradients; with `noise`, the rounding of the
    state, of the update and of the stored weight perturbed."""
    def r(shape):
        return torch.from_numpy(noise.factors(tuple(shape)))
    u = max(noise.unit(d) for d in noise.dtypes) if noise is not None else 0.0
    with torch.no_grad():
        for w in weights:
            t = tensors[w.name]
            t.grad = torch.from_numpy(np.array(grads[w.name], dtype=np.float64))
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


def train_script(case: TrainRun) -> Script:
    """The whole training run as plain pygrad statements."""
    s = script_of(case)
    for chunks in case.steps:
        s.add("optim.zero_grad()")
        bs = accumulation_divisor(case.spec, len(chunks))
        for x, target in chunks:
            s.call(x, target, case.reset, case.target_leaf)
            s.add(f"optim.step({s.loss})" if len(chunks) == 1 else f"optim.step_single({s.loss}, {bs})")
        if len(chunks) > 1:
            s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")
    return s


def script_of(case: TrainRun) -> Script:
    """The run's setup as code: model, the parameters in their order, the optimizer."""
    s = Script(case.spec, case.seed)
    params = "model.weights" if case.order is None else \
        "[model.weights[i] for i in " + repr(tuple(int(i) for i in case.order)) + "]"
    if case.unused:
        s.add(f"extra = Tensor({printer.array_literal(EXTRA)}"
              f"{'' if case.spec.dtype == 'float64' else ', dtype=' + case.spec.dtype})")
        params += " + [extra]"
    s.add(f"params = {params}")
    s.add(f"optim = {OPTIMIZERS[case.name].render('params', dict(case.hyper))}")
    return s


class UpdatesAlone:
    """The oracle of an update once the trajectory has left torch's (a wrong gradient or
    loss earlier): torch.optim fed, step by step, with pygrad's own weights before the step
    and the gradients pygrad's optimizer applied, so a wrong update is still told apart from
    the consequences of a wrong gradient. Recording is cheap (copies); the torch runs -- the
    exact one and RUNS perturbed ones, as in `Trajectory` -- start at the first question."""

    def __init__(self, case: TrainRun, weights):
        self.case, self.weights = case, weights
        self.history: list = []      # per step: (weights before, gradients applied), pygrad's
        self.runs: list | None = None
        self.after: list = []        # per step run so far: [exact weights after, spread]

    def record(self, before: dict, applied: dict) -> None:
        self.history.append(({n: np.array(v, dtype=np.float64) for n, v in before.items()},
                             {n: np.array(g, dtype=np.float64) for n, g in applied.items()}))

    def judgeable(self, k: int) -> bool:
        """Can step k be replayed (every weight and gradient of its shape and finite)?"""
        return all(np.shape(before[w.name]) == w.shape and np.shape(grads[w.name]) == w.shape
                   and np.all(np.isfinite(grads[w.name])) for before, grads in self.history[:k + 1]
                   for w in self.weights)

    def tols(self, k: int, name: str):
        """(torch.optim's weight `name` after step k, its tolerances cheapest first)."""
        spec = self.case.spec
        if self.runs is None:
            noise = torch_run.Noise(np.random.default_rng(self.case.noise + 7), frozenset({spec.dtype}))
            self.runs = [self._start(None)] + [self._start(noise) for _ in range(RUNS)]
        while len(self.after) <= k:
            j = len(self.after)
            before, grads = self.history[j]
            results = []
            for tensors, optim, noise in self.runs:
                with torch.no_grad():
                    for w in self.weights:
                        tensors[w.name].copy_(torch.from_numpy(before[w.name]))
                _torch_step(optim, tensors, self.weights, grads, noise)
                results.append({n: t.detach().numpy().copy() for n, t in tensors.items()})
            scale = self.runs[1][2].scale
            spread = {n: np.max([scale * np.abs(r[n] - results[0][n]) for r in results[1:]], axis=0)
                      for n in results[0]}
            self.after.append((results[0], spread))
        exact, spread = self.after[k][0][name], self.after[k][1][name]
        return exact, (tolerance(exact, spec.dtype), tolerance(exact, spec.dtype, spread))

    def _start(self, noise):
        tensors = {w.name: torch.zeros(w.shape, dtype=torch.float64, requires_grad=True) for w in self.weights}
        return tensors, OPTIMIZERS[self.case.name].torch([tensors[w.name] for w in self.weights],
                                                         dict(self.case.hyper)), noise


def check_training(case: TrainRun) -> Outcome:
    """Train in pygrad as a user does and follow the oracle (see the module docstring).
    Returns the worst error/tolerance ratio on the optimizer's row; raises every distinct
    failure (see `_steps`)."""
    run = Run(case.row, script_of(case), f"{case.name}{dict(case.hyper)} training Module {case.spec!r}")
    with run.parts.part():      # an exception of pygrad ends the run
        _steps(run, case)
    return run.parts.settle(Outcome(run.worst, per_row={case.row: run.worst}, bound_rows={case.row: run.worst_bound}))


def _steps(run: Run, case: TrainRun) -> None:
    """The steps, in parts: while the trajectory follows torch's, the loss and gradients
    (or step_single's accumulated gradient) and the weights after each step against it; once
    it has left (a failure), the updates alone against `UpdatesAlone` (a wrong update is
    still seen behind a wrong gradient), and what follows from the failure is not judged
    again. A parameter outside the graph must never move."""
    from pygrad import Tensor
    spec, s, parts = case.spec, run.s, run.parts
    model, weights = run.pygrad(lambda: build(spec, case.seed), "building the model")
    conds = case.conditions(len(weights))
    params = list(model.weights)
    if case.order is not None:
        params = [params[i] for i in case.order]
    extra = Tensor(EXTRA, dtype=spec.dtype) if case.unused else None
    optim = run.pygrad(lambda: OPTIMIZERS[case.name].make(params + ([extra] if extra is not None else []),
                                                          dict(case.hyper)), "creating the optimizer")
    traj = Trajectory(case, weights, {w.name: weight(model, w.name).value for w in weights})
    alone = UpdatesAlone(case, weights)
    dt = spec.dtype
    diverged = update_wrong = False
    for k, chunks in enumerate(case.steps):
        step = f"step {k}"
        s.add("optim.zero_grad()")
        run.pygrad(optim.zero_grad, "optim.zero_grad()")
        values = {w.name: np.array(weight(model, w.name).value) for w in weights}
        found = len(parts.found)
        if len(chunks) == 1:
            (x, target), = chunks
            blame = blamer(spec, model, weights, values, x, target, case.noise + k, (len(x),))
            s.call(x, target, case.reset, case.target_leaf)
            got = run.pygrad(lambda: pygrad_call(spec, model, weights, x, target, case.reset, case.target_leaf),
                             f"the call of {step}", blame)
            if not diverged:
                with parts.part():
                    run.expect_close("value", f"the loss at {step}", f"{s.loss}.value", got.loss.value,
                                     traj.want(k, "loss"), lambda: traj.tols(k, "loss"), blame)
                    for w in weights:
                        run.expect_close("grad", f"the gradient of {w.name} in the batched copy at {step}",
                                         f"model.copy.{w.name}.grad", got.grads[w.name],
                                         traj.want(k, "grads", w.name), lambda w=w: traj.tols(k, "grads", w.name),
                                         blame)
            alone.record(values, got.grads)
            s.add(f"optim.step({s.loss})")
            run.pygrad(lambda: optim.step(got.loss), f"optim.step at {step}")
        else:
            bs = accumulation_divisor(spec, len(chunks))
            whole = (np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]))
            blame = blamer(spec, model, weights, values, *whole, case.noise + k, (len(whole[0]),))
            for x, target in chunks:
                s.call(x, target, case.reset, case.target_leaf)
                got = run.pygrad(lambda: pygrad_call(spec, model, weights, x, target, case.reset, case.target_leaf),
                                 f"a chunk call of {step}")
                s.add(f"optim.step_single({s.loss}, {bs})")
                run.pygrad(lambda: optim.step_single(got.loss, bs), f"optim.step_single at {step}")
            for w in weights if not diverged else ():
                what = f"the accumulated .grad of {w.name} at {step}"
                problem, r, bound = judge(weight(model, w.name).grad, traj.want(k, "grads", w.name) * bs, dt,
                                          traj.tols(k, "grads", w.name, bs))
                run.note(r, bound)
                if problem:      # blamed on the ops when the program of the whole step's batch is wrong
                    parts.add(run.blamed("invariant", f"{what} (step_single(loss, {bs}) over {len(chunks)} chunks "
                                         f"must add up to {bs} x the whole batch's gradient) differs from torch: "
                                         f"{problem}", what, [printer.close_line(
                                             what, f"model.{w.name}.grad", dt, traj.want(k, "grads", w.name) * bs,
                                             list(traj.tols(k, "grads", w.name, bs))[-1])], blame,
                                         "step_single accumulates", conds))
                    break
            alone.record(values, {w.name: np.asarray(weight(model, w.name).grad) / bs for w in weights})
            s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")
            run.pygrad(lambda: optim.step_single(got.loss, bs, modify=True), f"optim.step_single(modify=True) at {step}")
        diverged |= len(parts.found) > found
        if not update_wrong:
            found = len(parts.found)
            with parts.part():
                if diverged:
                    _check_update_alone(run, model, weights, alone, k, conds)
                else:
                    _check_weights(run, model, weights, traj, k, conds)
            update_wrong = len(parts.found) > found
            diverged |= update_wrong
        if extra is not None:
            with parts.part():
                run.require(np.array_equal(extra.value, np.asarray(EXTRA, dtype=dt)), f"a parameter outside the "
                            f"loss's graph moved at {step} (a parameter that did not contribute gets no update)",
                            "extra", f"assert np.array_equal(extra.value, {printer.array_literal(EXTRA)})",
                            conditions=conds, what="a parameter outside the graph stays")


UPDATE = "the update follows torch.optim"


def _check_weights(run: Run, model, weights, traj: Trajectory, k: int, conds) -> None:
    """Every weight after step k against torch.optim's trajectory."""
    dt = run.s.spec.dtype
    for w in weights:
        what = f"{w.name} after step {k}"
        problem, r, bound = judge(weight(model, w.name).value, traj.want(k, "weights", w.name), dt,
                                  traj.tols(k, "weights", w.name))
        run.note(r, bound)
        if problem:
            run.require(False, f"{what} differs from torch.optim's trajectory: {problem}", what,
                        printer.close_line(what, f"model.{w.name}.value", dt, traj.want(k, "weights", w.name),
                                           list(traj.tols(k, "weights", w.name))[-1]), conditions=conds, what=UPDATE)


def _check_update_alone(run: Run, model, weights, alone: UpdatesAlone, k: int, conds) -> None:
    """Every weight after step k against torch.optim's update of pygrad's own weights and
    gradients (not judged where those cannot be replayed)."""
    if not alone.judgeable(k):
        return
    dt = run.s.spec.dtype
    for w in weights:
        want, tols = alone.tols(k, w.name)
        if not np.all(np.isfinite(tols[-1])):
            return
        what = f"{w.name} after step {k}"
        problem, _, _ = judge(weight(model, w.name).value, want, dt, tols)
        if problem:
            run.require(False, f"{what} differs from torch.optim's update of pygrad's own weights and gradients "
                        f"(the trajectory had already left torch's): {problem}", what,
                        printer.close_line(what, f"model.{w.name}.value", dt, want, tols[-1]), conditions=conds,
                        what=UPDATE)
