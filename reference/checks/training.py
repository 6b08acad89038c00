"""Optimizer trajectories against torch.optim.

A random Module trained for several steps with an optimizer of the table, the way the README
trains: `zero_grad`, call, loss, `backward`, `step(loss)` -- or `step_single` accumulation
over equal chunks, which must equal one step on their concatenation divided by
`batch_size / calls` (the update uses the accumulated sum divided by `batch_size`, whatever
the number of calls). What users vary varies: `model_reset()` every step or never, the target
marked leaf=True or not, the parameters given in another order, an all-zero batch (a weight
that multiplies the input gets a gradient of exactly 0: torch still decays its moments and
counts the step), a parameter outside the loss's graph at some steps or at all (no update
there: torch's grad is None), parameters holding their values in another memory layout
(`registry.regimes.LAYOUTS`: views the optimizer updates, in place where nothing else refers
to them; torch is unaffected). At every step the loss (value) and the batched copy's
gradients (grad), or the accumulated `.grad` (invariant -- or, when the Module's program of
registry ops on the step's whole batch shows a wrong op, that op's finding), and after every
step every parameter (invariant) follow the oracle; once the trajectory has left the
oracle's, each update is judged alone (`UpdatesAlone`), so a wrong update is still seen
behind a wrong gradient.

The oracles, `Trajectory` and `UpdatesAlone`, are in `checks.trajectory`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from reference.checks import Outcome
from reference.checks.module_calls import Run, Script, blamer, pygrad_call
from reference.checks.trajectory import Trajectory, UpdatesAlone
from reference.oracles import torch_run
from reference.programs import printer
from reference.programs.nets import ModuleSpec, build, module_program, program_values, weight
from reference.registry import MODULE_LOSSES, OPTIMIZERS, TrainUse
from reference.registry.regimes import apply_layout, fitting_layout, layout_code
from reference.tolerances import judge

EXTRA = np.array([0.5, -1.5])   # the initial value of the parameter outside the Module
EXTRA_W = np.array([0.75, -1.25])   # at the steps where it is in the graph, the loss adds (extra * EXTRA_W).sum()


def penalty_of(shape) -> np.ndarray:
    """The constant of a run's penalty term on a weight of `shape` (`TrainRun.penalty`)."""
    n = int(np.prod(shape))
    return np.linspace(-0.5, 0.75, n).reshape(shape) if n > 1 else np.full(shape, 0.5)


@dataclass(frozen=True)
class TrainRun:
    """Training `build(spec, seed)` with optimizer `name` and `hyper` ((key, value) pairs):
    step k uses the chunks `steps[k]` ((x, target) arrays); `reset`: model_reset() before
    every call; `target_leaf`: the target marked leaf=True; `order`: the permutation of
    `model.weights` given to the optimizer (None: as is); `unused`: a parameter outside the
    graph is given too, and enters the loss (`+ (extra * EXTRA_W).sum()`) at `extra_steps`
    only; `divisor`: step_single's `batch_size` (None: the one that makes the accumulated
    update equal a step on the whole batch); `layouts`: per parameter (`parameters()`), the
    memory layout its value is given before training, where its shape takes it; `zero_grad`:
    False skips `optim.zero_grad()` before every step_single round but the first (step_single
    restarts its accumulation after each update, so nothing changes: `zeroes`); `penalty`: at
    every step of one chunk the loss adds `(model.<first weight> * penalty_of(shape)).sum()`,
    a term on the parameter itself beside its twin in the batched copy (an L2-like penalty as
    users write it): the optimizer must add the two gradients."""

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
    divisor: int | None = None
    extra_steps: tuple = ()
    layouts: tuple = ()
    zero_grad: bool = True
    penalty: bool = False

    @property
    def row(self) -> str:
        return OPTIMIZERS[self.name].row

    def parameters(self) -> list:
        """(code, shape) of every parameter: the Module's weights in the layers' order
        ("model.linear0.W"), then the one outside it ("extra")."""
        return [(f"model.{name}", shape) for name, shape in weight_shapes(self.spec)] + \
            [("extra", EXTRA.shape)] * self.unused

    def layout_of(self, k: int, shape) -> str:
        """The memory layout of parameter number `k` (of `parameters()`)."""
        return fitting_layout(self.layouts[k] if k < len(self.layouts) else "", shape)

    def use(self, n_weights: int) -> TrainUse:
        params = self.parameters() if any(self.layouts) else []
        return TrainUse(dict(self.hyper), len(self.steps), n_weights + self.unused, any(len(c) > 1 for c in self.steps),
                        self.order is not None and list(self.order) != sorted(self.order), self.target_leaf,
                        self.reset, self.unused, self.spec.dtype,
                        count_differs=any(len(c) > 1 and self.batch_size(k) != len(c)
                                          for k, c in enumerate(self.steps)),
                        zero_gradient=bool(zero_gradient_steps(self)),
                        absent_some_steps=self.unused and 0 < len(set(self.extra_steps)) < len(self.steps),
                        no_zero_grad=not all(self.zeroes(k) for k in range(len(self.steps))),
                        penalty=any(self.penalty_grad(k) for k in range(len(self.steps))),
                        layouts=tuple(self.layout_of(k, shape) for k, (_, shape) in enumerate(params)),
                        shapes=tuple(shape for _, shape in params))

    def zeroes(self, k: int) -> bool:
        """Whether step k starts with `optim.zero_grad()`."""
        return self.zero_grad or k == 0 or len(self.steps[k]) == 1

    def batch_size(self, k: int) -> int:
        """The `batch_size` given to step_single at step k (a step of several chunks)."""
        return self.divisor or accumulation_divisor(self.spec, len(self.steps[k]))

    def update_scale(self, k: int) -> float:
        """The step's update gradient over the whole batch's: (sum of the chunks') / batch_size."""
        chunks = len(self.steps[k])
        return 1.0 if chunks == 1 else accumulation_divisor(self.spec, chunks) / self.batch_size(k)

    def extra_grad(self, k: int):
        """The gradient the update at step k gives the parameter outside the Module: None
        where it is not in the graph."""
        if not self.unused or k not in self.extra_steps:
            return None
        chunks = len(self.steps[k])
        return EXTRA_W * (1.0 if chunks == 1 else chunks / self.batch_size(k))

    def penalty_grad(self, k: int) -> dict:
        """{weight name: the gradient the penalty gives the parameter itself at step k}; {}
        where the run has no penalty or step k is a step_single accumulation."""
        if not self.penalty or len(self.steps[k]) != 1:
            return {}
        name, shape = weight_shapes(self.spec)[0]
        return {name: penalty_of(shape)}

    def conditions(self, n_weights: int) -> set:
        use = self.use(n_weights)
        return {c.name for c in OPTIMIZERS[self.name].conditions if c.reached(use)}


