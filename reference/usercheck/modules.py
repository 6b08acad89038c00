"""`check_module`: a user's Module under the suite's Module properties.

Batching (any batch size including 1; the batched output equals the per-sample outputs
stacked, also after the batch size changes), the original weights untouched until a step and
never resized, every weight's gradient against finite differences (as `gradcheck`), and the
copy semantics of an optimizer step and of `model_reset`. The checks run on the model itself
and restore it afterwards.
"""
from __future__ import annotations

import copy as copymod

import numpy as np

from reference.usercheck.errors import ModuleCheckError
from reference.usercheck.functions import check_ints, describe, index_of, not_finite, tolerances_of
from reference.usercheck.noise import measure_noise, worst_element
from reference.usercheck.point import COORDINATES, Point, check_point

__all__ = ["check_module"]


SAMPLES = 8      # samples of the batch checked alone
EXTRA = 0.75     # the new sample of the larger batch: the batch's first, scaled
STEP_LR = 1e-2   # learning rate of the SGD step that checks the copy semantics


def check_module(model, /, *, loss=None, seed: int = 0, coordinates: int = COORDINATES, **example_inputs) -> bool:
    """Check a user's Module under the suite's Module properties.

    `example_inputs` are the model's keyword inputs for one batch (the first axis of every
    Tensor input is the batch; other arguments are passed unchanged); `loss(output)` maps
    the model's output (a tuple for a model with several) to a scalar Tensor -- by default
    sum(w * output), w fixed and random. Checked, in this order: two calls on the same inputs
    agree; after a call and `loss.backward()` the original weights' values and gradients are
    untouched and no weight was resized; each sample alone gives its row of the batched
    output (batch size 1), and so does a call with a larger batch without model_reset (batch
    sizes change between calls); the gradient of the loss w.r.t. every weight (held by the
    batched copy) matches finite differences in float64, as `gradcheck`; an optimizer step
    updates the batched copy too, `model_reset()` drops it and the next call copies the
    current weights.

    The checks run on `model` itself (a deep copy could hide a weight it shares, e.g. a class
    attribute); its weights' values and gradients and its batched copy are restored afterwards.

    Returns True; raises `ModuleCheckError`, `GradientMismatch` or `KinkError` naming the
    property, the weight and the index, or TypeError/ValueError for bad arguments."""
    from pygrad import SGD, Module, Tensor
    if not isinstance(model, Module):
        raise TypeError(f"check_module: model must be a pygrad Module, got {type(model).__name__}")
    if "weights" not in model.__dict__:
        raise TypeError(f"check_module: {type(model).__name__}.__init__ must end with "
                        "super().__init__(**example_inputs)")
    if loss is not None and not callable(loss):
        raise TypeError(f"check_module: loss must be a function of the model's output, got {type(loss).__name__}")
    check_ints("check_module", seed=seed, coordinates=coordinates)
    batch = [k for k, v in example_inputs.items() if isinstance(v, Tensor)]
    if not batch:
        raise TypeError("check_module: give the model's example inputs as keywords, e.g. check_module(model, x=x) "
                        "with x a Tensor whose first axis is the batch")
    shapes = {k: example_inputs[k].shape for k in batch}
    if any(len(s) == 0 for s in shapes.values()) or len({s[0] for s in shapes.values()}) != 1:
        raise ValueError(f"check_module: every Tensor input needs the same first (batch) axis, got shapes {shapes}")
    b = next(iter(shapes.values()))[0]
    if b == 0:
        raise ValueError(f"check_module: the batch is empty (shapes {shapes})")
    saved_copy = model.copy
    saved = [(w, w.value.copy(), np.array(w.grad)) for w in model.weights]
    try:
        c = _ModuleCheck(model, example_inputs, batch, b, loss, seed)
        c.calls_and_backward()
        c.batching()
        if c.weights:
            c.gradients(coordinates)
        c.step_and_reset(SGD)
    finally:
        for w, value, grad in saved:
            w.value = value
            w.grad = grad
        model.copy = saved_copy
    return True


def _outputs(out, who: str) -> list:
    from pygrad import Tensor
    items = list(out) if isinstance(out, (tuple, list)) else [out]
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise TypeError(f"{who}: the model must return a Tensor (or a tuple of Tensors), got {type(out).__name__}")
    return items


