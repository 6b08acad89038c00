"""Optimizer trajectories against torch.optim (`reference.invariants.check_training`).

A random Module trained 3-10 steps with each optimizer and random hyper-parameters (lr,
betas, eps); at every step the loss and the batched copy's gradients, and after every step
every parameter, are compared with the exact float64 trajectory of torch.optim, under the
suite's tolerance rule over perturbed trajectories. The loop varies what users vary:
`model_reset()` every step or never, the target marked leaf=True or not (a target that is a
"weight" must not shift the update), `model.weights` given to the optimizer in a shuffled
order. `step_single` accumulation over equal chunks must equal one step on the whole batch."""
import pytest
from hypothesis import given, strategies as st

from fuzz.harness import run_check
from fuzz.strategies import train_cases
from reference.invariants import ROWS, check_training

OPTIM_ROWS = [r for r in ROWS if r.startswith("optim:")]


@pytest.mark.parametrize("op", OPTIM_ROWS)
@given(data=st.data())
def test_trajectory_follows_torch_optim(op, data):
    case = data.draw(train_cases(op.split(":", 1)[1]), label="case")
    run_check(check_training, case, op)


@pytest.mark.parametrize("op", OPTIM_ROWS)
@given(data=st.data())
def test_step_single_accumulation_equals_the_whole_batch_step(op, data):
    case = data.draw(train_cases(op.split(":", 1)[1], accumulate=True), label="case")
    run_check(check_training, case, op)
