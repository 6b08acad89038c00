"""Tensor's own methods on a program: what a Tensor offers besides its ops.

`check_tensor_api(prog, values, seed, modes)`:

1. the inputs are made with `pygrad.array(...)`, which must give what `Tensor(...)` gives
   (value, dtype, shape, label, learnable, leaf);
2. forward and `backward()`: values and gradients against torch (the ordinary findings);
3. on every tensor: `shape`, `dtype`, `ndim`, `size`, `len()` agree with torch's value and
   the program's dtype; `numpy()` is the value; `item()` of a one-element tensor is its entry
   as a Python float; `detach()` is a new leaf holding the value, outside any graph; the
   root's `topo` and `weights`, stored by backward, are `create_graph()`'s;
4. each learnable input in its mode (`registry.tensor_row.MODES`): `new_value(v)` (the value
   replaced in the tensor's dtype, the gradient zero), `x.value = v` (a float64 array: the
   tensor keeps its dtype and its gradient), `reset_grad()` (gradient zero), `x.grad = G`
   (stored in the tensor's dtype) or kept, with v = 3/4 of the old value (same domain, same
   kinks);
5. the program again on the same input tensors, then `backward(reset_grad=False)`: values
   against torch at the new inputs, and every learnable input's gradient must be what it held
   plus the new pass's (torch at the old inputs, or 0, or G, plus torch at the new ones).

A failure of 1, 3, 4 or 5 is an `invariant` of the `tensor` row, with the conditions of the
input's mode; a wrong op shows in 2 (or in 5's values) as the op's own finding.
"""
from __future__ import annotations

import numpy as np

from reference.checks import Mismatch, Outcome
from reference.checks.programs import check_grads, check_values, raise_error
from reference.numerics import tolerance
from reference.oracles.oracle import Oracle
from reference.programs import printer
from reference.programs.graph import Program
from reference.programs.interpreters import PygradRaised, backward_pygrad, run_pygrad
from reference.registry.tensor_row import TENSOR_ROW, TensorUse, tensor_conditions
from reference.tolerances import judge

SCALE = 0.75   # the new value of a changed input: 3/4 of the old one
GRAD = 0.5     # what `x.grad = G` assigns, everywhere


def learnable_modes(prog: Program, modes: tuple) -> dict:
    """learnable input name -> mode (inputs beyond `modes` are kept)."""
    return {i.name: (modes[k] if k < len(modes) else "keep") for k, i in enumerate(prog.learnable_inputs())}


def new_values(prog: Program, values, modes: tuple) -> dict:
    """The inputs of the second pass: 3/4 of the old value where the mode replaces it."""
    out = dict(values)
    for name, mode in learnable_modes(prog, modes).items():
        if mode in ("new_value", "assign"):
            out[name] = np.asarray(np.asarray(values[name], dtype=np.float64) * SCALE, dtype=prog.input(name).dtype)
    return out


def conditions(prog: Program, modes: tuple) -> set:
    return tensor_conditions(TensorUse(tuple(learnable_modes(prog, modes).values()), frozenset(prog.dtypes)))


def script(prog: Program, values, modes: tuple) -> list:
    """The example as plain pygrad statements."""
    return _script(prog, values, modes)[0]


def _script(prog: Program, values, modes: tuple) -> tuple:
    """(statements, {learnable input: the number of statements up to its change})."""
    code = printer.program_code(prog, values, backward=False).splitlines()
    n_in = len(prog.inputs)
    inputs = [line.replace(" = Tensor(", " = pygrad.array(", 1) for line in code[:n_in]]
    nodes = code[n_in:]
    lines = inputs + nodes + [f"{prog.root}.backward()"]
    changed = new_values(prog, values, modes)
    upto = {}
    for name, mode in learnable_modes(prog, modes).items():
        v = printer.array_literal(np.asarray(changed[name], dtype=np.float64))
        lines += {"new_value": [f"{name}.new_value({v})"], "assign": [f"{name}.value = {v}"],
                  "reset": [f"{name}.reset_grad()"],
                  "set_grad": [f"{name}.grad = np.full({prog.shape(name)!r}, {GRAD!r})"]}.get(mode, [])
        upto[name] = len(lines)
    return lines + nodes + [f"{prog.root}.backward(reset_grad=False)"], upto