class _ModuleCheck:
    """The state of one `check_module` run: the model under test, its weights, the batch's
    outputs, and twins of the model (float64, and in its own dtypes) evaluated at other
    weights for finite differences and noise."""

    def __init__(self, m, inputs: dict, batch: list, b: int, loss, seed: int):
        self.m, self.raw, self.batch, self.b, self.loss, self.seed = m, inputs, batch, b, loss, seed
        m.model_reset()
        named = m.named_weights()
        self.names = [n for n, _ in named]
        self.weights = [w for _, w in named]
        self._twins, self._spread, self._ws = {}, None, None

    # ------------------------------------------------------------------ helpers
    def fail(self, message: str, name=None, index=None):
        return ModuleCheckError(f"check_module: {message}", name, index)

    def inputs(self, rows=slice(None), dtype=None, values=None) -> dict:
        """Fresh copies of the example inputs (the batch's `rows`; `values` replace them)."""
        from pygrad import Tensor
        out = {}
        for k, v in self.raw.items():
            if k in self.batch:
                val = values[k] if values is not None else v.value[rows]
                out[k] = Tensor(val, dtype=dtype or v.dtype, label=v.label, learnable=v.learnable, leaf=v.leaf)
            else:
                out[k] = v
        return out

    def call(self, model, inputs) -> list:
        return _outputs(model(**inputs), "check_module")

    def loss_of(self, outs: list, cot=None):
        """(the loss Tensor, its float64 value, the sum of the magnitudes of its terms).
        `cot`: factors (1 + r u) for the cotangent reaching each output (see `Point`)."""
        if self.loss is None:
            ws = self.projection(outs)
            if cot is not None:
                ws = [w * c for w, c in zip(ws, cot)]
            total = None
            for o, w in zip(outs, ws):
                term = (o * w.astype(o.dtype)).sum()
                total = term if total is None else total + term
            val = float(sum(np.sum(o.value * w) for o, w in zip(outs, ws)))
            return total, val, float(sum(np.sum(np.abs(o.value * w)) for o, w in zip(outs, ws)))
        from pygrad import Tensor
        L = self.loss(outs[0] if len(outs) == 1 else tuple(outs))
        if not isinstance(L, Tensor) or L.size != 1:
            raise TypeError(f"check_module: loss must return a single-element Tensor, got "
                            f"{type(L).__name__}{' of shape ' + str(L.shape) if isinstance(L, Tensor) else ''}")
        if cot is not None:     # shift each output's cotangent g by (c - 1) |g| (g: at the unperturbed weights)
            for o, c, g in zip(outs, cot, self._gout):
                L = L + (o * ((c - 1) * g)).sum()
        val = float(L.value.reshape(-1)[0])
        return L, val, abs(val)

    def projection(self, outs) -> list:
        if self._ws is None:
            rng = np.random.default_rng([self.seed, 0])
            self._ws = [rng.standard_normal(o.shape).astype(o.dtype).astype(np.float64) for o in outs]
        return self._ws

    # ------------------------------------------------------------------ 1. calls, backward, untouched originals
    def calls_and_backward(self) -> None:
        m, b = self.m, self.b
        before = [(w.value.copy(), w.grad.copy(), w.shape) for w in self.weights]
        x = self.inputs()
        out = self.call(m, x)
        for j, o in enumerate(out):
            if o.ndim == 0 or o.shape[0] != b:
                raise self.fail(f"output {j} has shape {o.shape} for a batch of {b}: the first axis of every output "
                                "must be the batch (each sample's output, stacked)")
            bad = not_finite(o.value)
            if bad is not None:
                raise ValueError(f"check_module: output {j} is not finite at index {bad}")
        again = self.call(m, self.inputs())
        for j, (o, a) in enumerate(zip(out, again)):
            if a.shape != o.shape or not np.array_equal(a.value, o.value):
                raise ValueError(f"check_module: two calls on the same inputs give different outputs (output {j}); "
                                 "random layers such as Dropout must be off for the check (e.g. training=False)")
        self.out = out
        L, _, _ = self.loss_of(out)
        L.backward()
        self.L = L
        if m.copy is None:
            raise self.fail("a call must run on the batched copy model.copy, but model.copy is None after it")
        twins = {t.uid: t for t in m.copy.weights}
        for name, w, (v0, g0, s0) in zip(self.names, self.weights, before):
            t = twins.get(w.uid)
            if t is None:
                raise self.fail(f"the batched copy model.copy has no twin of weight {name} (matched by uid)", name)
            for who, u in (("original", w), ("batched copy's", t)):
                if u.shape != s0 or u.grad.shape != s0:
                    raise self.fail(f"after a batch of {b}, the {who} {name} has value {u.shape} and grad "
                                    f"{u.grad.shape}, not {s0}: weights must never be resized", name)
            if not np.array_equal(w.value, v0):
                raise self.fail(f"the call changed the original weight {name}'s value: only an optimizer step may "
                                "(forward runs on the batched copy model.copy)", name)
            if not np.array_equal(w.grad, g0):
                raise self.fail(f"the call and loss.backward() changed the original weight {name}'s gradient: "
                                "backward must fill the batched copy only (is the weight shared between the model "
                                "and its copy, e.g. a class attribute or a global?)", name)
        self.grads = [np.array(twins[w.uid].grad) for w in self.weights]

    # ------------------------------------------------------------------ 2. batched = per-sample, batch sizes change
    def batching(self) -> None:
        b = self.b
        for i in range(min(b, SAMPLES)):
            alone = self.call(self.m, self.inputs(slice(i, i + 1)))
            self.same_rows(alone, [(0, i)], lambda r, s, i=i: f"sample {i} called alone (a batch of 1) gives a "
                           f"different output than row {s} of the batch of {b}")
        # a larger batch: the batch and a new sample (its first, scaled by 3/4), no model_reset
        extra = {k: self.raw[k].value[:1] * EXTRA for k in self.batch}
        big = self.call(self.m, self.inputs(values={k: np.concatenate([self.raw[k].value, extra[k]])
                                                    for k in self.batch}))
        self.same_rows(big, [(r, r) for r in range(b)],
                       lambda r, s: f"a call with a batch of {b + 1} (the batch and a new sample; no model_reset) "
                       f"gives a row {r} different from row {s} of the batch of {b}")
        alone = self.call(self.m, self.inputs(values=extra))
        self.same_rows(big, [(b, 0)], lambda r, s: f"a call with a batch of {b + 1} (the batch and a new sample: "
                       f"its sample 0 times {EXTRA}) gives a row {b} different from the new sample called alone",
                       alone)

    def same_rows(self, got: list, rows: list, what, ref: list | None = None) -> None:
        """Rows `rows` ((row of got, row of ref)) of every output agree; `ref`: the outputs
        of another call of the model, by default the batch's. The tolerance takes the spread of
        the batch's rows `ref`'s rows stand for (the new sample: the one it was scaled from)."""
        ref = self.out if ref is None else ref
        for call in (got, ref):
            n = call[0].shape[0] if call and call[0].ndim else 0
            if len(call) != len(self.out) or any(c.shape != (n,) + o.shape[1:] for c, o in zip(call, self.out)):
                raise self.fail(f"a call with a batch of {n} returns outputs of shapes {[c.shape for c in call]}, "
                                f"one of {self.b} returns {[o.shape for o in self.out]}: outputs must stack the "
                                "samples' outputs along the first axis")
        for j, (g, o) in enumerate(zip(got, ref)):
            mine = np.array([r for r, _ in rows])
            theirs = np.array([r for _, r in rows])
            gv, want = g.value[mine], o.value[theirs].astype(np.float64)
            i, tol = worst_element(gv, want,
                                   tolerances_of(want, o.dtype, lambda j=j, t=theirs: self.out_spread()[j][t]))
            if i is not None:
                idx = index_of(gv.shape, i)
                r = int(mine[idx[0]]), int(theirs[idx[0]])
                a, w_ = float(gv.reshape(-1)[i]), float(want.reshape(-1)[i])
                raise self.fail(f"{what(*r)} (output {j}, index {(r[1],) + idx[1:]}): {a:.17g} instead of "
                                f"{w_:.17g} (|error| {abs(a - w_):.3g} > tolerance {tol:.3g}). Each sample's output "
                                "must not depend on the other samples of the batch (a reduction over the batch axis, "
                                "e.g. mean(axis=0), mixes them)", None, (r[1],) + idx[1:])

    # ------------------------------------------------------------------ twins: the model at other weights
    def twin(self, dtype=None):
        """(a twin of the model, its batched copy's weights (in the order of `self.weights`),
        the inputs) in `dtype` (None: the model's own dtypes). The deep copy maps every weight
        to a fresh Tensor of its value in that dtype; setting the copy's weights' values
        evaluates the model at other weights without touching the model."""
        key = None if dtype is None else np.dtype(dtype).name
        if key not in self._twins:
            from pygrad import Tensor
            memo = {}
            for w in self.weights:
                t = Tensor(w.value, dtype=dtype or w.dtype, label=w.label, learnable=w.learnable, leaf=w.leaf)
                t.uid = w.uid
                memo[id(w)] = t
            twin = copymod.deepcopy(self.m, memo)
            twin.model_reset()
            x = self.inputs(dtype=dtype)
            self.call(twin, x)
            by_uid = {t.uid: t for t in twin.copy.weights}
            self._twins[key] = (twin, [by_uid[w.uid] for w in self.weights], x)
        return self._twins[key]

    def twin_outputs(self, weights: list, dtype=np.float64) -> list:
        twin, tw, x = self.twin(dtype)
        for t, a in zip(tw, weights):
            t.value = a
        outs = self.call(twin, x)
        if dtype is not None and any(o.dtype != np.float64 for o in outs):
            raise TypeError(f"check_module: the model returns {[str(o.dtype) for o in outs]} for float64 weights and "
                            "inputs; finite differences need float64 arithmetic: let forward follow its inputs' dtype")
        return outs

    def out_spread(self) -> list:
        """The rounding noise of every output of the batch (`noise.measure_noise`), the inputs moved."""
        if self._spread is None:
            def f(arrays):
                return [o.value for o in self.call(self.m, self.inputs(values=dict(zip(self.batch, arrays))))]
            self._spread = measure_noise(f, [self.raw[k].value for k in self.batch],
                                         [self.raw[k].dtype for k in self.batch],
                                         [o.value for o in self.call(self.m, self.inputs())], [self.seed, 4])
        return self._spread

    # ------------------------------------------------------------------ 3. gradients vs finite differences
    def gradients(self, coordinates: int) -> None:
        def evaluate(arrays, with_grads):
            L, val, _ = self.loss_of(self.twin_outputs(arrays))
            if not with_grads:
                return val, None
            L.backward()
            return val, [np.array(t.grad, dtype=np.float64) for t in self.twin(np.float64)[1]]

        def gradient(arrays, cot):
            L, _, _ = self.loss_of(self.twin_outputs(arrays, None), cot)
            L.backward()
            return [np.array(t.grad) for t in self.twin(None)[1]]
        x = [np.array(w.value, dtype=np.float64) for w in self.weights]
        outs = self.twin_outputs(x)
        L, val, scale = self.loss_of(outs)
        L.backward()
        if self.loss is None:    # how far the model's own outputs lie from the float64 twin's, in L's units
            low = float(sum(np.sum(np.abs(w) * np.abs(o.value.astype(np.float64) - t.value))
                            for o, t, w in zip(self.out, outs, self.projection(outs))))
        else:
            low = abs(float(self.L.value.reshape(-1)[0]) - val)
        self._gout = [np.abs(np.array(o.grad, dtype=np.float64)) for o in outs]
        what = ("the loss" if self.loss is not None
                else f"L = sum(w * output), w a fixed random array (seed={self.seed})")
        check_point(Point(names=[describe(f"weight {n}", w) for n, w in zip(self.names, self.weights)], x=x,
                          dtypes=[w.dtype for w in self.weights], grads=self.grads, evaluate=evaluate,
                          gradient=gradient, outputs=[(o.shape, o.dtype) for o in self.out], scale=scale, low=low,
                          what=what + f" for the batch of {self.b}", seed=self.seed, coordinates=coordinates,
                          who="check_module"))

    # ------------------------------------------------------------------ 4. a step syncs the copy; model_reset recopies
    def step_and_reset(self, SGD) -> None:
        m = self.m
        SGD(m.weights, lr=STEP_LR).step(self.L)
        self.synced("after an optimizer step without model_reset()")
        stepped = self.call(m, self.inputs())
        m.model_reset()
        if m.copy is not None:
            raise self.fail("model_reset() must drop the batched copy, but model.copy is still set after it")
        fresh = self.call(m, self.inputs())
        self.synced("after model_reset() and a call")
        for j, (s, f) in enumerate(zip(stepped, fresh)):
            want = f.value.astype(np.float64)
            i, tol = worst_element(s.value, want, tolerances_of(want, f.dtype, lambda j=j: self.out_spread()[j]))
            if i is not None:
                idx = index_of(s.shape, i)
                raise self.fail(f"after an optimizer step, a call without model_reset() and one after it give "
                                f"different outputs (output {j}, index {idx}: {float(s.value[idx]):.17g} vs "
                                f"{float(f.value[idx]):.17g}); both must use the current weights", None, idx)

    def synced(self, when: str) -> None:
        twins = {t.uid: t for t in self.m.copy.weights} if self.m.copy is not None else {}
        for name, w in zip(self.names, self.weights):
            t = twins.get(w.uid)
            if t is None or t.shape != w.shape or not np.array_equal(t.value, w.value):
                raise self.fail(f"{when}, the batched copy's {name} does not hold the original's current value "
                                "(the next call must use the current weights)", name)
