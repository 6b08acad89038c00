"""Ops and programs: pygrad against the PyTorch oracle and finite differences.

`check_program` runs a program in pygrad and compares every node's value, then every
gradient after each backward pass, with torch (`reference.numerics.tolerance`), and the loss's
gradient with central finite differences (`<grad, v>` for a random unit v, and every
coordinate when the inputs have at most `FD_FULL_MAX` entries):

    |<g, v> - D(h)| <= SAFETY * (|D(2h) - D(h)| / 3 + 2 (eps_L + eps_x) / h + eps_g)

with |D(2h) - D(h)| / 3 Richardson's estimate of the truncation error, eps_L the float64
rounding of the loss (its spread rescaled to float64, plus u64 |L|), eps_x = u64 sum |g_i|
(|x_i| + 4h |v_i|) the rounding of the shifted inputs x + t v themselves, and eps_g =
sum |v_i| (spread(g_i) + u |g_i|) the rounding pygrad's own gradient is allowed. FD runs
only where no kink lies within reach (see `oracles.program_fd.fd_derivative`).

A disagreement names the first wrong node: the first node (in execution order) whose value
disagrees; else the wrong gradient closest to the root, blamed on the consumer whose
backward rule, replayed alone on the same operands and cotangent, disagrees with torch -- or
on gradient accumulation (the engine) when every consumer is right alone. An exception in
backward is blamed the same way: on the first node whose rule raises when replayed alone.
Every further consumer whose rule is wrong alone is a distinct failure of the same example
(a wrong value and a wrong rule elsewhere are both reported); what follows from a failure --
the gradients of a program with wrong values, later passes, finite differences -- is not
judged again.
"""
from __future__ import annotations

import numpy as np

from reference.checks import InvalidExample, Mismatch, Outcome, Parts, raised_in
from reference.numerics import SAFETY, U, U64
from reference.oracles.oracle import Oracle
from reference.oracles.program_fd import directions, fd_derivative, fd_step
from reference.programs import mermaid, printer
from reference.programs.conditions import node_conditions
from reference.programs.graph import Input, Node, Program, with_loss
from reference.programs.interpreters import PygradRaised, backward_pygrad, run_numpy, run_pygrad
from reference.registry import ENGINE_ROW
from reference.runstate.session import max_is_bound
from reference.tolerances import judge

FD_FULL_MAX = 8


def row_of(prog: Program, name: str) -> str | None:
    """The report row of a body node (None for inputs and loss nodes)."""
    if prog.is_input(name):
        return None
    n = prog.node(name)
    return n.spec.row if n.role == "body" else None


def check_program(prog: Program, values, seed: int, fd: bool = False, passes: int = 1,
                  isolate: bool = True) -> Outcome:
    """Run `prog` in pygrad and compare every value and gradient with torch (and the loss's
    gradient with finite differences when `fd`). Returns the worst error/tolerance ratios;
    raises Mismatch on a disagreement (every distinct one of the example: see `Parts`),
    InvalidExample when the oracles cannot judge. With wrong values, the gradients are judged
    only by rules replayed alone (the rest follows from the values); later backward passes
    and finite differences run only when everything before them was right."""
    oracle = Oracle(prog, values, seed, passes)
    out, parts = Outcome(), Parts()
    try:
        env = run_pygrad(prog, values)
    except PygradRaised as e:
        raise_error(prog, values, oracle if isolate else None, e, passes)
    with parts.part():
        check_values(prog, values, oracle, env, out)
    values_right = parts.ok
    for p in range(passes):
        try:
            backward_pygrad(env, prog.root, reset_grad=(p == 0))
        except PygradRaised as e:
            with parts.part():
                raise_error(prog, values, oracle if isolate else None, e, passes)
            break
        with parts.part():    # first: what the first read of `.grad` hands out is what a user gets
            check_grad_arrays(prog, values, oracle, env, p)
        with parts.part():
            check_grads(prog, values, oracle, env, out, p, passes, isolate, values_right=values_right)
        if not parts.ok:
            break
    if fd and parts.ok:
        with parts.part():
            check_fd(prog, values, oracle, env, out, seed)
    return parts.settle(out)


def mismatch_at(check, prog, values, oracle, name, message, where, reproducer, what: str = "",
              mark: str | None = None, conditions=()) -> Mismatch:
    """A Mismatch blamed on node `name` (its row, op and conditions; the engine, with `what`
    the engine step and `conditions`, for inputs and None). The program's graph goes with it,
    node `mark` (default `name`) marked as the first wrong one."""
    graph = mermaid.flowchart(prog, mark or name)
    if name is None or prog.is_input(name) or prog.node(name).role != "body":
        return Mismatch(check, ENGINE_ROW, message, where, reproducer, conditions, what or ENGINE_ROW, graph)
    n = prog.node(name)
    node_values = oracle.values if oracle is not None else run_numpy(prog, values)
    return Mismatch(check, n.spec.row, message, where, reproducer, node_conditions(prog, n, node_values),
                    what or n.op, graph)


