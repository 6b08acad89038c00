"""`gradcheck` for a function of Tensors (and the helpers it shares with
`reference.usercheck.modules`' `check_module` for a Module).

Both apply the suite's tolerance rule to code the suite has never seen: the gradient against
central finite differences in float64 (`reference.usercheck.point`, the rule of
`checks.programs.check_fd`, kinks found by the stencil), values and gradients against an
optional PyTorch twin (`reference.numerics.tolerance`: SAFETY * (spread + u |T| + tiny)),
and for a Module the properties `checks.module_calls` checks on random Modules.
"""
from __future__ import annotations

import numpy as np

from reference.numerics import tolerance, unit
from reference.usercheck.errors import GradientMismatch, ValueMismatch
from reference.usercheck.noise import measure_noise, resolution, worst_element
from reference.usercheck.point import COORDINATES, Point, check_point

__all__ = ["gradcheck"]


def index_of(shape: tuple, flat: int) -> tuple:
    return tuple(int(j) for j in np.unravel_index(flat, shape))


def describe(name: str, t) -> str:
    return f"{name} ({t.dtype}, shape {t.shape})"


def tolerances_of(want: np.ndarray, dtype, spread_of, res: float = 0.0):
    """The suite's tolerances of `want` (an exact float64 reference) for a result of
    `dtype`, cheapest first: the floor SAFETY (u |want| + tiny), then with the spread (the
    measured noise). `res`: the resolution of a lower-precision computation (`noise.resolution`)."""
    yield tolerance(want, dtype, 0.0, res)
    yield tolerance(want, dtype, spread_of(), res)


