"""Tensor's own methods on a program: what a Tensor offers besides its ops.

`check_tensor_api(prog, values, seed, modes)`:

1. the inputs are made with `pygrad.array(...)`, which must give what `Tensor(...)` gives
   (value, dtype, shape, label, learnable, leaf);
2. forward and `backward()`: values and gradients against torch (the ordinary findings);
3. on every tensor: `shape`, `dtype`, `ndim`, `size`, `len()` describe its value; `numpy()`
   is the value; `item()` of a one-element tensor is its entry as a Python float; `detach()`
   is a new leaf holding the value, outside any graph; the root's `topo` and `weights`,
   stored by backward, are `create_graph()`'s;
4. each learnable input in its mode (`registry.tensor_row.MODES`): `new_value(v)` (the value
   replaced in the tensor's dtype, the gradient zero), `x.value = v` (a float64 array: the
   tensor keeps its dtype and its gradient), `reset_grad()` (gradient zero), `x.grad = G`
   (stored in the tensor's dtype) or kept, with v = 3/4 of the old value (same domain, same
   kinks);
5. the program again on the same input tensors, then `backward(reset_grad=False)`: values
   against torch at the new inputs, and every learnable input's gradient must be what it held
   plus the new pass's (torch at the old inputs, or 0, or G, plus torch at the new ones).

A failure of 1, 3, 4 or 5 is an `invariant` of the `tensor` row named by what it checks (with
the conditions of the input's mode in 4 and 5); a wrong op shows in 2 (or in 5's values) as
the op's own finding. The check runs in parts (`reference.checks.Parts`), each distinct failure
reported: `pygrad.array` making an input wrongly (the example goes on with `Tensor(...)`'s),
each kind of attribute, each input's value and gradient after its helper, each gradient of
the second pass. What follows from a failure is not judged again: the second pass runs only
when the first one's values and gradients were right and every changed input holds a value
and a gradient of its dtype and shape (a gradient of the wrong entries is fine: the second
pass adds to what it holds), its gradients only when its values are right. pygrad raising is
an `error` finding of the row, its `what` the exception and pygrad's function that raised.
"""
from __future__ import annotations

import numpy as np

from reference.checks import Mismatch, Outcome, Parts, pygrad_raiser, raised_in
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
HELPERS = {"keep": "nothing", "new_value": "new_value(v)", "assign": "x.value = v", "reset": "reset_grad()",
           "set_grad": "x.grad = G"}
"""Each mode's call, as findings name it."""


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


def _mode_conditions(prog: Program, name: str, mode: str) -> frozenset:
    return frozenset(tensor_conditions(TensorUse((mode,), frozenset({prog.input(name).dtype}))))


def script(prog: Program, values, modes: tuple) -> list:
    """The example as plain pygrad statements."""
    return _script(prog, values, modes)[0]


def _script(prog: Program, values, modes: tuple, array: bool = True) -> tuple:
    """(statements, {learnable input: the number of statements up to its change}); the
    inputs made with pygrad.array, or with Tensor(...) when not `array`."""
    code = printer.program_code(prog, values, backward=False).splitlines()
    n_in = len(prog.inputs)
    inputs = [line.replace(" = Tensor(", " = pygrad.array(", 1) if array else line for line in code[:n_in]]
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
    """One example in progress: its script, its conditions and its parts."""

    def __init__(self, prog, values, modes):
        self.prog, self.values, self.modes = prog, values, modes
        self.lines, self.upto = _script(prog, values, modes)
        self.conds = frozenset(conditions(prog, modes))
        self.parts = Parts()

    def without_array(self) -> None:
        """pygrad.array made an input wrongly: the example goes on with Tensor(...)'s inputs,
        and so do the reproducers of its other findings."""
        self.lines, _ = _script(self.prog, self.values, self.modes, array=False)

    def _test(self, check: str, upto: int | None, asserts=()) -> str:
        body = self.lines[:upto] if upto is not None else list(self.lines)
        return printer.regression_test(check, "tensor", body + list(asserts))

    def fail(self, message: str, where: str, assertion: str, what: str, upto: int | None = None, conds=None):
        raise Mismatch("invariant", TENSOR_ROW, message, where, self._test("invariant", upto, [assertion]),
                       self.conds if conds is None else conds, what)

    def pygrad(self, fn, where: str, step: str, upto: int | None = None, conds=None):
        """Run pygrad code `fn()`: an exception is an `error` finding, raised (see `raised`)."""
        try:
            return fn()
        except Mismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - pygrad raised: a finding
            raise self.raised(exc, where, step, upto, conds) from exc

    def raised(self, exc: BaseException, where: str, step: str, upto: int | None = None, conds=None) -> Mismatch:
        """The `error` finding of an exception: its `what` names pygrad's function that raised
        (else `step`)."""
        raiser = pygrad_raiser(exc)
        return Mismatch("error", TENSOR_ROW, f"pygrad raised {type(exc).__name__}: {exc} ({where})", where,
                        self._test("error", upto), self.conds if conds is None else conds,
                        raised_in(f"pygrad's {raiser}" if raiser else step, exc))


