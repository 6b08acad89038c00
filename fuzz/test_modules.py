"""Random Modules (Linear, Conv2D, Flatten, ReLU/Tanh/Sigmoid, Softmax, AddNorm, Dropout in
eval mode; sse, mse, cce and bce losses) called the way users call them, against PyTorch
(float64, the model's layers and loss as registry ops). Any batch size, 1 included, changing between calls, with and without
`model_reset()`; zero rows in the input put exact zeros on a ReLU's kink.

Checked at every call (`reference.invariants.check_module`): the output and loss (value);
the gradients in the batched copy and of the input (grad); the original weights' values,
gradients and shapes untouched, the copy holding the current weights, each sample alone
giving its row of the batched output (invariant). With an optimizer step between two calls:
`step` syncs the copy when there is no `model_reset()`, and the next call after
`model_reset()` copies the new weights (invariant)."""
import pytest
from hypothesis import given

from fuzz.harness import run_check
from fuzz.strategies import module_cases
from reference.invariants import MODULE_ROW, check_module


@pytest.mark.parametrize("op", [MODULE_ROW])
@given(case=module_cases())
def test_module_calls_match_torch(op, case):
    run_check(check_module, case, op)


@pytest.mark.parametrize("op", [MODULE_ROW])
@given(case=module_cases(step=True))
def test_step_syncs_the_copy_and_model_reset_recopies(op, case):
    run_check(check_module, case, op)
