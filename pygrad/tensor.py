"""The Tensor: a NumPy array that remembers how it was computed.

This module holds the engine: construction and validation of values, the graph walk
(`create_graph`) and the reverse pass (`backward`). Every operation lives in
`pygrad.ops`, each forward next to its backward rule; importing this module installs them
as Tensor methods.

Gradients are stored lazily: `_grad is None` means "zeros", so an op output costs no
allocation until a gradient actually reaches it. The engine never writes into a gradient
array in place, it rebinds (`t._grad = t._grad + g`), so gradient arrays may be shared
between tensors safely. The public `grad` hands out an array that only its tensor holds, so a
user's in-place write never reaches another tensor: an array that anything else refers to (a
gradient passed through unchanged, a view, a read-only seed) is copied on first read, while
the fresh array an op rule computed for this tensor alone is handed out as it is
(`pygrad._refs` tells the two apart).
"""
from __future__ import annotations

import copy as _copy
import itertools
import numbers

import numpy as np

from pygrad._refs import unshared
from pygrad.constants import PRECISION

_uids = itertools.count()


def _float_dtype(dtype) -> np.dtype:
    """`dtype` as a NumPy floating dtype, or TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"Tensor: dtype {dtype!r} is not a NumPy dtype") from exc
    if dt.kind != "f":
        raise TypeError(f"Tensor: dtype must be a floating type (float16/32/64, longdouble), got {dt}")
    return dt


def as_real_array(value, what: str = "Tensor: value") -> np.ndarray:
    """`value` as a real (bool, int or float) ndarray, or TypeError/ValueError naming `what`."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if value is None or isinstance(value, (str, bytes)):
            raise TypeError(f"{what} must be a real number, nested list or array, got {type(value).__name__}")
        if isinstance(value, numbers.Number) and not isinstance(value, numbers.Real):
            raise TypeError(f"{what} must be real, got {type(value).__name__} {value!r}")
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{what} is a ragged nested sequence (rows of different lengths)") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got an array of dtype {arr.dtype}")
    return arr


def _copy_array(a, memo):
    """`copy.deepcopy(a, memo)` for an ndarray of numbers (or anything else, through
    copy.deepcopy): a copy in the same memory order, shared by everything that shared `a`."""
    if type(a) is not np.ndarray or a.dtype.hasobject:
        return _copy.deepcopy(a, memo)
    done = memo.get(id(a))
    if done is None:
        done = memo[id(a)] = a.copy(order="K")
        memo.setdefault(id(memo), []).append(a)   # as copy.deepcopy: keep `a` alive meanwhile
    return done


