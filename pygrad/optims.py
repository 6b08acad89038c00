"""Optimizers with torch.optim's update rules.

An optimizer holds the weights it updates (`model_parameters`). `step(loss)` reads the
gradients from the graph of `loss`, which `loss.backward()` recorded in `loss.weights`. A
weight found there is either the parameter itself or its twin in a Module's batched copy
(a deepcopy): the two are matched by `uid`, an identity that survives `copy.deepcopy`,
never by list position. A parameter absent from the graph is not updated (like a torch
parameter whose grad is None), and after an update every twin holds the new value too.

`Optimizer` holds that matching and the gradient accumulation of `step_single`; each
subclass only states its update rule in `_update`. Optimizer state is plain arrays.

A parameter's array that nothing but the parameter refers to (no graph built from it, no user
variable, no view; see `pygrad._refs`) is updated in place where a subclass offers
`_update_in_place` (SGD), with the same arithmetic, so a step allocates no parameter-sized
arrays; otherwise, and always when something else could see the change, the parameter gets a
new array, as `p.value = ...` would give it.
"""
from __future__ import annotations

import numpy as np

from pygrad._refs import unshared
from pygrad.ops import _scratch
from pygrad.tensor import Tensor


def _check_number(value, who: str, name: str, low: float, high: float = np.inf,
                  high_open: bool = False) -> float:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be a number, got {value!r}")
    if not (low <= value and (value < high if high_open else value <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{who}: {name} must be in {bound}, got {value}")
    return float(value)


class Optimizer:
    """Base class: parameter matching, `zero_grad`, `step`, `step_single`.

    Subclasses implement `_update(i, value, grad) -> new value` for parameter number `i`."""

    def __init__(self, model_parameters, lr: float):
        name = type(self).__name__
        if isinstance(model_parameters, Tensor):
            raise TypeError(f"{name}: model_parameters must be a list of Tensors, got a single Tensor")
        params = list(model_parameters)
        index = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: model_parameters[{i}] is a {type(p).__name__}, not a Tensor")
            if p.uid is None:
                raise ValueError(f"{name}: model_parameters[{i}] (shape {p.shape}) is the result of an "
                                 "operation, not a weight created by the user")
            if p.uid in index:
                raise ValueError(f"{name}: model_parameters[{i}] (shape {p.shape}) is given twice")
            index[p.uid] = i
        self.model_parameters = params
        self.lr = _check_number(lr, name, "lr", 0.0)
        self._index = index
        self._accumulated = [None] * len(params)   # step_single's running gradient sums
        self._accumulated_twins = {}                # parameter number -> twins met while accumulating

    # ------------------------------------------------------------------ public API
    def zero_grad(self) -> None:
        """Zero the parameters' grads (and any gradient accumulated by `step_single`)."""
        for p in self.model_parameters:
            p.reset_grad()
        self._accumulated = [None] * len(self.model_parameters)
        self._accumulated_twins = {}

    def step(self, loss: Tensor) -> None:
        """Update every parameter that contributed to `loss` with the gradient that
        `loss.backward()` left in its graph."""
        for i, (grad, twins) in self._gradients(loss, "step").items():
            self._apply(i, grad, twins)

    def step_single(self, loss: Tensor, batch_size: int, modify: bool = False) -> None:
        """Gradient accumulation.

        modify=False: add the gradients of `loss` (after `loss.backward()`) into the
        parameters' `.grad`. modify=True: apply one update with the accumulated gradient
        divided by `batch_size`, then restart the accumulation; `loss` is only used to find
        twins to keep in sync and may be None."""
        name = type(self).__name__
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{name}.step_single: batch_size must be a positive int, got {batch_size!r}")
        if not modify:
            for i, (grad, twins) in self._gradients(loss, "step_single").items():
                acc = self._accumulated[i]
                if acc is None:
                    acc = self._accumulated[i] = grad.copy()
                else:   # the running sum is the optimizer's own array (p.grad gets a copy)
                    acc += grad
                self.model_parameters[i].grad = acc
                self._accumulated_twins.setdefault(i, {}).update((id(t), t) for t in twins)
            return
        extra = self._gradients(loss, "step_single", need_grad=False) if loss is not None else {}
        for i, acc in enumerate(self._accumulated):
            if acc is None:
                continue
            twins = dict(self._accumulated_twins.get(i, {}))
            twins.update((id(t), t) for t in extra.get(i, (None, []))[1])
            self._apply(i, acc / batch_size, twins.values())
        self._accumulated = [None] * len(self.model_parameters)
        self._accumulated_twins = {}

    # ------------------------------------------------------------------ machinery
    def _gradients(self, loss, op: str, need_grad: bool = True) -> dict:
        """{parameter number: (summed gradient or None, [tensors of the loss's graph with
        that parameter's uid])} for the parameters found in the graph of `loss`."""
        name = f"{type(self).__name__}.{op}"
        if not isinstance(loss, Tensor):
            raise TypeError(f"{name}: loss must be a Tensor, got {type(loss).__name__}")
        if loss.weights is None:
            raise ValueError(f"{name}: the loss (shape {loss.shape}) has no graph yet; call loss.backward() first")
        found = {}
        for t in loss.weights:
            i = self._index.get(t.uid)
            if i is not None:
                found.setdefault(i, []).append(t)
        out = {}
        for i, twins in found.items():
            grad = None
            if need_grad:
                shape = self.model_parameters[i].shape
                for t in twins:
                    if t.shape != shape:
                        raise ValueError(f"{name}: parameter {i} has shape {shape} but its twin in the "
                                         f"loss's graph has shape {t.shape}")
                    grad = t.grad if grad is None else grad + t.grad
            out[i] = (grad, twins)
        return out

    def _apply(self, i: int, grad: np.ndarray, twins) -> None:
        p = self.model_parameters[i]
        value = p.value
        if (grad.shape == value.shape and grad.dtype == value.dtype and value.flags.writeable
                and unshared(value, 2) and self._update_in_place(i, value, grad)):
            new = value            # nothing but p refers to its array: updated where it is
        else:
            new = np.asarray(self._update(i, value, grad), dtype=p.dtype)
            p.value = new
        for t in twins:
            if t is not p:
                held = t.value
                if held.shape == new.shape and held.flags.writeable and unshared(held, 2):
                    np.copyto(held, new)      # no graph or user holds the twin's array
                else:
                    t.value = new.copy()

    def _update(self, i: int, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_in_place(self, i: int, value: np.ndarray, grad: np.ndarray) -> bool:
        """Write the update into `value` (an array nothing else refers to) and return True,
        or return False to have `_update` compute a new array instead."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.model_parameters)} parameters, lr={self.lr})"


class SGD(Optimizer):
    """torch.optim.SGD(lr): p -= lr * g."""

    def __init__(self, model_parameters, lr: float = 1e-5):
        super().__init__(model_parameters, lr)

    def _update(self, i, value, grad):
        return value - self.lr * grad

    def _update_in_place(self, i, value, grad):
        # the same arithmetic as `_update`; a big temporary comes from the scratch pool
        big = grad.nbytes >= _scratch.REUSE_BYTES
        step = np.multiply(grad, self.lr, out=_scratch.take(grad.shape, grad.dtype) if big else None)
        np.subtract(value, step, out=value)
        if big:
            _scratch.give(step)
        return True


class SGD_Momentum(Optimizer):  # noqa: N801 - the original pygrad's name
    """torch.optim.SGD(lr, momentum=beta): b = g on the first step, then b = beta*b + g;
    p -= lr * b."""

    def __init__(self, model_parameters, beta: float = 0.9, lr: float = 1e-5):
        super().__init__(model_parameters, lr)
        self.beta = _check_number(beta, "SGD_Momentum", "beta", 0.0, 1.0, high_open=True)
        self.momentum = [None] * len(self.model_parameters)

    def _update(self, i, value, grad):
        buf = self.momentum[i]
        buf = grad.copy() if buf is None else self.beta * buf + grad
        self.momentum[i] = buf
        return value - self.lr * buf


class RMSProp(Optimizer):
    """torch.optim.RMSprop(lr, alpha=beta, eps): v = beta*v + (1-beta)*g**2 (v starts at 0);
    p -= lr * g / (sqrt(v) + eps)."""

    def __init__(self, model_parameters, beta: float = 0.9, lr: float = 1e-5, eps: float = 1e-8):
        super().__init__(model_parameters, lr)
        self.beta = _check_number(beta, "RMSProp", "beta", 0.0, 1.0, high_open=True)
        self.eps = _check_number(eps, "RMSProp", "eps", 0.0)
        self.square_avg = [np.zeros_like(p.value) for p in self.model_parameters]

    def _update(self, i, value, grad):
        v = self.beta * self.square_avg[i] + (1 - self.beta) * (grad * grad)
        self.square_avg[i] = v
        return value - self.lr * grad / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    """torch.optim.Adam(lr, betas=(beta1, beta2), eps): m = beta1*m + (1-beta1)*g,
    v = beta2*v + (1-beta2)*g**2, t counted per parameter;
    p -= lr/(1-beta1**t) * m / (sqrt(v)/sqrt(1-beta2**t) + eps)."""

    def __init__(self, model_parameters, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 lr: float = 1e-5):
        super().__init__(model_parameters, lr)
        self.beta1 = _check_number(beta1, "Adam", "beta1", 0.0, 1.0, high_open=True)
        self.beta2 = _check_number(beta2, "Adam", "beta2", 0.0, 1.0, high_open=True)
        self.eps = _check_number(eps, "Adam", "eps", 0.0)
        self.exp_avg = [np.zeros_like(p.value) for p in self.model_parameters]
        self.exp_avg_sq = [np.zeros_like(p.value) for p in self.model_parameters]
        self.steps = [0] * len(self.model_parameters)

    def _update(self, i, value, grad):
        t = self.steps[i] = self.steps[i] + 1
        m = self.exp_avg[i] = self.beta1 * self.exp_avg[i] + (1 - self.beta1) * grad
        v = self.exp_avg_sq[i] = self.beta2 * self.exp_avg_sq[i] + (1 - self.beta2) * (grad * grad)
        step_size = self.lr / (1 - self.beta1 ** t)
        denom = np.sqrt(v) / np.sqrt(1 - self.beta2 ** t) + self.eps
        return value - step_size * m / denom
