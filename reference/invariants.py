"""Checks above single ops: Module batching, optimizer trajectories, `learnable=False`.

Each check runs pygrad the way a user does, compares it with an oracle and raises
`reference.check.Mismatch` with the report's check kind:

- `value`: a Module's output or loss differs from torch's;
- `grad`: a gradient in the Module's batched copy (or of its input) differs from torch's;
- `invariant`: a property of the API broke: the batched output equals the per-sample outputs;
  a call leaves the original weights' values, gradients and shapes alone; `step` syncs the
  batched copy and `model_reset` makes the next call copy the current weights; parameters
  follow torch.optim's trajectory after every step (also through `step_single`
  accumulation, with a target not marked leaf=True, with parameters given in any order);
  a tensor marked learnable=False receives its gradient and passes none on;
- `structure`: `topo` with a learnable=False node;
- `error`: pygrad raised.

The oracle of a Module is PyTorch in float64 running the Module's forward pass and loss
written as a `Program` of registry ops (`module_program`): each layer and loss as the design
defines it (`x @ W + B`, `kw.conv2D(x) + kb`, AddNorm's `gain * (y - mean) / sqrt(var + eps) +
bias`, log-softmax cross-entropy, ...). It is the same oracle, with the same rounding model
and tolerance rule, as the op checks (`reference.check`): the program's perturbed torch runs
measure how much rounding this very example amplifies. (The torch.nn twin of
`reference.modules` is not the reference here: `F.layer_norm`'s backward loses ~1e3 ulps on
nearly constant rows, where pygrad's composition is accurate; the unit tests check that
the program and the torch.nn twin agree on well-conditioned models.) For training,
`RUNS` perturbed trajectories (each step's forward and backward perturbed like a program,
each optimizer state and update perturbed by its own rounding, every weight rounded to the
dtype) give the spread of every parameter after every step, around the exact float64
trajectory that torch.optim takes.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass

import numpy as np
import torch

from reference import check, oracles
from reference.check import SAFETY, InvalidExample, Mismatch
from reference.modules import (OPTIMIZERS, ModuleSpec, OptimSpec, _imports, build, layer_name,
                               loss_fn, make_optimizer, module_code, shapes, weight)
from reference.programs import Input, Node, Program, array_literal
from reference.registry import U

MODULE_ROW = "module"
ROWS = (MODULE_ROW,) + tuple(f"optim:{k}" for k in OPTIMIZERS)
"""Rows of the gate's table besides the registry ops: Module tests and one per optimizer."""

OPT_ULPS = 8      # rounding of one optimizer update, relative to the update, in ulps
STATE_ULPS = 4    # rounding of an optimizer state buffer (momentum, averages), in ulps


# ---------------------------------------------------------------------------- a Module as a program
def weight_input(name: str) -> str:
    """The program input of the weight at attribute path `name` ("linear0.W" -> "linear0_W")."""
    return name.replace(".", "_")


def _const(v: float, dtype: str) -> float:
    """A Python float constant as pygrad sees it: NumPy casts it to the tensor's dtype."""
    return float(np.asarray(v, dtype=dtype))


