"""Finite differences for a user's code: the gradient of a black-box loss at a point.

`reference.gradcheck` and `reference.check_module` describe what they check as a `Point`:
the arrays x_1..x_k (float64 copies), the gradients pygrad computed for them (in their own
dtypes), and a float64 evaluation of the loss L. `check_point` compares <grad, v> with the
central difference D(h) = (L(x+hv) - L(x-hv)) / 2h, in float64, along a random unit
direction v and then (for at most `coordinates` entries in all) along every coordinate,
under the suite's rule (`reference.checks.programs.check_fd`):

    |<g, v> - D(h)| <= SAFETY * (|D(2h) - D(h)| / 3 + 2 (eps_L + eps_x) / h + eps_g [+ res])

- |D(2h) - D(h)| / 3: Richardson's estimate of the truncation error, trusted only where
  D(4h) - D(2h) is about 4 times D(2h) - D(h) (else h shrinks by 8, up to three times);
- eps_L: the float64 rounding of one evaluation of L: u64 times the sum of the magnitudes of
  L's terms (`Point.scale`), plus its measured noise (below);
- eps_x = u64 sum |g_i| (|x_i| + 4h |v_i|): the rounding of the shifted inputs themselves;
- eps_g = sum |v_i| (noise(g_i) + u |g_i| + tiny): the rounding pygrad's own gradient is
  allowed, u the unit roundoff of its dtype (2**-24 for a float32 input);
- res, for a gradient computed in a lower precision than float64 (float32): the same
  roundoff model evaluated in that precision at the best step of a central difference there,
  2 (eps_L' + eps_x') / h', with eps_L' = u' * scale plus the rounding the low-precision
  computation of L shows against its float64 twin (`Point.low`), eps_x' = sum u_i |g_i| |x_i|
  and h' = cbrt(u') max(1, |x|) (where h'**2 truncation balances u'/h' rounding): the
  resolution of the low-precision function itself. A float32 computation rounds every
  intermediate by u' of its size, and some of those errors are invisible from outside (in a
  saturated tanh, 1 - y**2 is 0 in float32 at every nearby point while the exact gradient is
  ~1e-7), so a float32 gradient is held to what float32 differences can resolve, about
  2 u'**(2/3) ~ 3e-5 of the loss's scale per unit of input (times SAFETY): a float32-only
  wrong rule (an overflow, a wrong branch or constant, an error of 1% or more) is caught, a
  smaller precision loss is not.

The noise stands for the suite's spread: the rounding noise of the computation, measured
directly (`reference.usercheck.noise`) -- the gradient's on the computation under test (in
its dtype), the loss's on its float64 evaluation -- and only when the floor (noise 0) does
not decide.

Kinks. The suite knows where its ops' kinks are; a user's function is a black box, so the
stencil finds them: on a smooth L the one-sided differences differ by ~L'' h, so
a(h) = D+(h) - D-(h) doubles with h, while at a kink they differ by the jump whatever h. A
stencil that sees a jump, or whose central differences do not converge like h**2, shrinks h;
when it still does after three shrinks the point sits at (or within ~h/100 of) a kink and
`KinkError` says so -- never a plain mismatch.

A failure along v is narrowed down by bisection (v restricted to half of the coordinates, the
half that still fails) to one coordinate, so every message names the array, the index and
both values, as `torch.autograd.gradcheck` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from reference.numerics import SAFETY, U64, fd_step, tolerance, unit
from reference.usercheck.errors import GradientMismatch, KinkError
from reference.usercheck.noise import measure_noise, resolution
from reference.usercheck.stencil import FD, central_difference

COORDINATES = 64   # check every coordinate when the arrays have at most this many entries in all


# ---------------------------------------------------------------------------- the point
@dataclass
class Point:
    """A loss L(x_1, ..., x_k) at x, as the check sees it.

    - `x`: the arrays (float64 copies of their values); `dtypes`: the dtype each has in the
      computation under test; `grads`: the gradients that computation gave at x.
    - `evaluate(arrays, grads)`: L in float64 at float64 arrays of the shapes of `x`:
      (L, [dL/dx_i as float64 arrays] if `grads` else None). Deterministic.
    - `gradient(arrays, cot)`: the computation under test at `arrays` (in `dtypes`), with the
      cotangent reaching each output of the function multiplied by the factors in `cot` (one
      array per entry of `outputs`, (shape, dtype) of what the function returns): its list of
      gradients. Used to measure the rounding noise of `grads`.
    - `scale`: the sum of the magnitudes of L's terms at x (|L| for a plain loss): one float64
      evaluation rounds by about u64 * scale. `low`: for a computation in a lower precision,
      how far its L lies from the float64 one (e.g. sum |w| |y - y64|): its rounding of L
      where intermediates larger than L's terms cancel. `what` says what L is, `who` who
      checks."""

    names: list
    x: list
    dtypes: list
    grads: list
    evaluate: Callable
    gradient: Callable
    outputs: list
    scale: float
    what: str
    low: float = 0.0
    seed: int = 0
    coordinates: int = COORDINATES
    who: str = "gradcheck"


@dataclass
class Verdict:
    status: str                      # "pass", "mismatch", "kink"
    got: float = math.nan            # <g, v>
    want: float = math.nan           # D(h)
    tol: float = math.nan
    fd: FD = field(default_factory=FD)
    f64: bool = False                # the float64 twin's gradient (of a lower-precision computation)


class Checker:
    """`check_point`'s state: the float64 gradient at x, and the spreads once measured."""

    def __init__(self, p: Point):
        self.p = p
        self.L0, g64 = p.evaluate(p.x, True)
        if not math.isfinite(self.L0):
            raise ValueError(f"{p.who}: {p.what} is not finite at the given inputs ({self.L0})")
        # a non-finite gradient (which fails anyway) says nothing about rounding
        self.g_abs = [np.nan_to_num(np.abs(np.asarray(g, dtype=np.float64)), nan=0.0, posinf=0.0) for g in g64]
        self.g64 = [np.asarray(g, dtype=np.float64) for g in g64]
        self.got = [np.asarray(g, dtype=np.float64) for g in p.grads]
        self.sizes = [int(x.size) for x in p.x]
        self.offsets = np.cumsum([0] + self.sizes)
        self.n = int(self.offsets[-1])
        xmax = max((float(np.max(np.abs(x), initial=0.0)) for x in p.x), default=0.0)
        self.h0 = fd_step(xmax)
        self.res = resolution(list(p.dtypes) + [d for _, d in p.outputs], p.scale, p.low,
                              [unit(d) * float(np.vdot(ga, np.abs(x))) for ga, x, d in zip(self.g_abs, p.x, p.dtypes)],
                              xmax)
        # a lower-precision computation is also checked as its float64 twin (fn on float64
        # copies), under the float64 rule: a rule wrong in every precision is caught at
        # float64's accuracy, whatever float32's resolution
        self.low = max(unit(d) for d in list(p.dtypes) + [d for _, d in p.outputs]) > U64
        self._spreads = self._noise64 = None

    # ------------------------------------------------------------------ tolerances
    def spreads(self) -> tuple:
        """(noise of L, [noise of each gradient under test]); measured once."""
        if self._spreads is None:
            p, k = self.p, len(self.p.x)
            s_loss = float(measure_noise(lambda xs: [p.evaluate(xs, False)[0]], p.x, [np.float64] * k, [self.L0],
                                 [p.seed, 2])[0])
            s_grads = measure_noise(lambda xs: p.gradient(xs[:k], xs[k:]),
                            [np.asarray(x, dtype=d) for x, d in zip(p.x, p.dtypes)]
                            + [np.ones(s) for s, _ in p.outputs],
                            list(p.dtypes) + [d for _, d in p.outputs], self.got, [p.seed, 3])
            if not (math.isfinite(s_loss) and all(np.all(np.isfinite(s)) for s in s_grads)):
                raise KinkError(f"{p.who}: {p.what} or its gradient is not finite when the inputs move by "
                                "rounding-size steps (an input at a domain edge?): finite differences cannot "
                                "judge here")
            self._spreads = (s_loss, s_grads)
        return self._spreads

    def noise64(self) -> list:
        """The noise of the float64 twin's gradients; measured once."""
        if self._noise64 is None:
            p = self.p
            self._noise64 = measure_noise(lambda xs: p.evaluate(xs, True)[1], p.x, [np.float64] * len(p.x), self.g64,
                                  [p.seed, 4])
            if not all(np.all(np.isfinite(s)) for s in self._noise64):
                raise KinkError(f"{p.who}: the gradient of {p.what} is not finite when the inputs move by "
                                "rounding-size steps (an input at a domain edge?): finite differences cannot "
                                "judge here")
        return self._noise64

    def grad_tol(self, k: int, full: bool, f64: bool = False) -> np.ndarray:
        dt = np.float64 if f64 else self.p.dtypes[k]
        s = (self.noise64() if f64 else self.spreads()[1])[k] if full else 0.0
        return tolerance(self.g_abs[k], dt, s)

    # ------------------------------------------------------------------ one direction
    def direction(self, v: list) -> Verdict:
        """The gradient under test along v; for a lower-precision computation, then its
        float64 twin's."""
        cache = {}
        verdict = self.verdict_along(v, cache, False)
        if verdict.status == "pass" and self.low:
            verdict = self.verdict_along(v, cache, True)
        return verdict

    def verdict_along(self, v: list, cache: dict, f64: bool) -> Verdict:
        """<g, v> against D(h): the floor first, the spreads only when it does not decide."""
        got = sum(float(np.vdot(g, vk)) for g, vk in zip(self.g64 if f64 else self.got, v))
        res = 0.0 if f64 else self.res
        verdict = None
        for full in (False, True):
            eps_loss = (self.spreads()[0] if full else 0.0) + U64 * self.p.scale

            def roundoff(step, eps_loss=eps_loss):
                """Bound on the roundoff of one central difference with this step."""
                eps_in = U64 * sum(float(np.vdot(ga, np.abs(x) + 4 * step * np.abs(vk)))
                                   for ga, x, vk in zip(self.g_abs, self.p.x, v))
                return 2 * (eps_loss + eps_in) / step
            fd = self.derivative(v, roundoff, cache)
            if not fd.clear:
                verdict = Verdict("kink", got, fd=fd, f64=f64)
                continue
            eps_g = sum(float(np.vdot(np.abs(vk), self.grad_tol(k, full, f64) / SAFETY)) for k, vk in enumerate(v))
            tol = SAFETY * (fd.trunc + roundoff(fd.h) + eps_g + res)
            if abs(got - fd.d) <= tol:
                return Verdict("pass", got, fd.d, tol, fd, f64)
            verdict = Verdict("mismatch", got, fd.d, tol, fd, f64)
        return verdict

    def derivative(self, v: list, roundoff, cache: dict) -> FD:
        """D(h) and its truncation estimate along v (`stencil.central_difference`), the step
        shrunk while the stencil sees a jump; `roundoff(h)` bounds the roundoff of one D(h)."""
        def L(t):
            if t == 0:
                return self.L0
            if t not in cache:
                cache[t] = self.p.evaluate([x + t * vk for x, vk in zip(self.p.x, v)], False)[0]
            return cache[t]

        def jump(h, Ls):
            # one-sided differences: a(s) = D+(s) - D-(s) is ~L'' s on a smooth L, the jump at a kink
            a1, a2, a4 = ((Ls[s] - 2 * self.L0 + Ls[-s]) / s for s in (h, 2 * h, 4 * h))
            b1, b2 = a2 - 2 * a1, a4 - 2 * a2     # ~L'''' h**3 (b2 ~ 8 b1) if smooth, -jump at a kink
            return abs(b1) > SAFETY * 4 * roundoff(h) and abs(b2) < 4 * abs(b1)
        return central_difference(L, self.h0, roundoff, jump=jump)

    # ------------------------------------------------------------------ coordinates
    def where(self, i: int) -> tuple:
        """(array number, index tuple) of global coordinate i."""
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        idx = np.unravel_index(i - int(self.offsets[k]), self.p.x[k].shape)
        return k, tuple(int(j) for j in idx)

    def restrict(self, v: list, lo: int, hi: int) -> list:
        """v with every coordinate outside [lo, hi) set to 0."""
        out = []
        for k, vk in enumerate(v):
            a, b = max(lo - int(self.offsets[k]), 0), min(hi - int(self.offsets[k]), self.sizes[k])
            flat = np.zeros(self.sizes[k])
            if a < b:
                flat[a:b] = vk.reshape(-1)[a:b]
            out.append(flat.reshape(vk.shape))
        return out

    def basis(self, i: int) -> list:
        e = [np.zeros(x.shape) for x in self.p.x]
        k, idx = self.where(i)
        e[k][idx] = 1.0
        return e

    def locate(self, v: list, status: str) -> int | None:
        """A coordinate of v to blame, by bisection: each step keeps the half of v that alone
        still gives `status` -- or, for a mismatch that neither half shows alone (a bound
        that does not shrink with the direction, as float32's resolution), the half with the
        larger error/tolerance. None for a kink that neither half shows alone."""
        lo, hi = 0, self.n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            halves = [(a, b, self.direction(self.restrict(v, a, b))) for a, b in ((lo, mid), (mid, hi))
                      if any(np.any(pk) for pk in self.restrict(v, a, b))]
            bad = [(a, b) for a, b, r in halves if r.status == status]
            if bad:
                lo, hi = bad[0]
            elif status == "mismatch" and halves:
                lo, hi, _ = max(halves, key=lambda h: abs(h[2].got - h[2].want) / h[2].tol
                                if h[2].status == "pass" else -1.0)
            else:
                return None
        return lo


