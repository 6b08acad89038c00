"""User-defined operations: a NumPy forward with its backward rule beside it.

    import numpy as np
    import pygrad

    @pygrad.function
    def softplus(x):                            # x: the operand's value, a read-only ndarray
        def backward(g):                        # g: the gradient arriving at the output
            return g * 0.5 * (1 + np.tanh(x / 2))   # the gradient of x: g * sigmoid(x)
        return np.logaddexp(0.0, x), backward   # the output's value, and its rule

    y = softplus(t)                             # a Tensor in t's graph, like t.tanh()

This is the shape of every built-in op (`pygrad.ops`): the forward computes the value and
defines, right below it, a closure `backward(g)` that sees what the forward saw. The rule
returns gradients instead of adding them into its operands: pygrad sums each over the
dimensions that broadcasting added (`ops._core.unbroadcast`, the rule the built-in ops use),
casts it to the operand's dtype and accumulates it, so the result takes part in
`create_graph`, `backward(reset_grad=...)`, `learnable=False` and Modules as a built-in op does.

- Positional arguments are the operands: Tensors, or numbers, lists and arrays (constants,
  as for `x + 1`: no gradient work is spent on them). The forward receives their values,
  a Tensor's as a read-only view (a forward must not write into its operands).
- Keyword arguments are parameters (`relu6(x, top=6.0)`), passed to the forward unchanged;
  a Tensor there would get no gradient, so it is refused.
- `backward(g)` returns one gradient per operand, in order (a single array for one operand);
  `None` means zero. Each has the operand's shape or a shape the operand broadcasts to (such
  as the output's). `g` is read-only: the engine shares gradient arrays between tensors.
"""
from __future__ import annotations

import functools

import numpy as np

from pygrad.ops._core import operand, result, unbroadcast
from pygrad.tensor import Tensor


def function(fn) -> "Function":
    """Make an operation out of `fn(*values, **params) -> (value, backward)`; see the module
    docstring. Use it as a decorator: `@pygrad.function`."""
    if not callable(fn):
        raise TypeError(f"pygrad.function: expected a function returning (value, backward), "
                        f"got {type(fn).__name__}")
    return Function(fn)


class Function:
    """An operation defined by the user (made by `pygrad.function`); call it like a function
    of Tensors. `name` is the wrapped function's name, used in error messages."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<pygrad.function {self.name}>"

    def __call__(self, *operands, **params) -> Tensor:
        name = self.name
        for key, p in params.items():
            if isinstance(p, Tensor):
                raise TypeError(f"{name}: keyword argument {key!r} is a Tensor, which would get no gradient; "
                                "pass Tensors positionally (positional arguments are the operands)")
        tensors, values, needs = [], [], []
        for x in operands:
            needs.append(isinstance(x, Tensor))
            t, raw = operand(x, name)
            if needs[-1]:
                raw = raw.view()
                raw.flags.writeable = False
            tensors.append(t)
            values.append(raw)
        out = self.fn(*values, **params)
        if not (isinstance(out, tuple) and len(out) == 2 and callable(out[1])):
            raise TypeError(f"{name}: the forward must return (value, backward) with backward(g) a function, "
                            f"got {_describe(out)}")
        value, rule = out
        value = _as_value(value, name)
        shapes = [np.shape(v) for v in values]

        def backward(g):
            g = np.asarray(g).view()
            g.flags.writeable = False
            grads = _gradients(rule(g), len(values), name)
            for i, (t, v, need, gi) in enumerate(zip(tensors, values, needs, grads)):
                if need and gi is not None:
                    gi = np.asarray(gi)
                    if gi.dtype.kind not in "biuf":
                        raise TypeError(f"{name}: backward returned a gradient of dtype {gi.dtype} for operand {i}; "
                                        "gradients are real arrays")
                    _check_shape(gi.shape, shapes[i], value.shape, i, name)
                    t._add_grad(unbroadcast(gi, v))
        return result(value, tuple(tensors), backward)


def _describe(out) -> str:
    if isinstance(out, tuple):
        return f"a tuple of {len(out)} item(s) ({', '.join(type(o).__name__ for o in out)})"
    return type(out).__name__


def _as_value(value, name: str) -> np.ndarray:
    """The forward's value as a floating ndarray the output owns (a writable array, so an
    operand's read-only view returned as is gets copied), or TypeError naming the op."""
    if isinstance(value, Tensor):
        raise TypeError(f"{name}: the forward must compute its value with NumPy and return an array, "
                        "not a Tensor (a Tensor there would have no backward rule)")
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: the forward returned a value of dtype {arr.dtype}; an op's value must be "
                        "a floating array (e.g. np.asarray(v, dtype=x.dtype))")
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr


def _gradients(grads, n: int, name: str) -> tuple:
    """The rule's return value as one entry per operand."""
    if n == 1 and not isinstance(grads, (tuple, list)):
        return (grads,)
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        got = f"{len(grads)} gradient(s)" if isinstance(grads, (tuple, list)) else f"a {type(grads).__name__}"
        raise ValueError(f"{name}: backward must return one gradient per operand ({n}, in order; None for "
                         f"none), got {got}")
    return tuple(grads)


def _check_shape(got: tuple, shape: tuple, out_shape: tuple, i: int, name: str) -> None:
    """A gradient must have the operand's shape or one the operand broadcasts to."""
    try:
        ok = np.broadcast_shapes(got, shape) == got
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: backward returned a gradient of shape {got} for operand {i} of shape {shape}; "
                         f"return the operand's shape or a shape it broadcasts to, such as the output's "
                         f"{out_shape} (pygrad sums the broadcast dimensions)")
