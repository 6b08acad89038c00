"""Probe cases of the engine, Modules, optimizers and `pygrad.function`: graphs with
fan-out, learnable=False nodes and deep chains, the contract's backward schedules, a
Module's batched copy against its torch twin, optimizer trajectories (two steps and more,
several parameters, one absent from the graph, one with a zero gradient, accumulation with
`step_single`) against torch.optim, and user-defined ops with constants in every position."""
from __future__ import annotations

import numpy as np

from reference.selftest.probe_ops import F64, _backward, _draw, check
from reference.selftest.probe_base import Case, compare, side


def _holds(what: str, ok: bool):
    return compare(what, float(ok), 1.0)


# ---------------------------------------------------------------------------- engine
def _fanout(pg, torch, rng):
    x = _draw(rng, (3, 4), F64)

    def f(t):
        a = t.tanh()
        b = a * a + a.exp() * t
        return b - a
    return check(pg, torch, rng, [x], f, f, "a used three times")


def _schedules(pg, torch, rng):
    """The contract's example (DESIGN.md: 3, 3, then 11), and the same schedule on a random
    graph against torch.autograd.backward([root, *intermediates], [ones, *their grads])."""
    out = []
    with side():
        x = pg.Tensor(1.0)
        y = x ** 2 + x + 1
        seen = []
        for reset in (True, True, False):
            y.backward(reset_grad=reset)
            seen.append(float(x.grad))
    out.append(compare("x.grad after backward, backward, backward(reset_grad=False)", seen, [3.0, 3.0, 11.0]))
    xv = _draw(rng, (3,), F64)
    xt = torch.tensor(xv, requires_grad=True)
    at = xt.tanh()
    bt = at * xt
    rt = bt.sum()
    at.retain_grad()
    bt.retain_grad()
    rt.backward(retain_graph=True)
    torch.autograd.backward([rt, at, bt], [torch.ones(()), at.grad.clone(), bt.grad.clone()])
    with side():
        x = pg.Tensor(xv)
        a = x.tanh()
        b = a * x
        r = b.sum()
        r.backward()
        first = x.grad.copy()
        r.backward()
        again = x.grad.copy()
        r.backward(reset_grad=False)
        second = x.grad.copy()
    out.append(compare("backward twice", again, first))
    out.append(compare("backward(reset_grad=False)", second, xt.grad.numpy()))
    return out


def _structure(pg, torch, rng):
    with side():
        x = pg.Tensor(1.0, label="x")
        s = x ** 2
        t = s + x
        y = t + 1
        topo, weights = y.create_graph()
        y.backward()
        ok = ([id(n) for n in topo] == [id(x), id(s), id(t), id(y)] and [id(w) for w in weights] == [id(x)]
              and [id(n) for n in y.topo] == [id(x), id(s), id(t), id(y)] and [id(w) for w in y.weights] == [id(x)])
        xin = pg.Tensor(_draw(rng, (2, 3), F64), leaf=True)
        w = pg.Tensor(_draw(rng, (3, 2), F64))
        z = (xin @ w).sum()
        z.backward()
        ok2 = [id(n) for n in z.weights] == [id(w)] and xin in z.topo
    return [_holds("topo and weights of x**2 + x + 1 (DESIGN.md)", ok), _holds("weights of (x @ W).sum()", ok2)]


def _not_learnable(pg, torch, rng):
    xv, cv = _draw(rng, (3,), F64), _draw(rng, (3,), F64)
    xt, ct = torch.tensor(xv, requires_grad=True), torch.tensor(cv, requires_grad=True)
    (xt * ct + ct.exp() * 2.0).sum().backward()
    with side():
        x, c = pg.Tensor(xv), pg.Tensor(cv, learnable=False)
        y = (x * c + c.exp() * 2.0).sum()
        y.backward()
        absent = all(n is not c for n in y.topo)
        got = [x.grad.copy(), c.grad.copy()]
    return [compare("x.grad", got[0], xt.grad.numpy()), compare("c.grad (learnable=False)", got[1], ct.grad.numpy()),
            _holds("a learnable=False tensor is absent from topo", absent)]