def check_point(p: Point) -> bool:
    """True, or GradientMismatch / KinkError naming the array, the index and the values."""
    c = Checker(p)
    if c.n == 0:
        return True
    rng = np.random.default_rng([p.seed, 1])
    v = [rng.standard_normal(x.shape) for x in p.x]
    norm = math.sqrt(sum(float(np.sum(vk * vk)) for vk in v))
    v = [vk / norm for vk in v] if norm else v
    res = c.direction(v)
    if res.status != "pass":
        i = c.locate(v, res.status)
        if i is None:
            _fail(c, res, None)
        at = c.direction(c.basis(i))
        if at.status == res.status:
            _fail(c, at, i)
        _fail(c, res, i, at)
    if c.n <= p.coordinates:
        for i in range(c.n):
            res = c.direction(c.basis(i))
            if res.status != "pass":
                _fail(c, res, i)
    return True


def _fail(c: Checker, res: Verdict, i: int | None, alone: Verdict | None = None):
    """Raise for verdict `res`: at coordinate i, or (`alone`: coordinate i's own verdict,
    within its tolerance) along the random direction, naming i as its largest share."""
    p, fd = c.p, res.fd
    if i is None:
        name, index = ", ".join(p.names), None
        where = f"the gradient of {name} along a random direction v"
        got_what, want_what = "<grad, v>", "D(h)"
    elif alone is not None:
        k, index = c.where(i)
        name = p.names[k]
        where = f"the gradient of {name} along a random direction v"
        got_what, want_what = "<grad, v>", "D(h)"
    else:
        k, index = c.where(i)
        name = p.names[k]
        where = f"the gradient of {name} at index {index}"
        got_what, want_what = "pygrad", "finite differences"
    if res.status == "kink":
        if fd.why == "kink":
            detail = (f"the left and right differences disagree: left {fd.left:.17g}, right {fd.right:.17g} "
                      f"(h = {fd.h:.3g})")
            what = "at or near a kink"
        elif fd.why == "not finite":
            detail, what = "the function is not finite within the finite-difference stencil", "at a domain edge"
        else:
            d1, d2, d4 = fd.central
            detail = (f"central differences with steps h, 2h, 4h give {d1:.17g}, {d2:.17g}, {d4:.17g} "
                      f"(h = {fd.h:.3g}): they do not converge like h**2")
            what = "at or near a point where the function is not smooth (a kink?)"
        subject = (f"{name} at index {index} sits" if i is not None
                   else f"along a random direction, the inputs {name} sit")
        raise KinkError(f"{p.who}: {subject} {what} of {p.what}: {detail}. Finite differences cannot judge the "
                        "gradient there: move the input away from the kink, or compare with PyTorch only "
                        "(gradcheck(..., torch_fn=..., fd=False))", name if i is not None else None, index)
    if res.f64:
        where += (" is wrong when the same code runs in float64 (the low-precision gradient is within the "
                  "low precision's resolution, the float64 one is not):\n")
        got_what = got_what + " (float64)"
    else:
        where += " is wrong:\n"
    raise GradientMismatch(
        f"{p.who}: {where}"
        f"  {got_what + ':':<20}{res.got:.17g}\n"
        f"  {want_what + ':':<20}{res.want:.17g}   (central difference in float64, h = {fd.h:.3g})\n"
        f"  |error| {abs(res.got - res.want):.3g} > tolerance {res.tol:.3g}\n"
        + (f"  the entry with the largest share, index {index}: pygrad {alone.got:.17g}, finite differences "
           f"{alone.want:.17g} (|error| {abs(alone.got - alone.want):.3g}, within its own tolerance "
           f"{alone.tol:.3g})\n" if alone is not None else "")
        + f"  (the gradient of {p.what})", name if i is not None else None, index, res.got, res.want, res.tol)
