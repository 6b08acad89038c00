"""Module: batched forward and backward passes without touching the model's own weights.

A subclass creates its layers, then calls `super().__init__(**example_inputs)`, which runs
`forward` once and records the weights that contributed (`self.weights`). Calling the
model runs `forward` on `self.copy`, a deepcopy of the model: backward fills the copy's
gradients, and the original weights change only when an optimizer steps (it finds the
copy's twins by `uid`, which deepcopy preserves). Weights are broadcast over the batch by
the ops, so any batch size works and no weight is ever resized.
"""
from __future__ import annotations

import copy as copymod
import copyreg
import threading
import types
from contextlib import contextmanager

import numpy as np

from pygrad.tensor import Tensor

_local = threading.local()   # how many Module forwards are running in this thread


@contextmanager
def _inside_forward():
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


_ATOMS = frozenset((int, float, bool, str, bytes, complex, type(None)))
_plain_classes: dict = {}


def _is_plain(cls) -> bool:
    """Is `cls` a class whose instances `copy.deepcopy` copies as "a new instance with a deep
    copy of `__dict__`" (no __slots__, no custom copy, pickle or state hooks)? Layers are."""
    plain = _plain_classes.get(cls)
    if plain is None:
        plain = _plain_classes[cls] = (
            type(cls) is type
            and not any("__slots__" in vars(c) for c in cls.__mro__[:-1])
            and copyreg.dispatch_table.get(cls) is None
            and all(getattr(cls, name, None) is getattr(object, name, None) for name in
                    ("__deepcopy__", "__reduce_ex__", "__reduce__", "__getstate__", "__setstate__",
                     "__getnewargs_ex__", "__getnewargs__", "__new__")))
    return plain


def _deepcopy(value, memo):
    """`copy.deepcopy(value, memo)`, without its generic machinery for what models are made of:
    atoms, Tensors, lists, and plain objects such as layers. Same result; anything else goes
    to `copy.deepcopy`."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    done = memo.get(id(value))
    if done is not None:
        return done
    if cls is Tensor:
        return value.__deepcopy__(memo)
    if cls is list:
        twin = memo[id(value)] = []
        twin.extend(_deepcopy(item, memo) for item in value)
    elif _is_plain(cls) and hasattr(value, "__dict__"):
        twin = memo[id(value)] = cls.__new__(cls)
        twin.__dict__.update({key: _deepcopy(item, memo) for key, item in value.__dict__.items()})
    else:
        return copymod.deepcopy(value, memo)
    memo.setdefault(id(memo), []).append(value)   # as copy.deepcopy: keep originals alive meanwhile
    return twin


def _outputs(out, who: str) -> list:
    items = out if isinstance(out, (tuple, list)) else (out,)
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise TypeError(f"{who}: forward must return a Tensor (or a tuple of Tensors), got {type(out).__name__}")
    return list(items)


class Module:
    """Base class of models. Subclasses define their layers, call
    `super().__init__(**example_inputs)` (keyword-only) and define `forward(**inputs)`.

    - `model(**inputs)`: `forward` on the batched copy `model.copy` (made on first call or
      after `model_reset()`); returns its output.
    - `model.weights`: the original weights, in graph order (give them to an optimizer).
    - `state_dict()` / `load_state_dict(state)`: the weights as plain NumPy arrays.

    A Module called inside another Module's forward runs its own `forward` directly: it is
    part of the outer model's copy."""

    def __init__(self, *args, **example_inputs):
        name = type(self).__name__
        if args:
            raise TypeError(f"{name}: example inputs are keyword-only: call "
                            f"super().__init__(x=...), not with {len(args)} positional argument(s)")
        self.copy = None
        with _inside_forward():
            outputs = _outputs(self.forward(**example_inputs), name)
        inputs = {id(v) for v in example_inputs.values() if isinstance(v, Tensor)}
        weights, seen = [], set()
        for out in outputs:
            for w in out.create_graph()[1]:
                if id(w) not in seen and id(w) not in inputs:   # an input is never a weight
                    seen.add(id(w))
                    weights.append(w)
        self.weights = weights

    def forward(self, **inputs):
        raise NotImplementedError(f"{type(self).__name__}: define forward(self, **inputs)")

    def __call__(self, *args, **inputs):
        name = type(self).__name__
        if args:
            raise TypeError(f"{name}: inputs are keyword-only: call model(x=...), "
                            f"not with {len(args)} positional argument(s)")
        if "weights" not in self.__dict__:
            raise TypeError(f"{name}: __init__ must end with super().__init__(**example_inputs)")
        if getattr(_local, "depth", 0):
            return self.forward(**inputs)
        if self.copy is None:
            self.copy = copymod.deepcopy(self)
            for w in self.copy.weights:
                w.reset_grad()
        with _inside_forward():
            return self.copy.forward(**inputs)

    def model_reset(self) -> None:
        """Drop the batched copy; the next call copies the current weights."""
        self.copy = None

    def __deepcopy__(self, memo):
        """Deep-copies every attribute except `copy` (the copy of a model has no copy)."""
        twin = type(self).__new__(type(self))
        memo[id(self)] = twin
        for key, value in self.__dict__.items():
            twin.__dict__[key] = None if key == "copy" else _deepcopy(value, memo)
        return twin

    # ------------------------------------------------------------------ weights by name
    def named_weights(self) -> list:
        """[(name, weight)] for `self.weights`, named by attribute path (e.g. "dense1.W");
        a weight not reachable through attributes is named "weights.<i>"."""
        wanted = {id(w) for w in self.weights}
        names = {}
        seen = set()

        def visit(obj, path):
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if isinstance(obj, Tensor):
                if id(obj) in wanted:
                    names.setdefault(id(obj), path)
            elif isinstance(obj, (list, tuple)):
                for i, item in enumerate(obj):
                    visit(item, f"{path}.{i}")
            elif isinstance(obj, dict):
                for key, item in obj.items():
                    visit(item, f"{path}.{key}")
            elif hasattr(obj, "__dict__") and not isinstance(
                    obj, (type, types.ModuleType, types.FunctionType, types.MethodType, np.ndarray)):
                skip = ("copy", "weights") if isinstance(obj, Module) else ()
                for key, item in vars(obj).items():
                    if key not in skip:
                        visit(item, f"{path}.{key}" if path else key)

        visit(self, "")
        return [(names.get(id(w), f"weights.{i}"), w) for i, w in enumerate(self.weights)]

    def state_dict(self) -> dict:
        """{name: copy of the weight's value}: plain arrays, `np.savez(path, **sd)`-able."""
        return {name: w.value.copy() for name, w in self.named_weights()}

    def load_state_dict(self, state) -> None:
        """Set every weight from `state` (a dict or `np.load(...)` of a `state_dict()`),
        zero its grad and drop the batched copy. Keys and shapes must match exactly."""
        cls = type(self).__name__
        named = self.named_weights()
        keys = set(state.keys())
        missing = [n for n, _ in named if n not in keys]
        unexpected = sorted(keys - {n for n, _ in named})
        if missing or unexpected:
            raise ValueError(f"{cls}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {}
        for n, w in named:
            arr = np.asarray(state[n])
            if arr.shape != w.shape:
                raise ValueError(f"{cls}.load_state_dict: {n!r} has shape {arr.shape}, the weight has {w.shape}")
            arrays[n] = arr
        for n, w in named:
            w.value = np.array(arrays[n], dtype=w.dtype)
            w.reset_grad()
        self.model_reset()
