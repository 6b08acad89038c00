"""Checking one example: pygrad against the PyTorch oracle and finite differences.

The tolerance rule (stated once, applied everywhere, never widened per test)
---------------------------------------------------------------------------
For every compared tensor T (a node's value, or any tensor's gradient), elementwise:

    |T_pygrad - T_torch| <= SAFETY * (spread(T) + u * |T_torch| + tiny)

- `T_torch` is the exact (float64) PyTorch run on the same inputs;
- `spread(T)` is the largest deviation of T over `RUNS` perturbed PyTorch runs, in which
  every op is disturbed by its own rounding-error model from the registry at the program
  dtype's unit roundoff `u` (see `reference.oracles`; float64 programs are perturbed at
  2**-40 and the deviation scaled back to 2**-53): it is the conditioning of this very
  example -- how much rounding the program amplifies before it reaches T;
- `u` is 2**-53 for float64 programs and 2**-24 for float32; `tiny` the dtype's smallest
  normal number; SAFETY = 16.

Finite differences compare <grad, v> for a random unit direction v (and every coordinate
when the inputs have at most `FD_FULL_MAX` entries) with D(h) = (L(x+hv) - L(x-hv)) / 2h:

    |<g, v> - D(h)| <= SAFETY * (|D(2h) - D(h)| / 3 + 2 (eps_L + eps_x) / h + eps_g)

with |D(2h) - D(h)| / 3 Richardson's estimate of the truncation error (h^2 times the third
derivative; h shrinks until D(4h) - D(2h) is 2 to 8 times D(2h) - D(h), i.e. until the
estimate is trustworthy), eps_L the float64 rounding of the loss (its spread rescaled to float64, plus
u64 |L|), eps_x = u64 sum |g_i| (|x_i| + 2h |v_i|) the rounding of the shifted inputs
x + t v themselves, and eps_g = sum |v_i| (spread(g_i) + u |g_i|) the rounding pygrad's own
gradient is allowed. FD runs only where no kink lies within reach (see `oracles.fd_derivative`).

Examples the oracles cannot judge raise `InvalidExample` (the strategies then draw
another): non-finite or huge (> 1e8) values or gradients, underflow, values that a
rounding-size perturbation makes non-finite, and kinks that sit within the rounding noise
of their input (0 < |s| <= SAFETY * spread(s)) -- there the two implementations may
legitimately take different branches -- or that a perturbed run crosses. A kink the example hits exactly
(relu at an exact 0, the std of an exactly constant row) is compared against torch.

On a disagreement `check_program` raises `Mismatch`, which names the first wrong node:
the first node (in execution order) whose value disagrees; else the gradient that is wrong
closest to the root, blamed on the consumer whose backward rule, replayed alone on the same
operands and cotangent, disagrees with torch -- or on gradient accumulation when every
consumer is right alone.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from reference import oracles
from reference.programs import (CODE_HEADER, Input, Node, Program, PygradRaised, array_literal,
                                backward_pygrad, describe, program_code, run_pygrad, shapes_of,
                                with_loss)
from reference.registry import OPS, U

SAFETY = 16
RUNS = 4
MAX_MAGNITUDE = 1e8
FD_FULL_MAX = 8


class InvalidExample(Exception):
    """The example is outside what the oracles can judge; draw another one."""


class Mismatch(AssertionError):
    """pygrad disagrees with an oracle. `check` is one of the report's kinds."""

    def __init__(self, check: str, op: str | None, message: str, first_wrong: str,
                 reproducer: str | None):
        super().__init__(message)
        self.check, self.op, self.message = check, op, message
        self.first_wrong, self.reproducer = first_wrong, reproducer

    def __str__(self):
        text = f"[{self.check}] {self.message}\nfirst wrong node: {self.first_wrong}"
        if self.reproducer:
            text += "\n\nregression test:\n" + self.reproducer
        return text


@dataclass
class Expectation:
    values: dict        # name -> exact torch value
    vtol: dict          # name -> tolerance array
    grads: list         # per backward pass: name -> exact torch gradient
    gtols: list
    spread_loss: float


