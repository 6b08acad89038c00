"""The oracle of one example: PyTorch's exact answer and the tolerances of the one rule every
check applies, never widened per test (`reference.numerics.tolerance`).

For every compared tensor T (a node's value, or any tensor's gradient), elementwise:

    |T_pygrad - T_torch| <= SAFETY * (spread(T) + u * |T_torch| + tiny)

- `T_torch` is the exact (float64) PyTorch run on the same inputs;
- `spread(T)` is the largest deviation of T over `RUNS` perturbed PyTorch runs, in which
  every op is disturbed by its own rounding-error model from the registry (see
  `reference.oracles.torch_run`): it is the conditioning of this very example -- how much rounding the
  program amplifies before it reaches T;
- `u` is the unit roundoff of T's dtype (2**-53 float64, 2**-24 float32), `tiny` its
  smallest normal number; SAFETY = 16.

The perturbed runs cost four more torch runs. Since spread >= 0, the bound with spread = 0
is a sound lower bound of the tolerance: an error within it passes whatever the spread, so
`Oracle` runs the perturbed runs only when some element exceeds that floor. Likewise the
spread is a maximum over runs, so the spread over the first r runs is a lower bound of the
full one: the runs are made one at a time, the next only when the comparison fails under
those made so far. A failure is judged only under all RUNS runs (their kink classification
included), so the verdicts are those of the full rule; a pass may be decided earlier, and a
row's "err/tol" is then measured against a lower bound: an upper bound of the ratio.

Infinities are judged by equality (pygrad must give the same one; the perturbed runs must
too). Examples the oracles cannot judge raise `InvalidExample` (the strategies draw another):
a NaN value or gradient; a finite one beyond half its dtype's largest number (the float64
oracle cannot follow a narrower dtype's overflow, nor rounding a value at the range's edge);
an op that forms larger intermediates than its results (`OpSpec.overflow_inside`: partial
sums, squares, products) with an operand beyond twice its overflow scale, where its error
model ends; and -- when the perturbed runs are needed -- values that a rounding-size
perturbation makes non-finite, kinks that sit within the rounding noise of their input
(0 < |s| <= SAFETY * spread(s)), where two correct implementations may take different
branches, or that a perturbed run crosses. Underflow is part of the error model (an absolute
error of u * tiny wherever an op rounds, `oracles.torch_run`), not a reason to reject.
"""
from __future__ import annotations

import numpy as np

from reference.numerics import MAX_MAGNITUDE, RUNS, SAFETY, lower_bound, tiny, tolerance
from reference.registry.regimes import regime_dtype
from reference.oracles import torch_run
from reference.programs.graph import Program


JUDGED = 0.5   # the fraction of a dtype's range in which the oracle judges results (see validate)


class InvalidExample(Exception):
    """The example is outside what the oracles can judge; draw another one."""


class Oracle:
    """PyTorch's answer for one program on one set of inputs, with tolerances.

    The exact float64 run happens at once (and validates the example); the `RUNS` perturbed
    runs and the kink classification only when a comparison needs more than the floor."""

    def __init__(self, prog: Program, values, seed: int, passes: int = 1, stops=()):
        self.prog, self.values_in, self.seed, self.passes, self.stops = prog, values, seed, passes, stops
        with np.errstate(all="ignore"):
            self.ref = torch_run.run_torch(prog, values, backward_passes=passes, stops=stops)
        validate(prog, self.ref)
        self._spread = None
        self._noise, self._runs, self._partial, self._classified = None, [], {}, 0

    @property
    def values(self) -> dict:
        return self.ref.values

    def grads(self, p: int = 0) -> dict:
        return self.ref.history[p]

    # ------------------------------------------------------------------ tolerances
    def value_tols(self, name: str):
        """The tolerances of node `name`'s value, cheapest first: the floor, the spread over
        the first 1 .. RUNS-1 perturbed runs (lower bounds), the full one."""
        dtype = self.prog.dtype(name)
        exact = self.values[name]
        yield tolerance(exact, dtype)
        for r in range(1, RUNS):
            yield lower_bound(tolerance(exact, dtype, self._partial_spread(r, None, name)))
        yield tolerance(exact, dtype, self.spreads()["values"][name])

    def grad_tols(self, name: str, p: int = 0):
        dtype = self.prog.dtype(name)
        exact = self.grads(p)[name]
        yield tolerance(exact, dtype)
        for r in range(1, RUNS):
            yield lower_bound(tolerance(exact, dtype, self._partial_spread(r, p, name)))
        yield tolerance(exact, dtype, self.spreads()["grads"][p][name])

    def value_tol(self, name: str) -> np.ndarray:
        return list(self.value_tols(name))[-1]

    def grad_tol(self, name: str, p: int = 0) -> np.ndarray:
        return list(self.grad_tols(name, p))[-1]

    def loss_spread(self) -> float:
        return self.spreads()["loss"]

    def _perturbed(self, r: int) -> list:
        """The first `r` perturbed runs, made on first need and always in the same order from
        one noise stream: the runs are the same whichever `r` is asked first."""
        if self._noise is None:
            self._noise = torch_run.Noise(np.random.default_rng(self.seed), frozenset(self.prog.dtypes))
        while len(self._runs) < r:
            with np.errstate(all="ignore"):
                self._runs.append(torch_run.run_torch(self.prog, self.values_in, self._noise,
                                                      backward_passes=self.passes, stops=self.stops))
        return self._runs[:r]

    def _spread_of(self, runs: list, get, name) -> np.ndarray:
        exact = get(self.ref)[name]
        s = np.zeros_like(exact)
        for r in runs:
            got = get(r)[name]
            s = np.maximum(s, np.where(np.isinf(exact) & (got == exact), 0.0, self._noise.scale * np.abs(got - exact)))
        if not np.all(np.isfinite(s)):
            raise InvalidExample(f"a rounding-size perturbation makes {name} non-finite")
        return s

    def _partial_spread(self, r: int, p: int | None, name: str) -> np.ndarray:
        """The spread of one value (p None) or gradient (pass p) over the first r runs: a
        lower bound of the full spread. A kink those runs already place within noise, or
        cross, makes the example invalid, as the full classification would."""
        key = (r, p, name)
        if key not in self._partial:
            runs = self._perturbed(r)
            if self._classified < r:
                classify_kinks(self.prog, self.ref, runs, self._noise.scale)
                self._classified = r
            self._partial[key] = self._spread_of(runs, (lambda x: x.values) if p is None else
                                                 (lambda x, p=p: x.history[p]), name)
        return self._partial[key]

    def spreads(self) -> dict:
        """How far `RUNS` perturbed runs move every value and gradient (scaled to the
        program's unit roundoff): {"values": {name: array}, "grads": [{name: array}, ...],
        "loss": float}. Computed once, on first need (with the kink classification and the
        finiteness of every spread, as one judgement of the example)."""
        if self._spread is None:
            prog = self.prog
            runs = self._perturbed(RUNS)
            classify_kinks(prog, self.ref, runs, self._noise.scale)
            self._spread = {
                "values": {n: self._spread_of(runs, lambda r: r.values, n) for n in prog.names},
                "grads": [{n: self._spread_of(runs, lambda r, p=p: r.history[p], n) for n in prog.names}
                          for p in range(self.passes)],
                "loss": max(self._noise.scale * abs(float(r.values[prog.root]) - float(self.values[prog.root]))
                            for r in runs)}
        return self._spread