def check_ints(who: str, **values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{who}: {name} must be a non-negative int, got {v!r}")


def not_finite(a: np.ndarray) -> tuple | None:
    bad = np.flatnonzero(~np.isfinite(a))
    return index_of(a.shape, int(bad[0])) if bad.size else None


# ---------------------------------------------------------------------------- gradcheck
def gradcheck(fn, *inputs, torch_fn=None, fd: bool = True, seed: int = 0, coordinates: int = COORDINATES) -> bool:
    """Check the gradients of `fn(*inputs)`, a function of pygrad Tensors returning a Tensor.

    Every Tensor input with `learnable=True` is checked (others, and non-Tensor arguments,
    are passed through unchanged). The gradient of L = sum(w * fn(*inputs)), w a fixed
    random array of the output's shape (1 for a single-element output), is compared with
    central finite differences of L in float64 -- fn runs on float64 copies of the inputs,
    also for float32 inputs, whose float32 gradient gets float32's tolerance -- along a
    random direction and along every coordinate when the inputs have at most `coordinates`
    entries, under the suite's tolerance rule (see `reference.usercheck.point`). With `torch_fn`
    (the same function of torch tensors), fn's value and gradients are also compared with
    PyTorch's in float64; `fd=False` then skips finite differences (e.g. at a kink, where
    torch defines the derivative).

    Returns True. Raises `GradientMismatch` (or `ValueMismatch`, against torch_fn) naming
    the input, the index and both values; `KinkError` when an input sits at or near a kink
    (finite differences cannot judge there); TypeError/ValueError for bad arguments."""
    from pygrad import Tensor
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be callable, got {type(fn).__name__}")
    if torch_fn is not None and not callable(torch_fn):
        raise TypeError(f"gradcheck: torch_fn must be callable, got {type(torch_fn).__name__}")
    if not fd and torch_fn is None:
        raise ValueError("gradcheck: fd=False leaves nothing to compare with; give torch_fn")
    check_ints("gradcheck", seed=seed, coordinates=coordinates)
    checked = [k for k, a in enumerate(inputs) if isinstance(a, Tensor) and a.learnable]
    if not checked:
        raise TypeError("gradcheck: no input to check: pass the Tensors after fn, as in gradcheck(fn, x, y) "
                        "(Tensors with learnable=False are passed through but not checked)")
    names = {k: describe(f"input {k}" + (f" {inputs[k].label!r}" if inputs[k].label else ""), inputs[k])
             for k in checked}
    for k in checked:
        bad = not_finite(inputs[k].value)
        if bad is not None:
            raise ValueError(f"gradcheck: {names[k]} is not finite at index {bad}")

    def call(dtype=None, values=None):
        args = [Tensor(values[k] if values is not None and k in values else a.value, dtype=dtype or a.dtype,
                       label=a.label, learnable=a.learnable, leaf=a.leaf) if isinstance(a, Tensor) else a
                for k, a in enumerate(inputs)]
        y = fn(*args)
        if not isinstance(y, Tensor):
            raise TypeError(f"gradcheck: fn must return a pygrad Tensor, got {type(y).__name__}")
        return args, y

    args, y = call()
    bad = not_finite(y.value)
    if bad is not None:
        raise ValueError(f"gradcheck: fn's value is not finite at index {bad} (output shape {y.shape})")
    _, again = call()
    if again.shape != y.shape or not np.array_equal(again.value, y.value):
        raise ValueError("gradcheck: fn is not deterministic: two calls on the same inputs give different values "
                         "(random layers such as Dropout must be off)")
    rng = np.random.default_rng([seed, 0])
    w64 = (np.ones(y.shape) if y.size == 1 else rng.standard_normal(y.shape)).astype(y.dtype).astype(np.float64)

    def run(values=None, cot=None):
        """The computation under test (in the inputs' dtypes): (value, gradients)."""
        a, out = call(values=None if values is None else dict(zip(checked, values)))
        wc = w64 if cot is None else w64 * cot[0]
        (out * wc.astype(out.dtype)).sum().backward()
        return out.value, [np.array(a[k].grad) for k in checked]
    _, grads = run()

    def spreads():
        """The rounding noise of fn's value and gradients (`noise.measure_noise`)."""
        def f(arrays):
            value, gs = run(arrays[:-1], arrays[-1:])
            return [value] + gs
        return measure_noise(f, [inputs[k].value for k in checked] + [np.ones(y.shape)],
                     [inputs[k].dtype for k in checked] + [y.dtype], [y.value] + grads, [seed, 3])
    what = "fn(*inputs)" if y.size == 1 else (f"L = sum(w * fn(*inputs)), w a fixed random array of the output's "
                                              f"shape {y.shape} (seed={seed})")
    if torch_fn is not None:
        _torch_twin(torch_fn, inputs, checked, names, y, grads, w64, spreads)
    if not fd:
        return True

    def evaluate(arrays, with_grads):
        a, y64 = call(np.float64, dict(zip(checked, arrays)))
        if y64.dtype != np.float64:
            raise TypeError(f"gradcheck: fn returns {y64.dtype} for float64 copies of its inputs; finite differences "
                            "need float64 arithmetic: let fn follow its inputs' dtype (e.g. constants with "
                            "dtype=x.dtype)")
        if y64.shape != y.shape:
            raise ValueError(f"gradcheck: fn returns shape {y64.shape} for float64 copies of its inputs, {y.shape} "
                             "for the inputs themselves")
        L = float(np.sum(y64.value * w64))
        if not with_grads:
            return L, None
        (y64 * w64).sum().backward()
        return L, [np.array(a[k].grad, dtype=np.float64) for k in checked]

    x = [np.array(inputs[k].value, dtype=np.float64) for k in checked]
    _, y64 = call(np.float64)
    return check_point(Point(names=[names[k] for k in checked], x=x, dtypes=[inputs[k].dtype for k in checked],
                             grads=grads, evaluate=evaluate, gradient=lambda values, cot: run(values, cot)[1],
                             outputs=[(y.shape, y.dtype)], scale=float(np.sum(np.abs(y64.value * w64))),
                             low=float(np.sum(np.abs(w64) * np.abs(y.value.astype(np.float64) - y64.value))),
                             what=what, seed=seed, coordinates=coordinates))


def _torch_twin(torch_fn, inputs, checked, names, y, grads, w64, measure) -> None:
    """fn's value and gradients against torch_fn's, in float64, under the suite's rule. The
    spread is the measured rounding noise (`noise.measure_noise`) of pygrad's computation plus that
    of torch_fn's (a float64 twin rounds too: a max-shifted exp amplifies it); a gradient is
    also allowed the resolution of its precision (`noise.resolution`: the bound the finite
    difference comparison carries through its roundoff term), since rounding hidden behind
    a saturated intermediate shows in neither noise."""
    import torch
    from pygrad import Tensor

    def run(arrays, cot=None):
        targs = []
        for k, a in enumerate(inputs):
            if isinstance(a, Tensor):
                val = arrays[checked.index(k)] if k in checked else a.value
                targs.append(torch.tensor(np.asarray(val, dtype=np.float64), requires_grad=k in checked))
            else:
                targs.append(a)
        yt = torch_fn(*targs)
        if not isinstance(yt, torch.Tensor):
            raise TypeError(f"gradcheck: torch_fn must return a torch.Tensor, got {type(yt).__name__}")
        if tuple(yt.shape) != y.shape:
            raise ValueError(f"gradcheck: torch_fn returns shape {tuple(yt.shape)}, fn returns {y.shape}")
        leaves = [targs[k] for k in checked]
        gs = [None] * len(leaves)
        if yt.requires_grad:
            wc = w64 if cot is None else w64 * cot[0]
            gs = torch.autograd.grad((yt.double() * torch.from_numpy(wc)).sum(), leaves, allow_unused=True)
        return (yt.detach().double().numpy().copy(),
                [np.zeros(inputs[k].shape) if g is None else g.numpy().copy() for k, g in zip(checked, gs)])

    x = [np.array(inputs[k].value, dtype=np.float64) for k in checked]
    want_y, want_g = run(x)
    box = {}
    dtypes = [inputs[k].dtype for k in checked] + [y.dtype]
    xmax = max(float(np.max(np.abs(a), initial=0.0)) for a in x)
    res_g = resolution(dtypes, float(np.sum(np.abs(want_y * w64))),
                       float(np.sum(np.abs(w64) * np.abs(y.value.astype(np.float64) - want_y))),
                       [unit(inputs[k].dtype) * float(np.vdot(np.abs(g), np.abs(a)))
                        for k, g, a in zip(checked, want_g, x)], xmax, low_only=False)
    # a lower-precision value is held to u' of its largest entry (a sum over the array, a
    # saturated entry, rounds by as much); float64 to the suite's rule alone
    res_y = unit(y.dtype) * float(np.max(np.abs(want_y), initial=0.0)) if unit(y.dtype) > unit(np.float64) else 0.0

    def spreads():
        if not box:
            def twin(arrays):
                value, gs = run(arrays[:-1], arrays[-1:])
                return [value] + gs
            mine = measure()
            theirs = measure_noise(twin, x + [np.ones(y.shape)], [np.float64] * (len(x) + 1), [want_y] + want_g, [0, 4])
            total = [a + b for a, b in zip(mine, theirs)]
            box["y"], box["g"] = total[0], total[1:]
        return box
    i, tol = worst_element(y.value, want_y, tolerances_of(want_y, y.dtype, lambda: spreads()["y"], res_y))
    if i is not None:
        idx, got, want = index_of(y.shape, i), float(y.value.reshape(-1)[i]), float(want_y.reshape(-1)[i])
        raise ValueMismatch(f"gradcheck: the value of fn differs from torch_fn's at index {idx}:\n"
                            f"  {'pygrad:':<20}{got:.17g}\n  {'torch (float64):':<20}{want:.17g}\n"
                            f"  |error| {abs(got - want):.3g} > tolerance {tol:.3g}", None, idx, got, want, tol)
    for j, k in enumerate(checked):
        g = grads[j]
        i, tol = worst_element(g, want_g[j], tolerances_of(want_g[j], g.dtype, lambda j=j: spreads()["g"][j], res_g))
        if i is not None:
            idx, got, want = index_of(g.shape, i), float(g.reshape(-1)[i]), float(want_g[j].reshape(-1)[i])
            raise GradientMismatch(f"gradcheck: the gradient of {names[k]} differs from torch_fn's at index {idx}:\n"
                                   f"  {'pygrad:':<20}{got:.17g}\n  {'torch (float64):':<20}{want:.17g}\n"
                                   f"  |error| {abs(got - want):.3g} > tolerance {tol:.3g}", names[k], idx, got, want,
                                   tol)