def _made_with_array(chk: _Check) -> dict:
    """The program's inputs made with pygrad.array, each compared with Tensor(...); from the
    first that differs (or raises) on, Tensor(...)'s."""
    import pygrad
    env, n_in, right = {}, len(chk.prog.inputs), True
    for i in chk.prog.inputs:
        v = np.asarray(chk.values[i.name], dtype=i.dtype)
        if i.role == "array":
            env[i.name] = v
            continue
        kw = {"label": i.name, "dtype": i.dtype, "learnable": i.learnable, "leaf": i.leaf}
        env[i.name] = twin = pygrad.Tensor(v, **kw)
        if not right:
            continue
        with chk.parts.part() as made:
            t = chk.pygrad(lambda: pygrad.array(v, **kw), f"pygrad.array(...) for {i.name}", "pygrad.array", n_in,
                           frozenset())
            same = (type(t) is type(twin) and t.value.dtype == twin.value.dtype and np.array_equal(t.value, twin.value)
                    and (t.label, t.learnable, t.leaf, t.shape) == (twin.label, twin.learnable, twin.leaf, twin.shape))
            if not same:
                chk.fail(f"pygrad.array(...) made {i.name} differently from Tensor(...) with the same arguments",
                         f"{i.name} = pygrad.array(...)", f"assert np.array_equal({i.name}.value, Tensor("
                         f"{i.name}.value, dtype={i.name}.dtype).value)", "pygrad.array is Tensor(...)", n_in,
                         frozenset())
            env[i.name] = t
        if made.failed:
            right = False
            chk.without_array()
    return env


# ---------------------------------------------------------------------------- attributes
def _describes(chk: _Check, name: str, t, upto: int) -> None:
    got, value = chk.pygrad(lambda: ((t.shape, t.dtype, t.ndim, t.size, len(t) if np.ndim(t.value) else None),
                                     t.value), f"{name}'s attributes", "shape, dtype, ndim, size, len", upto,
                              frozenset())
    shape = np.shape(value)
    want = (shape, value.dtype, len(shape), int(np.prod(shape)), shape[0] if shape else None)
    if got != want:
        chk.fail(f"{name}: (shape, dtype, ndim, size, len) is {got}, expected {want} (its value's)", name,
                 f"assert ({name}.shape, {name}.dtype, {name}.ndim, {name}.size) == ({name}.value.shape, "
                 f"{name}.value.dtype, {name}.value.ndim, {name}.value.size)", "shape, dtype, ndim, size, len", upto,
                 frozenset())


def _numpy(chk: _Check, name: str, t, upto: int) -> None:
    arr = chk.pygrad(t.numpy, f"{name}.numpy()", "numpy()", upto, frozenset())
    if not (isinstance(arr, np.ndarray) and arr.dtype == t.value.dtype and np.array_equal(arr, t.value)):
        chk.fail(f"{name}.numpy() is not its value", name, f"assert np.array_equal({name}.numpy(), {name}.value)",
                 "numpy() is the value", upto, frozenset())


def _item(chk: _Check, name: str, t, upto: int) -> None:
    if np.size(t.value) != 1:
        return
    item, want = chk.pygrad(t.item, f"{name}.item()", "item()", upto, frozenset()), float(t.value.reshape(-1)[0])
    if type(item) is not float or item != want:
        chk.fail(f"{name}.item() is {item!r}, expected the Python float {want!r}", name,
                 f"assert {name}.item() == float({name}.value.reshape(-1)[0])", "item() is a Python float", upto,
                 frozenset())


