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
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import torch
from hypothesis import strategies as st

from reference.registry.regimes import LAYOUTS, layout_reached
from reference.registry.makers import excludes
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
    no_zero_grad: bool = False        # step_single rounds follow each other with no zero_grad() between
    penalty: bool = False             # a loss term on a weight itself beside its twin in the batched copy
    layouts: tuple = ()   # per parameter (the Module's weights, then the one outside it): its memory layout
    shapes: tuple = ()    # per parameter, in the same order


SPREAD = "spread"
"""`TrainDraft.layout`: every memory layout on some parameter that takes it
(`regimes.spread_layouts` of the parameters' shapes)."""


@dataclass(frozen=True)
class TrainDraft:
    """An optimizer row's coverage draft: the hyper-parameters, the steps, the chunks of each
    step (> 1: step_single accumulation), the dtype, and the options of a training run
    (`checks.training.TrainRun`: the parameters' order, the target marked leaf, model_reset
    before every call, a parameter outside the graph, step_single's batch_size, the steps
    where it is in the graph) and of its inputs (`zero_steps`)."""

    hyper: dict
    steps: int = 4
    chunks: int = 1
    dtype: str = "float64"
    order: tuple | None = None
    target_leaf: bool = True
    reset: bool = True
    unused: bool = False
    divisor: int | None = None     # step_single's batch_size (None: the one matching the whole batch)
    zero_steps: tuple = ()         # steps whose inputs are all 0 (a weight's gradient exactly 0)
    extra_steps: tuple = ()        # steps whose loss includes the parameter outside the Module
    layout: str = ""               # a memory layout of every parameter whose shape takes it, or SPREAD
    zero_grad: bool = True         # False: no zero_grad() before a step_single round (but the first)
    penalty: bool = False          # a loss term on the first weight itself (`TrainRun.penalty`)


def train_field(**fields):
    """Maker: the draft with the given fields."""
    def make(draft: TrainDraft) -> TrainDraft:
        return replace(draft, **fields)
    return make


PENALTY = "a weight used beside its batched twin"
STEP_SINGLE = ("step_single accumulation", "step_single batch_size != calls", "step_single rounds without zero_grad")
COMMON_INFEASIBLE = excludes(PENALTY, STEP_SINGLE, "the penalty applies at steps of one call (optim.step); "
                             "step_single accumulates over several")
"""The pairs of the common conditions (`COMMON`) that cannot meet: every optimizer row's."""


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
    infeasible: Mapping = field(default_factory=lambda: dict(COMMON_INFEASIBLE))

    @property
    def row(self) -> str:
        return f"optim:{self.name}"

    def drafts(self) -> list:
        """The coverage drafts (the first plain): >= 4 steps with the plain and the visible
        hyper-parameters, parameters in another order with the target not marked leaf and no
        model_reset, step_single accumulation (rounds with no zero_grad() between them), a
        parameter outside the graph, float32, a batch_size other than the number of calls, a
        weight's gradient exactly 0 at some steps with a parameter absent from some steps'
        graphs, every memory layout on the parameters, a penalty term on a weight itself."""
        plain, visible = self.samples[0], self.samples[-1]
        return [TrainDraft(plain), TrainDraft(visible, steps=5),
                TrainDraft(plain, order=(3, 1, 2, 0), target_leaf=False, reset=False),
                TrainDraft(visible, steps=3, chunks=2, zero_grad=False), TrainDraft(plain, unused=True),
                TrainDraft(visible, dtype="float32"), TrainDraft(visible, steps=2, chunks=3, divisor=2),
                TrainDraft(visible, steps=4, zero_steps=(1, 2), unused=True, extra_steps=(0, 2)),
                TrainDraft(visible, steps=4, unused=True, extra_steps=(0, 1, 2, 3), layout=SPREAD),
                TrainDraft(visible, steps=4, penalty=True, reset=False)]

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
    Condition(">= 4 steps", lambda u: u.steps >= 4, lambda d: replace(d, steps=max(d.steps, 4))),
    Condition(">= 2 parameters", lambda u: u.params >= 2, lambda d: d),   # the trained model has four
    Condition("step_single accumulation", lambda u: u.accumulate, train_field(chunks=2)),
    Condition("parameters not in graph order", lambda u: u.shuffled, train_field(order=(3, 1, 2, 0))),
    Condition("target not marked leaf", lambda u: not u.target_leaf, train_field(target_leaf=False)),
    Condition("no model_reset", lambda u: not u.reset, train_field(reset=False)),
    Condition("a parameter outside the graph", lambda u: u.unused, train_field(unused=True)),
    Condition("float32", lambda u: u.dtype == "float32", train_field(dtype="float32")),
    Condition("step_single batch_size != calls", lambda u: u.count_differs,
              lambda d: replace(d, chunks=max(d.chunks, 2), divisor=max(d.chunks, 2) + 1)),
    Condition("step_single rounds without zero_grad", lambda u: u.no_zero_grad,
              lambda d: replace(d, chunks=max(d.chunks, 2), zero_grad=False)),
    Condition("a weight's gradient exactly 0 at a step", lambda u: u.zero_gradient,
              lambda d: replace(d, steps=max(d.steps, 3), zero_steps=(1,))),
    Condition("a parameter absent from some steps' graphs", lambda u: u.absent_some_steps,
              lambda d: replace(d, steps=max(d.steps, 3), unused=True, extra_steps=(0, 2))),
    Condition(PENALTY, lambda u: u.penalty, train_field(penalty=True)),
    # The layout regimes (registry.regimes, group "layout"): parameters whose values are views
    # in another memory layout, as `load_state_dict` of a Fortran-ordered array or
    # `w.value = view` leave them -- the optimizer updates them (in place where nothing else
    # refers to the array). The maker gives the layout to every parameter whose shape takes it.
) + tuple(Condition(layout.name, lambda u, key=key: layout_reached(key, u.layouts, u.shapes),
                    train_field(layout=key), group="layout")
          for key, layout in LAYOUTS.items())