class Tensor:
    """An n-dimensional array of floats with reverse-mode autodiff.

    Tensor(value, label="", dtype=PRECISION, learnable=True, leaf=False, _prev=())

    - `value`: number, nested list, real ndarray or Tensor (its value is copied, not its graph).
    - `learnable=False`: receives `.grad` but passes no gradient on, and is absent from `topo`.
    - `leaf=True`: not a weight (never in `weights`); inputs, targets and op results are leaves.
    """

    __slots__ = ("_value", "_grad", "_grad_own", "label", "learnable", "leaf", "_prev", "_backward",
                 "_topo", "_weights", "uid", "__weakref__")
    # Makes `ndarray <op> Tensor` call the Tensor's reflected operator instead of broadcasting
    # the Tensor as an object.
    __array_ufunc__ = None

    def __init__(self, value, label: str = "", dtype=PRECISION, learnable: bool = True,
                 leaf: bool = False, _prev: tuple = ()):
        dt = _float_dtype(dtype)
        if isinstance(value, Tensor):
            value = value._value
        self._value = np.array(as_real_array(value), dtype=dt)
        self._grad = None
        self._grad_own = False
        self.label = label
        self.learnable = learnable
        self.leaf = leaf
        self._prev = tuple(_prev)
        self._backward = None
        self._topo = self._weights = None
        self.uid = next(_uids)

    @classmethod
    def _result(cls, value, prev: tuple, backward) -> "Tensor":
        """Fast constructor for op outputs: no validation, no copy. `backward(g)` adds the
        output's gradient `g` into the gradients of `prev`."""
        out = cls.__new__(cls)
        out._value = value if type(value) is np.ndarray else np.asarray(value)
        out._grad = None
        out._grad_own = False
        out.label = ""
        out.learnable = True
        out.leaf = True
        out._prev = prev
        out._backward = backward
        out._topo = out._weights = None
        out.uid = None
        return out

    @classmethod
    def _constant(cls, value) -> "Tensor":
        """A non-Tensor operand recorded in `_prev` (learnable=False, leaf=True)."""
        out = cls._result(value, (), None)
        out.learnable = False
        return out

    # ----------------------------------------------------------------- attributes
    @property
    def value(self) -> np.ndarray:
        return self._value

    @value.setter
    def value(self, new):
        arr = as_real_array(new, "Tensor.value")
        self._value = arr if arr.dtype == self._value.dtype else arr.astype(self._value.dtype)

    @property
    def grad(self) -> np.ndarray:
        """Gradient of the last backward root w.r.t. this tensor; zeros until one arrives.

        An ndarray of the value's shape and dtype that no other tensor shares, so in-place
        writes (`x.grad[...] = 0`, `x.grad += g`) affect this tensor only, as in torch."""
        g, v = self._grad, self._value
        if g is None:
            g = self._grad = np.zeros_like(v)
        elif not self._grad_own and not (
                type(g) is np.ndarray and g.dtype == v.dtype and g.shape == v.shape
                and g.flags.writeable and unshared(g, 2)):   # held by self._grad and `g` only
            # the engine may share it (or hold a NumPy scalar or a read-only view): copy once
            g = self._grad = np.array(g, dtype=v.dtype)
        self._grad_own = True
        return g

    @grad.setter
    def grad(self, new):
        self._grad = np.array(new, dtype=self._value.dtype)
        self._grad_own = True

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        body = np.array2string(self._value, separator=", ", prefix="Tensor(")
        extra = f", label={self.label!r}" if self.label else ""
        if self._value.dtype != PRECISION:
            extra += f", dtype={self._value.dtype}"
        if not self.learnable:
            extra += ", learnable=False"
        if self.leaf:
            extra += ", leaf=True"
        return f"Tensor({body}{extra})"

    def item(self) -> float:
        return self._value.item()

    def numpy(self) -> np.ndarray:
        """The value array itself (no copy, like `torch.Tensor.numpy`)."""
        return self._value

    def __deepcopy__(self, memo) -> "Tensor":
        """What `copy.deepcopy` makes of the slots one by one, without its generic machinery
        for the common case of a weight (no graph): a Module copies its weights this way at
        every call after `model_reset()`."""
        out = Tensor.__new__(type(self))
        memo[id(self)] = out
        if (type(self) is Tensor and not self._prev and self._backward is None
                and self._topo is None and self._weights is None):
            out._value = _copy_array(self._value, memo)
            out._grad = None if self._grad is None else _copy_array(self._grad, memo)
            out._grad_own = self._grad_own
            out.label, out.learnable, out.leaf, out.uid = self.label, self.learnable, self.leaf, self.uid
            out._prev, out._backward, out._topo, out._weights = (), None, None, None
            return out
        for name in Tensor.__slots__:
            if name != "__weakref__" and hasattr(self, name):
                setattr(out, name, _copy.deepcopy(getattr(self, name), memo))
        if hasattr(self, "__dict__"):   # a subclass's own attributes
            out.__dict__.update(_copy.deepcopy(self.__dict__, memo))
        return out

    def detach(self) -> "Tensor":
        """A new leaf Tensor holding a copy of the value, outside any graph."""
        return Tensor(self._value, label=self.label, dtype=self._value.dtype, leaf=True)

    def reset_grad(self) -> None:
        """Zero this tensor's gradient."""
        self._grad = None

    def new_value(self, x) -> None:
        """Replace the value (same dtype), zero the gradient, keep the graph."""
        self.value = x
        self._grad = None

    def _add_grad(self, g: np.ndarray) -> None:
        self._grad = g if self._grad is None else self._grad + g
        self._grad_own = False

    # ----------------------------------------------------------------- graph
    # `topo` and `weights` (filled by backward) end with self when self belongs to them. They
    # are stored without that last entry and rebuilt on read, so a root does not hold a
    # reference to itself: a reference cycle would keep every graph (values, gradients,
    # closures) alive until Python's cycle collector happens to run.
    @property
    def topo(self):
        return self._with_self(self._topo)

    @topo.setter
    def topo(self, nodes):
        self._topo = self._without_self(nodes)

    @property
    def weights(self):
        return self._with_self(self._weights)

    @weights.setter
    def weights(self, nodes):
        self._weights = self._without_self(nodes)

    def _with_self(self, stored):
        if stored is None:
            return None
        nodes, had_self = stored
        return nodes + [self] if had_self else list(nodes)

    def _without_self(self, nodes):
        """(nodes without a trailing self, whether there was one), or None."""
        if nodes is None:
            return None
        nodes = list(nodes)
        had_self = bool(nodes) and nodes[-1] is self
        return (nodes[:-1] if had_self else nodes), had_self

    def _walk(self):
        """Post-order depth-first walk over `_prev`, left to right, iterative.

        Returns (topo, stops): `topo` are the learnable tensors (children before parents,
        self last); `stops` the non-learnable tensors met on the way (they receive
        gradients but are not descended into)."""
        topo, stops = [], []
        if not self.learnable:
            return topo, [self]
        seen = {self}
        stack = [(self, iter(self._prev))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child in seen:
                    continue
                seen.add(child)
                if child.learnable:
                    stack.append((child, iter(child._prev)))
                    break
                stops.append(child)
            else:
                stack.pop()
                topo.append(node)
        return topo, stops

    def create_graph(self) -> tuple[list, list]:
        """(topo, weights): every learnable tensor that contributed to self, in post-order,
        and the subset with `leaf=False`, in the same order."""
        topo, _ = self._walk()
        return topo, [t for t in topo if not t.leaf]

    def backward(self, reset_grad: bool = True) -> None:
        """Back-propagate from self, seeded with ones of self's shape.

        reset_grad=True zeroes every gradient in the graph first. reset_grad=False keeps
        them: each node's held gradient is added to by this pass and the sums flow on.
        The root's gradient is set to ones either way."""
        topo, stops = self._walk()
        self.topo = topo
        self.weights = [t for t in topo if not t.leaf]  # setters drop a trailing self
        if reset_grad:
            for t in topo:
                t._grad = None
            for t in stops:
                t._grad = None
        # a read-only broadcast view: rules never write into their incoming gradient, and
        # the `grad` getter copies it on first read
        self._grad = np.broadcast_to(np.ones((), dtype=self._value.dtype), self._value.shape)
        self._grad_own = False
        for t in reversed(topo):
            if t._backward is not None and t._grad is not None:
                t._backward(t._grad)


def array(*args, **kwargs) -> Tensor:
    """Same as `Tensor(*args, **kwargs)`."""
    return Tensor(*args, **kwargs)


# Installs every operation as a Tensor method (the op modules import Tensor from here).
from pygrad import ops as _ops  # noqa: E402,F401
