"""Finite differences for a user's code: the gradient of a black-box loss at a point.

`reference.gradcheck` and `reference.check_module` describe what they check as a `Point`:
the arrays x_1..x_k (float64 copies), the gradients pygrad computed for them (in their own
dtypes), and a float64 evaluation of the loss L. `check_point` compares <grad, v> with the
central difference D(h) = (L(x+hv) - L(x-hv)) / 2h, in float64, along a random unit
direction v and then (for at most `coordinates` entries in all) along every coordinate,
under the suite's rule (`reference.checks.program.check_fd`):

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

The noise stands for the suite's spread. The suite perturbs every op of a program by the
op's rounding-error model (`reference.oracles.Noise`) and measures how far the results move;
a user's function is a black box, so its rounding noise is measured directly, as one measures
the noise of any computed function: along `RUNS` random directions d, the computation is
repeated at x (1 + s d) and x (1 - s d), s = 2**13 units in the last place of the dtype it
runs in (2**-40 in float64, the oracles' perturbation unit; at most sqrt(u)), with the
cotangent of its output moved alike. Every intermediate then moves by many units in the last
place, so its rounding changes, while the exact result barely moves. The noise is the largest
|f(x + sd) - 2 f(x) + f(x - sd)| / 2, measured at s and at s/4 (the smaller when they
disagree: a kink that the larger move reaches adds a jump, not noise). Rounding errors that
change erratically from point to point show in it -- including cancellations inside the
forward and the backward rules, which moving the inputs by a few ulps would not reveal (a
saturated softmax hardly moves) -- whereas a wrong rule, wrong the same way at neighbouring
points, does not inflate it. The gradient's noise is measured on the computation under test
(in its dtype), the loss's on its float64 evaluation. As in `reference.compare`, it is
measured only when the floor (noise 0) does not decide.

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

from reference.compare import RUNS, SAFETY, ratio, tiny
from reference.oracles import FD_STEP, U64
from reference.registry import U

COORDINATES = 64   # check every coordinate when the arrays have at most this many entries in all
SHRINKS = 3        # as `oracles.fd_derivative`: h shrinks by 8 at most three times
NOISE_ULPS = 2 ** 13   # the noise runs move every entry by this many units in the last place


# ---------------------------------------------------------------------------- errors
class GradcheckError(AssertionError):
    """A check of a user's function or Module failed. `input` names the array (e.g.
    "input 1 ('b', float64, shape (3,))" or "weight dense1.W"), `index` the entry."""

    def __init__(self, message: str, input: str | None = None, index: tuple | None = None):
        super().__init__(message)
        self.input, self.index = input, index


class GradientMismatch(GradcheckError):
    """pygrad's gradient disagrees with finite differences (or with `torch_fn`'s):
    `got` is pygrad's value, `want` the reference's, `tolerance` the bound exceeded."""

    def __init__(self, message, input=None, index=None, got=math.nan, want=math.nan, tolerance=math.nan):
        super().__init__(message, input, index)
        self.got, self.want, self.tolerance = got, want, tolerance


class ValueMismatch(GradientMismatch):
    """The function's value disagrees with `torch_fn`'s."""


class KinkError(GradcheckError):
    """Finite differences cannot judge the gradient here: an input sits at or near a kink
    (the left and right differences disagree), a domain edge, or a point where the function
    is not smooth at the finite-difference scale. Move the input, or compare with PyTorch
    only (`gradcheck(..., torch_fn=..., fd=False)`)."""


def unit(dtype) -> float:
    """Unit roundoff of a float dtype (the suite's `U` where it has one)."""
    dt = np.dtype(dtype)
    return U.get(dt.name, float(np.finfo(dt).eps) / 2)


def step(dtype) -> float:
    """The relative move of the noise runs for a dtype: 2**13 units in the last place (2**-40
    for float64, the oracles' `INJECT_MIN`), at most sqrt(u)."""
    u = unit(dtype)
    return min(NOISE_ULPS * u, math.sqrt(u))


def resolution(dtypes: list, scale: float, low: float, eps_in: list, xmax: float, low_only: bool = True) -> float:
    """The roundoff model of one central difference in the lowest precision u' among
    `dtypes`, at its best step h' = cbrt(u') max(1, xmax): 2 (u' scale + low + sum eps_in) / h'
    (`low`: L's measured rounding in that precision; `eps_in`: each array's u_i sum |g_i|
    |x_i|). With `low_only`, 0 when every dtype is float64 (the finite differences' own
    roundoff term is that bound already)."""
    u = max(unit(d) for d in dtypes)
    if low_only and u <= U64:
        return 0.0
    return 2 * (u * scale + low + sum(eps_in)) / (u ** (1 / 3) * max(1.0, xmax))


def noise(f, arrays: list, dtypes: list, center: list, seed) -> list:
    """The rounding noise of `f(arrays) -> list of arrays` at `arrays` (see the module
    docstring), elementwise: the largest |f(x + sd) - 2 f(x) + f(x - sd)| / 2 over `RUNS`
    random directions d, each entry moved relatively by s = `step` of its dtype (and rounded
    to it) -- measured at s and at s/4: the larger where they agree within a factor 2, else
    the smaller (a kink within reach of the larger move adds a jump, not noise). `center` is
    f(arrays). 0 where the center is not finite (that fails on its own); inf where a moved
    point is not finite."""
    rng = np.random.default_rng(seed)
    center = [np.asarray(c, dtype=np.float64) for c in center]
    finite = [np.isfinite(c) for c in center]
    found = []
    for scale in (1.0, 0.25):
        out = [np.zeros(c.shape) for c in center]
        for _ in range(RUNS):
            d = [scale * step(dt) * rng.standard_normal(np.shape(x)) for x, dt in zip(arrays, dtypes)]
            plus = f([np.asarray(x * (1 + dk)).astype(dt) for x, dk, dt in zip(arrays, d, dtypes)])
            minus = f([np.asarray(x * (1 - dk)).astype(dt) for x, dk, dt in zip(arrays, d, dtypes)])
            for j, c in enumerate(center):
                second = np.abs(np.asarray(plus[j], dtype=np.float64) - 2 * np.where(finite[j], c, 0)
                                + np.asarray(minus[j], dtype=np.float64)) / 2
                out[j] = np.maximum(out[j], np.where(finite[j], np.where(np.isnan(second), np.inf, second), 0.0))
        found.append(out)
    # the two moves agree up to the scatter of a maximum of a few draws: noise, keep the larger;
    # a jump that only the larger move reaches (a kink), or a term growing with the move: the smaller
    return [np.where(a <= 2 * b, np.maximum(a, b), b) for a, b in zip(*found)]


def worst(got, want, tolerances) -> tuple:
    """(None, ratio) when every element of `got` is within the first tolerance that holds,
    else (flat index of the worst element, its tolerance). NaN in `got` always fails."""
    got = np.asarray(got, dtype=np.float64)
    err = np.abs(got - want)
    err = np.where(np.isnan(err), np.inf, err)
    for tol in tolerances:
        tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), np.shape(want))
        r = ratio(err, tol)
        if float(np.max(r, initial=0.0)) <= 1:
            return None, None
    i = int(np.argmax(r))
    return i, float(tol.reshape(-1)[i])


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
class FD:
    d: float = math.nan      # central difference D(h)
    trunc: float = math.nan  # Richardson: |D(2h) - D(h)| / 3
    h: float = math.nan
    clear: bool = False
    why: str = ""            # "kink", "not smooth", "not finite"
    left: float = math.nan   # (L(x) - L(x - hv)) / h
    right: float = math.nan  # (L(x + hv) - L(x)) / h
    central: tuple = ()      # D(h), D(2h), D(4h) of the last try


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
        self.h0 = FD_STEP * max(1.0, xmax)
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
            s_loss = float(noise(lambda xs: [p.evaluate(xs, False)[0]], p.x, [np.float64] * k, [self.L0],
                                 [p.seed, 2])[0])
            s_grads = noise(lambda xs: p.gradient(xs[:k], xs[k:]),
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
            self._noise64 = noise(lambda xs: p.evaluate(xs, True)[1], p.x, [np.float64] * len(p.x), self.g64,
                                  [p.seed, 4])
            if not all(np.all(np.isfinite(s)) for s in self._noise64):
                raise KinkError(f"{p.who}: the gradient of {p.what} is not finite when the inputs move by "
                                "rounding-size steps (an input at a domain edge?): finite differences cannot "
                                "judge here")
        return self._noise64

    def grad_tol(self, k: int, full: bool, f64: bool = False) -> np.ndarray:
        dt = np.float64 if f64 else self.p.dtypes[k]
        s = (self.noise64() if f64 else self.spreads()[1])[k] if full else 0.0
        return SAFETY * (s + unit(dt) * self.g_abs[k] + tiny(np.dtype(dt).name))

    # ------------------------------------------------------------------ one direction
    def direction(self, v: list) -> Verdict:
        """The gradient under test along v; for a lower-precision computation, then its
        float64 twin's."""
        cache = {}
        verdict = self.compare(v, cache, False)
        if verdict.status == "pass" and self.low:
            verdict = self.compare(v, cache, True)
        return verdict

    def compare(self, v: list, cache: dict, f64: bool) -> Verdict:
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

    def derivative(self, v: list, noise, cache: dict) -> FD:
        """D(h) and its truncation estimate along v, shrinking h while the stencil sees a
        jump or D does not converge like h**2; `noise(h)` bounds the roundoff of one D(h)."""
        def L(t):
            if t == 0:
                return self.L0
            if t not in cache:
                cache[t] = self.p.evaluate([x + t * vk for x, vk in zip(self.p.x, v)], False)[0]
            return cache[t]
        h, last = self.h0, FD()
        for _ in range(SHRINKS + 1):
            Ls = {t: L(t) for t in (-4 * h, -2 * h, -h, h, 2 * h, 4 * h)}
            if not all(math.isfinite(x) for x in Ls.values()):
                return FD(h=h, why="not finite")
            d1 = (Ls[h] - Ls[-h]) / (2 * h)
            d2 = (Ls[2 * h] - Ls[-2 * h]) / (4 * h)
            d4 = (Ls[4 * h] - Ls[-4 * h]) / (8 * h)
            # one-sided differences: a(s) = D+(s) - D-(s) is ~L'' s on a smooth L, the jump at a kink
            a1, a2, a4 = ((Ls[s] - 2 * self.L0 + Ls[-s]) / s for s in (h, 2 * h, 4 * h))
            b1, b2 = a2 - 2 * a1, a4 - 2 * a2     # ~L'''' h**3 (b2 ~ 8 b1) if smooth, -jump at a kink
            jump = abs(b1) > SAFETY * 4 * noise(h) and abs(b2) < 4 * abs(b1)
            e1, e2, n = abs(d2 - d1), abs(d4 - d2), 6 * noise(h)
            last = FD(h=h, why="kink" if jump else "not smooth", left=(self.L0 - Ls[-h]) / h,
                      right=(Ls[h] - self.L0) / h, central=(d1, d2, d4))
            if not jump and 2 * e1 - n <= e2 <= 8 * e1 + n:   # error ~ h^2: doubling h quadruples it
                return FD(d1, e1 / 3, h, True)
            h /= 8
        return last

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