@functools.lru_cache(maxsize=256)
def weight_shapes(spec: ModuleSpec) -> tuple:
    """((attribute path, shape), ...) of the weights of the Module of `spec`, in the layers'
    order."""
    return tuple((w.name, tuple(w.shape)) for w in build(spec, 0)[1])


def accumulation_divisor(spec: ModuleSpec, chunks: int) -> int:
    """`batch_size` for `step_single` so that accumulating equal chunks equals one step on
    their concatenation: 1 for a summed loss, the number of chunks for averaged ones."""
    return 1 if MODULE_LOSSES[spec.loss].reduction == "sum" else chunks


def zero_gradient_steps(case: TrainRun) -> list:
    """The steps (after the first) at which some weight's gradient is exactly 0 in torch --
    an all-zero batch gives one to a weight that multiplies the input -- found by running the
    model's program at the initial weights on those steps' batches (a cheap float64 run)."""
    zero = [k for k, chunks in enumerate(case.steps) if k > 0 and all(not np.any(c[0]) for c in chunks)]
    if not zero:
        return []
    model, weights = build(case.spec, case.seed)
    init = {w.name: weight(model, w.name).value for w in weights}
    out = []
    for k in zero:
        x = np.concatenate([np.asarray(c[0]) for c in case.steps[k]])
        target = np.concatenate([np.asarray(c[1]) for c in case.steps[k]])
        prog, _ = module_program(case.spec, len(x), weights)
        with np.errstate(all="ignore"):
            run = torch_run.run_torch(prog, program_values(case.spec, weights, init, x, target, cast=False))
        if any(not np.any(run.grads[w.program_input]) for w in weights):
            out.append(k)
    return out


def train_script(case: TrainRun) -> Script:
    """The whole training run as plain pygrad statements."""
    s = script_of(case)
    for k, chunks in enumerate(case.steps):
        if case.zeroes(k):
            s.add("optim.zero_grad()")
        bs = case.batch_size(k)
        for x, target in chunks:
            s.call(x, target, case.reset, case.target_leaf)
            loss = _extra_term(s, case, k)
            s.add(f"optim.step({loss})" if len(chunks) == 1 else f"optim.step_single({loss}, {bs})")
        if len(chunks) > 1:
            s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")
    return s


