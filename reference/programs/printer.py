"""The one printer: values, programs and reproducers as plain, runnable pygrad code.

Every finding of every check ends as a ready-to-paste pytest file written by
`regression_test`: the imports the code needs, any top-level definitions (a Module class,
the registry's `pygrad.function` ops it calls),
the statements that ran, and assertions against the oracle's values with the suite's
tolerances (`close_line`). Values are printed so that they round-trip exactly.
"""
from __future__ import annotations

import hashlib
import re
from typing import Mapping

import numpy as np

from reference.registry.functions import definitions_for

HEADER = "import numpy as np\nfrom numpy import array, float32, float64, inf, nan, s_\n"

_CLOSE = '''

def _close(what, got, dtype, want, tol):
    got = np.asarray(got)
    assert got.shape == np.shape(want), f"{what}: shape {got.shape}, expected {np.shape(want)}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    err = np.abs(got.astype(float64) - want)
    assert np.all(err <= tol), f"{what}: max |error| {np.max(err):.3g} exceeds the tolerance"
'''


# ---------------------------------------------------------------------------- literals
def array_literal(a) -> str:
    """Exact Python source for an ndarray (float32 values are printed through float64,
    which represents them exactly)."""
    a = np.asarray(a)
    if a.dtype == np.bool_ or a.dtype.kind in "iu":
        body, dt = repr(a.tolist()), ""
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
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return repr(bool(v))
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


def tolerance_literal(t) -> str:
    """A tolerance rounded up to 3 significant digits (never tighter than the rule)."""
    def up(x):
        y = float(f"{x:.2e}")
        return y if y >= x else float(f"{x * 1.01:.2e}")
    t = np.asarray(t, dtype=np.float64)
    if t.size and np.all(t == t.reshape(-1)[0]):
        return repr(up(float(t.reshape(-1)[0])))
    return array_literal(np.vectorize(up, otypes=[np.float64])(t)) if t.size else "0.0"


# ---------------------------------------------------------------------------- programs
def _fmt(key, value) -> str:
    return subscript(value) if key == "idx" else literal(value)


def node_code(n) -> str:
    return f"{n.name} = " + n.spec.render(list(n.operands), n.args, _fmt)


def input_code(inp, value) -> str:
    if inp.role == "array":
        return f"{inp.name} = {array_literal(np.asarray(value, dtype=inp.dtype))}"
    extra = "" if inp.dtype == "float64" else f", dtype={inp.dtype}"
    if not inp.learnable:
        extra += ", learnable=False"
    extra += ", leaf=True" if inp.leaf else ""
    return f"{inp.name} = Tensor({array_literal(np.asarray(value, dtype=inp.dtype))}, label={inp.name!r}{extra})"


def program_code(prog, values: Mapping, backward: bool = True) -> str:
    """The program as plain pygrad statements."""
    lines = [input_code(i, values[i.name]) for i in prog.inputs]
    lines += [node_code(n) for n in prog.nodes]
    if backward:
        lines.append(f"{prog.root}.backward()")
    return "\n".join(lines)


def describe(prog, name: str) -> str:
    """`v3 = v1 * x2  [mul]` for a node, `x0 (input, shape (2, 3))` for an input."""
    if prog.is_input(name):
        inp = prog.input(name)
        return f"{name} ({inp.role}, shape {tuple(inp.shape)}, {inp.dtype})"
    n = prog.node(name)
    return f"{node_code(n)}  [{n.op}]"


def close_line(what: str, expr: str, dtype: str, want, tol) -> str:
    """An assertion of the reproducer: `expr` equals the oracle's `want` within `tol`."""
    return (f"_close({what!r}, {expr}, {dtype}, {array_literal(np.asarray(want, dtype=np.float64))}, "
            f"{tolerance_literal(tol)})")


# ---------------------------------------------------------------------------- regression tests
def _pygrad_names(code: str) -> list:
    import pygrad
    return sorted(n for n in pygrad.__all__ if n[0].isupper() and re.search(rf"\b{n}\b", code))


def regression_test(check: str, label: str, body: list, header: str = "", definitions: str = "") -> str:
    """A ready-to-paste pytest file: a docstring naming the check (and `header`), the imports
    the code uses, `definitions` (top level, e.g. a Module class), and a test function named
    after `label`, the check and a digest of `body` (its statements and assertions)."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in body):
        body = list(body) + ["pass"]   # comments alone are no function body
    digest = hashlib.sha1("\n".join(body).encode()).hexdigest()[:8]
    name = re.sub(r"\W", "_", f"test_{label}_{check}_{digest}")[:80]
    used = definitions_for(definitions + "\n".join(body))     # registry functions the code calls
    definitions = used + ("\n\n\n" if used and definitions else "") + definitions
    doc = f'"""Regression test written by the pygrad reference suite ({check} check).'
    doc += ("\n" + header.rstrip()) if header else ""
    doc += '"""\n'
    text = definitions + "\n".join(body)
    imports = HEADER + ("import pytest\n" if "pytest." in text else "") + \
        ("import pygrad\n" if re.search(r"\bpygrad\.", text) else "") + "\n"
    names = _pygrad_names(text)
    if names:
        imports += f"from pygrad import {', '.join(names)}\n"
    helper = _CLOSE if "_close(" in text else ""
    code = doc + imports + helper + ("\n\n" + definitions.rstrip() + "\n" if definitions else "")
    return code + f"\n\ndef {name}():\n" + "\n".join("    " + line for line in body) + "\n"
