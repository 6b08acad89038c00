"""Probe cases of the Tensor operations: each op against torch, on inputs drawn from a NumPy
RNG, under the conditions its gradient rule branches on (broadcast shapes, constants on
either side and reflected forms, float32, float64 and both mixed, exact zeros, every axis
form, 1-D and batched matmul operands, strides and padding, ...). Gradients are those of
sum(W * out) for a random W, seeded into pygrad's graph without any op of pygrad's own."""
from __future__ import annotations

import numpy as np

from reference.selftest.probe_base import Case, compare, side

F32, F64 = np.float32, np.float64
DTYPES = ((F64, F64), (F32, F32), (F32, F64), (F64, F32))
BROADCAST = (((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)),
             ((1,), (3, 2, 1)), ((2, 3), (1, 1)))


def _tolerance(*dtypes) -> dict:
    return {"rtol": 2e-4, "atol": 1e-5} if F32 in dtypes else {"rtol": 1e-7, "atol": 1e-9}


def _backward(pg, out, w):
    """Back-propagate sum(w * out) from `out`: a root whose rule hands w to `out`."""
    root = pg.Tensor._result(np.asarray(np.sum(out.value * w)), (out,), lambda g: out._add_grad(w * g))
    root.backward()


def _t(torch, x):
    """The torch oracle's copy of `x`: float64 whatever pygrad's dtype (torch promotes a 0-D
    tensor as a scalar where NumPy promotes it as an array; the oracle is the exact value)."""
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def check(pg, torch, rng, arrays: list, pg_fn, t_fn, what: str = "", loose: bool = False) -> list:
    """Compare `pg_fn(*tensors)` and its gradients with `t_fn(*torch tensors)` (float64);
    `arrays` are the learnable inputs, in their dtypes; `loose`: float32 accuracy (a float32
    constant is involved). Each gradient must also have its tensor's dtype."""
    tt = [_t(torch, a).requires_grad_(True) for a in arrays]
    t_out = t_fn(*tt)
    w = rng.standard_normal(tuple(t_out.shape))
    (t_out * torch.as_tensor(w)).sum().backward()
    with side():
        xs = [pg.Tensor(a, dtype=a.dtype) for a in arrays]
        out = pg_fn(*xs)
        _backward(pg, out, w.astype(out.value.dtype))
        got = [out.value] + [x.grad for x in xs]
    want = [t_out.detach().numpy()] + [t.grad.numpy() for t in tt]
    tol = _tolerance(F32 if loose else F64, *[a.dtype.type for a in arrays])
    names = ["value"] + [f"grad {i}" for i in range(len(arrays))]
    out = [compare(f"{what} {n}", g, t, **tol) for n, g, t in zip(names, got, want)]
    return out + [compare(f"{what} grad {i} dtype {np.asarray(g).dtype}", float(np.asarray(g).dtype == a.dtype), 1.0)
                  for i, (g, a) in enumerate(zip(got[1:], arrays))]


def _draw(rng, shape, dtype, low=-2.0, high=2.0, away=0.0):
    x = rng.uniform(low, high, shape)
    if away:
        x = np.where(np.abs(x) < away, np.sign(x + 1e-300) * away, x)
    return np.asarray(x, dtype=dtype)


def _case(name, rows, body):
    return Case(name, tuple(rows), body)


# ---------------------------------------------------------------------------- arithmetic
_SYMBOL = {"add": (lambda a, b: a + b), "sub": (lambda a, b: a - b), "mul": (lambda a, b: a * b),
           "div": (lambda a, b: a / b)}
_KINDS = ("tensors", "right array", "left array", "right number", "left number")