class _Check:
    def __init__(self, prog, values, modes):
        self.prog, self.values, self.modes = prog, values, modes
        self.lines, self.upto = _script(prog, values, modes)
        self.conds = frozenset(conditions(prog, modes))

    def fail(self, message: str, where: str, assertion: str, upto: int | None = None, conds=None):
        body = self.lines[:upto] if upto is not None else list(self.lines)
        raise Mismatch("invariant", TENSOR_ROW, message, where,
                       printer.regression_test("invariant", "tensor", body + [assertion]),
                       self.conds if conds is None else conds)

    def pygrad(self, fn, where: str, upto: int | None = None):
        try:
            return fn()
        except Mismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - pygrad raised: a finding
            raise self.raised(exc, where, upto) from exc

    def raised(self, exc: BaseException, where: str, upto: int | None = None) -> Mismatch:
        body = self.lines[:upto] if upto is not None else list(self.lines)
        return Mismatch("error", TENSOR_ROW, f"pygrad raised {type(exc).__name__}: {exc} ({where})", where,
                        printer.regression_test("error", "tensor", body), self.conds)


def _made_with_array(chk: _Check) -> dict:
    """The program's inputs made with pygrad.array, each compared with Tensor(...)."""
    import pygrad
    env = {}
    for i in chk.prog.inputs:
        v = np.asarray(chk.values[i.name], dtype=i.dtype)
        if i.role == "array":
            env[i.name] = v
            continue
        kw = {"label": i.name, "dtype": i.dtype, "learnable": i.learnable, "leaf": i.leaf}
        t = chk.pygrad(lambda: pygrad.array(v, **kw), f"pygrad.array(...) for {i.name}", len(chk.prog.inputs))
        twin = pygrad.Tensor(v, **kw)
        same = (type(t) is type(twin) and t.value.dtype == twin.value.dtype and np.array_equal(t.value, twin.value)
                and (t.label, t.learnable, t.leaf, t.shape) == (twin.label, twin.learnable, twin.leaf, twin.shape))
        if not same:
            chk.fail(f"pygrad.array(...) made {i.name} differently from Tensor(...) with the same arguments",
                     f"{i.name} = pygrad.array(...)", f"assert np.array_equal({i.name}.value, Tensor({i.name}.value, "
                     f"dtype={i.name}.dtype).value)", len(chk.prog.inputs), frozenset())
        env[i.name] = t
    return env


def _attributes(chk: _Check, env: dict, oracle: Oracle, upto: int) -> None:
    """shape, dtype, ndim, size, len, numpy, item, detach of every tensor; topo and weights."""
    from pygrad import Tensor
    prog = chk.prog
    for name in prog.names:
        t = env[name]
        if not isinstance(t, Tensor):
            continue
        shape, dtype = tuple(np.shape(oracle.values[name])), np.dtype(prog.dtype(name))
        got = chk.pygrad(lambda: (t.shape, t.dtype, t.ndim, t.size, len(t) if len(shape) else None),
                         f"{name}'s attributes", upto)
        want = (shape, dtype, len(shape), int(np.prod(shape)), shape[0] if shape else None)
        if got != want:
            chk.fail(f"{name}: (shape, dtype, ndim, size, len) is {got}, expected {want}", name,
                     f"assert ({name}.shape, {name}.dtype, {name}.ndim, {name}.size) == {want[:2]!r}[:2] + "
                     f"({want[2]}, {want[3]})", upto, frozenset())
        arr = chk.pygrad(t.numpy, f"{name}.numpy()", upto)
        if not (isinstance(arr, np.ndarray) and arr.dtype == t.value.dtype and np.array_equal(arr, t.value)):
            chk.fail(f"{name}.numpy() is not its value", name, f"assert np.array_equal({name}.numpy(), {name}.value)",
                     upto, frozenset())
        if t.size == 1:
            item = chk.pygrad(t.item, f"{name}.item()", upto)
            if type(item) is not float or item != float(t.value.reshape(-1)[0]):
                chk.fail(f"{name}.item() is {item!r}, expected the Python float {float(t.value.reshape(-1)[0])!r}",
                         name, f"assert {name}.item() == float({name}.value.reshape(-1)[0])", upto, frozenset())
        d = chk.pygrad(t.detach, f"{name}.detach()", upto)
        ok = (isinstance(d, Tensor) and d is not t and d.leaf and d._prev == () and d.dtype == t.dtype
              and np.array_equal(d.value, t.value) and not np.any(d.grad)
              and [id(x) for x in d.create_graph()[0]] == [id(d)])
        if not ok:
            chk.fail(f"{name}.detach() is not a new leaf holding the value outside any graph", name,
                     f"d = {name}.detach(); assert d.leaf and d._prev == () and np.array_equal(d.value, "
                     f"{name}.value) and d.create_graph() == ([d], [])", upto, frozenset())
    root = env[prog.root]
    topo, weights = chk.pygrad(root.create_graph, f"{prog.root}.create_graph()", upto)
    for what, stored, want in (("topo", root.topo, topo), ("weights", root.weights, weights)):
        if stored is None or [id(x) for x in stored] != [id(x) for x in want]:
            chk.fail(f"{prog.root}.{what} after backward() is not create_graph()'s {what} (backward stores both)",
                     f"{prog.root}.{what}", f"assert {prog.root}.{what} == {prog.root}.create_graph()"
                     f"[{0 if what == 'topo' else 1}]", upto, frozenset())