def _detach(chk: _Check, name: str, t, upto: int) -> None:
    from pygrad import Tensor
    d = chk.pygrad(t.detach, f"{name}.detach()", "detach()", upto, frozenset())
    ok = chk.pygrad(lambda: isinstance(d, Tensor) and d is not t and d.leaf and d._prev == () and d.dtype == t.dtype
                    and np.array_equal(d.value, t.value) and not np.any(d.grad)
                    and [id(x) for x in d.create_graph()[0]] == [id(d)], f"{name}.detach()'s graph", "detach()", upto,
                    frozenset())
    if not ok:
        chk.fail(f"{name}.detach() is not a new leaf holding the value outside any graph", name,
                 f"d = {name}.detach(); assert d.leaf and d._prev == () and np.array_equal(d.value, "
                 f"{name}.value) and d.create_graph() == ([d], [])", "detach() is a new leaf outside any graph", upto,
                 frozenset())


ATTRIBUTES = (_describes, _numpy, _item, _detach)
"""Each judged on every tensor in one part: one finding per kind of attribute."""


def _attributes(chk: _Check, env: dict, upto: int, stored: bool) -> None:
    """shape, dtype, ndim, size, len, numpy, item, detach of every tensor; when backward ran
    (`stored`), the root's topo and weights."""
    from pygrad import Tensor
    prog, parts = chk.prog, chk.parts
    tensors = [(name, env[name]) for name in prog.names if isinstance(env[name], Tensor)]
    for attribute in ATTRIBUTES:
        with parts.part():
            for name, t in tensors:
                attribute(chk, name, t, upto)
    if not stored:
        return
    root = env[prog.root]
    with parts.part() as made:
        graph = chk.pygrad(root.create_graph, f"{prog.root}.create_graph()", "create_graph()", upto,
                           frozenset())
    for k, what in enumerate(("topo", "weights")) if not made.failed else ():
        with parts.part():
            held = chk.pygrad(lambda: getattr(root, what), f"{prog.root}.{what}", what, upto, frozenset())
            if held is None or [id(x) for x in held] != [id(x) for x in graph[k]]:
                chk.fail(f"{prog.root}.{what} after backward() is not create_graph()'s {what} (backward stores "
                         "both)", f"{prog.root}.{what}", f"assert {prog.root}.{what} == {prog.root}.create_graph()"
                         f"[{k}]", f"backward stores {what}", upto, frozenset())


# ---------------------------------------------------------------------------- helpers between passes
def _change(chk: _Check, env: dict, changed: dict) -> tuple:
    """Apply each learnable input's mode and judge its value and gradient right after (two
    parts). Returns ({name: its gradient right after}, whether every input holds a value and
    a gradient of its dtype and shape, the value its helper set)."""
    prog, parts = chk.prog, chk.parts
    held, sound = {}, True
    for name, mode in learnable_modes(prog, chk.modes).items():
        t, upto, call = env[name], chk.upto[name], HELPERS[mode]
        dt = np.dtype(prog.input(name).dtype)
        v = np.asarray(changed[name], dtype=np.float64)
        conds = _mode_conditions(prog, name, mode)
        with parts.part() as applied:
            before = np.array(chk.pygrad(lambda: t.grad, f"{name}.grad", "grad", upto, conds))
            act = {"new_value": lambda: t.new_value(v), "assign": lambda: setattr(t, "value", v),
                   "reset": t.reset_grad, "set_grad": lambda: setattr(t, "grad", np.full(t.shape, GRAD))}.get(mode)
            if act is not None:
                chk.pygrad(act, f"{name}: {call}", call, upto, conds)
            got_value, got_grad = chk.pygrad(lambda: (np.array(t.value), np.array(t.grad)), f"{name} after {call}",
                                             "value, grad", upto, conds)
        if applied.failed:
            sound = False
            continue
        want_value = changed[name] if mode in ("new_value", "assign") else chk.values[name]
        want_grad = {"new_value": np.zeros(t.shape, dtype=dt), "reset": np.zeros(t.shape, dtype=dt),
                     "set_grad": np.full(t.shape, GRAD, dtype=dt)}.get(mode, before)
        with parts.part() as value:
            if not (got_value.dtype == dt and np.array_equal(got_value, want_value)):
                chk.fail(f"after {call} on {name}, its value is not what the contract says (value "
                         f"{'replaced' if mode in ('new_value', 'assign') else 'kept'}, in dtype {dt})",
                         f"{name} ({mode})", f"assert {name}.value.dtype == {dt.name} and np.array_equal({name}.value, "
                         f"{printer.array_literal(np.asarray(want_value, dtype=dt))})",
                         f"the value after {call}", upto, conds)
        grad_fits = got_grad.dtype == dt and got_grad.shape == t.shape
        with parts.part():
            if not (grad_fits and np.array_equal(got_grad, want_grad)):
                chk.fail(f"after {call} on {name}, its gradient is not what the contract says (gradient "
                         f"{'zero' if mode in ('new_value', 'reset') else 'G' if mode == 'set_grad' else 'kept'}, "
                         f"in dtype {dt})", f"{name} ({mode})", f"assert {name}.grad.dtype == {dt.name} and "
                         f"np.array_equal({name}.grad, {printer.array_literal(np.asarray(want_grad, dtype=dt))})",
                         f"the gradient after {call}", upto, conds)
        sound &= not value.failed and grad_fits
        held[name] = got_grad
    return held, sound