def _visible(key: str, name: str, test, value):
    """A hyper-parameter in the range where it visibly matters; its maker sets `value`."""
    return Condition(name, lambda u: key in u.hyper and test(u.hyper[key]),
                     lambda d: replace(d, hyper={**d.hyper, key: value}))


_LIST = [
    OptimizerSpec("SGD", "SGD({params}, lr={lr!r})",
                  lambda params, h: torch.optim.SGD(params, lr=h["lr"]),
                  {"lr": LR}, ({"lr": 0.1}, {"lr": 0.01}), COMMON),
    OptimizerSpec("SGD_Momentum", "SGD_Momentum({params}, beta={beta!r}, lr={lr!r})",
                  lambda params, h: torch.optim.SGD(params, lr=h["lr"], momentum=h["beta"]),
                  {"lr": LR, "beta": BETA}, ({"lr": 0.05, "beta": 0.9}, {"lr": 0.1, "beta": 0.5}),
                  COMMON + (_visible("beta", "momentum >= 0.5", lambda b: b >= 0.5, 0.9),)),
    OptimizerSpec("RMSProp", "RMSProp({params}, beta={beta!r}, lr={lr!r}, eps={eps!r})",
                  lambda params, h: torch.optim.RMSprop(params, lr=h["lr"], alpha=h["beta"], eps=h["eps"]),
                  {"lr": LR, "beta": BETA, "eps": EPS},
                  ({"lr": 0.01, "beta": 0.9, "eps": 1e-8}, {"lr": 0.05, "beta": 0.5, "eps": 0.05}),
                  COMMON + (_visible("eps", "eps >= 1e-2", lambda e: e >= 1e-2, 0.05),
                            _visible("beta", "beta <= 0.9", lambda b: b <= 0.9, 0.5))),
    OptimizerSpec("Adam", "Adam({params}, beta1={beta1!r}, beta2={beta2!r}, eps={eps!r}, lr={lr!r})",
                  lambda params, h: torch.optim.Adam(params, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                                     eps=h["eps"]),
                  {"lr": LR, "beta1": BETA, "beta2": st.floats(0.5, 0.9999), "eps": EPS},
                  ({"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                   {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 0.05}),
                  COMMON + (_visible("eps", "eps >= 1e-2", lambda e: e >= 1e-2, 0.05),
                            _visible("beta1", "beta1 <= 0.9", lambda b: b <= 0.9, 0.5),
                            _visible("beta2", "beta2 <= 0.99", lambda b: b <= 0.99, 0.9))),
]

OPTIMIZERS: dict = {spec.name: spec for spec in _LIST}
"""Optimizer class name -> spec (report row `optim:<name>`)."""

TRAINING_CALLS = ("zero_grad", "step", "step_single")
"""The methods of its optimizer that each row's training check calls (`checks.training`)."""
TRAINING_SURFACE = ("Tensor.uid", "Tensor.weights")
"""What an optimizer's step reads of the Tensors: the identity it matches parameters by, and
the loss's stored weights (`registry.surface`)."""
