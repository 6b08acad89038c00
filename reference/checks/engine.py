"""The engine: backward schedules, graph structure, `learnable=False`, deep graphs.

- `check_backward_twice`: backward() twice gives the gradients of once (reset_grad=True
  zeroes every gradient first);
- `check_structure`: `create_graph()` holds exactly the tensors the design's definition
  gives -- every learnable tensor that contributed, once, in post-order of a depth-first
  walk over the operands left to right -- and the weights (leaf=False) in that order;
- `check_stop`: a node marked learnable=False after the forward pass receives the gradient
  torch gives it detached into a leaf, passes none to its operands, and leaves `topo`;
- `check_deep_graph`: a chain of 10 000 ops with a weight used by every step builds,
  back-propagates (no RecursionError) and gets gradients known in closed form.
(`backward(reset_grad=False)` schedules are `check_program(..., passes=k)`.)
"""
from __future__ import annotations

import numpy as np

from reference.checks import Mismatch, Outcome, Parts, raised_in
from reference.checks.programs import check_grads, check_program, mismatch_at, raise_error, regression, row_of
from reference.oracles.oracle import Oracle
from reference.programs import mermaid, printer
from reference.programs.graph import Program
from reference.programs.interpreters import PygradRaised, backward_pygrad, run_pygrad
from reference.registry import ENGINE_ROW
from reference.tolerances import judge

DEEP_STEPS = 5000   # y = -(y + b): two ops a step


def check_backward_twice(prog: Program, values, seed: int) -> Outcome:
    """backward() twice gives the same gradients as once (reset_grad=True zeroes first):
    the first pass against torch, the second against pygrad's own first pass (so a wrong
    rule and a wrong reset are told apart)."""
    oracle = Oracle(prog, values, seed)
    out, parts = Outcome(), Parts()
    try:
        env = run_pygrad(prog, values)
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        raise_error(prog, values, oracle, e, 1)
    with parts.part():
        check_grads(prog, values, oracle, env, out, 0, 1, isolate=True)  # a wrong rule shows here
    first = {name: np.array(env[name].grad, dtype=np.float64) for name in prog.graded}   # a copy
    try:
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        with parts.part():
            raise_error(prog, values, oracle, e, 1)
        return parts.settle(out)
    with parts.part():
        for name in prog.graded:
            problem, _, _ = judge(env[name].grad, first[name], prog.dtype(name), oracle.grad_tols(name))
            if problem:
                raise mismatch_at("invariant", prog, values, oracle, None,
                                f"gradient of {name} after a second backward() differs from the first pass's: "
                                f"{problem.replace('torch', 'first pass')} (reset_grad=True must zero every "
                                "gradient before the pass)", printer.describe(prog, name),
                                regression(prog, values, oracle, "invariant", calls=["backward()", "backward()"]),
                                "backward() twice", mark=name)
    return parts.settle(out)


def canonical(prog: Program) -> dict:
    """name -> the name of the tensor it is in pygrad (an op that returns its operand, like
    `.T` of a 1-D tensor, is that operand)."""
    canon = {i.name: i.name for i in prog.inputs}
    for n in prog.nodes:
        alias = n.spec.returns_operand([prog.shape(o) for o in n.operands])
        canon[n.name] = canon[n.operands[0]] if alias else n.name
    return canon


def expected_graph(prog: Program, stops=()) -> tuple:
    """(topo, weights) as names, by the design's definition, written recursively: visit(t)
    visits t's operands left to right, then lists t; a tensor is visited once; a tensor
    that is not learnable (a constant, or a node in `stops`) is not listed and not entered."""
    canon = canonical(prog)
    operands = {n.name: [canon[o] for o in n.operands] for n in prog.nodes if canon[n.name] == n.name}
    learnable = {i.name: i.learnable for i in prog.inputs}
    learnable.update({canon[s]: False for s in stops})
    leaf = {i.name: i.leaf for i in prog.inputs}
    topo, seen = [], set()

    def visit(name):
        seen.add(name)
        for child in operands.get(name, []):
            if child not in seen and learnable.get(child, True):
                visit(child)
            seen.add(child)
        topo.append(name)
    visit(canon[prog.root])
    return topo, [t for t in topo if not leaf.get(t, True)]


