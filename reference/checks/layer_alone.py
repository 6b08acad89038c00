"""A layer alone, where a Module cannot show it: Dropout in training mode.

`Dropout(rate)(x, training=True)` must set exactly int(x.size * rate) entries to 0 and leave
the others exactly as they were (no rescaling), and the gradient must be the cotangent where
an entry was kept and 0 where it was dropped. The oracle is that definition; x has no zero
entries, so the dropped ones are the zeros of the output.
"""
from __future__ import annotations

import numpy as np

from reference.checks import Mismatch, Outcome, Parts, raised_in
from reference.programs import printer
from reference.registry import LAYERS
from reference.registry.layers import DropoutRun

__all__ = ["DropoutRun", "check_dropout", "dropout_script"]


def dropout_script(run: DropoutRun) -> list:
    """The run as plain pygrad statements."""
    x, w = run.arrays()
    dt = "" if run.dtype == "float64" else f", dtype={run.dtype}"
    return [f"np.random.seed({run.seed})", f"x = Tensor({printer.array_literal(x)}{dt})",
            f"out = Dropout(rate={run.rate!r})(x, training=True)",
            f"(out * Tensor({printer.array_literal(w)}{dt}, learnable=False, leaf=True)).sum().backward()"]


def check_dropout(case: DropoutRun) -> Outcome:
    from pygrad import Dropout, Tensor
    x, w = case.arrays()
    body = dropout_script(case)
    row = LAYERS["dropout"].row

    def fail(check, message, assertion, what):
        raise Mismatch(check, row, message, f"Dropout(rate={case.rate})(x, training=True)",
                       printer.regression_test(check, "dropout", body + [assertion]), {"training mode"}, what)
    state = np.random.get_state()
    np.random.seed(case.seed)
    try:
        xt = Tensor(x, dtype=case.dtype)
        out = Dropout(rate=case.rate)(xt, training=True)
        (out * Tensor(w, dtype=case.dtype, learnable=False, leaf=True)).sum().backward()
        value, grad = np.array(out.value), np.array(xt.grad)
    except Exception as exc:  # noqa: BLE001 - pygrad raised: a finding
        fail("error", f"Dropout in training mode raised {type(exc).__name__}: {exc}", "",
             raised_in("Dropout in training mode", exc))
    finally:
        np.random.set_state(state)
    parts = Parts()
    dropped = value == 0
    count = int(x.size * case.rate)
    with parts.part():
        if int(dropped.sum()) != count:
            fail("invariant", f"Dropout(rate={case.rate}) zeroed {int(dropped.sum())} of {x.size} entries, expected "
                 f"exactly int(size * rate) = {count}", f"assert int((out.value == 0).sum()) == {count}",
                 "Dropout's count of dropped entries")
    with parts.part():
        if not np.array_equal(value[~dropped], x[~dropped]):
            fail("value", "Dropout changed the entries it kept (it must not rescale them)",
                 "assert np.array_equal(out.value[out.value != 0], x.value[out.value != 0])", "Dropout")
    want = np.where(dropped, 0.0, w).astype(case.dtype)
    with parts.part():
        if not np.array_equal(grad, want):
            fail("grad", "the gradient of x is not the cotangent where kept and 0 where dropped",
                 "assert np.array_equal(x.grad, np.where(out.value == 0, 0.0, "
                 f"{printer.array_literal(w)}))", "Dropout")
    return parts.settle(Outcome())