def module_program(spec: ModuleSpec, batch: int, pairs) -> tuple:
    """(Program, output node): the forward pass of `spec` on a batch and its loss, written
    with registry ops exactly as pygrad's layers and losses compose them. Inputs: "x", one
    per weight (`weight_input`), the target "y" (reshaped to (B*n, 1, w) for cce) and, for
    bce, "yc" = 1 - y; the root is the loss."""
    acts = shapes(spec)
    dt = spec.dtype
    inputs = [Input("x", (batch,) + acts[0], leaf=True)]
    inputs += [Input(weight_input(p.name), p.shape, leaf=False) for p in pairs]
    nodes: list = []
    counter = itertools.count()

    def node(op, operands, prefix="v", **args):
        name = f"{prefix}{next(counter)}"
        nodes.append(Node(name, op, tuple(operands), args))
        return name

    h = ["x"]
    for i, layer in enumerate(spec.layers):
        cur, k, at = h[-1], layer.kind, layer_name(i, layer)
        if k == "linear":
            out = node("matmul", (cur, weight_input(f"{at}.W")))
            if layer.bias:
                out = node("add", (out, weight_input(f"{at}.B")))
        elif k == "conv":
            out = node("conv2D", (weight_input(f"{at}.kw"), cur), stride=layer.stride,
                       padding=layer.padding)
            if layer.bias:
                out = node("add", (out, weight_input(f"{at}.kb")))
        elif k == "flatten":
            out = node("reshape", (cur,), shape=(batch, 1, -1))
        elif k in ("relu", "tanh", "sigmoid"):
            out = node(k, (cur,))
        elif k == "softmax":
            out = node("softmax", (cur,), axis=layer.axis)
        elif k == "addnorm":
            y = node("add", (cur, cur if layer.skip is None else h[layer.skip]))
            c = node("sub", (y, node("mean", (y,))))
            var = node("mean", (node("mul", (c, c)),))
            r = node("pow", (node("radd", (var,), const=_const(layer.epsilon, dt)),), p=-0.5)
            scaled = node("rmul", (node("mul", (c, r)),), const=_const(layer.gain, dt))
            out = node("radd", (scaled,), const=_const(layer.shift, dt))
        else:  # dropout in eval mode: the identity
            out = cur
        h.append(out)
    out = h[-1]
    yshape = (batch,) + acts[-1]
    if spec.loss in ("sse", "mse"):
        inputs.append(Input("y", yshape, learnable=False))
        sq = node("pow", (node("sub", (out, "y"), "L"),), "L", p=2.0)
        root = node("sum", (sq,), "L") if spec.loss == "sse" else \
            node("mean", (sq,), "L", axis=None, keepdims=False)
    elif spec.loss == "cce":
        b, n, w = yshape
        logits = node("reshape", (out,), "L", shape=(b * n, 1, w)) if n > 1 else out
        inputs.append(Input("y", (b * n, 1, w) if n > 1 else yshape, learnable=False))
        total = node("sum", (node("mul", ("y", node("softmax_log", (logits,), "L", axis=-1)), "L"),), "L")
        root = node("rmul", (total,), "L", const=_const(-1.0 / (b * n), dt))
    else:  # bce
        inputs += [Input("y", yshape, learnable=False), Input("yc", yshape, learnable=False)]
        log_p = node("log", (out,), "L")
        log_q = node("log", (node("rsub", (out,), "L", const=1.0),), "L")
        both = node("add", (node("mul", ("y", log_p), "L"), node("mul", ("yc", log_q), "L")), "L")
        root = node("rmul", (node("sum", (both,), "L"),), "L", const=_const(-1.0 / batch, dt))
    return Program(dt, tuple(inputs), tuple(nodes), root), out


def program_values(spec: ModuleSpec, prog: Program, pairs, weights: dict, x, target,
                   cast_weights: bool = True) -> dict:
    """Input values of `module_program`: x and the target as the dtype holds them, and the
    weights (pair name -> array), cast to the dtype too unless `cast_weights` is False (an
    exact float64 trajectory)."""
    dt = spec.dtype
    vals = {"x": np.asarray(x, dtype=dt)}
    for p in pairs:
        vals[weight_input(p.name)] = np.asarray(weights[p.name], dtype=dt if cast_weights else None)
    y = np.asarray(target, dtype=dt)
    vals["y"] = y.reshape(prog.input("y").shape)
    if spec.loss == "bce":
        vals["yc"] = 1.0 - y.astype(np.float64)
    return vals


# ---------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class ModuleCase:
    """Successive calls of one Module (`build(spec, seed)`): call k runs `batches[k]`
    ((x, target) arrays), preceded by `model_reset()` when `resets[k]`. With `optim`, the
    optimizer steps after every call but the last. `noise` seeds the oracle's
    perturbations."""

    spec: ModuleSpec
    seed: int
    batches: tuple
    resets: tuple
    noise: int
    optim: OptimSpec | None = None
    features: frozenset = frozenset()

    def __repr__(self):  # what hypothesis prints for a falsifying example
        s = _Script(self.spec, self.seed, self.optim)
        for k, (x, target) in enumerate(self.batches):
            s.call(x, target, self.resets[k])
            if self.optim is not None and k + 1 < len(self.batches):
                s.add(f"optim.step({s.loss})")
        return "ModuleCase(\n" + s.text() + "\n)"