def _names_of(prog: Program, env: dict, tensors) -> list:
    canon = canonical(prog)
    names = {}
    for n in prog.names:
        names.setdefault(id(env[n]), canon[n])
    return [names.get(id(t), f"<a tensor not in the program: {t!r}>") for t in tensors]


def check_structure(prog: Program, values) -> Outcome:
    """`create_graph()` holds exactly the expected tensors, in the expected order: `topo` by
    the definition, `weights` the leaf=False tensors of pygrad's own `topo` in its order (so
    a wrong walk and a wrong selection of weights are told apart)."""
    want_topo, want_weights = expected_graph(prog)
    calls = {"calls": ["create_graph()"]}
    try:
        env = run_pygrad(prog, values)
    except PygradRaised as e:
        raise_error(prog, values, None, e, 1, **calls)
    try:
        got = env[prog.root].create_graph()
    except Exception as exc:  # noqa: BLE001 - create_graph itself raised
        raise_error(prog, values, None, PygradRaised("create_graph", exc), 1, **calls)
    extra = [f"topo, weights = {prog.root}.create_graph()",
             f"assert topo == [{', '.join(want_topo)}]", f"assert weights == [{', '.join(want_weights)}]"]
    got_topo = _names_of(prog, env, got[0])
    weights = {i.name for i in prog.inputs if not i.leaf}
    parts = Parts()
    for what, g, w in (("topo", got_topo, want_topo),
                       ("weights", _names_of(prog, env, got[1]), [t for t in got_topo if t in weights])):
        if g != w:
            i = next((k for k, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
            at = w[i] if i < len(w) else (g[i] if i < len(g) else prog.root)
            parts.add(Mismatch("structure", ENGINE_ROW, f"create_graph() {what} is [{', '.join(g)}], expected "
                               f"[{', '.join(w)}] (first difference at position {i})",
                               printer.describe(prog, at) if at in prog.names else at,
                               regression(prog, values, None, "structure", calls=[], extra=extra),
                               {"create_graph order"}, f"create_graph {what}",
                               mermaid.flowchart(prog, at if at in prog.names else None)))
    return parts.settle(Outcome())


def check_stop(prog: Program, values, seed: int, stop: str) -> Outcome:
    """Mark node `stop` learnable=False after the forward pass, then backward: every gradient
    must equal torch's with that node detached, and `topo` must leave it (and what only it
    reaches) out. A wrong gradient that the unmarked program shows too is reported as the
    ordinary finding it is."""
    oracle = Oracle(prog, values, seed, stops=(stop,))
    out, parts = Outcome(), Parts()
    mark = [f"{stop}.learnable = False"]
    try:
        env = run_pygrad(prog, values)
        env[stop].learnable = False
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        raise_error(prog, values, oracle, e, 1, before=mark)
    bad = {}
    for name in prog.graded:
        problem, r, bound = judge(env[name].grad, oracle.grads(0)[name], prog.dtype(name), oracle.grad_tols(name))
        out.note(row_of(prog, name), r, bound)
        if problem:
            bad[name] = problem
    if bad:
        with parts.part():
            check_program(prog, values, seed)   # raises the plain finding if there is one
            m = max(bad, key=prog.graded.index)
            raise Mismatch("invariant", ENGINE_ROW, f"gradient of {m} differs from torch's with {stop} detached: "
                           f"{bad[m]} ({stop} is learnable=False: it must receive its gradient and pass none on)",
                           printer.describe(prog, m), regression(prog, values, oracle, "invariant", before=mark),
                           {"learnable=False node"}, "learnable=False gradients", mermaid.flowchart(prog, stop))
    want, _ = expected_graph(prog, stops=(stop,))
    try:
        topo = _names_of(prog, env, env[prog.root].topo)
    except Exception as exc:  # noqa: BLE001 - reading topo raised
        with parts.part():
            raise_error(prog, values, None, PygradRaised("topo", exc), 1, before=mark,
                        extra=[f"{prog.root}.topo"])
        return parts.settle(out)
    if topo != want:
        parts.add(Mismatch("structure", ENGINE_ROW, f"with {stop} learnable=False, topo is [{', '.join(topo)}], "
                           f"expected [{', '.join(want)}]", printer.describe(prog, stop),
                           regression(prog, values, None, "structure", before=mark,
                                      extra=[f"assert {prog.root}.topo == [{', '.join(want)}]"]),
                           {"learnable=False node"}, "learnable=False topo", mermaid.flowchart(prog, stop)))
    if not bad:
        with parts.part():
            _check_stop_again(prog, values, oracle, env, stop, mark)
    return parts.settle(out)


def _check_stop_again(prog: Program, values, oracle, env, stop: str, mark: list) -> None:
    """A second backward() (reset_grad=True zeroes every gradient in the graph first, the
    learnable=False node's and what lies beyond it included) gives the same gradients."""
    try:
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        raise_error(prog, values, oracle, e, 1, before=mark)
    for name in prog.graded:
        problem, _, _ = judge(env[name].grad, oracle.grads(0)[name], prog.dtype(name), oracle.grad_tols(name))
        if problem:
            raise Mismatch("invariant", ENGINE_ROW, f"after a second backward(), the gradient of {name} differs "
                           f"from torch's with {stop} detached: {problem} (reset_grad=True zeroes every gradient "
                           "in the graph first)", printer.describe(prog, name),
                           regression(prog, values, oracle, "invariant", before=mark,
                                      calls=["backward()", "backward()"]),
                           {"learnable=False node"}, "backward() resets learnable=False gradients",
                           mermaid.flowchart(prog, stop))


def deep_graph_script(steps: int, dtype: str = "float64") -> list:
    """The deep chain as plain pygrad statements."""
    return [f"DT = np.{dtype}", "x = Tensor([0.5, -1.25, 2.0], leaf=True, dtype=DT)",
            "b = Tensor([0.25, 0.75, -0.5], dtype=DT)", "y = x", f"for _ in range({steps}):", "    y = -(y + b)",
            "loss = (y * Tensor([1.0, -2.0, 0.5], learnable=False, leaf=True, dtype=DT)).sum()", "loss.backward()"]


def check_deep_graph(steps: int = DEEP_STEPS, dtype: str = "float64") -> Outcome:
    """x (input), b (weight), y = x then `steps` times y = -(y + b), loss = (y * w).sum().
    Exact dyadic arithmetic, so the value is the NumPy loop's and the gradients are known in
    closed form: dL/dx = (-1)^steps w, dL/db = -w for odd `steps`, 0 for even. `topo` holds
    x, b, the 2 * steps op outputs, the product and the sum."""
    from pygrad import Tensor
    xv, bv, wv = np.array([0.5, -1.25, 2.0]), np.array([0.25, 0.75, -0.5]), np.array([1.0, -2.0, 0.5])
    repro = deep_graph_script(steps, dtype)
    want_y = xv.copy()
    for _ in range(steps):
        want_y = -(want_y + bv)
    sign = -1.0 if steps % 2 else 1.0
    want = {"the loss": float(np.sum(want_y * wv)), "x.grad": sign * wv,
            "b.grad": -wv if steps % 2 else np.zeros(3), "len(loss.topo)": 2 * steps + 4}

    def fail(check, message, asserts, what="deep graph"):
        raise Mismatch(check, ENGINE_ROW, message, "a chain of 2 x %d ops" % steps,
                       printer.regression_test(check, "deep_graph", repro + asserts), {"deep graph (10 000 ops)"},
                       what)
    parts, got = Parts(), {}
    with parts.part():
        step = "the forward pass of a deep graph"
        try:
            x = Tensor(xv, leaf=True, dtype=dtype)
            b = Tensor(bv, dtype=dtype)
            y = x
            for _ in range(steps):
                y = -(y + b)
            loss = (y * Tensor(wv, learnable=False, leaf=True, dtype=dtype)).sum()
            got["the loss"] = float(loss.value)
            step = "the backward pass of a deep graph"
            loss.backward()
            got.update({"x.grad": np.asarray(x.grad), "b.grad": np.asarray(b.grad), "len(loss.topo)": len(loss.topo)})
        except Exception as exc:  # noqa: BLE001 - RecursionError included
            fail("error", f"{step} raised {type(exc).__name__}: {exc}", [], raised_in(step, exc))
    for what, w in want.items():
        if what in got and not np.array_equal(got[what], w):
            kind = "structure" if what.startswith("len") else "value" if what == "the loss" else "grad"
            with parts.part():
                fail(kind, f"{what} of a chain of {2 * steps} ops is {got[what]!r}, expected exactly {w!r}",
                     [f"assert np.array_equal({what.replace('the loss', 'loss.value')}, {printer.literal(w)})"])
    return parts.settle(Outcome())
