"""Module calls, checked the way users call them.

Every call of a random Module (`ModuleCalls`): the output and loss (value) and the batched
copy's and the input's gradients (grad) against PyTorch running the Module's forward as a
program of registry ops (`nets.module_program`, the same oracle and tolerance rule as the
op checks); the original weights' values, gradients and shapes untouched, the copy holding
the current weights (after `model_reset`, and after an optimizer `step` without reset, which
must sync it), each sample alone giving its row of the batched output (invariant).

A finding is blamed from the program and the registry: a wrong value or gradient is first
replayed as the program in pygrad (`check_program`), which names the first wrong op; if the
ops are right, the first layer whose pygrad output differs from its definition; a weight
that was resized blames its layer; what is left (copies, syncing, batching) is the Module's.

`Script` records the statements that run as plain pygrad code: a finding's reproducer is the
script up to the failing statement, then the assertion that failed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.checks import InvalidExample, Mismatch
from reference.checks.programs import check_program
from reference.oracles.oracle import Oracle
from reference.programs import printer
from reference.programs.nets import (ModuleSpec, build, layer_name, loss_fn, module_code, module_program,
                                    program_values, weight)
from reference.registry import MODULE_CONDITIONS, MODULE_ROW, OPTIMIZERS, LayerUse
from reference.registry.layers import layer_conditions
from reference.tolerances import judge


class Script:
    """The statements a check executes, as plain pygrad code, recorded as it goes."""

    def __init__(self, spec: ModuleSpec, seed: int):
        self.spec = spec
        self.lines = [f"np.random.seed({int(seed)})", "model = Model()"]
        self.calls = 0
        self.out = self.loss = self.x = ""

    def add(self, line: str) -> None:
        self.lines.append(line)

    def tensor(self, name: str, a, leaf: bool = True) -> str:
        dt = "" if self.spec.dtype == "float64" else f", dtype={self.spec.dtype}"
        self.add(f"{name} = Tensor({printer.array_literal(np.asarray(a, dtype=np.float64))}{dt}"
                 f"{', leaf=True' if leaf else ''})")
        return name

    def call(self, x, target, reset: bool, target_leaf: bool = True) -> None:
        k = self.calls
        self.calls += 1
        self.x, self.out, self.loss = f"x{k}", f"out{k}", f"loss{k}"
        self.tensor(self.x, x)
        self.tensor(f"y{k}", target, leaf=target_leaf)
        if reset:
            self.add("model.model_reset()")
        self.add(f"{self.out} = model(x={self.x})")
        self.add(f"{self.loss} = loss_fn({self.out}, y{k})")
        self.add(f"{self.loss}.backward()")

    def text(self) -> str:
        return "\n".join(self.lines)

    def reproducer(self, check: str, label: str, header: str, asserts: list) -> str:
        body = self.lines + ["# expected: PyTorch float64 (the model's ops, torch.optim); tolerance: "
                             "reference.numerics.tolerance"] * bool(asserts) + list(asserts)
        return printer.regression_test(check, label, body, header, definitions=module_code(self.spec))


class Run:
    """One check in progress: its script, its default report row, its worst error ratio."""

    def __init__(self, row: str, script: Script, header: str):
        self.row, self.s, self.header = row, script, header
        self.worst = 0.0

    def fail(self, check: str, message: str, where: str, asserts=(), row: str | None = None,
             conditions=()) -> Mismatch:
        row = row or self.row
        return Mismatch(check, row, message, where,
                        self.s.reproducer(check, row.replace(":", "_"), self.header + "\n" + message, list(asserts)),
                        conditions)

    def pygrad(self, fn, where: str, blame=None):
        """Run pygrad code `fn()`; an exception is an `error` finding, blamed by `blame()`
        ((row, conditions) or None for this run's row)."""
        try:
            return fn()
        except Mismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - pygrad raised: a finding
            row, conds = (blame() if blame else None) or (self.row, ())
            raise self.fail("error", f"pygrad raised {type(exc).__name__}: {exc} ({where})", where, (),
                            row, conds) from exc

    def expect_close(self, check: str, what: str, expr: str, got, want, tols, blame=None) -> None:
        """`got` against the oracle's `want` under the suite's rule; `tols()` yields the
        tolerances cheapest first (the full one is computed only if the floor fails)."""
        problem, r = judge(got, np.asarray(want, dtype=np.float64), self.s.spec.dtype, tols())
        self.worst = max(self.worst, min(r, 1e6))
        if problem:
            row, conds = (blame() if blame else None) or (self.row, ())
            raise self.fail(check, f"{what} differs from torch: {problem}", what,
                            [printer.close_line(what, expr, self.s.spec.dtype, want, list(tols())[-1])], row, conds)

    def require(self, ok: bool, message: str, where: str, assertion: str, row=None, conditions=()) -> None:
        """An invariant: `ok` must hold; `assertion` is its line in the reproducer."""
        if not ok:
            raise self.fail("invariant", message, where, [assertion], row, conditions)


# ---------------------------------------------------------------------------- a call
@dataclass
class Call:
    out: np.ndarray
    loss: object            # the pygrad loss Tensor
    grads: dict             # weight name -> gradient held by the batched copy's twin
    x_grad: np.ndarray


def pygrad_call(spec: ModuleSpec, model, weights, x, target, reset: bool, target_leaf: bool = True) -> Call:
    from pygrad import Tensor   # the pygrad on sys.path (a mutated copy under the self-test)
    if reset:
        model.model_reset()
    xt = Tensor(np.asarray(x, dtype=spec.dtype), dtype=spec.dtype, leaf=True)
    out = model(x=xt)
    loss = loss_fn(spec)(out, Tensor(np.asarray(target, dtype=spec.dtype), dtype=spec.dtype, leaf=target_leaf))
    loss.backward()
    home = model.copy if model.copy is not None else model
    return Call(np.array(out.value), loss, {w.name: np.array(weight(home, w.name).grad) for w in weights},
                np.array(xt.grad))


def state(model, weights) -> dict:
    """weight name -> (value, grad) copies of the original weights."""
    return {w.name: (np.array(weight(model, w.name).value), np.array(weight(model, w.name).grad)) for w in weights}


def layer_of(spec: ModuleSpec, weight_name: str):
    i = int("".join(ch for ch in weight_name.split(".")[0] if ch.isdigit()))
    return spec.layers[i]


def blamer(spec: ModuleSpec, model, weights, values: dict, x, target, seed: int, batches=(1,)):
    """A function giving (row, conditions) for a wrong value or gradient of one call: the
    program's first wrong op, else the first layer that differs from its definition."""
    def blame():
        prog, h = module_program(spec, len(x), weights)
        vals = program_values(spec, weights, values, x, target)
        try:
            check_program(prog, vals, seed)
        except Mismatch as m:
            return m.row, m.conditions
        except InvalidExample:
            return None
        oracle = Oracle(prog, vals, seed)
        home = model.copy if model.copy is not None else model
        from reference.programs.nets import shapes
        acts = shapes(spec)
        for i, layer in enumerate(spec.layers):
            names = [f"a{j}" for j in range(i + 1)]
            ns = {n: _tensor(oracle.values[h[j]], spec.dtype) for j, n in enumerate(names)}
            ns["layer"] = getattr(home, layer_name(i, layer))
            try:
                got = eval(f"layer({names[-1]}{layer.spec.call_args(layer, names)})", ns).value  # noqa: S307
            except Exception:  # noqa: BLE001 - the layer itself raised
                return layer.spec.row, layer_conditions(LayerUse(layer, acts[i], tuple(batches), spec.dtype))
            problem, _ = judge(got, oracle.values[h[i + 1]], spec.dtype, oracle.value_tols(h[i + 1]))
            if problem:
                return layer.spec.row, layer_conditions(LayerUse(layer, acts[i], tuple(batches), spec.dtype))
        return None
    return blame


def _tensor(a, dtype):
    from pygrad import Tensor
    return Tensor(np.asarray(a, dtype=dtype), dtype=dtype, leaf=True)


# ---------------------------------------------------------------------------- Module calls
@dataclass(frozen=True)
class ModuleCalls:
    """Successive calls of `build(spec, seed)`: call k runs `batches[k]` ((x, target)),
    preceded by `model_reset()` when `resets[k]`. With `optimizer` ((name, hyper)), it steps
    after every call but the last. `noise` seeds the oracle's perturbations."""

    spec: ModuleSpec
    seed: int
    batches: tuple
    resets: tuple
    noise: int
    optimizer: tuple | None = None

    def conditions(self) -> set:
        return {c.name for c in MODULE_CONDITIONS if c.reached(self)}


def calls_script(case: ModuleCalls) -> Script:
    """The calls (and optimizer steps) of `case` as plain pygrad statements."""
    s = Script(case.spec, case.seed)
    if case.optimizer is not None:
        name, hyper = case.optimizer
        s.add(f"optim = {OPTIMIZERS[name].render('model.weights', hyper)}")
    for k, (x, target) in enumerate(case.batches):
        s.call(x, target, case.resets[k])
        if case.optimizer is not None and k + 1 < len(case.batches):
            s.add(f"optim.step({s.loss})")
    return s


def check_module_calls(case: ModuleCalls) -> float:
    """See the module docstring. Returns the worst error/tolerance ratio."""
    spec = case.spec
    s = Script(spec, case.seed)
    run = Run(MODULE_ROW, s, f"Module {spec!r}")
    conds = case.conditions()
    model, weights = run.pygrad(lambda: build(spec, case.seed), "building the model")
    optim = None
    if case.optimizer is not None:
        name, hyper = case.optimizer
        s.add(f"optim = {OPTIMIZERS[name].render('model.weights', hyper)}")
        optim = run.pygrad(lambda: OPTIMIZERS[name].make(model.weights, hyper), "creating the optimizer")
    sizes = tuple(len(x) for x, _ in case.batches)
    for k, (x, target) in enumerate(case.batches):
        before = state(model, weights)
        s.call(x, target, case.resets[k])
        blame = blamer(spec, model, weights, {n: v for n, (v, _) in before.items()}, x, target, case.noise + k, sizes)
        got = run.pygrad(lambda: pygrad_call(spec, model, weights, x, target, case.resets[k]), f"call {k}", blame)
        _check_call(run, model, weights, before, x, target, got, case.noise + k, blame, conds)
        if optim is not None and k + 1 < len(case.batches):
            s.add(f"optim.step({s.loss})")
            run.pygrad(lambda: optim.step(got.loss), "optim.step")
            if not case.resets[k + 1]:
                check_synced(run, model, weights, "after optim.step without model_reset", conds)
    return run.worst


def check_synced(run: Run, model, weights, when: str, conds=()) -> None:
    """The batched copy's weights equal the originals, exactly."""
    for w in weights:
        orig = weight(model, w.name).value
        twin = weight(model.copy, w.name).value if model.copy is not None else None
        run.require(twin is not None and twin.shape == orig.shape and np.array_equal(twin, orig),
                    f"{when}, the batched copy's {w.name} does not hold the original's value "
                    "(the next call must use the current weights)", f"model.copy.{w.name}",
                    f"assert np.array_equal(model.copy.{w.name}.value, model.{w.name}.value)", conditions=conds)


def _check_call(run: Run, model, weights, before: dict, x, target, got: Call, noise: int, blame, conds) -> None:
    spec, s = run.s.spec, run.s
    b = len(x)
    run.require(model.copy is not None, "the Module call made no batched copy (model.copy is None)",
                "model.copy", "assert model.copy is not None", conditions=conds)
    for w in weights:
        layer = layer_of(spec, w.name)
        lconds = layer_conditions(LayerUse(layer, (), (b,), spec.dtype))
        for where, home in (("", model), ("copy.", model.copy)):
            t = weight(home, w.name)
            run.require(t.shape == w.shape and t.grad.shape == w.shape,
                        f"the {'batched copy' if where else 'original'}'s {w.name} has value {t.shape} and grad "
                        f"{t.grad.shape} after a batch of {b}, not {w.shape}: weights must never be resized",
                        f"model.{where}{w.name}", f"assert model.{where}{w.name}.shape == "
                        f"model.{where}{w.name}.grad.shape == {w.shape!r}", layer.spec.row, lconds)
        value, grad = before[w.name]
        t = weight(model, w.name)
        run.require(np.array_equal(t.value, value), f"the Module call changed the original {w.name} (only an "
                    "optimizer step may)", w.name, f"assert np.array_equal(model.{w.name}.value, "
                    f"{printer.array_literal(value)})", conditions=conds)
        run.require(np.array_equal(t.grad, grad), f"the Module call changed the original {w.name}'s gradient "
                    "(backward must fill the batched copy only)", w.name,
                    f"assert np.array_equal(model.{w.name}.grad, {printer.array_literal(grad)})", conditions=conds)
    check_synced(run, model, weights, "after the call", conds)
    prog, h = module_program(spec, b, weights)
    oracle = Oracle(prog, program_values(spec, weights, {n: v for n, (v, _) in before.items()}, x, target), noise)
    out = h[-1]
    run.expect_close("value", "the output", f"{s.out}.value", got.out, oracle.values[out],
                lambda: oracle.value_tols(out), blame)
    run.expect_close("value", "the loss", f"{s.loss}.value", got.loss.value, oracle.values[prog.root],
                lambda: oracle.value_tols(prog.root), blame)
    for w in weights:
        run.expect_close("grad", f"the gradient of {w.name} in the batched copy", f"model.copy.{w.name}.grad",
                    got.grads[w.name], oracle.grads()[w.program_input],
                    lambda w=w: oracle.grad_tols(w.program_input), blame)
    run.expect_close("grad", "the gradient of the input x", f"{s.x}.grad", got.x_grad, oracle.grads()["x"],
                lambda: oracle.grad_tols("x"), blame)
    # each sample alone gives its row of the batched output
    from pygrad import Tensor
    xs = np.asarray(x, dtype=spec.dtype)
    for i in range(b if b > 1 else 0):
        s.add(f"{s.out}_{i} = model(x=Tensor({s.x}.value[{i}:{i + 1}], leaf=True))")
        alone = run.pygrad(lambda: np.array(model(x=Tensor(xs[i:i + 1], dtype=spec.dtype, leaf=True)).value),
                           f"sample {i} alone")
        what = f"the output of sample {i} alone"
        problem, r = judge(alone, oracle.values[out][i:i + 1], spec.dtype,
                             (t[i:i + 1] for t in oracle.value_tols(out)))
        run.worst = max(run.worst, min(r, 1e6))
        if problem:
            run.require(False, f"{what} differs from row {i} of the batched output (and from torch): {problem}",
                        what, printer.close_line(what, f"{s.out}_{i}.value", spec.dtype, oracle.values[out][i:i + 1],
                                                 oracle.value_tol(out)[i:i + 1]), conditions=conds)