@dataclass(frozen=True)
class TrainCase:
    """Training `build(spec, seed)` with `optim`: step k uses the chunks `steps[k]`
    ((x, target) arrays). One chunk: the README loop (`zero_grad`, call, loss, `backward`,
    `step(loss)`). Several (of equal size): `step_single` accumulation over them, which must
    equal one step on their concatenation. `reset`: `model_reset()` before every call;
    `target_leaf`: whether the target Tensor is marked leaf=True; `order`: the permutation of
    `model.weights` given to the optimizer (None: as is)."""

    spec: ModuleSpec
    seed: int
    optim: OptimSpec
    steps: tuple
    reset: bool = True
    target_leaf: bool = True
    order: tuple | None = None
    noise: int = 0
    features: frozenset = frozenset()

    def __repr__(self):
        s = _Script(self.spec, self.seed, self.optim, self.order)
        for chunks in self.steps:
            _train_lines(s, self, chunks)
        return "TrainCase(\n" + s.text() + "\n)"


def accumulation_divisor(spec: ModuleSpec, chunks: int) -> int:
    """`batch_size` for `step_single` so that accumulating equal chunks equals one step on
    their concatenation: 1 for a summed loss, the number of chunks for the averaged ones."""
    return 1 if spec.loss == "sse" else chunks


# ---------------------------------------------------------------------------- reproducers
_CLOSE_HELPER = '''

def _close(what, got, dtype, want, tol):
    got = np.asarray(got)
    assert got.shape == np.shape(want), f"{what}: shape {got.shape}, expected {np.shape(want)}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    err = np.abs(got.astype(float64) - want)
    assert np.all(err <= tol), f"{what}: max |error| {np.max(err):.3g} exceeds the tolerance"
'''


