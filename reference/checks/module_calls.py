"""Module calls, checked the way users call them.

Every call of a random Module (`ModuleCalls`): the output and loss (value) and the batched
copy's and the input's gradients (grad) against PyTorch running the Module's forward as a
program of registry ops (`nets.module_program`, the same oracle and tolerance rule as the
op checks); the original weights' values, gradients and shapes untouched, the copy holding
the current weights (after `model_reset`, and after an optimizer `step` without reset, which
must sync it), each sample alone giving its row of the batched output (invariant). With
`state`, a round trip ends the calls: `state_dict()` holds every weight by its attribute
path, as plain arrays equal to the weights; a new state saved with `np.savez` and read back
with `np.load` goes in with `load_state_dict`, which must set every weight (in its dtype),
zero its gradient and drop the batched copy; a call then runs on the loaded weights.

A finding is blamed from the program and the registry: a wrong value or gradient is first
replayed as the program in pygrad (`check_program`), which names every distinct wrong op; if
the ops are right, the first layer whose pygrad output differs from its definition; a weight
that was resized blames its layer; what is left (copies, syncing, batching) is the Module's.
One call's checks run in parts (`reference.checks.Parts`), so a resized weight, a leak into
the originals and a wrong value are each reported; what follows from a failure (values of a
copy out of sync, a resized weight's gradient) is not judged again.

`Script` records the statements that run as plain pygrad code: a finding's reproducer is the
script up to the failing statement, then the assertion that failed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from reference.checks import InvalidExample, Mismatch, Outcome, Parts, pygrad_raiser, raised_in
from reference.checks.programs import check_program
from reference.oracles.oracle import Oracle
from reference.programs import mermaid, printer
from reference.programs.nets import (ModuleSpec, build, layer_name, layer_path, loss_fn, module_code, module_program,
                                    program_values, weight)
from reference.registry import MODULE_CONDITIONS, MODULE_ROW, OPTIMIZERS, LayerUse
from reference.registry.layers import layer_conditions
from reference.runstate.session import max_is_bound
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
    """One check in progress: its script, its default report row, its worst error ratio
    (and whether that is a bound), and its `parts` (see `reference.checks.Parts`)."""

    def __init__(self, row: str, script: Script, header: str):
        self.row, self.s, self.header = row, script, header
        self.worst, self.worst_bound = 0.0, False
        self.parts = Parts()

    def fail(self, check: str, message: str, where: str, asserts=(), row: str | None = None,
             conditions=(), what: str = "", graph: str | None = None) -> Mismatch:
        row = row or self.row
        return Mismatch(check, row, message, where,
                        self.s.reproducer(check, row.replace(":", "_"), self.header + "\n" + message, list(asserts)),
                        conditions, what, graph)

    def note(self, r: float, bound: bool) -> None:
        r = min(r, 1e6)
        self.worst_bound = max_is_bound(self.worst, self.worst_bound, r, bound)
        self.worst = max(self.worst, r)

    def blamed(self, check: str, message: str, where: str, asserts, blame, what: str, conditions=()) -> Mismatch:
        """The failure of a comparison (or an exception: `check` "error"), blamed by
        `blame()` (see `blamer`): one Mismatch per distinct cause, of the cause's own check
        kind (the first raised, the others in its `also`), else one on this run's row with
        `what` and `conditions`."""
        causes = (blame() if blame else None) or []
        if not causes:
            return self.fail(check, message, where, asserts, conditions=conditions, what=what)
        if check == "error":       # one exception, one finding: the op that raises too, else the first cause
            c = next((c for c in causes if c.check == "error"), causes[0])
            return self.fail("error", message, c.where, asserts, c.row, c.conditions,
                             c.what if c.check == "error" else what, c.graph)
        found = [self.fail(c.check, message, c.where, asserts, c.row, c.conditions, c.what, c.graph) for c in causes]
        found[0].also = found[1:]
        return found[0]

    def pygrad(self, fn, where: str, blame=None):
        """Run pygrad code `fn()`; an exception is an `error` finding (its `what`: the
        exception type and the op that raised, by `blame()`, else pygrad's function that
        raised -- a layer's constructor, an optimizer's step -- else the step), raised: it
        ends the part it is in."""
        try:
            return fn()
        except Mismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - pygrad raised: a finding
            raiser = pygrad_raiser(exc)       # what: the function of pygrad that raised, else the step
            raise self.blamed("error", f"pygrad raised {type(exc).__name__}: {exc} ({where})", where, (), blame,
                              raised_in(f"pygrad's {raiser}" if raiser else re.sub(r"\d+", "k", where), exc)) from exc

    def expect_close(self, check: str, what: str, expr: str, got, want, tols, blame=None) -> None:
        """`got` against the oracle's `want` under the suite's rule; `tols()` yields the
        tolerances cheapest first (the full one is computed only if the floor fails)."""
        problem, r, bound = judge(got, np.asarray(want, dtype=np.float64), self.s.spec.dtype, tols())
        self.note(r, bound)
        if problem:
            raise self.blamed(check, f"{what} differs from torch: {problem}", what,
                              [printer.close_line(what, expr, self.s.spec.dtype, want, list(tols())[-1])], blame,
                              "the Module's forward" if check == "value" else "the Module's backward")

    def require(self, ok: bool, message: str, where: str, assertion: str, row=None, conditions=(),
                what: str = "") -> None:
        """An invariant (named `what`): `ok` must hold; `assertion` is its line in the
        reproducer."""
        if not ok:
            raise self.fail("invariant", message, where, [assertion], row, conditions, what)


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
    i = int("".join(ch for ch in weight_name.split(".")[-2] if ch.isdigit()))
    return spec.layers[i]


def blamer(spec: ModuleSpec, model, weights, values: dict, x, target, seed: int, batches=(1,)):
    """A function giving the causes (Mismatches: row, check, what, conditions, graph) of a
    wrong value, gradient or exception of one call: every distinct failure of the Module's
    program of registry ops on the same weights and batch, else the first layer that
    differs from its definition (or raises), else none (the Module's own machinery)."""
    def blame() -> list:
        prog, h = module_program(spec, len(x), weights)
        vals = program_values(spec, weights, values, x, target)
        try:
            check_program(prog, vals, seed)
        except Mismatch as m:
            return m.all()
        except InvalidExample:
            return []
        oracle = Oracle(prog, vals, seed)
        home = model.copy if model.copy is not None else model
        from reference.programs.nets import shapes
        acts = shapes(spec)
        for i, layer in enumerate(spec.layers):
            names = [f"a{j}" for j in range(i + 1)]
            ns = {n: _tensor(oracle.values[h[j]], spec.dtype) for j, n in enumerate(names)}
            ns["layer"] = weight(home, layer_path(spec, i))
            conds = layer_conditions(LayerUse(layer, acts[i], tuple(batches), spec.dtype))
            call = f"layer({names[-1]}{layer.spec.call_args(layer, names)})"
            try:
                got = eval(call, ns).value  # noqa: S307
            except Exception as exc:  # noqa: BLE001 - the layer itself raised
                return [Mismatch("error", layer.spec.row, f"{layer_name(i, layer)} raised {type(exc).__name__}",
                                 layer_name(i, layer), None, conds, raised_in(layer.spec.row, exc),
                                 mermaid.flowchart(prog, h[i + 1]))]
            problem, _, _ = judge(got, oracle.values[h[i + 1]], spec.dtype, oracle.value_tols(h[i + 1]))
            if problem:
                return [Mismatch("value", layer.spec.row, f"{layer_name(i, layer)} differs from its definition",
                                 layer_name(i, layer), None, conds, layer.spec.row, mermaid.flowchart(prog, h[i + 1]))]
        return []
    return blame


def _tensor(a, dtype):
    from pygrad import Tensor
    return Tensor(np.asarray(a, dtype=dtype), dtype=dtype, leaf=True)


# ---------------------------------------------------------------------------- Module calls
@dataclass(frozen=True)
class ModuleCalls:
    """Successive calls of `build(spec, seed)`: call k runs `batches[k]` ((x, target)),
    preceded by `model_reset()` when `resets[k]`. With `optimizer` ((name, hyper)), it steps
    after every call but the last. `noise` seeds the oracle's perturbations. `state`: a
    state_dict / load_state_dict round trip, then a call on the first batch, ends them."""

    spec: ModuleSpec
    seed: int
    batches: tuple
    resets: tuple
    noise: int
    optimizer: tuple | None = None
    state: bool = False

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
    if case.state:
        _state_lines(s)
        s.call(*case.batches[0], reset=False)
    return s


def _state_lines(s: Script) -> None:
    s.add("sd = model.state_dict()")
    s.add('buf = __import__("io").BytesIO()')
    s.add(f"np.savez(buf, **{{k: v * {STATE_SCALE!r} + {STATE_SHIFT!r} for k, v in sd.items()}})")
    s.add("buf.seek(0)")
    s.add("model.load_state_dict(np.load(buf))")


STATE_SCALE, STATE_SHIFT = 0.5, 0.25    # the loaded state: each weight halved and shifted


def check_module_calls(case: ModuleCalls) -> Outcome:
    """See the module docstring. Returns the worst error/tolerance ratio (on the Module's
    row); raises every distinct failure of the first call that fails (later calls would
    start from a state it has already spoiled)."""
    run = Run(MODULE_ROW, Script(case.spec, case.seed), f"Module {case.spec!r}")
    with run.parts.part():     # an exception of pygrad ends the calls
        _calls(run, case)
    return run.parts.settle(Outcome(run.worst, per_row={MODULE_ROW: run.worst},
                                    bound_rows={MODULE_ROW: run.worst_bound}))


def _calls(run: Run, case: ModuleCalls) -> None:
    spec, s = case.spec, run.s
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
        if not run.parts.ok:
            return
        if optim is not None and k + 1 < len(case.batches):
            s.add(f"optim.step({s.loss})")
            run.pygrad(lambda: optim.step(got.loss), "optim.step")
            if not case.resets[k + 1]:
                check_synced(run, model, weights, "after optim.step without model_reset", conds)
    if case.state:
        check_state_round_trip(run, case, model, weights, conds)


def check_state_round_trip(run: Run, case: ModuleCalls, model, weights, conds) -> None:
    """See the module docstring: state_dict, np.savez / np.load, load_state_dict, a call --
    in parts. A wrong state_dict ends the round trip (what is loaded would follow from it);
    the loaded values, the zeroed gradients and the dropped copy are each judged; the call on
    the loaded weights runs only when the load was right (else it starts from a state
    already known wrong)."""
    import io
    spec, s, parts = case.spec, run.s, run.parts
    _state_lines(s)
    with parts.part() as saved:
        sd = run.pygrad(model.state_dict, "model.state_dict()")
        want = run.pygrad(lambda: {w.name: np.array(weight(model, w.name).value) for w in weights},
                          "reading the weights")
        run.require(isinstance(sd, dict) and set(sd) == set(want) and all(
            type(sd[n]) is np.ndarray and sd[n].dtype == want[n].dtype and np.array_equal(sd[n], want[n])
            for n in want), f"model.state_dict() has keys {sorted(sd) if isinstance(sd, dict) else type(sd).__name__}"
            f", expected the weights' attribute paths {sorted(want)} with arrays equal to their values",
            "model.state_dict()", f"assert sorted(sd) == {sorted(want)!r}", conditions=conds,
            what="state_dict holds every weight by its path")
    if saved.failed:
        return
    new = {n: v * STATE_SCALE + STATE_SHIFT for n, v in sd.items()}
    buf = io.BytesIO()
    np.savez(buf, **new)
    buf.seek(0)
    with parts.part() as loaded:
        run.pygrad(lambda: model.load_state_dict(np.load(buf)), "model.load_state_dict(np.load(buf))")
        got = run.pygrad(lambda: {w.name: (np.array(weight(model, w.name).value), np.array(weight(model, w.name).grad))
                                  for w in weights}, "reading the loaded weights")
    if loaded.failed:
        return
    found = len(parts.found)
    dt = np.dtype(spec.dtype)
    unset = [n for n in new if not (got[n][0].dtype == dt and np.array_equal(got[n][0], new[n].astype(dt)))]
    with parts.part():
        run.require(not unset, f"after load_state_dict, {', '.join(unset)} does not hold the loaded array in {dt}",
                    ", ".join(unset), f"assert model.{unset[0]}.value.dtype == np.{dt} and np.array_equal(model."
                    f"{unset[0]}.value, sd[{unset[0]!r}] * {STATE_SCALE!r} + {STATE_SHIFT!r})" if unset else "",
                    conditions=conds, what="load_state_dict sets every weight")
    kept = [n for n in new if np.any(got[n][1])]
    with parts.part():
        run.require(not kept, f"after load_state_dict, the gradient of {', '.join(kept)} is not zero",
                    ", ".join(kept), f"assert not np.any(model.{kept[0]}.grad)" if kept else "", conditions=conds,
                    what="load_state_dict zeroes the gradients")
    with parts.part():
        run.require(model.copy is None, "load_state_dict did not drop the batched copy (the next call must use the "
                    "loaded weights)", "model.copy", "assert model.copy is None", conditions=conds,
                    what="load_state_dict drops the batched copy")
    if len(parts.found) > found:
        return
    x, target = case.batches[0]
    before = state(model, weights)
    s.call(x, target, reset=False)
    blame = blamer(spec, model, weights, {n: v for n, (v, _) in before.items()}, x, target, case.noise + 99, (len(x),))
    call = run.pygrad(lambda: pygrad_call(spec, model, weights, x, target, False), "the call after load_state_dict",
                      blame)
    _check_call(run, model, weights, before, x, target, call, case.noise + 99, blame, conds)


def check_synced(run: Run, model, weights, when: str, conds=()) -> None:
    """The batched copy's weights equal the originals, exactly."""
    for w in weights:
        orig = weight(model, w.name).value
        twin = weight(model.copy, w.name).value if model.copy is not None else None
        run.require(twin is not None and np.shape(twin) == np.shape(orig) and np.array_equal(twin, orig),
                    f"{when}, the batched copy's {w.name} does not hold the original's value "
                    "(the next call must use the current weights)", f"model.copy.{w.name}",
                    f"assert np.array_equal(model.copy.{w.name}.value, model.{w.name}.value)", conditions=conds,
                    what="the batched copy holds the current weights")


def _check_call(run: Run, model, weights, before: dict, x, target, got: Call, noise: int, blame, conds) -> None:
    """Every check of one call, in parts: the copy made (without it nothing else can be
    judged), weights never resized, the originals untouched, the copy in sync (else its
    values follow from stale weights), values and gradients against torch (a resized
    weight's gradient is not judged again), and each sample alone (when the batched output
    was right)."""
    spec, s, parts = run.s.spec, run.s, run.parts
    b = len(x)
    with parts.part():
        run.require(model.copy is not None, "the Module call made no batched copy (model.copy is None)",
                    "model.copy", "assert model.copy is not None", conditions=conds, what="the batched copy is made")
    if not parts.ok:
        return
    resized = set()
    for w in weights:
        layer = layer_of(spec, w.name)
        lconds = layer_conditions(LayerUse(layer, (), (b,), spec.dtype))
        for where, home in (("", model), ("copy.", model.copy)):
            t = weight(home, w.name)
            kept = np.shape(t.value) == w.shape and np.shape(t.grad) == w.shape
            resized |= set() if kept else {w.name}
            with parts.part():
                run.require(kept, f"the {'batched copy' if where else 'original'}'s {w.name} has "
                            f"value {np.shape(t.value)} and grad {np.shape(t.grad)} after a batch of {b}, not "
                            f"{w.shape}: weights must never be resized", f"model.{where}{w.name}",
                            f"assert model.{where}{w.name}.shape == model.{where}{w.name}.grad.shape == {w.shape!r}",
                            layer.spec.row, lconds, "weights keep their shapes")
        value, grad = before[w.name]
        t = weight(model, w.name)
        with parts.part():
            run.require(np.array_equal(t.value, value), f"the Module call changed the original {w.name} (only an "
                        "optimizer step may)", w.name, f"assert np.array_equal(model.{w.name}.value, "
                        f"{printer.array_literal(value)})", conditions=conds, what="the original weights stay")
        with parts.part():
            run.require(np.array_equal(t.grad, grad), f"the Module call changed the original {w.name}'s gradient "
                        "(backward must fill the batched copy only)", w.name,
                        f"assert np.array_equal(model.{w.name}.grad, {printer.array_literal(grad)})",
                        conditions=conds, what="the original gradients stay")
    synced = len(parts.found)
    with parts.part():
        check_synced(run, model, weights, "after the call", conds)
    if len(parts.found) > synced:
        return
    prog, h = module_program(spec, b, weights)
    oracle = Oracle(prog, program_values(spec, weights, {n: v for n, (v, _) in before.items()}, x, target), noise)
    out = h[-1]
    output_right = False
    with parts.part():
        run.expect_close("value", "the output", f"{s.out}.value", got.out, oracle.values[out],
                         lambda: oracle.value_tols(out), blame)
        output_right = True
        run.expect_close("value", "the loss", f"{s.loss}.value", got.loss.value, oracle.values[prog.root],
                         lambda: oracle.value_tols(prog.root), blame)
        for w in weights:
            if w.name not in resized:
                run.expect_close("grad", f"the gradient of {w.name} in the batched copy", f"model.copy.{w.name}.grad",
                                 got.grads[w.name], oracle.grads()[w.program_input],
                                 lambda w=w: oracle.grad_tols(w.program_input), blame)
        run.expect_close("grad", "the gradient of the input x", f"{s.x}.grad", got.x_grad, oracle.grads()["x"],
                         lambda: oracle.grad_tols("x"), blame)
    if output_right:
        with parts.part():
            _check_samples_alone(run, model, x, oracle, out, conds)


def _check_samples_alone(run: Run, model, x, oracle, out: str, conds) -> None:
    """Each sample alone gives its row of the batched output."""
    from pygrad import Tensor
    spec, s = run.s.spec, run.s
    xs = np.asarray(x, dtype=spec.dtype)
    for i in range(len(x) if len(x) > 1 else 0):
        s.add(f"{s.out}_{i} = model(x=Tensor({s.x}.value[{i}:{i + 1}], leaf=True))")
        alone = run.pygrad(lambda: np.array(model(x=Tensor(xs[i:i + 1], dtype=spec.dtype, leaf=True)).value),
                           f"sample {i} alone")
        what = f"the output of sample {i} alone"
        problem, r, bound = judge(alone, oracle.values[out][i:i + 1], spec.dtype,
                                  (t[i:i + 1] for t in oracle.value_tols(out)))
        run.note(r, bound)
        if problem:
            run.require(False, f"{what} differs from row {i} of the batched output (and from torch): {problem}",
                        what, printer.close_line(what, f"{s.out}_{i}.value", spec.dtype, oracle.values[out][i:i + 1],
                                                 oracle.value_tol(out)[i:i + 1]), conditions=conds,
                        what="each sample alone gives its row")
