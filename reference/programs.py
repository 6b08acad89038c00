"""Programs: a DAG of registry ops over named inputs, its interpreters and its printer.

A `Program` is plain data: inputs (name, shape, flags), op nodes (name, op, operand names,
arguments) in execution order, and the name of the scalar root. Values live outside it, in
a dict from input name to ndarray, so strategies can draw structure first and values last.

Every program ends in a loss built from ordinary nodes: each sink `s` (a node nobody
consumes) is multiplied by a constant cotangent input `w` (`learnable=False`) and summed,
and the sums are added. A random cotangent matters: with a ones cotangent the gradient of
softmax is exactly 0 and a transposed rule can go unseen.

- `run_pygrad` executes a program with pygrad Tensors; `run_numpy` with the registry's
  NumPy forward references (the finite-difference oracle); the torch interpreter lives in
  `reference.oracles`.
- `program_code` prints a program as plain, runnable pygrad code (`exec` it to get the same
  tensors back); `literal` prints values so that they round-trip exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from reference.registry import OPS

# Names available to printed code (the header every reproducer starts with).
CODE_HEADER = ("import numpy as np\n"
               "from numpy import array, float32, float64, inf, nan, s_\n\n"
               "from pygrad import Tensor\n")


@dataclass(frozen=True)
class Input:
    name: str
    shape: tuple
    domain: str = "real"        # what the values were drawn from: real | pos | nonzero
    leaf: bool = True           # False: a weight (appears in `weights`)
    learnable: bool = True      # False: a constant (the loss cotangents)

    @property
    def cotangent(self) -> bool:
        return not self.learnable


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    operands: tuple
    args: Mapping = field(default_factory=dict)

    @property
    def spec(self):
        return OPS[self.op]


@dataclass(frozen=True)
class Program:
    dtype: str
    inputs: tuple
    nodes: tuple
    root: str

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def names(self) -> list:
        return [i.name for i in self.inputs] + [n.name for n in self.nodes]

    def consumers(self, name: str) -> list:
        return [n for n in self.nodes if name in n.operands]

    def ops(self) -> list:
        return [n.op for n in self.nodes if not n.name.startswith("L")]

    def body_nodes(self) -> list:
        """The nodes before the loss (what the strategies drew)."""
        return [n for n in self.nodes if not n.name.startswith("L")]

    def learnable_inputs(self) -> list:
        return [i for i in self.inputs if i.learnable]


def out_shape(op: str, shapes: list, args: Mapping) -> tuple:
    """The shape of `op` applied to operands of `shapes` (NumPy forward on ones)."""
    spec = OPS[op]
    with np.errstate(all="ignore"):
        return np.shape(spec.numpy(*[np.ones(s) for s in shapes], **spec.all_args(args)))


def shapes_of(prog: Program) -> dict:
    shapes = {i.name: tuple(i.shape) for i in prog.inputs}
    for n in prog.nodes:
        shapes[n.name] = out_shape(n.op, [shapes[o] for o in n.operands], n.args)
    return shapes


def with_loss(dtype: str, inputs: list, nodes: list, rng_shapes: Mapping | None = None) -> tuple:
    """Append the loss to a program body: for every sink s, a cotangent input `w` and nodes
    `s * w` and `.sum()`; the sums are added. Returns (Program, names of the cotangents).

    Loss nodes are named `L<k>` and cotangents `w<k>`, so the printer and the reports can
    tell them from the body."""
    body = Program(dtype, tuple(inputs), tuple(nodes), root="")
    shapes = shapes_of(body)
    used = {o for n in nodes for o in n.operands}
    sinks = [n.name for n in nodes if n.name not in used] or [inputs[-1].name]
    inputs, nodes, cots = list(inputs), list(nodes), []
    sums = []
    for k, s in enumerate(sinks):
        w = Input(f"w{k}", shapes[s], learnable=False)
        inputs.append(w)
        cots.append(w.name)
        nodes.append(Node(f"L{2 * k}", "mul", (s, w.name)))
        nodes.append(Node(f"L{2 * k + 1}", "sum", (f"L{2 * k}",)))
        sums.append(f"L{2 * k + 1}")
    total = sums[0]
    for j, s in enumerate(sums[1:]):
        nodes.append(Node(f"L{2 * len(sinks) + j}", "add", (total, s)))
        total = nodes[-1].name
    return Program(dtype, tuple(inputs), tuple(nodes), root=total), cots


# ---------------------------------------------------------------------------- interpreters
class PygradRaised(Exception):
    """pygrad raised while running a node (forward) or the backward pass."""

    def __init__(self, where: str, exc: BaseException):
        super().__init__(f"{where}: {type(exc).__name__}: {exc}")
        self.where, self.exc = where, exc


def make_inputs(prog: Program, values: Mapping) -> dict:
    from pygrad import Tensor
    return {i.name: Tensor(values[i.name], label=i.name, dtype=prog.dtype, learnable=i.learnable,
                           leaf=i.leaf) for i in prog.inputs}


def run_pygrad(prog: Program, values: Mapping, env: dict | None = None) -> dict:
    """name -> Tensor for every input and node (forward only)."""
    env = make_inputs(prog, values) if env is None else env
    for n in prog.nodes:
        try:
            env[n.name] = n.spec.call(*[env[o] for o in n.operands], **n.args)
        except Exception as exc:  # noqa: BLE001 - reported as a check failure
            raise PygradRaised(n.name, exc) from exc
    return env


def backward_pygrad(env: dict, root: str, reset_grad: bool = True) -> None:
    try:
        if reset_grad:
            env[root].backward()
        else:
            env[root].backward(reset_grad=False)
    except Exception as exc:  # noqa: BLE001
        raise PygradRaised("backward", exc) from exc


def run_numpy(prog: Program, values: Mapping, with_kinks: bool = False):
    """Float64 forward with the registry's NumPy references.

    Returns name -> ndarray, and with `with_kinks` also node name -> the op's kinks."""
    env = {i.name: np.asarray(values[i.name], dtype=np.float64) for i in prog.inputs}
    kinks = {}
    with np.errstate(all="ignore"):
        for n in prog.nodes:
            spec, args = n.spec, n.spec.all_args(n.args)
            ops = [env[o] for o in n.operands]
            if with_kinks:
                kinks[n.name] = spec.kinks(ops, args)
            env[n.name] = np.asarray(spec.numpy(*ops, **args), dtype=np.float64)
    return (env, kinks) if with_kinks else env


