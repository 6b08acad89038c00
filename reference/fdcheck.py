"""Finite differences for a user's code: the gradient of a black-box loss at a point.

`reference.gradcheck` and `reference.check_module` describe what they check as a `Point`:
the arrays x_1..x_k (float64 copies), the gradients pygrad computed for them (in their own
dtypes), and a float64 evaluation of the loss L. `check_point` compares <grad, v> with the
central difference D(h) = (L(x+hv) - L(x-hv)) / 2h, in float64, along a random unit
direction v and then (for at most `coordinates` entries in all) along every coordinate,
under the suite's rule (`reference.checks.program.check_fd`):

    |<g, v> - D(h)| <= SAFETY * (|D(2h) - D(h)| / 3 + 2 (eps_L + eps_x) / h + eps_g)

- |D(2h) - D(h)| / 3: Richardson's estimate of the truncation error, trusted only where
  D(4h) - D(2h) is about 4 times D(2h) - D(h) (else h shrinks by 8, up to three times);
- eps_L: the float64 rounding of one evaluation of L, u64 times the sum of the magnitudes of
  L's terms (`Point.scale`), plus its spread (below) rescaled to float64;
- eps_x = u64 sum |g_i| (|x_i| + 4h |v_i|): the rounding of the shifted inputs themselves;
- eps_g = sum |v_i| (spread(g_i) + u |g_i| + tiny): the rounding pygrad's own gradient is
  allowed, u the unit roundoff of its dtype (2**-24 for a float32 input);
- the spread: how far `RUNS` evaluations move L and the float64 gradients when the inputs are
  perturbed by rounding-size factors (1 + r u), the oracles' `Noise` model applied to the
  only thing a black box exposes, its inputs. It is measured only when the floor (spread 0)
  does not decide, as `reference.compare` does.

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
from reference.oracles import FD_STEP, INJECT_MIN, U64
from reference.registry import U

COORDINATES = 64   # check every coordinate when the arrays have at most this many entries in all
SHRINKS = 3        # as `oracles.fd_derivative`: h shrinks by 8 at most three times


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


def perturbed(arrays: list, dtypes: list, seed) -> tuple:
    """(RUNS lists of rounding-size perturbations of `arrays`, scale): each entry times
    (1 + r u) with r standard normal and u its dtype's unit roundoff -- 2**-40 for float64,
    which a float64 run cannot carry at 2**-53, so an all-float64 spread is scaled back by
    `scale` = 2**-13 (as `oracles.Noise`)."""
    rng = np.random.default_rng(seed)
    units = [max(unit(d), INJECT_MIN) for d in dtypes]
    scale = U64 / INJECT_MIN if all(np.dtype(d) == np.float64 for d in dtypes) else 1.0
    runs = [[x * (1 + u * rng.standard_normal(x.shape)) for x, u in zip(arrays, units)] for _ in range(RUNS)]
    return runs, scale


def spread(exact: np.ndarray, runs: list, scale: float) -> np.ndarray:
    """How far the perturbed runs land from the exact value, elementwise, times `scale`."""
    s = np.zeros(np.shape(exact))
    for r in runs:
        s = np.maximum(s, scale * np.abs(np.asarray(r, dtype=np.float64) - exact))
    return s


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

    `evaluate(arrays, grads)` evaluates L in float64 at float64 arrays of the shapes of `x`
    and returns (L, [dL/dx_i as float64 arrays] if `grads` else None); it must be
    deterministic. `scale` is the sum of the magnitudes of L's terms at x (|L| for a plain
    loss): one evaluation rounds by about u64 * scale. `what` says what L is, for messages."""

    names: list
    x: list
    dtypes: list
    grads: list
    evaluate: Callable
    scale: float
    what: str
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