class _Script:
    """The statements a check executes, recorded as plain pygrad code as it goes: a failure's
    reproducer is this script up to the failing statement, then the assertion that failed."""

    def __init__(self, spec: ModuleSpec, seed: int, optim: OptimSpec | None = None, order=None):
        self.spec, self.optim = spec, optim
        self.lines = [f"np.random.seed({int(seed)})", "model = Model()"]
        self.calls = 0
        self.out = self.loss = self.x = ""
        if optim is not None:
            params = "model.weights" if order is None else \
                "[model.weights[i] for i in " + repr(tuple(int(i) for i in order)) + "]"
            self.lines.append(f"params = {params}")
            self.lines.append(_optim_line(optim))

    def add(self, line: str) -> None:
        self.lines.append(line)

    def tensor(self, name: str, a, leaf: bool = True) -> str:
        dt = "" if self.spec.dtype == "float64" else f", dtype={self.spec.dtype}"
        self.add(f"{name} = Tensor({array_literal(np.asarray(a, dtype=np.float64))}{dt}"
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

    def test(self, kind: str, asserts: list, header: str, row: str = "module") -> str:
        """A ready-to-paste pytest file: imports, the model, and a test running the script."""
        body = self.lines + ["# expected: PyTorch float64 (the model's ops, torch.optim); "
                             "tolerance: reference.check's rule"] * bool(asserts) + asserts
        extra = [self.optim.kind] if self.optim is not None else []
        digest = hashlib.sha1("\n".join(body).encode()).hexdigest()[:8]
        doc = f'"""Regression test written by the pygrad reference suite ({kind} check).\n{header}"""\n'
        head = ("import numpy as np\nfrom numpy import array, float32, float64\n\n"
                + _imports(self.spec, extra) + "\n\n\n")
        return (doc + head + module_code(self.spec) + _CLOSE_HELPER
                + f"\n\ndef test_{re.sub(r'[^0-9A-Za-z]', '_', row)}_{kind}_{digest}():\n"
                + "\n".join("    " + line for line in body) + "\n")


def _optim_line(o: OptimSpec) -> str:
    args = {"SGD": "", "SGD_Momentum": f", beta={o.beta!r}",
            "RMSProp": f", beta={o.beta!r}, eps={o.eps!r}",
            "Adam": f", beta1={o.beta!r}, beta2={o.beta2!r}, eps={o.eps!r}"}[o.kind]
    return f"optim = {o.kind}(params{args}, lr={o.lr!r})"


def _tol(t) -> str:
    return check._tol_literal(np.asarray(t, dtype=np.float64))


def _close_line(what: str, expr: str, dtype: str, want, tol) -> str:
    return (f"_close({what!r}, {expr}, {dtype}, {array_literal(np.asarray(want, dtype=np.float64))}, "
            f"{_tol(tol)})")


def _path(name: str, model: str = "model") -> str:
    return f"{model}.{name}"


# ---------------------------------------------------------------------------- pygrad's side
def _from_pygrad(exc: BaseException) -> bool:
    """Was `exc` raised inside pygrad (or in a printed model's code calling it)?"""
    import pygrad
    root = os.path.dirname(os.path.abspath(pygrad.__file__))
    tb = exc.__traceback__
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if f.startswith("<pygrad model") or os.path.abspath(f).startswith(root + os.sep):
            return True
        tb = tb.tb_next
    return False


class _Run:
    """One check in progress: its report row, its script, and its worst error ratio."""

    def __init__(self, row: str, script: _Script, header: str):
        self.row, self.s, self.header = row, script, header
        self.worst = 0.0

    def fail(self, kind: str, message: str, where: str, asserts=()) -> Mismatch:
        return Mismatch(kind, self.row, message, where,
                        self.s.test(kind, list(asserts), self.header + "\n" + message, self.row))

    def pygrad(self, fn, where: str):
        """Run pygrad code `fn()`; an exception raised inside pygrad is an `error` finding
        (its reproducer ends with the statement that raised)."""
        try:
            return fn()
        except Mismatch:
            raise
        except Exception as exc:  # noqa: BLE001
            if not _from_pygrad(exc):
                raise
            raise self.fail("error", f"pygrad raised {type(exc).__name__}: {exc} ({where})",
                            where) from exc

    def compare(self, kind: str, what: str, expr: str, got, want, tol, where: str = "") -> None:
        """`got` against the reference `want` under the tolerance `tol` (the suite's rule)."""
        problem, r = check._compare(got, np.asarray(want, dtype=np.float64),
                                    np.broadcast_to(np.asarray(tol, dtype=np.float64), np.shape(want)),
                                    self.s.spec.dtype)
        self.worst = max(self.worst, r if np.isfinite(r) else 1e6)
        if problem:
            raise self.fail(kind, f"{what} differs from torch: {problem}", where or what,
                            [_close_line(what, expr, self.s.spec.dtype, want, tol)])

    def require(self, ok: bool, message: str, where: str, assertion: str) -> None:
        """An invariant: `ok` must hold; `assertion` is its line in the reproducer."""
        if not ok:
            raise self.fail("invariant", message, where, [assertion])


@dataclass
class _Call:
    out: np.ndarray
    loss: object            # the pygrad loss Tensor
    grads: dict             # pair name -> gradient held by the batched copy's twin
    x_grad: np.ndarray


def _pygrad_call(spec: ModuleSpec, model, pairs, x, target, reset: bool,
                 target_leaf: bool = True) -> _Call:
    from pygrad import Tensor   # the pygrad on sys.path (a mutated copy under the self-test)
    if reset:
        model.model_reset()
    xt = Tensor(np.asarray(x, dtype=spec.dtype), dtype=spec.dtype, leaf=True)
    out = model(x=xt)
    loss = loss_fn(spec)(out, Tensor(np.asarray(target, dtype=spec.dtype), dtype=spec.dtype,
                                     leaf=target_leaf))
    loss.backward()
    home = model.copy if model.copy is not None else model
    return _Call(np.array(out.value), loss, {p.name: np.array(weight(home, p.name).grad) for p in pairs},
                 np.array(xt.grad))


def _state(model, pairs) -> dict:
    """pair name -> (value, grad) copies of the original weights."""
    return {p.name: (np.array(weight(model, p.name).value), np.array(weight(model, p.name).grad))
            for p in pairs}


# ---------------------------------------------------------------------------- Module calls
def check_module(case: ModuleCase) -> float:
    """Every call of `case`: the batched output, loss and gradients (copy's weights, input)
    against torch; the original weights' values, grads and shapes untouched by the
    call; the copy holding the current weights (after `model_reset`, and after a `step`
    without reset, which must sync it); each sample alone giving its row of the batched
    output. Returns the worst error/tolerance ratio; raises Mismatch or InvalidExample."""
    spec = case.spec
    s = _Script(spec, case.seed, case.optim)
    run = _Run(MODULE_ROW, s, f"Module {spec!r}")
    pg, _, pairs = run.pygrad(lambda: build(spec, case.seed), "building the model")
    optim = None
    if case.optim is not None:
        optim = run.pygrad(lambda: make_optimizer(case.optim, pg.weights), "creating the optimizer")
    for k, (x, target) in enumerate(case.batches):
        before = _state(pg, pairs)
        s.call(x, target, case.resets[k])
        got = run.pygrad(lambda: _pygrad_call(spec, pg, pairs, x, target, case.resets[k]),
                         f"call {k}")
        _check_call(run, pg, pairs, before, x, target, got, case.noise + k)
        if optim is not None and k + 1 < len(case.batches):
            s.add(f"optim.step({s.loss})")
            run.pygrad(lambda: optim.step(got.loss), "optim.step")
            if not case.resets[k + 1]:
                _check_synced(run, pg, pairs, "after optim.step without model_reset")
    return run.worst


def _check_synced(run: _Run, pg, pairs, when: str) -> None:
    """The batched copy's weights equal the originals, exactly."""
    for p in pairs:
        orig = weight(pg, p.name).value
        twin_w = weight(pg.copy, p.name).value if pg.copy is not None else None
        run.require(twin_w is not None and twin_w.shape == orig.shape and np.array_equal(twin_w, orig),
                    f"{when}, the batched copy's {p.name} does not hold the original's value "
                    "(the next call must use the current weights)", f"model.copy.{p.name}",
                    f"assert np.array_equal({_path(p.name, 'model.copy')}.value, {_path(p.name)}.value)")


def _check_call(run: _Run, pg, pairs, before: dict, x, target, got: _Call, noise: int) -> None:
    spec, s = run.s.spec, run.s
    b = len(x)
    # the call leaves the originals alone, makes a copy holding them, and resizes nothing
    run.require(pg.copy is not None, "the Module call made no batched copy (model.copy is None)",
                "model.copy", "assert model.copy is not None")
    for p in pairs:
        w = weight(pg, p.name)
        value, grad = before[p.name]
        run.require(w.shape == p.shape and w.grad.shape == p.shape,
                    f"the original {p.name} has value {w.shape} and grad {w.grad.shape} after a batch "
                    f"of {b}, not {p.shape}: weights must never be resized", p.name,
                    f"assert {_path(p.name)}.shape == {_path(p.name)}.grad.shape == {p.shape!r}")
        run.require(np.array_equal(w.value, value), f"the Module call changed the original {p.name} "
                    "(only an optimizer step may)", p.name,
                    f"assert np.array_equal({_path(p.name)}.value, {array_literal(value)})")
        run.require(np.array_equal(w.grad, grad), f"the Module call changed the original {p.name}'s "
                    "gradient (backward must fill the batched copy only)", p.name,
                    f"assert np.array_equal({_path(p.name)}.grad, {array_literal(grad)})")
        c = weight(pg.copy, p.name)
        run.require(c.shape == p.shape and c.grad.shape == p.shape,
                    f"the batched copy's {p.name} has value {c.shape} and grad {c.grad.shape} after a "
                    f"batch of {b}, not {p.shape}: weights must never be resized", f"model.copy.{p.name}",
                    f"assert {_path(p.name, 'model.copy')}.shape == "
                    f"{_path(p.name, 'model.copy')}.grad.shape == {p.shape!r}")
    _check_synced(run, pg, pairs, "after the call")
    # against torch, with the weights the call should have used
    weights = {n: v for n, (v, _) in before.items()}
    prog, out = module_program(spec, b, pairs)
    exp = check.expect(prog, program_values(spec, prog, pairs, weights, x, target), noise)
    t_out = exp.values[out]
    run.compare("value", "the output", f"{s.out}.value", got.out, t_out, exp.vtol[out])
    run.compare("value", "the loss", f"{s.loss}.value", got.loss.value, exp.values[prog.root],
                exp.vtol[prog.root])
    for p in pairs:
        w = weight_input(p.name)
        run.compare("grad", f"the gradient of {p.name} in the batched copy",
                    f"{_path(p.name, 'model.copy')}.grad", got.grads[p.name], exp.grads[0][w], exp.gtols[0][w])
    run.compare("grad", "the gradient of the input x", f"{s.x}.grad", got.x_grad, exp.grads[0]["x"],
                exp.gtols[0]["x"])
    # each sample alone gives its row of the batched output
    from pygrad import Tensor
    xs = np.asarray(x, dtype=spec.dtype)
    for i in range(b if b > 1 else 0):
        s.add(f"{s.out}_{i} = model(x=Tensor({s.x}.value[{i}:{i + 1}], leaf=True))")
        alone = run.pygrad(lambda: np.array(pg(x=Tensor(xs[i:i + 1], dtype=spec.dtype, leaf=True)).value),
                           f"sample {i} alone")
        what = f"the output of sample {i} alone"
        problem, r = check._compare(alone, t_out[i:i + 1], exp.vtol[out][i:i + 1], spec.dtype)
        run.worst = max(run.worst, min(r, 1e6))
        run.require(problem is None, f"{what} differs from row {i} of the batched output (and from "
                    f"torch): {problem}", what,
                    _close_line(what, f"{s.out}_{i}.value", spec.dtype, t_out[i:i + 1], exp.vtol[out][i:i + 1]))


# ---------------------------------------------------------------------------- training
@dataclass
class _StepRef:
    """The oracle's state at one training step (pair name -> arrays in pygrad's layout)."""
    loss: float
    loss_tol: float
    grads: dict
    gtols: dict
    weights: dict       # after the step
    wtols: dict


def _torch_optim(o: OptimSpec, params) -> torch.optim.Optimizer:
    """torch.optim's twin of the optimizer `o` describes (from the drawn hyper-parameters,
    never from the pygrad object, so a pygrad optimizer that stores them wrong is seen)."""
    if o.kind == "SGD":
        return torch.optim.SGD(params, lr=o.lr)
    if o.kind == "SGD_Momentum":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.beta)
    if o.kind == "RMSProp":
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.beta, eps=o.eps)
    return torch.optim.Adam(params, lr=o.lr, betas=(o.beta, o.beta2), eps=o.eps)


