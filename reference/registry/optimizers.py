"""The optimizer table: one `OptimizerSpec` per pygrad optimizer.

An entry gives the pygrad constructor as a code template (the same text builds the optimizer
and prints it in reproducers), the torch.optim twin built from the same hyper-parameters
(never from the pygrad object, so one that stores them wrong is seen), the hyper-parameter
strategy, the coverage samples (hyper-parameters where eps, betas and momentum visibly
matter) and the conditions of its report row `optim:<name>`. Adding an optimizer to pygrad
means its class plus one entry here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from hypothesis import strategies as st

from reference.registry.regimes import LAYOUTS, layout_reached
from reference.registry.spec import Condition


@dataclass(frozen=True)
class TrainUse:
    """A training run as condition predicates see it."""

    hyper: dict
    steps: int
    params: int           # parameters given to the optimizer
    accumulate: bool      # step_single over chunks
    shuffled: bool        # parameters not in graph order
    target_leaf: bool
    reset: bool           # model_reset() before every call
    unused: bool          # a parameter outside the Module (in the loss's graph at some steps, or never)
    dtype: str
    count_differs: bool = False       # step_single's batch_size differs from its number of calls
    zero_gradient: bool = False       # some weight's gradient is exactly 0 at a step after the first
    absent_some_steps: bool = False   # a parameter in the loss's graph at some steps, absent at others
    layouts: tuple = ()   # per parameter (the Module's weights, then the one outside it): its memory layout
    shapes: tuple = ()    # per parameter, in the same order


@dataclass(frozen=True)
class OptimizerSpec:
    """`code`: the constructor, formatted with `params` (an expression) and the
    hyper-parameters; `torch(params, hyper)`: the torch.optim twin; `hyper`: name ->
    strategy; `samples`: hyper-parameter sets of the coverage pass (the first plain)."""

    name: str
    code: str
    torch: Callable
    hyper: dict
    samples: tuple
    conditions: tuple = field(default_factory=tuple)

    @property
    def row(self) -> str:
        return f"optim:{self.name}"

    def render(self, params: str, hyper: dict) -> str:
        return self.code.format(params=params, **hyper)

    def make(self, params, hyper: dict):
        """The pygrad optimizer over `params` (the template evaluated)."""
        import pygrad
        return eval(self.render("params", hyper), {**vars(pygrad), "params": params})  # noqa: S307

    def strategy(self):
        return st.fixed_dictionaries(self.hyper)


def _log_uniform(lo: float, hi: float):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10 ** e)


LR = _log_uniform(1e-3, 0.3)
BETA = st.floats(0.0, 0.99)
EPS = _log_uniform(1e-8, 0.1)   # sometimes comparable to sqrt(v): then it matters

COMMON = (
    Condition(">= 4 steps", lambda u: u.steps >= 4),
    Condition(">= 2 parameters", lambda u: u.params >= 2),
    Condition("step_single accumulation", lambda u: u.accumulate),
    Condition("parameters not in graph order", lambda u: u.shuffled),
    Condition("target not marked leaf", lambda u: not u.target_leaf),
    Condition("no model_reset", lambda u: not u.reset),
    Condition("a parameter outside the graph", lambda u: u.unused),
    Condition("float32", lambda u: u.dtype == "float32"),
    # TODO(pairs): makers on the optimizer rows' draft (the arguments of coverage.train_run):
    # count_differs: a chunked step with divisor != chunks (e.g. chunks=3, divisor=2);
    # zero_gradient: zero_steps=(1,) with steps >= 3; absent_some_steps: unused=True,
    # extra_steps=(0, 2) with steps >= 3.
    Condition("step_single batch_size != calls", lambda u: u.count_differs),
    Condition("a weight's gradient exactly 0 at a step", lambda u: u.zero_gradient),
    Condition("a parameter absent from some steps' graphs", lambda u: u.absent_some_steps),
    # The layout regimes (registry.regimes, group "layout"): parameters whose values are views
    # in another memory layout, as `load_state_dict` of a Fortran-ordered array or
    # `w.value = view` leave them -- the optimizer updates them (in place where nothing else
    # refers to the array). TODO(pairs): their maker sets the draft's `layouts`
    # (`regimes.spread_layouts` of the parameters' shapes).
) + tuple(Condition(layout.name, lambda u, key=key: layout_reached(key, u.layouts, u.shapes), group="layout")
          for key, layout in LAYOUTS.items())


def _visible(key: str, name: str, test):
    return Condition(name, lambda u: key in u.hyper and test(u.hyper[key]))


_LIST = [
    OptimizerSpec("SGD", "SGD({params}, lr={lr!r})",
                  lambda params, h: torch.optim.SGD(params, lr=h["lr"]),
                  {"lr": LR}, ({"lr": 0.1}, {"lr": 0.01}), COMMON),
    OptimizerSpec("SGD_Momentum", "SGD_Momentum({params}, beta={beta!r}, lr={lr!r})",
                  lambda params, h: torch.optim.SGD(params, lr=h["lr"], momentum=h["beta"]),
                  {"lr": LR, "beta": BETA}, ({"lr": 0.05, "beta": 0.9}, {"lr": 0.1, "beta": 0.5}),
                  COMMON + (_visible("beta", "momentum >= 0.5", lambda b: b >= 0.5),)),
    OptimizerSpec("RMSProp", "RMSProp({params}, beta={beta!r}, lr={lr!r}, eps={eps!r})",
                  lambda params, h: torch.optim.RMSprop(params, lr=h["lr"], alpha=h["beta"], eps=h["eps"]),
                  {"lr": LR, "beta": BETA, "eps": EPS},
                  ({"lr": 0.01, "beta": 0.9, "eps": 1e-8}, {"lr": 0.05, "beta": 0.5, "eps": 0.05}),
                  COMMON + (_visible("eps", "eps >= 1e-2", lambda e: e >= 1e-2),
                            _visible("beta", "beta <= 0.9", lambda b: b <= 0.9))),
    OptimizerSpec("Adam", "Adam({params}, beta1={beta1!r}, beta2={beta2!r}, eps={eps!r}, lr={lr!r})",
                  lambda params, h: torch.optim.Adam(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                                     eps=h["eps"]),
                  {"lr": LR, "beta1": BETA, "beta2": st.floats(0.5, 0.9999), "eps": EPS},
                  ({"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                   {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 0.05}),
                  COMMON + (_visible("eps", "eps >= 1e-2", lambda e: e >= 1e-2),
                            _visible("beta1", "beta1 <= 0.9", lambda b: b <= 0.9),
                            _visible("beta2", "beta2 <= 0.99", lambda b: b <= 0.99))),
]

OPTIMIZERS: dict = {spec.name: spec for spec in _LIST}
"""Optimizer class name -> spec (report row `optim:<name>`)."""

TRAINING_CALLS = ("zero_grad", "step", "step_single")
"""The methods of its optimizer that each row's training check calls (`checks.training`)."""
TRAINING_SURFACE = ("Tensor.uid", "Tensor.weights")
"""What an optimizer's step reads of the Tensors: the identity it matches parameters by, and
the loss's stored weights (`registry.surface`)."""