def validate(prog: Program, ref, underflow: bool = False) -> None:
    """InvalidExample unless the oracle can judge every value and gradient of the exact run
    (see the module docstring). `underflow`: also reject what a trajectory's perturbed runs
    cannot follow (the training check, whose noise model has no underflow term): values
    beyond MAX_MAGNITUDE or below 1e6 tiny."""
    for kind, table in [("value", ref.values)] + [("gradient", h) for h in ref.history]:
        for name, a in table.items():
            m = np.abs(a)
            top = float(np.max(m, initial=0.0))
            if top != top:
                raise InvalidExample(f"torch's {kind} of {name} is NaN")
            dtype = prog.dtype(name)
            limit = float(np.finfo(dtype).max) * JUDGED
            if top > limit and np.any(np.isfinite(m) & (m > limit)):
                raise InvalidExample(f"torch's {kind} of {name} is beyond the range of {dtype}")
            if underflow and (top > MAX_MAGNITUDE or np.any((m > 0) & (m < 1e6 * tiny(dtype)))):
                raise InvalidExample(f"torch's {kind} of {name} is outside what a trajectory can judge")
    for n in prog.nodes:
        spec = n.spec
        if spec.overflow_inside and spec.overflow is not None:
            shapes = [prog.shape(o) for o in n.operands]
            s = spec.overflow(regime_dtype([prog.dtype(o) for o in n.operands]), spec.all_args(n.args), shapes,
                              headroom=JUDGED)
            top = max(float(np.max(np.abs(ref.values[o]), initial=0.0)) for o in n.operands)
            if top > 2 * s * (1 + 2 ** -20):
                raise InvalidExample(f"an operand of {n.name} ({n.op}) is beyond its overflow scale")


def classify_kinks(prog: Program, ref, runs, scale: float) -> None:
    """InvalidExample if a kink sits within the rounding noise of its input or a perturbed
    run crosses it (exact kink points, where torch defines the derivative, are fine)."""
    for name, kinks in ref.kinks.items():
        for j, (s0, exact) in enumerate(kinks):
            s0 = np.asarray(s0, dtype=np.float64)
            exact = np.asarray(exact, dtype=bool) & (s0 == 0)
            spread, crossed = np.zeros_like(s0), np.zeros(s0.shape, dtype=bool)
            for r in runs:
                sk = np.asarray(r.kinks[name][j][0], dtype=np.float64)
                spread = np.maximum(spread, scale * np.abs(sk - s0))
                crossed |= np.sign(sk) != np.sign(s0)
            exact &= spread == 0
            if np.any(~exact & ((s0 == 0) | (np.abs(s0) <= SAFETY * spread))):
                raise InvalidExample(f"{name} ({prog.node(name).op}) has an input within rounding noise of a kink")
            if np.any(crossed & ~exact):
                # float64 programs are perturbed at 2**-40: a run that crossed a kink would
                # measure a spread from the other branch.
                raise InvalidExample(f"a perturbed run moves {name} ({prog.node(name).op}) across a kink")