def _binary(op: str, kind: str):
    fn = _SYMBOL[op]
    reflected = kind.startswith("left")

    def body(pg, torch, rng):
        out = []
        for da, db in DTYPES:
            for sa, sb in BROADCAST:
                a = _draw(rng, sa, da)
                b = _draw(rng, sb, db, away=0.5 if op == "div" else 0.0)
                loose = F32 in (da, db)
                if kind == "tensors":
                    out += check(pg, torch, rng, [a, b], fn, fn, f"{sa}{da.__name__}/{sb}{db.__name__}", loose)
                    continue
                const = float(b.flat[0]) if kind.endswith("number") else b
                tconst = const if isinstance(const, float) else _t(torch, const)
                if reflected:
                    out += check(pg, torch, rng, [a], lambda x: fn(const, x), lambda x: fn(tconst, x), f"{sa}/{sb}",
                                 loose)
                else:
                    out += check(pg, torch, rng, [a], lambda x: fn(x, const), lambda x: fn(x, tconst), f"{sa}/{sb}",
                                 loose)
        return out
    row = ("r" + op) if reflected else op
    return _case(f"{op} {kind}", [row], body)


def _pow_scalar(pg, torch, rng):
    out = []
    for dtype in (F64, F32):
        for p in (2, 3, 0.5, -1.5, 0, 1, 2.5, np.float32(2.5), np.float64(-0.5)):
            base = _draw(rng, (3, 4), dtype, 0.3, 2.0)
            if p in (2, 3, 0, 1):
                base[0, :2] = 0.0            # exact zeros, where torch defines the derivative
            tp = float(p) if isinstance(p, np.floating) else p
            out += check(pg, torch, rng, [base], lambda x: x ** p, lambda x: x ** tp, f"p={p!r} {dtype.__name__}")
    return out


def _pow_tensor(pg, torch, rng):
    out = []
    for da, db in DTYPES:
        for sa, sb in BROADCAST:
            a = _draw(rng, sa, da, 0.3, 2.0)
            b = _draw(rng, sb, db, -2.0, 2.0)
            if a.ndim and a.size > 1:
                a.flat[0] = 0.0
                b[...] = np.abs(b)           # 0 ** b with b >= 0
            loose = F32 in (da, db)
            out += check(pg, torch, rng, [a, b], lambda x, y: x ** y, lambda x, y: x ** y, f"{sa}/{sb}", loose)
            bc = _draw(rng, sb, db, -2.0, 2.0)
            out += check(pg, torch, rng, [a], lambda x: x ** bc, lambda x: x ** _t(torch, bc), f"array exp {sb}",
                         loose)
    return out


def _rpow(pg, torch, rng):
    out = []
    for dtype in (F64, F32):
        x = _draw(rng, (2, 3), dtype)
        out += check(pg, torch, rng, [x], lambda t: 2.0 ** t, lambda t: 2.0 ** t, "2 ** x")
        base = _draw(rng, (3,), dtype, 0.5, 3.0)
        out += check(pg, torch, rng, [x], lambda t: base ** t, lambda t: _t(torch, base) ** t, "array ** x")
    return out


def _unary(name, t_fn, low=-2.0, high=2.0, zeros=False):
    def body(pg, torch, rng):
        out = []
        for dtype in (F64, F32):
            for shape in ((3, 4), (), (2, 1, 3)):
                x = _draw(rng, shape, dtype, low, high)
                if zeros and x.size > 1:
                    x.flat[::2] = 0.0
                out += check(pg, torch, rng, [x], lambda t: -t if name == "neg" else getattr(t, name)(), t_fn,
                             f"{shape} {dtype.__name__}")
        return out
    return _case(name, [name], body)