def _deep(pg, torch, rng):
    xv = _draw(rng, (2,), F64)

    def chain(t):
        for _ in range(1500):
            t = t * 0.999 + 0.001
        return t
    return check(pg, torch, rng, [xv], chain, chain, "3000 ops")


def _nonscalar_root(pg, torch, rng):
    xv = _draw(rng, (2, 3), F64)
    xt = torch.tensor(xv, requires_grad=True)
    (xt * 3.0).backward(torch.ones(2, 3))
    with side():
        x = pg.Tensor(xv)
        (x * 3.0).backward()
        got = x.grad.copy()
    return [compare("gradient of a non-scalar root (ones seeded)", got, xt.grad.numpy())]


# ---------------------------------------------------------------------------- Module
def _module(pg, torch, rng):
    from pygrad.basics import Linear            # the pygrad `pg` loaded (sys.modules)
    from pygrad.activations import ReLU
    from pygrad.module import Module
    from pygrad.optims import SGD

    class Net(Module):
        def __init__(self):
            self.d1, self.relu, self.d2 = Linear(4, 3), ReLU(), Linear(3, 2)
            super().__init__(x=pg.Tensor(np.ones((1, 1, 4)), leaf=True))

        def forward(self, x):
            return self.d2(self.relu(self.d1(x)))

    out = []
    with side():
        net = Net()
        before = [w.value.copy() for w in net.weights]
    for batch in (5, 2):
        xv, yv = _draw(rng, (batch, 1, 4), F64), _draw(rng, (batch, 1, 2), F64)
        tw = [torch.tensor(w.value, requires_grad=True) for w in net.weights]
        h = torch.relu(torch.as_tensor(xv) @ tw[0] + tw[1])
        tl = ((h @ tw[2] + tw[3] - torch.as_tensor(yv)) ** 2).sum(-1).mean(0)
        tl.sum().backward()
        with side():
            net.model_reset()
            pred = net(x=pg.Tensor(xv, leaf=True))
            loss = ((pred - pg.Tensor(yv, leaf=True)) ** 2).sum(axis=-1).mean(axis=0, keepdims=False)
            loss.backward()
            twins = {w.uid: w for w in loss.weights}
            grads = [twins[w.uid].grad.copy() for w in net.weights]
            untouched = all(not w.grad.any() for w in net.weights)
            SGD(net.weights, lr=0.1).step(loss)
            synced = all(np.array_equal(twins[w.uid].value, w.value) for w in net.weights)
            again = net(x=pg.Tensor(xv, leaf=True)).value
        out += [compare(f"batch {batch}: grad of weight {i}", g, t.grad.numpy()) for i, (g, t) in enumerate(zip(grads, tw))]
        out += [compare(f"batch {batch}: weight {i} after SGD", w.value, t.detach().numpy() - 0.1 * t.grad.numpy())
                for i, (w, t) in enumerate(zip(net.weights, tw))]
        out += [_holds(f"batch {batch}: original weights' grads untouched", untouched),
                _holds(f"batch {batch}: the copy's twins hold the new values", synced)]
        with torch.no_grad():
            h = torch.relu(torch.as_tensor(xv) @ (tw[0] - 0.1 * tw[0].grad) + (tw[1] - 0.1 * tw[1].grad))
            want = h @ (tw[2] - 0.1 * tw[2].grad) + (tw[3] - 0.1 * tw[3].grad)
        out.append(compare(f"batch {batch}: a call without model_reset after the step", again, want.numpy()))
    out.append(_holds("a copy has no copy", net.copy is not None and net.copy.copy is None))
    out.append(_holds("weights never resized", all(w.shape == b.shape for w, b in zip(net.weights, before))))
    return out