def _change(chk: _Check, env: dict, changed: dict) -> dict:
    """Apply each learnable input's mode; returns name -> its gradient right after."""
    prog = chk.prog
    held = {}
    for name, mode in learnable_modes(prog, chk.modes).items():
        t, upto = env[name], chk.upto[name]
        before = np.array(t.grad)
        dt = t.dtype
        v = np.asarray(changed[name], dtype=np.float64)
        conds = frozenset(tensor_conditions(TensorUse((mode,), frozenset({prog.input(name).dtype}))))
        if mode == "new_value":
            chk.pygrad(lambda: t.new_value(v), f"{name}.new_value(v)", upto)
            want_value, want_grad = changed[name], np.zeros(t.shape, dtype=dt)
        elif mode == "assign":
            chk.pygrad(lambda: setattr(t, "value", v), f"{name}.value = v", upto)
            want_value, want_grad = changed[name], before
        elif mode == "reset":
            chk.pygrad(t.reset_grad, f"{name}.reset_grad()", upto)
            want_value, want_grad = chk.values[name], np.zeros(t.shape, dtype=dt)
        elif mode == "set_grad":
            chk.pygrad(lambda: setattr(t, "grad", np.full(t.shape, GRAD)), f"{name}.grad = G", upto)
            want_value, want_grad = chk.values[name], np.full(t.shape, GRAD, dtype=dt)
        else:
            want_value, want_grad = chk.values[name], before
        got_value, got_grad = t.value, chk.pygrad(lambda: t.grad, f"{name}.grad", upto)
        if not (got_value.dtype == dt and np.array_equal(got_value, want_value)
                and got_grad.dtype == dt and got_grad.shape == t.shape and np.array_equal(got_grad, want_grad)):
            chk.fail(f"after {mode} of {name}, its value or gradient is not what the contract says (value "
                     f"{'replaced' if mode in ('new_value', 'assign') else 'kept'} in dtype {dt}, gradient "
                     f"{'zero' if mode in ('new_value', 'reset') else 'G' if mode == 'set_grad' else 'kept'})",
                     f"{name} ({mode})", f"assert {name}.value.dtype == {name}.grad.dtype == {dt.name} and "
                     f"np.array_equal({name}.value, {printer.array_literal(np.asarray(want_value, dtype=dt))}) "
                     f"and np.array_equal({name}.grad, {printer.array_literal(np.asarray(want_grad, dtype=dt))})",
                     upto, conds)
        held[name] = np.array(got_grad)
    return held


def check_tensor_api(prog: Program, values, seed: int, modes: tuple) -> Outcome:
    """See the module docstring."""
    chk = _Check(prog, values, modes)
    n_first = len(prog.inputs) + len(prog.nodes) + 1        # statements up to the first backward()
    oracle = Oracle(prog, values, seed)
    out = Outcome()
    env = _made_with_array(chk)
    try:
        env = run_pygrad(prog, values, env)
        check_values(prog, values, oracle, env, out)
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        raise_error(prog, values, oracle, e, 1)
    check_grads(prog, values, oracle, env, out, 0, 1, isolate=True)
    _attributes(chk, env, oracle, n_first)
    changed = new_values(prog, values, modes)
    held = _change(chk, env, changed)
    inputs = {i.name: env[i.name] for i in prog.inputs}
    second = Oracle(prog, changed, seed + 1)
    try:
        env2 = run_pygrad(prog, changed, dict(inputs))
        backward_pygrad(env2, prog.root, reset_grad=False)
    except PygradRaised as e:     # on changed tensors: the reproducer is the whole example
        raise chk.raised(e.exc, f"the second pass, at {e.where}") from e
    check_values(prog, changed, second, env2, out)
    for name, mode in learnable_modes(prog, modes).items():
        want = held[name].astype(np.float64) + second.grads(0)[name]     # what it held, plus the new pass
        dt = prog.input(name).dtype

        def tols(name=name, want=want, dt=dt):
            yield next(second.grad_tols(name)) + tolerance(want, dt)
            yield second.grad_tol(name) + tolerance(want, dt)
        problem, r, bound = judge(inputs[name].grad, want, dt, tols())
        out.note(TENSOR_ROW, r, bound)
        if problem:
            chk.fail(f"after {mode} of {name}, a second pass with backward(reset_grad=False) must leave the "
                     f"gradient it held plus the new pass's: {problem}", f"{name}.grad",
                     printer.close_line(f"gradient of {name}", f"{name}.grad", dt, want, list(tols())[-1]), None,
                     frozenset(tensor_conditions(TensorUse((mode,), frozenset({dt})))))
    return out