def trajectories(case: TrainCase, pairs, init: dict) -> list:
    """The oracle of a training run: one `_StepRef` per step of `case`.

    The exact trajectory runs the Module's program in float64 torch and torch.optim on a
    step's whole batch (all its chunks). `check.RUNS` perturbed trajectories do the same with
    every op of the forward and backward perturbed by its rounding model, every optimizer
    state buffer by STATE_ULPS and every update by OPT_ULPS before it is applied, and every
    weight rounded to the dtype (u). Tolerances are the suite's rule over their spread.
    Raises InvalidExample where the oracles cannot judge (non-finite or huge values, a kink
    within the trajectories' spread)."""
    spec = case.spec
    u, tiny = U[spec.dtype], float(np.finfo(spec.dtype).tiny)
    noise = oracles.Noise(np.random.default_rng(case.noise), u)
    n_runs = 1 + check.RUNS
    tensors = [{p.name: torch.tensor(np.asarray(init[p.name], dtype=np.float64), requires_grad=True)
                for p in pairs} for _ in range(n_runs)]
    optims = [_torch_optim(case.optim, [t[p.name] for p in pairs]) for t in tensors]

    def tol(exact, others):
        spread = np.zeros_like(exact)
        for o in others:
            spread = np.maximum(spread, noise.scale * np.abs(o - exact))
        if not np.all(np.isfinite(spread)):
            raise InvalidExample("a rounding-size perturbation makes the trajectory non-finite")
        return SAFETY * (spread + u * np.abs(exact) + tiny)

    refs = []
    for chunks in case.steps:
        x = np.concatenate([np.asarray(c[0]) for c in chunks])
        target = np.concatenate([np.asarray(c[1]) for c in chunks])
        prog, _ = module_program(spec, len(x), pairs)
        runs = []
        with np.errstate(all="ignore"):
            for j in range(n_runs):
                w = {p.name: tensors[j][p.name].detach().numpy().copy() for p in pairs}
                vals = program_values(spec, prog, pairs, w, x, target, cast_weights=False)
                runs.append(oracles.run_torch(prog, vals, None if j == 0 else noise))
            check._validate(prog, runs[0])
            check._classify_kinks(prog, runs[0], runs[1:], noise.scale)
        names = {p.name: weight_input(p.name) for p in pairs}
        loss = runs[0].values[prog.root]
        grads = {n: runs[0].grads[i] for n, i in names.items()}
        ref = _StepRef(float(loss), tol(loss, [r.values[prog.root] for r in runs[1:]]), grads,
                       {n: tol(grads[n], [r.grads[i] for r in runs[1:]]) for n, i in names.items()},
                       {}, {})
        for j in range(n_runs):
            _torch_step(optims[j], tensors[j], pairs, runs[j].grads, noise if j else None)
        after = [{p.name: t[p.name].detach().numpy().copy() for p in pairs} for t in tensors]
        for p in pairs:
            ref.weights[p.name] = after[0][p.name]
            ref.wtols[p.name] = tol(after[0][p.name], [a[p.name] for a in after[1:]])
            if np.any(np.abs(after[0][p.name]) > check.MAX_MAGNITUDE):
                raise InvalidExample(f"the trajectory of {p.name} exceeds {check.MAX_MAGNITUDE:g}")
        refs.append(ref)
    return refs