def check_values(prog, values, oracle: Oracle, env, out: Outcome) -> None:
    for n in prog.nodes:
        problem, r, bound = judge(env[n.name].value, oracle.values[n.name], prog.dtype(n.name),
                                  oracle.value_tols(n.name))
        out.note(row_of(prog, n.name), r, bound)
        if problem:
            raise mismatch_at("value", prog, values, oracle, n.name,
                            f"value of {n.name} differs from torch: {problem}", printer.describe(prog, n.name),
                            regression(prog, values, oracle, "value"))


def check_grads(prog, values, oracle: Oracle, env, out: Outcome, p: int, passes: int, isolate: bool,
                values_right: bool = True) -> None:
    """Every gradient after backward pass `p` against torch's. The wrong gradient closest to
    the root is blamed on its consumer whose rule, replayed alone, is wrong -- else on its only
    consumer, else on gradient accumulation; every other consumer wrong alone (of any wrong
    gradient) is a further distinct failure. With wrong values (`values_right` False) only
    rules wrong alone are blamed."""
    bad = {}
    for name in prog.graded:
        problem, r, bound = judge(env[name].grad, oracle.grads(p)[name], prog.dtype(name), oracle.grad_tols(name, p))
        out.note(row_of(prog, name), r, bound)
        if problem:
            bad[name] = problem
    if not bad:
        return
    m = max(bad, key=prog.graded.index)
    what = f"gradient of {m} differs from torch" + (
        f" after backward(reset_grad=False) #{p}" if p else "") + f": {bad[m]}"
    repro = regression(prog, values, oracle, "grad" if p == 0 else "invariant", passes=p + 1)
    if p > 0:
        raise mismatch_at("invariant", prog, values, oracle, None, what + " (backward(reset_grad=False) must add "
                        "to every held gradient and propagate the sums)", printer.describe(prog, m), repro,
                        "backward(reset_grad=False) sums", mark=m)
    if m == prog.root:
        raise mismatch_at("grad", prog, values, oracle, None, what + " (the root's gradient must be ones)",
                        printer.describe(prog, m), repro, "the root's gradient", mark=m)
    parts, alone = Parts(), _AloneReplays(prog, env, oracle) if isolate else None
    for name in sorted(bad, key=prog.graded.index, reverse=True):    # from the root down
        for c in prog.consumers(name):
            if alone is not None and c.name not in alone.blamed and alone.wrong(c, name):
                alone.blamed.add(c.name)
                parts.add(mismatch_at("grad", prog, values, oracle, c.name,
                                    f"gradient of {name} differs from torch: {bad[name]}; the backward rule of "
                                    f"{c.name} ({c.op}) is wrong", printer.describe(prog, c.name) +
                                    f" -- its gradient for operand {name} is wrong", repro))
    consumers = prog.consumers(m)
    if values_right and not any(c.name in (alone.blamed if alone else ()) for c in consumers):
        names = ", ".join(c.name for c in consumers)
        if len(consumers) == 1:
            parts.add(mismatch_at("grad", prog, values, oracle, consumers[0].name, what, printer.describe(prog, m),
                                repro))
        else:
            parts.add(mismatch_at("grad", prog, values, oracle, None, f"{what}; every consumer ({names}) is right "
                                "when replayed alone, so the gradients reaching it are not accumulated correctly",
                                printer.describe(prog, m), repro, "gradient accumulation", mark=m,
                                conditions={"fan-out"}))
    parts.settle()


class _AloneReplays:
    """Nodes replayed alone (each at most once per example): is a node's backward rule
    wrong on pygrad's operand values and torch's cotangent?"""

    def __init__(self, prog, env, oracle: Oracle):
        self.prog, self.env, self.oracle = prog, env, oracle
        self.results: dict = {}
        self.blamed: set = set()

    def wrong(self, c: Node, m: str) -> bool:
        """Does `c`, replayed alone, send a wrong gradient to operand `m` (or raise)?"""
        if c.name not in self.results:
            self.results[c.name] = _replay_alone(self.prog, self.env, self.oracle, c)
        found = self.results[c.name]
        if any(f.check == "value" for f in found):
            return False      # its own forward is wrong there: its gradient is not judged
        return any(f.check == "error" or (f.check == "grad" and f"gradient of {m} " in f.message) for f in found)