@dataclass
class Outcome:
    err_torch: float = 0.0              # max |error| / tolerance against torch
    err_fd: float | None = None         # max |error| / tolerance against FD (None: not run)
    per_op: dict = field(default_factory=dict)
    fd_skipped: str = ""


def _tiny(dtype: str) -> float:
    return float(np.finfo(dtype).tiny)


def _ratio(err: np.ndarray, tol: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(err == 0, 0.0, np.where(tol > 0, err / np.where(tol > 0, tol, 1), np.inf))


# ---------------------------------------------------------------------------- expectations
def expect(prog: Program, values, seed: int, passes: int = 1, stops=()) -> Expectation:
    """Exact torch run + `RUNS` perturbed runs -> reference values, gradients, tolerances.
    Raises InvalidExample for examples the oracles cannot judge. `stops`: nodes marked
    learnable=False (see `oracles.run_torch`)."""
    u, tiny = U[prog.dtype], _tiny(prog.dtype)
    with np.errstate(all="ignore"):
        ref = oracles.run_torch(prog, values, backward_passes=passes, stops=stops)
        _validate(prog, ref)
        rng = np.random.default_rng(seed)
        noise = oracles.Noise(rng, u)
        runs = [oracles.run_torch(prog, values, noise, backward_passes=passes, stops=stops)
                for _ in range(RUNS)]
    scale = noise.scale
    _classify_kinks(prog, ref, runs, scale)

    def tol(get, name):
        exact = get(ref)[name]
        spread = np.zeros_like(exact)
        for r in runs:
            spread = np.maximum(spread, scale * np.abs(get(r)[name] - exact))
        if not np.all(np.isfinite(spread)):
            raise InvalidExample(f"a rounding-size perturbation makes {name} non-finite")
        return SAFETY * (spread + u * np.abs(exact) + tiny)

    vtol = {n: tol(lambda r: r.values, n) for n in prog.names}
    gtols = [{n: tol(lambda r, p=p: r.history[p], n) for n in prog.names} for p in range(passes)]
    spread_loss = scale * max(abs(float(r.values[prog.root]) - float(ref.values[prog.root]))
                              for r in runs)
    return Expectation(ref.values, vtol, ref.history, gtols, spread_loss)


def _validate(prog: Program, ref) -> None:
    floor = 1e6 * _tiny(prog.dtype)
    for kind, table in [("value", ref.values)] + [("gradient", h) for h in ref.history]:
        for name, a in table.items():
            if not np.all(np.isfinite(a)):
                raise InvalidExample(f"torch's {kind} of {name} is not finite")
            m = np.abs(a)
            if np.any(m > MAX_MAGNITUDE):
                raise InvalidExample(f"torch's {kind} of {name} exceeds {MAX_MAGNITUDE:g}")
            if np.any((m > 0) & (m < floor)):
                raise InvalidExample(f"torch's {kind} of {name} underflows {prog.dtype}")


def _classify_kinks(prog: Program, ref, runs, scale: float) -> None:
    for name, kinks in ref.kinks.items():
        for j, (s0, exact) in enumerate(kinks):
            s0 = np.asarray(s0, dtype=np.float64)
            exact = np.asarray(exact, dtype=bool) & (s0 == 0)
            spread, crossed = np.zeros_like(s0), np.zeros(s0.shape, dtype=bool)
            for r in runs:
                sk = np.asarray(r.kinks[name][j][0], dtype=np.float64)
                spread = np.maximum(spread, scale * np.abs(sk - s0))
                crossed |= np.sign(sk) != np.sign(s0)
            exact &= spread == 0
            ambiguous = ~exact & ((s0 == 0) | (np.abs(s0) <= SAFETY * spread))
            if np.any(ambiguous):
                raise InvalidExample(f"{name} ({prog.node(name).op}) has an input within "
                                     "rounding noise of a kink")
            if np.any(crossed & ~exact):
                # float64 programs are perturbed at 2**-40: a run that crossed a kink would
                # measure a spread from the other branch.
                raise InvalidExample(f"a perturbed run moves {name} ({prog.node(name).op}) "
                                     "across a kink")


# ---------------------------------------------------------------------------- checking
def check_program(prog: Program, values, seed: int, fd: bool = False, passes: int = 1,
                  isolate: bool = True) -> Outcome:
    """Run `prog` in pygrad and compare every value and gradient with torch (and the loss's
    gradient with finite differences when `fd`). Returns the worst error/tolerance ratios;
    raises Mismatch on a disagreement, InvalidExample when the oracles cannot judge."""
    exp = expect(prog, values, seed, passes)
    out = Outcome()
    try:
        env = run_pygrad(prog, values)
    except PygradRaised as e:
        _raise_error(prog, values, e, passes)
    _check_values(prog, values, exp, env, out)
    for p in range(passes):
        try:
            backward_pygrad(env, prog.root, reset_grad=(p == 0))
        except PygradRaised as e:
            _raise_error(prog, values, e, passes)
        _check_grads(prog, values, exp, env, out, p, passes, isolate)
    if fd:
        _check_fd(prog, values, exp, env, out, seed)
    return out


def _op_of(prog: Program, name: str) -> str | None:
    """The op of a body node; None for inputs and the loss."""
    for n in prog.nodes:
        if n.name == name:
            return None if name.startswith("L") else n.op
    return None


def _note(out: Outcome, op: str | None, r: float) -> None:
    out.err_torch = max(out.err_torch, r)
    if op is not None:
        out.per_op[op] = max(out.per_op.get(op, 0.0), r)


def _compare(got, want, tol, dtype):
    """(problem or None, worst ratio)."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {got.shape}, torch's {want.shape}", np.inf
    if got.dtype != np.dtype(dtype):
        return f"dtype {got.dtype}, expected {dtype}", np.inf
    err = np.abs(got.astype(np.float64) - want)
    err = np.where(np.isnan(err), np.inf, err)
    ratios = _ratio(err, tol)
    worst = float(np.max(ratios, initial=0.0))
    if worst > 1:
        i = np.unravel_index(int(np.argmax(ratios)), ratios.shape) if ratios.ndim else ()
        return (f"max |error| {float(err[i]):.3g} at index {tuple(int(k) for k in i)} "
                f"(pygrad {float(got[i]):.17g}, torch {float(want[i]):.17g}, "
                f"tolerance {float(tol[i]):.3g})"), worst
    return None, worst


def _check_values(prog, values, exp, env, out):
    for n in prog.nodes:
        problem, r = _compare(env[n.name].value, exp.values[n.name], exp.vtol[n.name], prog.dtype)
        _note(out, n.op, r)
        if problem:
            raise Mismatch("value", n.op, f"value of {n.name} differs from torch: {problem}",
                           describe(prog, n.name), regression(prog, values, exp, "value"))


def _check_grads(prog, values, exp, env, out, p, passes, isolate, repeat=False):
    bad = {}
    for name in prog.names:
        t = env[name]
        problem, r = _compare(t.grad, exp.grads[p][name], exp.gtols[p][name], prog.dtype)
        _note(out, _op_of(prog, name), r)
        if problem:
            bad[name] = problem
    if not bad:
        return
    order = prog.names
    m = max(bad, key=order.index)
    what = f"gradient of {m} differs from torch" + (
        f" after backward(reset_grad=False) #{p}" if p else "") + f": {bad[m]}"
    if repeat:
        repro = regression(prog, values, exp, "invariant", calls=backward_calls(repeat=True))
        raise Mismatch("invariant", _op_of(prog, m), what + " after a second backward() (reset_grad="
                       "True must zero every gradient before the pass)", describe(prog, m), repro)
    repro = regression(prog, values, exp, "grad" if p == 0 else "invariant", passes=p + 1)
    if p > 0:
        raise Mismatch("invariant", _op_of(prog, m), what + " (backward(reset_grad=False) must add "
                       "to every held gradient and propagate the sums)", describe(prog, m), repro)
    if m == prog.root:
        raise Mismatch("grad", None, what + " (the root's gradient must be ones)",
                       describe(prog, m), repro)
    consumers = prog.consumers(m)
    if isolate:
        for c in consumers:
            if _rule_wrong_alone(prog, env, exp, c, m):
                raise Mismatch("grad", c.op, f"{what}; the backward rule of {c.name} ({c.op}) "
                               f"is wrong", describe(prog, c.name) +
                               f" -- its gradient for operand {m} is wrong", repro)
    names = ", ".join(c.name for c in consumers)
    raise Mismatch("grad", consumers[0].op if len(consumers) == 1 else None,
                   f"{what}; every consumer ({names}) is right when replayed alone, so the "
                   "gradients reaching it are not accumulated correctly", describe(prog, m), repro)


def _rule_wrong_alone(prog, env, exp, c: Node, m: str) -> bool:
    """Replay `c` alone on pygrad's operand values with torch's cotangent: is the gradient
    it sends to `m` wrong?"""
    names = list(dict.fromkeys(c.operands))
    inputs = [Input(o, tuple(env[o].shape)) for o in names]
    body = [Node("v_" + c.name, c.op, tuple(c.operands), c.args)]
    mini, cots = with_loss(prog.dtype, inputs, body)
    vals = {o: np.array(env[o].value) for o in names}
    vals[cots[0]] = exp.grads[0][c.name].astype(prog.dtype)
    try:
        check_program(mini, vals, seed=0, isolate=False)
    except Mismatch as e:
        return e.check == "grad" and f"gradient of {m} " in e.message
    except InvalidExample:
        return False
    return False


def _raise_error(prog, values, e: PygradRaised, passes):
    if e.where == "backward":
        op = _op_from_traceback(e.exc)
        line = f"backward pass ({op or 'unknown op'}'s backward rule raised)"
        if op in OPS:
            hits = [n for n in prog.nodes if n.op == op]
            if len(hits) == 1:
                line = describe(prog, hits[0].name) + " -- its backward rule raised"
    else:
        n = prog.node(e.where)
        op, line = n.op, describe(prog, e.where)
    raise Mismatch("error", op, f"pygrad raised {type(e.exc).__name__}: {e.exc} where torch did not",
                   line, regression(prog, values, None, "error", passes=passes))


def _op_from_traceback(exc) -> str | None:
    tb, op = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if "/pygrad/ops/" in code.co_filename.replace("\\", "/"):
            op = getattr(code, "co_qualname", code.co_name).split(".")[0]
        tb = tb.tb_next
    aliases = {"_T": "T"}
    return aliases.get(op, op)


def _check_fd(prog, values, exp, env, out, seed):
    rng = np.random.default_rng([seed, 1])
    h = oracles.fd_step(prog, values)
    u = U[prog.dtype]
    learn = prog.learnable_inputs()
    grads = {i.name: np.asarray(env[i.name].grad, dtype=np.float64) for i in learn}
    directions = [oracles.unit_direction(prog, rng)]
    if sum(int(np.prod(i.shape)) for i in learn) <= FD_FULL_MAX:
        for i in learn:
            for k in range(int(np.prod(i.shape))):
                e = {j.name: np.zeros(tuple(j.shape)) for j in learn}
                e[i.name].reshape(-1)[k] = 1.0
                directions.append(e)
    loss_abs = abs(float(exp.values[prog.root]))
    eps_loss = exp.spread_loss * (oracles.U64 / u) + oracles.U64 * loss_abs
    # x + t v is itself rounded to float64: a shift of up to u64 |x_i| per entry.
    g_abs = {k: np.abs(exp.grads[0][k]) for k in grads}
    worst = 0.0
    for v in directions:
        def roundoff(step, v=v):
            """Bound on the roundoff of one central difference with this step."""
            eps_in = oracles.U64 * sum(float(np.vdot(g_abs[k], np.abs(values[k]) +
                                                     4 * step * np.abs(v[k]))) for k in v)
            return 2 * (eps_loss + eps_in) / step
        fd = oracles.fd_derivative(prog, values, v, h, noise=roundoff)
        if not fd.clear:
            out.fd_skipped = fd.why
            return
        got = sum(float(np.vdot(grads[k], v[k])) for k in v)
        eps_g = sum(float(np.vdot(np.abs(v[k]), exp.gtols[0][k] / SAFETY)) for k in v)
        tol = SAFETY * (fd.trunc + roundoff(fd.h) + eps_g)
        r = abs(got - fd.d) / tol if tol > 0 else (0.0 if got == fd.d else np.inf)
        worst = max(worst, r)
        if not r <= 1:
            msg = (f"<grad, v> = {got:.17g} but the central difference gives {fd.d:.17g} "
                   f"(|error| {abs(got - fd.d):.3g}, tolerance {tol:.3g}, h = {fd.h:.3g})")
            raise Mismatch("fd", _blame_fd(prog), msg,
                           "the gradient of the inputs " + ", ".join(v) + " along v",
                           regression(prog, values, exp, "fd", fd=(v, fd.d, tol)))
    out.err_fd = worst
    for op in set(prog.ops()):
        out.per_op.setdefault(op, 0.0)


def _blame_fd(prog) -> str | None:
    ops = set(prog.ops())
    return ops.pop() if len(ops) == 1 else None


# ---------------------------------------------------------------------------- reproducers
def _tol_literal(t: np.ndarray) -> str:
    """A tolerance rounded up to 3 significant digits (never tighter than the rule)."""
    def up(x):
        y = float(f"{x:.2e}")
        return y if y >= x else float(f"{x * 1.01:.2e}")
    t = np.asarray(t, dtype=np.float64)
    if t.size and np.all(t == t.reshape(-1)[0]):
        return repr(up(float(t.reshape(-1)[0])))
    return array_literal(np.vectorize(up, otypes=[np.float64])(t)) if t.size else "0.0"


def backward_calls(passes: int = 1, repeat: bool = False) -> list:
    """The backward statements of an example: one pass, then `passes - 1` passes with
    reset_grad=False, or (`repeat`) a second plain backward()."""
    if repeat:
        return ["backward()", "backward()"]
    return ["backward()"] + ["backward(reset_grad=False)"] * (passes - 1)


def regression(prog: Program, values, exp: Expectation | None, check: str, passes: int = 1,
               fd=None, calls: list | None = None, extra: list | None = None,
               header: str = "", before: list | None = None) -> str:
    """A ready-to-paste pytest test: the program as plain pygrad code (then the statements
    `before`, e.g. `v3.learnable = False`), the backward calls, then assertions against
    torch's values and gradients (or the finite difference) for this example."""
    body = program_code(prog, values, backward=False).splitlines() + list(before or [])
    body += [f"{prog.root}.{c}" for c in (calls or backward_calls(passes))]
    body += extra or []
    if exp is not None:
        body.append("# expected: PyTorch float64 on the same inputs; tolerance: reference.check's rule")
        p = passes - 1
        for n in prog.body_nodes():
            body.append(f"_close('value of {n.name}', {n.name}.value, {prog.dtype}, "
                        f"{array_literal(exp.values[n.name])}, {_tol_literal(exp.vtol[n.name])})")
        for name in [i.name for i in prog.learnable_inputs()] + [n.name for n in prog.body_nodes()]:
            body.append(f"_close('gradient of {name}', {name}.grad, {prog.dtype}, "
                        f"{array_literal(exp.grads[p][name])}, {_tol_literal(exp.gtols[p][name])})")
    if fd is not None:
        v, d, tol = fd
        body.append("# finite differences: <grad, v> against (L(x+hv) - L(x-hv)) / 2h, in float64")
        body.append("v = {" + ", ".join(f"{k!r}: {array_literal(a)}" for k, a in v.items()) + "}")
        body.append("got = sum(float(np.vdot(t.grad, v[t.label])) for t in (" +
                    ", ".join(v) + ("," if len(v) == 1 else "") + "))")
        body.append(f"assert abs(got - {d!r}) <= {tol!r}, got")
    digest = hashlib.sha1("\n".join(body).encode()).hexdigest()[:8]
    ops = "_".join(dict.fromkeys(prog.ops()))[:40] or "program"
    name = re.sub(r"\W", "_", f"test_{ops}_{check}_{digest}")
    doc = f'"""Regression test written by the pygrad reference suite ({check} check).'
    if header:
        doc += "\n" + header
    doc += '"""\n'
    helper = ("\n\ndef _close(what, got, dtype, want, tol):\n"
              "    got = np.asarray(got)\n"
              "    assert got.shape == np.shape(want), f\"{what}: shape {got.shape}, expected {np.shape(want)}\"\n"
              "    assert got.dtype == dtype, f\"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}\"\n"
              "    err = np.abs(got.astype(float64) - want)\n"
              "    assert np.all(err <= tol), f\"{what}: max |error| {np.max(err):.3g} exceeds the tolerance\"\n")
    code = doc + CODE_HEADER + (helper if exp is not None else "") + f"\n\ndef {name}():\n"
    code += "\n".join("    " + line for line in body) + "\n"
    return code


# ---------------------------------------------------------------------------- engine checks
def check_backward_twice(prog: Program, values, seed: int) -> Outcome:
    """backward() twice gives the same gradients as once (reset_grad=True zeroes first)."""
    exp = expect(prog, values, seed)
    out = Outcome()
    try:
        env = run_pygrad(prog, values)
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        _raise_error(prog, values, e, 1)
    _check_grads(prog, values, exp, env, out, 0, 1, isolate=True)  # a wrong rule shows here
    try:
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        _raise_error(prog, values, e, 1)
    _check_grads(prog, values, exp, env, out, 0, 1, isolate=False, repeat=True)
    return out


def canonical(prog: Program) -> dict:
    """name -> the name of the tensor it is in pygrad (`T` of a 0-D/1-D tensor returns it)."""
    shapes = shapes_of(prog)
    canon = {i.name: i.name for i in prog.inputs}
    for n in prog.nodes:
        alias = n.op == "T" and len(shapes[n.operands[0]]) < 2
        canon[n.name] = canon[n.operands[0]] if alias else n.name
    return canon


def expected_graph(prog: Program, stops=()) -> tuple:
    """(topo, weights) as names, per the design: every learnable tensor that contributed to
    the root, once, in post-order of a depth-first walk over the operands left to right.
    `stops`: nodes marked learnable=False (not in topo, and not walked through)."""
    canon = canonical(prog)
    operands = {n.name: [canon[o] for o in n.operands] for n in prog.nodes if canon[n.name] == n.name}
    learnable = {i.name: i.learnable for i in prog.inputs}
    learnable.update({canon[s]: False for s in stops})
    leaf = {i.name: i.leaf for i in prog.inputs}
    root = canon[prog.root]
    topo, seen, stack = [], {root}, [(root, iter(operands.get(root, [])))]
    while stack:
        name, children = stack[-1]
        for c in children:
            if c in seen:
                continue
            seen.add(c)
            if learnable.get(c, True):
                stack.append((c, iter(operands.get(c, []))))
                break
        else:
            stack.pop()
            topo.append(name)
    return topo, [t for t in topo if not leaf.get(t, True)]


def check_structure(prog: Program, values) -> None:
    """`create_graph()` and the graphs `backward()` stores hold exactly the expected tensors,
    in the expected order."""
    want_topo, want_weights = expected_graph(prog)
    try:
        env = run_pygrad(prog, values)
        got = env[prog.root].create_graph()
    except PygradRaised as e:
        _raise_error(prog, values, e, 1)
    except Exception as exc:  # noqa: BLE001
        _raise_error(prog, values, PygradRaised("backward", exc), 1)
    canon = canonical(prog)
    names = {}
    for n in prog.names:
        names.setdefault(id(env[n]), canon[n])
    topo = [names.get(id(t), f"<a tensor not in the program: {t!r}>") for t in got[0]]
    weights = [names.get(id(t), f"<a tensor not in the program: {t!r}>") for t in got[1]]
    extra = [f"topo, weights = {prog.root}.create_graph()",
             f"assert topo == [{', '.join(want_topo)}]",
             f"assert weights == [{', '.join(want_weights)}]"]
    for what, g, w in (("topo", topo, want_topo), ("weights", weights, want_weights)):
        if g != w:
            i = next((k for k, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
            at = w[i] if i < len(w) else (g[i] if i < len(g) else prog.root)
            raise Mismatch("structure", None, f"create_graph() {what} is [{', '.join(g)}], "
                           f"expected [{', '.join(w)}] (first difference at position {i})",
                           describe(prog, at) if at in prog.names else at,
                           regression(prog, values, None, "structure", calls=[], extra=extra))