def _torch_step(optim, tensors: dict, pairs, grads: dict, noise) -> None:
    """One torch.optim step with the program's gradients; with `noise`, the rounding of the
    state, of the update and of the stored weight perturbed (see `trajectories`)."""
    def r(shape):
        return torch.from_numpy(noise.signs(tuple(shape)))
    with torch.no_grad():
        for p in pairs:
            t = tensors[p.name]
            t.grad = torch.from_numpy(np.array(grads[weight_input(p.name)], dtype=np.float64))
            if noise is not None:
                for key, buf in optim.state.get(t, {}).items():
                    if key != "step" and torch.is_tensor(buf) and buf.shape == t.shape:
                        buf.mul_(1 + STATE_ULPS * noise.u * r(buf.shape))
        old = {p.name: tensors[p.name].detach().clone() for p in pairs}
        optim.step()
        if noise is not None:
            for p in pairs:
                t = tensors[p.name]
                delta = (t - old[p.name]) * (1 + OPT_ULPS * noise.u * r(t.shape))
                t.copy_((old[p.name] + delta) * (1 + noise.u * r(t.shape)))


def _train_lines(s: _Script, case: TrainCase, chunks) -> None:
    """The statements of one training step (for `TrainCase.__repr__`)."""
    if len(chunks) == 1:
        (x, target), = chunks
        s.add("optim.zero_grad()")
        s.call(x, target, case.reset, case.target_leaf)
        s.add(f"optim.step({s.loss})")
        return
    bs = accumulation_divisor(case.spec, len(chunks))
    s.add("optim.zero_grad()")
    for x, target in chunks:
        s.call(x, target, case.reset, case.target_leaf)
        s.add(f"optim.step_single({s.loss}, {bs})")
    s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")