def _alone(prog: Program, env, oracle: Oracle, c: Node) -> tuple:
    """(program, values): node `c` alone on pygrad's operand values, with torch's cotangent."""
    names = list(dict.fromkeys(c.operands))
    inputs = [Input(o, prog.shape(o), prog.dtype(o), layout=prog.input(o).layout if prog.is_input(o) else "")
              for o in names]
    mini, cots = with_loss(inputs, [Node("v_" + c.name, c.op, tuple(c.operands), c.args)])
    vals = {o: np.array(getattr(env[o], "value", env[o])) for o in names}
    vals[cots[0]] = oracle.grads(0)[c.name].astype(prog.dtype(c.name))
    return mini, vals


def _replay_alone(prog, env, oracle: Oracle, c: Node) -> list:
    """The failures of node `c` replayed alone (none when the oracle cannot judge it)."""
    mini, vals = _alone(prog, env, oracle, c)
    try:
        check_program(mini, vals, seed=0, isolate=False)
    except Mismatch as e:
        return e.all()
    except InvalidExample:
        return []
    return []


def raise_error(prog, values, oracle: Oracle | None, e: PygradRaised, passes: int, **script):
    """pygrad raised where torch did not: a finding blamed on the node that raised (in
    backward: the first node, from the root down, whose rule raises when replayed alone --
    when an `oracle` is given for the replays). Its `what`: the exception type and the op
    (or the engine step) that raised. `script`: how the reproducer differs from a plain
    backward (`regression`'s `calls`, `before`)."""
    blamed = e.where if e.where in prog.names else None    # a node's forward; else replay
    if blamed is None and oracle is not None:
        env = run_pygrad(prog, values)
        for c in reversed(prog.nodes):
            if any(f.check == "error" for f in _replay_alone(prog, env, oracle, c)):
                blamed = c.name
                break
    where = printer.describe(prog, blamed) if blamed else f"the {e.where} pass"
    if e.where == "backward" and blamed:
        where += " -- its backward rule raised"
    op = prog.node(blamed).op if blamed and not prog.is_input(blamed) else e.where
    raise mismatch_at("error", prog, values, oracle, blamed,
                    f"pygrad raised {type(e.exc).__name__}: {e.exc} where torch did not", where,
                    regression(prog, values, None, "error", passes=passes, **script), raised_in(op, e.exc))


def check_fd(prog, values, oracle: Oracle, env, out: Outcome, seed: int) -> None:
    """<grad, v> of every learnable input against central finite differences (float64)."""
    learn = prog.learnable_inputs()
    grads = {i.name: np.asarray(env[i.name].grad, dtype=np.float64) for i in learn}
    g_abs = {k: np.abs(oracle.grads(0)[k]) for k in grads}
    loss_abs = abs(float(oracle.values[prog.root]))
    h = fd_step(prog, values)
    worst, worst_bound = 0.0, False
    for v in directions(prog, np.random.default_rng([seed, 1]), FD_FULL_MAX):
        got = sum(float(np.vdot(grads[k], v[k])) for k in v)
        for full in (False, True):   # the floor first: spreads only when it does not decide
            u = max(U[d] for d in prog.dtypes)
            spread_loss = oracle.loss_spread() * (U64 / u) if full else 0.0
            eps_loss = spread_loss + U64 * loss_abs

            def roundoff(step, v=v, eps_loss=eps_loss):
                """Bound on the roundoff of one central difference with this step."""
                eps_in = U64 * sum(float(np.vdot(g_abs[k], np.abs(values[k]) + 4 * step * np.abs(v[k])))
                                           for k in v)
                return 2 * (eps_loss + eps_in) / step
            fd = fd_derivative(prog, values, v, h, noise=roundoff)
            if not fd.clear:
                out.fd_skipped = fd.why
                return
            tols = {k: (oracle.grad_tol(k) if full else next(oracle.grad_tols(k))) for k in v}
            eps_g = sum(float(np.vdot(np.abs(v[k]), tols[k] / SAFETY)) for k in v)
            tol = SAFETY * (fd.trunc + roundoff(fd.h) + eps_g)
            r = abs(got - fd.d) / tol if tol > 0 else (0.0 if got == fd.d else np.inf)
            if r <= 1:
                break
        worst_bound = max_is_bound(worst, worst_bound, r, not full and r > 0)
        worst = max(worst, r)
        if not r <= 1:
            ops = {n.name for n in prog.body_nodes()}
            blamed = ops.pop() if len(ops) == 1 else None
            raise mismatch_at("fd", prog, values, oracle, blamed,
                            f"<grad, v> = {got:.17g} but the central difference gives {fd.d:.17g} "
                            f"(|error| {abs(got - fd.d):.3g}, tolerance {tol:.3g}, h = {fd.h:.3g})",
                            "the gradient of the inputs " + ", ".join(v) + " along v",
                            regression(prog, values, oracle, "fd", fd=(v, fd.d, tol)),
                            "the program's gradient")
    out.err_fd, out.fd_bound = worst, worst_bound