def _second_pass(chk: _Check, env: dict, held: dict, changed: dict, seed: int, out: Outcome) -> None:
    """The program again on the changed input tensors, backward(reset_grad=False): its
    values against torch, then every learnable input's gradient against what it held plus
    the new pass's (each in a part)."""
    prog, parts = chk.prog, chk.parts
    inputs = {i.name: env[i.name] for i in prog.inputs}
    second = Oracle(prog, changed, seed + 1)
    try:
        env2 = run_pygrad(prog, changed, dict(inputs))
        backward_pygrad(env2, prog.root, reset_grad=False)
    except PygradRaised as e:     # on changed tensors: the reproducer is the whole example
        raise chk.raised(e.exc, f"the second pass, at {e.where}", f"the second pass's {e.where}") from e
    with parts.part() as values:
        check_values(prog, changed, second, env2, out)
    for name, mode in learnable_modes(prog, chk.modes).items() if not values.failed else ():
        want = held[name].astype(np.float64) + second.grads(0)[name]     # what it held, plus the new pass
        dt = prog.input(name).dtype

        def tols(name=name, want=want, dt=dt):
            yield next(second.grad_tols(name)) + tolerance(want, dt)
            yield second.grad_tol(name) + tolerance(want, dt)
        with parts.part():
            problem, r, bound = judge(inputs[name].grad, want, dt, tols())
            out.note(TENSOR_ROW, r, bound)
            if problem:
                chk.fail(f"after {HELPERS[mode]} on {name}, a second pass with backward(reset_grad=False) must leave "
                         f"the gradient it held plus the new pass's: {problem}", f"{name}.grad",
                         printer.close_line(f"gradient of {name}", f"{name}.grad", dt, want, list(tols())[-1]),
                         "backward(reset_grad=False) adds to the held gradient", None,
                         _mode_conditions(prog, name, mode))


def check_tensor_api(prog: Program, values, seed: int, modes: tuple) -> Outcome:
    """See the module docstring. Returns the worst error/tolerance ratios; raises every
    distinct failure."""
    chk = _Check(prog, values, modes)
    parts, out = chk.parts, Outcome()
    n_first = len(prog.inputs) + len(prog.nodes) + 1        # statements up to the first backward()
    oracle = Oracle(prog, values, seed)
    env = _made_with_array(chk)
    found = len(parts.found)
    try:
        env = run_pygrad(prog, values, env)
    except PygradRaised as e:
        with parts.part():
            raise_error(prog, values, oracle, e, 1)
        return parts.settle(out)
    with parts.part() as first_values:
        check_values(prog, values, oracle, env, out)
    stored = True
    try:
        backward_pygrad(env, prog.root)
    except PygradRaised as e:
        stored = False
        with parts.part():
            raise_error(prog, values, oracle, e, 1)
    if stored:
        with parts.part():
            check_grads(prog, values, oracle, env, out, 0, 1, isolate=True, values_right=not first_values.failed)
    first_right = len(parts.found) == found
    _attributes(chk, env, n_first, stored)
    changed = new_values(prog, values, modes)
    held, sound = _change(chk, env, changed)
    if first_right and sound:
        with parts.part():
            _second_pass(chk, env, held, changed, seed, out)
    return parts.settle(out)