def check_training(case: TrainCase) -> float:
    """Train in pygrad as a user does and follow torch.optim: at every step the loss (value)
    and the batched copy's gradients (grad) -- or, accumulating with `step_single`, the
    parameters' accumulated `.grad` (invariant) -- and after every step every parameter
    (invariant). Returns the worst error/tolerance ratio."""
    spec, o = case.spec, case.optim
    s = _Script(spec, case.seed, o, case.order)
    run = _Run(f"optim:{o.kind}", s, f"{o!r} training Module {spec!r}")
    pg, _, pairs = run.pygrad(lambda: build(spec, case.seed), "building the model")
    params = list(pg.weights)
    if case.order is not None:
        params = [params[i] for i in case.order]
    optim = run.pygrad(lambda: make_optimizer(o, params), "creating the optimizer")
    refs = trajectories(case, pairs, {p.name: weight(pg, p.name).value for p in pairs})
    dt = spec.dtype
    for k, (chunks, ref) in enumerate(zip(case.steps, refs)):
        step = f"step {k}"
        s.add("optim.zero_grad()")
        run.pygrad(optim.zero_grad, "optim.zero_grad()")
        if len(chunks) == 1:
            (x, target), = chunks
            s.call(x, target, case.reset, case.target_leaf)
            got = run.pygrad(lambda: _pygrad_call(spec, pg, pairs, x, target, case.reset, case.target_leaf),
                             f"the call of {step}")
            run.compare("value", f"the loss at {step}", f"{s.loss}.value", got.loss.value, ref.loss,
                        ref.loss_tol)
            for p in pairs:
                run.compare("grad", f"the gradient of {p.name} in the batched copy at {step}",
                            f"{_path(p.name, 'model.copy')}.grad", got.grads[p.name], ref.grads[p.name],
                            ref.gtols[p.name])
            s.add(f"optim.step({s.loss})")
            run.pygrad(lambda: optim.step(got.loss), f"optim.step at {step}")
        else:
            bs = accumulation_divisor(spec, len(chunks))
            for x, target in chunks:
                s.call(x, target, case.reset, case.target_leaf)
                got = run.pygrad(lambda: _pygrad_call(spec, pg, pairs, x, target, case.reset,
                                                      case.target_leaf), f"a chunk call of {step}")
                s.add(f"optim.step_single({s.loss}, {bs})")
                run.pygrad(lambda: optim.step_single(got.loss, bs), f"optim.step_single at {step}")
            for p in pairs:
                what = f"the accumulated .grad of {p.name} at {step}"
                problem, r = check._compare(weight(pg, p.name).grad, ref.grads[p.name] * bs,
                                            ref.gtols[p.name] * bs, dt)
                run.worst = max(run.worst, min(r, 1e6))
                run.require(problem is None, f"{what} (step_single(loss, {bs}) over {len(chunks)} chunks "
                            f"must add up to {bs} x the whole batch's gradient) differs from torch: "
                            f"{problem}", what, _close_line(what, f"{_path(p.name)}.grad", dt,
                                                             ref.grads[p.name] * bs, ref.gtols[p.name] * bs))
            s.add(f"optim.step_single({s.loss}, {bs}, modify=True)")
            run.pygrad(lambda: optim.step_single(got.loss, bs, modify=True),
                       f"optim.step_single(modify=True) at {step}")
        for p in pairs:
            what = f"{p.name} after {step}"
            value = weight(pg, p.name).value
            problem, r = check._compare(value, ref.weights[p.name], ref.wtols[p.name], dt)
            run.worst = max(run.worst, min(r, 1e6))
            run.require(problem is None, f"{what} differs from torch.optim.{_TORCH_NAME[o.kind]}'s "
                        f"trajectory: {problem}", what,
                        _close_line(what, f"{_path(p.name)}.value", dt, ref.weights[p.name],
                                    ref.wtols[p.name]))
    return run.worst


