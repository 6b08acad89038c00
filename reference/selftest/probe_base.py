"""What a probe case is made of (`probes` runs them): `Case`, `compare` and `side`."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    """A probe: `run(pg, torch, rng)` calls pygrad (the module `pg`) only inside `side()`
    blocks and returns its comparisons (`compare`). `rows` are the gate's report rows that
    exercise the same code (empty: no row does)."""
    name: str
    rows: tuple
    run: object


class PygradRaised(Exception):
    """pygrad raised inside a probe (an `error`, not a wrong value)."""


@contextmanager
def side():
    """Wrap the calls into pygrad: an exception there is pygrad's."""
    try:
        yield
    except PygradRaised:
        raise
    except Exception as e:  # noqa: BLE001 - any exception pygrad raises is the finding
        raise PygradRaised(f"{type(e).__name__}: {e}"[:300]) from e


@dataclass
class Comparison:
    what: str
    ok: bool
    detail: str = ""


def compare(what: str, got, want, rtol: float = 1e-7, atol: float = 1e-9) -> Comparison:
    """`got` (pygrad) against `want` (the oracle): same shape, and close where finite, with
    nan and inf in the same places."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as e:
        return Comparison(what, False, f"not an array of numbers: {e}")
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return Comparison(what, False, f"shape {got.shape}, expected {want.shape}")
    scale = max(1.0, float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)))
    close = np.isclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True)
    if close.all():
        return Comparison(what, True)
    i = tuple(int(k) for k in np.argwhere(~close)[0])
    return Comparison(what, False, f"at {i}: {got[i]!r}, expected {want[i]!r}")