# ---------------------------------------------------------------------------- optimizers
OPTIMS = {"SGD": ({"lr": 0.1}, "SGD", {"lr": 0.1}),
          "SGD_Momentum": ({"lr": 0.1, "beta": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
          "RMSProp": ({"lr": 0.05, "beta": 0.8, "eps": 1e-2}, "RMSprop", {"lr": 0.05, "alpha": 0.8, "eps": 1e-2}),
          "Adam": ({"lr": 0.05, "beta1": 0.8, "beta2": 0.9, "eps": 1e-2}, "Adam",
                   {"lr": 0.05, "betas": (0.8, 0.9), "eps": 1e-2})}


def _loss(params, c, v, lib):
    """sum(c * p1**2) + sum((p2 @ v)**2) + sum(0 * p4): p3 takes no part (no update), p4's
    gradient is exactly zero (torch still steps its state)."""
    p1, p2, _, p4 = params
    return (c * p1 ** 2).sum() + ((p2 @ v) ** 2).sum() + (p4 * 0.0).sum()


def _optimizer(kind, accumulate: bool):
    ours, theirs, t_kw = OPTIMS[kind]

    def body(pg, torch, rng):
        from pygrad import optims
        shapes = ((3,), (2, 2), (2,), (3,))
        init = [_draw(rng, s, F64) for s in shapes]
        c, v = _draw(rng, (3,), F64), _draw(rng, (2,), F64)
        tp = [torch.tensor(a, requires_grad=True) for a in init]
        topt = getattr(torch.optim, theirs)([p for i, p in enumerate(tp) if i != 2], **t_kw)
        with side():
            params = [pg.Tensor(a) for a in init]
            opt = getattr(optims, kind)(params, **ours)
        out = []
        for step in range(4):
            topt.zero_grad()
            if accumulate:            # two halves, then one update with the sum / batch_size
                for half in (0, 1):
                    (_loss(tp, torch.as_tensor(c), torch.as_tensor(v), torch) * (0.5 + half)).backward()
                for p in tp:
                    if p.grad is not None:
                        p.grad /= 2
            else:
                _loss(tp, torch.as_tensor(c), torch.as_tensor(v), torch).backward()
            topt.step()
            with side():
                opt.zero_grad()
                if accumulate:
                    for half in (0, 1):
                        loss = _loss(params, c, v, pg) * (0.5 + half)
                        loss.backward()
                        opt.step_single(loss, 2)
                    opt.step_single(loss, 2, modify=True)
                else:
                    loss = _loss(params, c, v, pg)
                    loss.backward()
                    opt.step(loss)
                got = [p.value.copy() for p in params]
            out += [compare(f"step {step + 1}: parameter {i}", g, t.detach().numpy()) for i, (g, t) in enumerate(zip(got, tp))]
        return out
    return Case(f"{kind} {'step_single' if accumulate else 'step'}", (f"optim:{kind}",), body)


# ---------------------------------------------------------------------------- pygrad.function
def _function(pg, torch, rng):
    @pg.function
    def scaled_sin(a, b):
        def backward(g):
            return g * np.sin(b), g * a * np.cos(b)
        return a * np.sin(b), backward

    def t_fn(a, b):
        return a * torch.sin(torch.as_tensor(b))
    out = []
    for sa, sb in (((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3))):
        a, b = _draw(rng, sa, F64), _draw(rng, sb, F64)
        out += check(pg, torch, rng, [a, b], scaled_sin, t_fn, f"{sa}, {sb}")
        out += check(pg, torch, rng, [b], lambda y: scaled_sin(a, y), lambda y: t_fn(torch.as_tensor(a), y),
                     f"constant first {sa}")
        out += check(pg, torch, rng, [a], lambda x: scaled_sin(x, b), lambda x: t_fn(x, torch.as_tensor(b)),
                     f"constant second {sb}")
    x = _draw(rng, (3,), F64)
    out += check(pg, torch, rng, [x], lambda t: scaled_sin(t, t), lambda t: t_fn(t, t), "one Tensor in both places")
    return out


CASES = ([Case("engine fan-out", ("engine",), _fanout), Case("engine schedules", ("engine",), _schedules),
          Case("engine structure", ("engine",), _structure), Case("engine learnable=False", ("engine",), _not_learnable),
          Case("engine deep chain", ("engine",), _deep), Case("engine non-scalar root", ("engine",), _nonscalar_root),
          Case("module", ("module", "layer:Linear"), _module)]
         + [_optimizer(kind, acc) for kind in OPTIMS for acc in (False, True)]
         + [Case("pygrad.function", (), _function)])