_TORCH_NAME = {"SGD": "SGD", "SGD_Momentum": "SGD(momentum)", "RMSProp": "RMSprop", "Adam": "Adam"}


# ---------------------------------------------------------------------------- learnable=False
def check_stop(prog: Program, values, seed: int, stop: str) -> check.Outcome:
    """Mark the node `stop` learnable=False after the forward pass, then backward: every
    gradient must equal torch's with that node detached (it receives its consumers'
    gradient and passes none to its operands), and `topo` must leave it (and whatever only
    it reaches) out. A wrong gradient that the unmarked program shows too is reported as the
    ordinary `grad` finding it is."""
    from reference.programs import backward_pygrad, describe, run_pygrad
    exp = check.expect(prog, values, seed, stops=(stop,))
    out = check.Outcome()
    mark = [f"{stop}.learnable = False"]
    try:
        env = run_pygrad(prog, values)
        env[stop].learnable = False
        backward_pygrad(env, prog.root)
    except check.PygradRaised as e:
        check._raise_error(prog, values, e, 1)
    bad = {}
    for name in prog.names:
        problem, r = check._compare(env[name].grad, exp.grads[0][name], exp.gtols[0][name], prog.dtype)
        check._note(out, check._op_of(prog, name), r)
        if problem:
            bad[name] = problem
    if bad:
        check.check_program(prog, values, seed)   # raises the plain finding if there is one
        m = max(bad, key=prog.names.index)
        raise Mismatch("invariant", check._op_of(prog, m),
                       f"gradient of {m} differs from torch's with {stop} detached: {bad[m]} "
                       f"({stop} is learnable=False: it must receive its gradient and pass none on)",
                       describe(prog, m),
                       check.regression(prog, values, exp, "invariant", before=mark))
    want, _ = check.expected_graph(prog, stops=(stop,))
    canon = check.canonical(prog)
    names = {}
    for n in prog.names:
        names.setdefault(id(env[n]), canon[n])
    topo = [names.get(id(t), f"<a tensor not in the program: {t!r}>") for t in env[prog.root].topo]
    if topo != want:
        raise Mismatch("structure", None, f"with {stop} learnable=False, topo is [{', '.join(topo)}], "
                       f"expected [{', '.join(want)}]", describe(prog, stop),
                       check.regression(prog, values, None, "structure", before=mark,
                                        extra=[f"assert {prog.root}.topo == [{', '.join(want)}]"]))
    return out
