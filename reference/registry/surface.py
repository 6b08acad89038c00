"""pygrad's public surface, and the rows that exercise each of its callables.

The surface is found by introspection (`public_surface()`), as PyTorch checks that every
public op has an OpInfo: every name in `pygrad.__all__`, and for each public class (a class
of pygrad's own in `__all__`) every public method, property and operator it has -- its own
or inherited from a pygrad class -- with a property that can be assigned listed twice
(`Tensor.value` read, `Tensor.value=` assigned). Constructing a class is the class's own
entry (`Linear`); Python's plumbing (`__init__`, `__dict__`, `__doc__`, ...) is not surface.

What exercises it is derived from the registry's tables, never listed apart from them
(`reached()`: surface name -> rows):

- a Tensor operation: `COVERS` (from each entry's template); a reflected entry whose samples
  put an ndarray on the left also exercises `Tensor.__array_ufunc__` (the dispatch to the
  reflected operator);
- an op made with `pygrad.function` (`registry.functions`): `function`, `Function` and its
  call;
- a loss class, a layer, an optimizer: its class (from the entry's template or `cls`) and
  its call, or the optimizer methods the training check calls (`TRAINING_CALLS`), with the
  Tensor attributes an optimizer reads (`TRAINING_SURFACE`);
- the Module, engine and tensor rows: their tables' `*_SURFACE` (the engine's per check kind
  of its samples, the tensor row's per helper mode of its samples).

`NOT_COMPUTATIONS` lists, with reasons, what no row needs to reach because it computes
nothing (shown by `pygrad-check --list`); `unreached()` is the rest of the surface that no
row declares: `tests/test_suite_surface.py` requires it empty, and checks by tracing the
coverage pass that every row really calls what it declares.
"""
from __future__ import annotations

import inspect

import numpy as np

from reference.registry.engine_row import ENGINE_ROW, ENGINE_SAMPLES, ENGINE_SURFACE
from reference.registry.functions import FUNCTION_OPS
from reference.registry.layers import LAYERS
from reference.registry.losses import LOSS_OPS
from reference.registry.module_row import MODULE_ROW, MODULE_SURFACE
from reference.registry.ops import COVERS, OPS
from reference.registry.optimizers import OPTIMIZERS, TRAINING_CALLS, TRAINING_SURFACE
from reference.registry.tensor_row import MODE_SURFACE, TENSOR_ROW, TENSOR_SAMPLES, TENSOR_SURFACE

PLUMBING = frozenset({"__init__", "__module__", "__doc__", "__dict__", "__weakref__", "__slots__", "__annotations__",
                      "__qualname__", "__firstlineno__", "__static_attributes__", "__orig_bases__", "__parameters__"})
"""Class attributes every Python class has: not pygrad's surface."""

NOT_COMPUTATIONS = {
    "__version__": "the package's version string; nothing computes with it",
    "PRECISION": "a constant (np.float64), not a callable: the default dtype, with which every row's float64 "
                 "Tensors are made",
    "*.__repr__": "text for people; no computation reads it",
    "Tensor.label": "a name for people (repr, reproducers); no computation reads it",
    "Module.forward": "abstract: each Module subclass defines it (the Module row's models do); the base only "
                      "raises NotImplementedError naming the class",
}
"""Public names that are not computations, with why no row must exercise them; `*.name`
stands for that attribute of every class."""


def public_classes() -> dict:
    """name -> class, for the classes of pygrad's own in `pygrad.__all__`."""
    import pygrad
    out = {}
    for name in pygrad.__all__:
        obj = getattr(pygrad, name)
        if inspect.isclass(obj) and obj.__module__.split(".")[0] == "pygrad":
            out[name] = obj
    return out


def _is_public(attr: str) -> bool:
    return attr not in PLUMBING and (not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")))


def members(cls) -> dict:
    """attr -> the defining class's object, for the public attributes of `cls` (its own and
    those inherited from pygrad's classes)."""
    out = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.split(".")[0] == "pygrad":
            out.update({k: v for k, v in vars(klass).items() if _is_public(k)})
    return out


def public_surface() -> list:
    """Every public name of pygrad, in order: `pygrad.__all__`, then `Class.attr` (and
    `Class.attr=` for an assignable property) for each public class."""
    import pygrad
    out = list(pygrad.__all__)
    for cname, cls in public_classes().items():
        for attr, obj in members(cls).items():
            out.append(f"{cname}.{attr}")
            if isinstance(obj, property) and obj.fset is not None:
                out.append(f"{cname}.{attr}=")
    return out


def _class_of(code: str) -> str:
    """The class a template constructs: `CCELoss()(...)` -> CCELoss, `SGD({params}, ...)` -> SGD."""
    return code.split("(", 1)[0]


def reached() -> dict:
    """surface name -> the rows that exercise it, from the registry's tables."""
    out: dict = {}

    def add(name: str, *rows: str) -> None:
        out.setdefault(name, set()).update(rows)
    for method, entries in COVERS.items():
        add(f"Tensor.{method}", *(OPS[e].row for e in entries))
    for spec in OPS.values():
        if spec.reflected and any(isinstance(s.args.get("const"), np.ndarray) for s in spec.all_samples()):
            add("Tensor.__array_ufunc__", spec.row)
    for spec in FUNCTION_OPS.values():
        for name in ("function", "Function", "Function.__call__"):
            add(name, spec.row)
    for spec in LOSS_OPS.values():
        cls = _class_of(spec.code)
        add(cls, spec.row)
        add(f"{cls}.__call__", spec.row)
    for spec in LAYERS.values():
        add(spec.cls, spec.row)
        add(f"{spec.cls}.__call__", spec.row)
    for spec in OPTIMIZERS.values():
        cls = _class_of(spec.code)
        add(cls, spec.row)
        for method in TRAINING_CALLS:
            add(f"{cls}.{method}", spec.row)
        for name in TRAINING_SURFACE:
            add(name, spec.row)
    for name in MODULE_SURFACE:
        add(name, MODULE_ROW)
    for sample in ENGINE_SAMPLES:   # the deep graph among them
        key = "deep graph" if sample.graph == "deep" else sample.check if sample.passes == 1 else "passes"
        for name in ENGINE_SURFACE[key]:
            add(name, ENGINE_ROW)
    for name in TENSOR_SURFACE + tuple(MODE_SURFACE[m] for s in TENSOR_SAMPLES for m in s.modes if m in MODE_SURFACE):
        add(name, TENSOR_ROW)
    return out


def not_a_computation(name: str) -> str | None:
    """The reason `name` needs no row, or None."""
    if name in NOT_COMPUTATIONS:
        return NOT_COMPUTATIONS[name]
    attr = name.split(".", 1)[-1] if "." in name else None
    return NOT_COMPUTATIONS.get(f"*.{attr}") if attr else None


def unreached() -> list:
    """The public names that are computations no row exercises (must be empty)."""
    declared = reached()
    return [name for name in public_surface() if name not in declared and not_a_computation(name) is None]


def undeclared_by_pygrad() -> list:
    """Declarations naming something pygrad does not have (a stale entry, or a typo)."""
    surface = set(public_surface())
    return sorted(name for name in reached() if name not in surface)