def check_grad_arrays(prog, values, oracle: Oracle, env, p: int) -> None:
    """Every graded tensor's `.grad` is a writeable ndarray that no other one shares: the
    contract's "in-place writes to x.grad affect x only" (`x.grad[...] = 0`, `x.grad += g`),
    whatever arrays the engine passed around, and `.grad` read again is the same array (as
    torch's: `g = x.grad; ...; g += 1` reaches x). (A name bound to the same Tensor as another,
    as `x.T` of a 1-D x is, counts once.)"""
    tensors = {id(env[name]): name for name in reversed(prog.graded)}   # `x.T` of a 1-D x is x itself
    grads = {name: env[name].grad for name in prog.graded if tensors[id(env[name])] == name}
    problems = [f"{name}.grad is a {type(g).__name__}" + ("" if type(g) is not np.ndarray else " that is read-only")
                for name, g in grads.items() if type(g) is not np.ndarray or not g.flags.writeable]
    held = [(name, g) for name, g in grads.items() if type(g) is np.ndarray and g.size]
    problems += [f"{a}.grad and {b}.grad share memory" for i, (a, ga) in enumerate(held) for b, gb in held[i + 1:]
                 if np.may_share_memory(ga, gb) and np.shares_memory(ga, gb)]
    problems += [f"{name}.grad read again, while the first read is held, is another array"
                 for name, g in grads.items() if type(g) is np.ndarray and env[name].grad is not g]
    if problems:
        names = ", ".join(grads)
        check = [f"tensors = [{names}{',' if len(grads) == 1 else ''}]",
                 "grads = [t.grad for t in tensors]",
                 "assert all(type(g) is np.ndarray and g.flags.writeable for g in grads)",
                 "assert not any(np.shares_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1:])",
                 "assert all(t.grad is g for t, g in zip(tensors, grads))   # writes through g reach t"]
        raise mismatch_at("invariant", prog, values, oracle, None,
                          "after backward" + (f"(reset_grad=False) #{p}" if p else "()") + ": " + "; ".join(problems)
                          + " (each .grad must be a writeable ndarray of its own)", printer.describe(prog, prog.root),
                          regression(prog, values, None, "invariant", passes=p + 1, extra=check),
                          ".grad an array of its own")


# ---------------------------------------------------------------------------- reproducers
def regression(prog: Program, values, oracle: Oracle | None, check: str, passes: int = 1, fd=None,
               calls: list | None = None, extra: list | None = None, before: list | None = None) -> str:
    """A ready-to-paste pytest test: the program as plain pygrad code (then the statements
    `before`, e.g. `v3.learnable = False`), the backward calls, then assertions against
    torch's values and gradients (or the finite difference) for this example."""
    body = printer.program_code(prog, values, backward=False).splitlines() + list(before or [])
    body += [f"{prog.root}.{c}" for c in (calls or ["backward()"] + ["backward(reset_grad=False)"] * (passes - 1))]
    body += extra or []
    if oracle is not None and fd is None:
        body.append("# expected: PyTorch float64 on the same inputs; tolerance: reference.numerics.tolerance")
        p = passes - 1
        for n in prog.body_nodes():
            body.append(printer.close_line(f"value of {n.name}", f"{n.name}.value", prog.dtype(n.name),
                                           oracle.values[n.name], oracle.value_tol(n.name)))
        for name in [i.name for i in prog.learnable_inputs()] + [n.name for n in prog.body_nodes()]:
            body.append(printer.close_line(f"gradient of {name}", f"{name}.grad", prog.dtype(name),
                                           oracle.grads(p)[name], oracle.grad_tol(name, p)))
    if fd is not None:
        v, d, tol = fd
        body.append("# finite differences: <grad, v> against (L(x+hv) - L(x-hv)) / 2h, in float64")
        body.append("v = {" + ", ".join(f"{k!r}: {printer.array_literal(a)}" for k, a in v.items()) + "}")
        body.append("got = sum(float(np.vdot(t.grad, v[t.label])) for t in (" + ", ".join(v)
                    + ("," if len(v) == 1 else "") + "))")
        body.append(f"assert abs(got - {d!r}) <= {tol!r}, got")
    label = "_".join(dict.fromkeys(prog.ops()))[:40] or "program"
    return printer.regression_test(check, label, body)
