"""Optimizer trajectories against torch.optim (`reference.checks.training`)."""
import pytest

from reference.generators.modules import train_cases
from reference.harness import prop, run_property
from reference.registry import OPTIMIZERS


def _rows(name):
    return [OPTIMIZERS[name].row]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@prop(rows=_rows, checks=("invariant", "value", "grad", "error"))
def test_trajectory_follows_torch_optim(name, request):
    """3-10 steps of each optimizer with random hyper-parameters, model_reset every step or
    never, a target not marked leaf=True, shuffled parameters, a parameter outside the graph:
    every parameter after every step equals torch.optim's trajectory"""
    run_property(train_cases(name), request.node.nodeid)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@prop(rows=_rows, checks=("invariant", "error"))
def test_step_single_accumulation_equals_the_whole_batch_step(name, request):
    """step_single over equal chunks of a batch equals one step on the whole batch"""
    run_property(train_cases(name, accumulate=True), request.node.nodeid)