class Checker:
    """`check_point`'s state: the float64 gradient at x, and the spreads once measured."""

    def __init__(self, p: Point):
        self.p = p
        self.L0, g64 = p.evaluate(p.x, True)
        if not math.isfinite(self.L0):
            raise ValueError(f"{p.who}: {p.what} is not finite at the given inputs ({self.L0})")
        self.g_abs = [np.abs(np.asarray(g, dtype=np.float64)) for g in g64]
        self.g64 = g64
        self.got = [np.asarray(g, dtype=np.float64) for g in p.grads]
        self.sizes = [int(x.size) for x in p.x]
        self.offsets = np.cumsum([0] + self.sizes)
        self.n = int(self.offsets[-1])
        self.u = max(unit(d) for d in p.dtypes)
        self.h0 = FD_STEP * max(1.0, max((float(np.max(np.abs(x), initial=0.0)) for x in p.x), default=0.0))
        self._spreads = None

    # ------------------------------------------------------------------ tolerances
    def spreads(self) -> tuple:
        """(spread of L, [spread of each gradient]) over the perturbed runs; computed once."""
        if self._spreads is None:
            runs, scale = perturbed(self.p.x, self.p.dtypes, [self.p.seed, 2])
            results = [self.p.evaluate(xs, True) for xs in runs]
            s_loss = max(scale * abs(L - self.L0) for L, _ in results)
            s_grads = [spread(np.asarray(g, dtype=np.float64), [r[1][k] for r in results], scale)
                       for k, g in enumerate(self.g64)]
            if not (math.isfinite(s_loss) and all(np.all(np.isfinite(s)) for s in s_grads)):
                raise KinkError(f"{self.p.who}: {self.p.what} is not finite under rounding-size perturbations of the "
                                "inputs (an input at a domain edge?): finite differences cannot judge here")
            self._spreads = (s_loss, s_grads)
        return self._spreads

    def grad_tol(self, k: int, full: bool) -> np.ndarray:
        s = self.spreads()[1][k] if full else 0.0
        dt = self.p.dtypes[k]
        return SAFETY * (s + unit(dt) * self.g_abs[k] + tiny(np.dtype(dt).name))

    # ------------------------------------------------------------------ one direction
    def direction(self, v: list) -> Verdict:
        """<g, v> against D(h): the floor first, the spreads only when it does not decide."""
        got = sum(float(np.vdot(g, vk)) for g, vk in zip(self.got, v))
        cache = {}
        verdict = None
        for full in (False, True):
            eps_loss = (self.spreads()[0] * (U64 / self.u) if full else 0.0) + U64 * self.p.scale

            def roundoff(step, eps_loss=eps_loss):
                """Bound on the roundoff of one central difference with this step."""
                eps_in = U64 * sum(float(np.vdot(ga, np.abs(x) + 4 * step * np.abs(vk)))
                                   for ga, x, vk in zip(self.g_abs, self.p.x, v))
                return 2 * (eps_loss + eps_in) / step
            fd = self.derivative(v, roundoff, cache)
            if not fd.clear:
                verdict = Verdict("kink", got, fd=fd)
                continue
            eps_g = sum(float(np.vdot(np.abs(vk), self.grad_tol(k, full) / SAFETY)) for k, vk in enumerate(v))
            tol = SAFETY * (fd.trunc + roundoff(fd.h) + eps_g)
            if abs(got - fd.d) <= tol:
                return Verdict("pass", got, fd.d, tol, fd)
            verdict = Verdict("mismatch", got, fd.d, tol, fd)
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
        """A coordinate whose part of v alone still gives `status`, by bisection (None when
        only the two halves together do)."""
        lo, hi = 0, self.n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid, hi)):
                part = self.restrict(v, a, b)
                if any(np.any(pk) for pk in part) and self.direction(part).status == status:
                    lo, hi = a, b
                    break
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
        if i is not None:
            at = c.direction(c.basis(i))
            if at.status == res.status:
                _fail(c, at, i)
        _fail(c, res, None)
    if c.n <= p.coordinates:
        for i in range(c.n):
            res = c.direction(c.basis(i))
            if res.status != "pass":
                _fail(c, res, i)
    return True


def _fail(c: Checker, res: Verdict, i: int | None):
    p, fd = c.p, res.fd
    if i is None:
        name, index = ", ".join(p.names), None
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
            what = "sits at or near a kink"
        elif fd.why == "not finite":
            detail, what = "the function is not finite within the finite-difference stencil", "sits at a domain edge"
        else:
            d1, d2, d4 = fd.central
            detail = (f"central differences with steps h, 2h, 4h give {d1:.17g}, {d2:.17g}, {d4:.17g} "
                      f"(h = {fd.h:.3g}): they do not converge like h**2")
            what = "sits at or near a point where the function is not smooth (a kink?)"
        subject = (f"{name} at index {index}" if i is not None else f"the inputs ({name}), along a random direction,")
        raise KinkError(f"{p.who}: {subject} {what} of {p.what}: {detail}. Finite differences cannot judge the "
                        "gradient there: move the input away from the kink, or compare with PyTorch only "
                        "(gradcheck(..., torch_fn=..., fd=False))", name if i is not None else None, index)
    raise GradientMismatch(
        f"{p.who}: {where} is wrong:\n"
        f"  {got_what + ':':<20}{res.got:.17g}\n"
        f"  {want_what + ':':<20}{res.want:.17g}   (central difference in float64, h = {fd.h:.3g})\n"
        f"  |error| {abs(res.got - res.want):.3g} > tolerance {res.tol:.3g}\n"
        f"  (the gradient of {p.what})", name if i is not None else None, index, res.got, res.want, res.tol)
