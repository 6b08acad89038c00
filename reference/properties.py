"""The properties the gate checks: one entry per property test in `fuzz/`.

`pygrad-check --list` prints this table next to the registry's ops, and a unit test keeps
it and `fuzz/` in step (every `test_*` function there has exactly one entry here).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Property:
    test: str        # "<file in fuzz/>::<test function>"
    rows: str        # the table rows its examples count in
    checks: tuple    # the JSON `check` kinds its failures carry
    what: str        # the property, in a sentence


PROPERTIES = (
    Property("test_ops.py::test_op_vs_torch", "each op",
             ("value", "grad", "error"),
             "each op alone, float64 and float32, broadcast/0-D/1-D operands, negative and tuple "
             "axes, exact kink points: its value and every operand's gradient equal torch's"),
    Property("test_ops.py::test_op_vs_finite_differences", "each op",
             ("fd", "error"),
             "each op alone, away from kinks: <grad, v> equals a central finite difference "
             "along a random direction v (every coordinate for inputs of <= 8 entries), in float64"),
    Property("test_ops.py::test_incompatible_shapes_raise", "binary ops",
             ("error",),
             "shapes that NumPy and torch refuse make pygrad raise a ValueError naming the op"),
    Property("test_programs.py::test_program", "ops of the program",
             ("value", "grad", "fd", "error"),
             "random chains and DAGs of 2-12 ops with reused intermediates (an operand used "
             "twice, fan-out): every node's value and gradient equal torch's, and the inputs' "
             "gradients match finite differences; a failure names the first wrong node"),
    Property("test_backward.py::test_backward_reset_grad_false", "ops of the program",
             ("invariant", "value", "grad", "error"),
             "2-3 backward(reset_grad=False) passes accumulate in every node as "
             "torch.autograd.backward([root, *intermediates], [ones, *previous_grads])"),
    Property("test_backward.py::test_backward_twice_equals_once", "ops of the program",
             ("invariant", "value", "grad", "error"),
             "backward() twice leaves the same gradients as backward() once"),
    Property("test_backward.py::test_create_graph_structure", "ops of the program",
             ("structure", "error"),
             "create_graph() returns every learnable tensor once, constants absent, in the "
             "post-order of a left-to-right depth-first walk, and the weights in that order"),
    Property("test_engine.py::test_learnable_false_receives_its_gradient_and_stops_the_flow",
             "ops of the program", ("invariant", "structure", "grad", "error"),
             "a node marked learnable=False gets its own gradient, passes none below it, and "
             "it and what only it reaches are absent from topo"),
    Property("test_modules.py::test_module_calls_match_torch", "module",
             ("value", "grad", "invariant", "error"),
             "random Modules called with any batch size (1 included, changing between calls): "
             "output, loss and the batched copy's gradients equal torch's; batched output = "
             "per-sample outputs stacked; the original weights' values, grads and shapes untouched"),
    Property("test_modules.py::test_step_syncs_the_copy_and_model_reset_recopies", "module",
             ("invariant", "error"),
             "after optim.step the batched copy holds the new weights; after model_reset() the "
             "next call copies the current weights"),
    Property("test_optims.py::test_trajectory_follows_torch_optim", "optim:<kind>",
             ("invariant", "value", "grad", "error"),
             "3-10 steps of each optimizer with random hyper-parameters, model_reset every step "
             "or never, a target not marked leaf=True, shuffled parameters: every parameter "
             "after every step equals torch.optim's trajectory"),
    Property("test_optims.py::test_step_single_accumulation_equals_the_whole_batch_step",
             "optim:<kind>", ("invariant", "error"),
             "step_single over equal chunks of a batch equals one step on the whole batch"),
)