# ---------------------------------------------------------------------------- matmul
MATMUL = (((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (2, 4, 5)),
          ((2, 1, 3, 4), (3, 4, 2)), ((3, 4), (2, 4, 5)), ((3, 3), (3,)), ((3,), (2, 3, 3)), ((1, 3, 4), (2, 4, 4)))


def _matmul(kind):
    def body(pg, torch, rng):
        out = []
        for da, db in DTYPES[:3]:
            for sa, sb in MATMUL:
                a, b = _draw(rng, sa, da), _draw(rng, sb, db)
                loose = F32 in (da, db)
                if kind == "tensors":
                    out += check(pg, torch, rng, [a, b], lambda x, y: x @ y, lambda x, y: x @ y, f"{sa}@{sb}", loose)
                elif kind == "left array":
                    out += check(pg, torch, rng, [b], lambda y: a @ y, lambda y: _t(torch, a) @ y, f"{sa}@{sb}", loose)
                else:
                    out += check(pg, torch, rng, [a], lambda x: x @ b, lambda x: x @ _t(torch, b), f"{sa}@{sb}", loose)
        return out
    return _case(f"matmul {kind}", ["rmatmul" if kind == "left array" else "matmul"], body)


# ---------------------------------------------------------------------------- reductions
AXES = (None, 0, 1, -1, (0, 2), (-1, 0))


def _reduce(name):
    def torch_fn(t, axis, keep):
        dim = tuple(range(t.ndim)) if axis is None else axis
        if name == "std":
            return t.std(dim=dim, correction=0, keepdim=keep)
        return getattr(t, name)(dim=dim, keepdim=keep)

    def body(pg, torch, rng):
        out = []
        for dtype in (F64, F32):
            x = _draw(rng, (3, 4, 5), dtype)
            if name == "std":
                x[0, 1, :] = 0.75            # a constant row: torch's gradient there is 0
            for axis in AXES:
                for keep in (True, False):
                    out += check(pg, torch, rng, [x], lambda t: getattr(t, name)(axis=axis, keepdims=keep),
                                 lambda t: torch_fn(t, axis, keep), f"axis={axis} keepdims={keep}")
            y = _draw(rng, (2, 3), dtype)
            default = (None, False) if name == "sum" else (-1, True)
            out += check(pg, torch, rng, [y], lambda t: getattr(t, name)(), lambda t: torch_fn(t, *default), "defaults")
        return out
    return _case(name, [name], body)


# ---------------------------------------------------------------------------- shapes and indexing
def _reshape(pg, torch, rng):
    x = _draw(rng, (3, 4), F64)
    return sum((check(pg, torch, rng, [x], lambda t: t.reshape(s), lambda t: t.reshape(s), str(s))
                for s in ((-1,), (4, 3), (2, 1, 6))), [])


def _transpose(pg, torch, rng):
    x = _draw(rng, (2, 3, 4), F64)
    out = check(pg, torch, rng, [x], lambda t: t.transpose(), lambda t: t.permute(2, 1, 0), "reversed")
    for axes in ((1, 0, 2), (2, 0, 1), (0, -1, 1)):
        perm = tuple(a % 3 for a in axes)
        out += check(pg, torch, rng, [x], lambda t: t.transpose(axes), lambda t: t.permute(perm), str(axes))
    return out


def _T(pg, torch, rng):
    out = []
    for shape in ((2, 3, 4), (3, 4), (3, 3), (2, 4, 4)):
        x = _draw(rng, shape, F64)
        out += check(pg, torch, rng, [x], lambda t: t.T, lambda t: t.mT, str(shape))
    return out


INDICES = (1, -1, slice(1, 3), slice(None, None, -1), (Ellipsis, 0), (None, 1), [0, 2, 0], ([0, 1], [2, 2]),
           (slice(None), [3, -1, 3]), np.array([[0, 1], [1, 1]]))


def _getitem(pg, torch, rng):
    out = []
    x = _draw(rng, (3, 4), F64)
    for idx in INDICES:
        t_idx = tuple(torch.as_tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in idx) \
            if isinstance(idx, tuple) else (torch.as_tensor(idx) if isinstance(idx, (list, np.ndarray)) else idx)
        t_fn = (lambda t: t.flip(0)) if isinstance(idx, slice) and idx.step == -1 else (lambda t: t[t_idx])   # no negative steps
        out += check(pg, torch, rng, [x], lambda t: t[idx], t_fn, repr(idx))
    mask = x > 0
    out += check(pg, torch, rng, [x], lambda t: t[mask], lambda t: t[torch.as_tensor(mask)], "mask")
    return out


def _mask_idcs(pg, torch, rng):
    out = []
    x = _draw(rng, (3, 4), F64)
    for idcs, value in (((np.array([0, 2]), np.array([1, 3])), 0.0), ((np.array([1, 1]), np.array([0, 0])), 2.5)):
        def t_fn(t, idcs=idcs, value=value):
            y = t.clone()
            y[tuple(torch.as_tensor(i) for i in idcs)] = value
            return y
        out += check(pg, torch, rng, [x], lambda t: t.mask_idcs(idcs, value), t_fn, f"value={value}")
    return out


# ---------------------------------------------------------------------------- nn
def _softmax(name):
    def body(pg, torch, rng):
        out = []
        t_fn = torch.softmax if name == "softmax" else torch.log_softmax
        for dtype in (F64, F32):
            for scale in (2.0, 300.0):
                x = _draw(rng, (3, 4, 5), dtype, -scale, scale)
                for axis in (-1, 0, 1):
                    out += check(pg, torch, rng, [x], lambda t: getattr(t, name)(axis=axis),
                                 lambda t: t_fn(t, dim=axis), f"axis={axis} scale={scale}")
        return out
    return _case(name, [name], body)


def _conv(kind):
    def body(pg, torch, rng):
        import torch.nn.functional as F
        out = []
        configs = [(1, 0, F64, (3, 5, 6)), (2, 1, F64, (3, 5, 6)), (1, 1, F32, (3, 5, 6))]
        if kind == "shared kernel":   # an im2col matrix beyond pygrad's chunking threshold (formed in chunks)
            configs.append((1, 1, F64, (4, 64, 64)))
        for stride, padding, dtype, (c, h, w) in configs:
            x = _draw(rng, (2, c, h, w), dtype)
            if kind == "shared kernel":
                k = _draw(rng, (1, 2, c, 2, 3), dtype)
                t_fn = lambda kt, xt: F.conv2d(xt, kt[0], stride=stride, padding=padding)  # noqa: E731
            else:
                k = _draw(rng, (2, 2, c, 2, 2), dtype)
                t_fn = lambda kt, xt: torch.cat([F.conv2d(xt[b:b + 1], kt[b], stride=stride,  # noqa: E731
                                                          padding=padding) for b in range(2)])
            out += check(pg, torch, rng, [k, x], lambda kt, xt: kt.conv2D(xt, stride=stride, padding=padding),
                         t_fn, f"stride={stride} padding={padding} {dtype.__name__}")
            out += check(pg, torch, rng, [k], lambda kt: kt.conv2D(x, stride=stride, padding=padding),
                         lambda kt: t_fn(kt, _t(torch, x)), "input constant", dtype == F32)
        return out
    return _case(f"conv2D {kind}", ["conv2D"], body)


CASES = ([_binary(op, kind) for op in _SYMBOL for kind in _KINDS]
         + [_case("pow scalar", ["pow"], _pow_scalar), _case("pow tensor", ["pow_tensor"], _pow_tensor),
            _case("rpow", ["rpow"], _rpow)]
         + [_unary("neg", lambda t: -t), _unary("relu", lambda t: t.relu(), zeros=True),
            _unary("tanh", lambda t: t.tanh(), -4, 4), _unary("sigmoid", lambda t: t.sigmoid(), -40, 40),
            _unary("exp", lambda t: t.exp()), _unary("log", lambda t: t.log(), 0.1, 3.0)]
         + [_matmul(kind) for kind in ("tensors", "left array", "right array")]
         + [_reduce(name) for name in ("sum", "mean", "std")]
         + [_case("reshape", ["reshape"], _reshape), _case("transpose", ["transpose"], _transpose),
            _case("T", ["T"], _T), _case("getitem", ["getitem"], _getitem),
            _case("mask_idcs", ["mask_idcs"], _mask_idcs)]
         + [_softmax("softmax"), _softmax("softmax_log")]
         + [_conv("shared kernel"), _conv("kernel per batch entry")])