# ---------------------------------------------------------------------------- printer
def array_literal(a) -> str:
    """Exact Python source for an ndarray (float32 values are printed through float64,
    which represents them exactly)."""
    a = np.asarray(a)
    if a.dtype == np.bool_ or a.dtype.kind in "iu":
        body = repr(a.tolist())
        dt = ""
    else:
        body = repr(a.astype(np.float64).tolist())
        dt = "" if a.dtype == np.float64 else f", dtype={a.dtype.name}"
    text = f"array({body}{dt})"
    if a.size == 0 and a.ndim != 1:
        text += f".reshape({a.shape!r})"
    return text


def _sub(item) -> str:
    """One entry of a subscript."""
    if isinstance(item, slice):
        parts = ["" if v is None else repr(int(v)) for v in (item.start, item.stop, item.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if item.step is not None else "")
    if item is Ellipsis:
        return "..."
    return literal(item)


def subscript(idx) -> str:
    """`idx` written as what goes between brackets."""
    if isinstance(idx, tuple):
        if len(idx) == 0:
            return "()"
        if len(idx) == 1:
            return _sub(idx[0]) + ","
        return ", ".join(_sub(i) for i in idx)
    return _sub(idx)


def literal(v) -> str:
    """Python source for an op argument."""
    if isinstance(v, np.ndarray):
        return array_literal(v)
    if isinstance(v, (bool, np.bool_)) or v is None:
        return repr(bool(v)) if v is not None else "None"
    if isinstance(v, (int, np.integer)):
        return repr(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return repr(f) if np.isfinite(f) else ("inf" if f > 0 else "-inf" if f < 0 else "nan")
    if isinstance(v, slice) or v is Ellipsis:
        return f"s_[{_sub(v)}]"
    if isinstance(v, (tuple, list)):
        if any(isinstance(i, slice) or i is Ellipsis for i in v):
            return f"s_[{subscript(tuple(v))}]"
        items = [literal(i) for i in v]
        if isinstance(v, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"cannot print argument {v!r}")


def _fmt(key, value) -> str:
    return subscript(value) if key == "idx" else literal(value)


def node_code(n: Node) -> str:
    return f"{n.name} = " + n.spec.render(list(n.operands), n.args, _fmt)


def input_code(prog: Program, inp: Input, value) -> str:
    extra = "" if prog.dtype == "float64" else f", dtype={prog.dtype}"
    if not inp.learnable:
        extra += ", learnable=False"
    extra += ", leaf=True" if inp.leaf else ""
    return f"{inp.name} = Tensor({array_literal(np.asarray(value, dtype=prog.dtype))}, " \
           f"label={inp.name!r}{extra})"


def program_code(prog: Program, values: Mapping, backward: bool = True) -> str:
    """The program as plain pygrad statements (after `CODE_HEADER`)."""
    lines = [input_code(prog, i, values[i.name]) for i in prog.inputs]
    lines += [node_code(n) for n in prog.nodes]
    if backward:
        lines.append(f"{prog.root}.backward()")
    return "\n".join(lines)


def describe(prog: Program, name: str) -> str:
    """`v3 = v1 * x2  [mul]` for a node, `x0 (input, shape (2, 3))` for an input."""
    if any(i.name == name for i in prog.inputs):
        inp = prog.input(name)
        kind = "cotangent" if inp.cotangent else "input"
        return f"{name} ({kind}, shape {tuple(inp.shape)})"
    n = prog.node(name)
    return f"{node_code(n)}  [{n.op}]"