def _extra_term(s: Script, case: TrainRun, k: int) -> str:
    """At the steps where the parameter outside the Module is in the graph, or the penalty
    applies: the statements adding them to the loss just computed; returns the name of the
    loss to step with."""
    terms = []
    if case.unused and k not in case.extra_steps:
        s.add("extra_before = extra.value.copy()")
    elif case.unused:
        terms.append(f"(extra * {printer.array_literal(EXTRA_W)}).sum()")
    terms += [f"(model.{name} * {printer.array_literal(c)}).sum()" for name, c in case.penalty_grad(k).items()]
    if not terms:
        return s.loss
    total = f"total{s.calls - 1}"
    s.add(f"{total} = {s.loss} + " + " + ".join(terms))
    s.add(f"{total}.backward()")
    return total


def script_of(case: TrainRun) -> Script:
    """The run's setup as code: model, the parameters in their order, the optimizer."""
    s = Script(case.spec, case.seed)
    params = "model.weights" if case.order is None else \
        "[model.weights[i] for i in " + repr(tuple(int(i) for i in case.order)) + "]"
    if case.unused:
        s.add(f"extra = Tensor({printer.array_literal(EXTRA)}"
              f"{'' if case.spec.dtype == 'float64' else ', dtype=' + case.spec.dtype})")
        params += " + [extra]"
    for k, (code, shape) in enumerate(case.parameters() if any(case.layouts) else ()):
        if case.layout_of(k, shape):
            s.add(f"{code}.value = {layout_code(case.layout_of(k, shape), code + '.value')}")
    s.add(f"params = {params}")
    s.add(f"optim = {OPTIMIZERS[case.name].render('params', dict(case.hyper))}")
    return s


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
    again. A parameter absent from a step's graph must not move at that step (once it has,
    its later updates follow from that and are not judged again)."""
    from pygrad import Tensor
    spec, s, parts = case.spec, run.s, run.parts
    model, weights = run.pygrad(lambda: build(spec, case.seed), "building the model")
    conds = case.conditions(len(weights))
    params = list(model.weights)
    if case.order is not None:
        params = [params[i] for i in case.order]
    extra = Tensor(EXTRA, dtype=spec.dtype) if case.unused else None
    init = {w.name: weight(model, w.name).value for w in weights} | ({"extra": EXTRA} if extra is not None else {})
    held = [weight(model, w.name) for w in weights] + [extra] * case.unused
    for k, t in enumerate(held if any(case.layouts) else ()):    # the same values, in the parameter's layout
        if case.layout_of(k, t.shape):
            run.pygrad(lambda: setattr(t, "value", apply_layout(case.layout_of(k, t.shape), t.value)),
                       "giving a parameter's value a memory layout")
    optim = run.pygrad(lambda: OPTIMIZERS[case.name].make(params + ([extra] if extra is not None else []),
                                                          dict(case.hyper)), "creating the optimizer")
    traj = Trajectory(case, weights, init)
    alone = UpdatesAlone(case, {n: np.shape(v) for n, v in init.items()})
    dt = spec.dtype
    diverged = update_wrong = extra_moved = False

    def with_extra(loss, k):
        """The loss to step with: at `extra_steps`, plus the term of the parameter outside
        the Module, and the penalty on a weight itself (backward run again on the total)."""
        total = loss
        if extra is not None and k in case.extra_steps:
            total = total + (extra * EXTRA_W).sum()
        for name, c in case.penalty_grad(k).items():
            total = total + (weight(model, name) * c.astype(dt)).sum()
        if total is not loss:
            total.backward()
        return total

    def extra_applied(k, scale=1.0):
        """The gradient the update at step k applies to the parameter outside the Module
        (pygrad's own), None where it is absent from the step's graph."""
        if extra is None:
            return {}
        return {"extra": None if case.extra_grad(k) is None else np.asarray(extra.grad) / scale}
    for k, chunks in enumerate(case.steps):
        step = f"step {k}"
        if case.zeroes(k):
            s.add("optim.zero_grad()")
            run.pygrad(optim.zero_grad, "optim.zero_grad()")
        values = {w.name: np.array(weight(model, w.name).value) for w in weights}
        extra_before = np.array(extra.value) if extra is not None else None
        before = values | ({"extra": extra_before} if extra is not None else {})
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
            name = _extra_term(s, case, k)
            loss = run.pygrad(lambda: with_extra(got.loss, k), f"the loss with the extra parameter at {step}")
            penalised = {n: got.grads[n] + c for n, c in case.penalty_grad(k).items()}
            alone.record(before, got.grads | penalised | extra_applied(k))
            s.add(f"optim.step({name})")
            run.pygrad(lambda: optim.step(loss), f"optim.step at {step}")
        else:
            bs, m = case.batch_size(k), accumulation_divisor(spec, len(chunks))
            whole = (np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]))
            blame = blamer(spec, model, weights, values, *whole, case.noise + k, (len(whole[0]),))
            for x, target in chunks:
                s.call(x, target, case.reset, case.target_leaf)
                got = run.pygrad(lambda: pygrad_call(spec, model, weights, x, target, case.reset, case.target_leaf),
                                 f"a chunk call of {step}")
                name = _extra_term(s, case, k)
                loss = run.pygrad(lambda: with_extra(got.loss, k), f"the loss with the extra parameter at {step}")
                s.add(f"optim.step_single({name}, {bs})")
                run.pygrad(lambda: optim.step_single(loss, bs), f"optim.step_single at {step}")
            for w in weights if not diverged else ():
                what = f"the accumulated .grad of {w.name} at {step}"
                problem, r, bound = judge(weight(model, w.name).grad, traj.want(k, "grads", w.name) * m, dt,
                                          traj.tols(k, "grads", w.name, m))
                run.note(r, bound)
                if problem:      # blamed on the ops when the program of the whole step's batch is wrong
                    parts.add(run.blamed("invariant", f"{what} (step_single over {len(chunks)} chunks must add up "
                                         f"to {m} x the whole batch's gradient) differs from torch: {problem}", what,
                                         [printer.close_line(what, f"model.{w.name}.grad", dt,
                                                             traj.want(k, "grads", w.name) * m,
                                                             list(traj.tols(k, "grads", w.name, m))[-1])],
                                         blame, "step_single accumulates", conds))
                    break
            alone.record(before, {w.name: np.asarray(weight(model, w.name).grad) / bs for w in weights}
                         | extra_applied(k, bs))
            s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")
            run.pygrad(lambda: optim.step_single(got.loss, bs, modify=True), f"optim.step_single(modify=True) at {step}")
        diverged |= len(parts.found) > found
        present = [w.name for w in weights] + (["extra"] if case.extra_grad(k) is not None and not extra_moved else [])
        if not update_wrong:
            found = len(parts.found)
            with parts.part():
                if diverged:
                    _check_update_alone(run, model, extra, present, alone, k, conds)
                else:
                    _check_weights(run, model, extra, present, traj, k, conds)
            update_wrong = len(parts.found) > found
            diverged |= update_wrong
        if extra is not None and case.extra_grad(k) is None and not extra_moved:
            found = len(parts.found)
            with parts.part():
                run.require(np.array_equal(extra.value, extra_before), f"a parameter outside the loss's graph moved "
                            f"at {step} (a parameter that did not contribute gets no update)", "extra",
                            "assert np.array_equal(extra.value, extra_before)", conditions=conds,
                            what="a parameter outside the graph stays")
            extra_moved = len(parts.found) > found      # its later updates follow from this one


UPDATE = "the update follows torch.optim"


def _value(model, extra, name: str) -> tuple:
    """(the code naming parameter `name`, its value): a weight of the model, or `extra`."""
    if name == "extra":
        return "extra.value", extra.value
    return f"model.{name}.value", weight(model, name).value


def _check_weights(run: Run, model, extra, names, traj: Trajectory, k: int, conds) -> None:
    """Every parameter of `names` after step k against torch.optim's trajectory."""
    dt = run.s.spec.dtype
    for name in names:
        what = f"{name} after step {k}"
        expr, got = _value(model, extra, name)
        problem, r, bound = judge(got, traj.want(k, "weights", name), dt, traj.tols(k, "weights", name))
        run.note(r, bound)
        if problem:
            run.require(False, f"{what} differs from torch.optim's trajectory: {problem}", what,
                        printer.close_line(what, expr, dt, traj.want(k, "weights", name),
                                           list(traj.tols(k, "weights", name))[-1]), conditions=conds, what=UPDATE)


def _check_update_alone(run: Run, model, extra, names, alone: UpdatesAlone, k: int, conds) -> None:
    """Every parameter of `names` after step k against torch.optim's update of pygrad's own
    parameters and gradients (not judged where those cannot be replayed)."""
    if not alone.judgeable(k):
        return
    dt = run.s.spec.dtype
    for name in names:
        want, tols = alone.tols(k, name)
        if not np.all(np.isfinite(tols[-1])):
            return
        what = f"{name} after step {k}"
        expr, got = _value(model, extra, name)
        problem, _, _ = judge(got, want, dt, tols)
        if problem:
            run.require(False, f"{what} differs from torch.optim's update of pygrad's own weights and gradients "
                        f"(the trajectory had already left torch's): {problem}", what,
                        printer.close_line(what, expr, dt, want, tols[-1]), conditions=conds, what=UPDATE)
