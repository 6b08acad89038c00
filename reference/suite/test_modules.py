"""Random Modules called the way users call them, against PyTorch (the model's layers and
loss as registry ops), and Dropout alone in training mode (`reference.checks`)."""
from reference.generators.modules import dropout_cases, module_cases
from reference.harness import prop, run_property
from reference.registry import LAYERS, LOSS_OPS, MODULE_ROW


def _rows(**params):
    return [MODULE_ROW] + [s.row for s in LAYERS.values()] + [s.row for s in LOSS_OPS.values()]


@prop(rows=_rows, checks=("value", "grad", "invariant", "error"))
def test_module_calls_match_torch(request):
    """random Modules called with any batch size (1 included, changing between calls): output,
    loss and the batched copy's gradients equal torch's; batched output = per-sample outputs
    stacked; the original weights' values, grads and shapes untouched"""
    run_property(module_cases(), request.node.nodeid)


@prop(rows=_rows, checks=("invariant", "error"))
def test_step_syncs_the_copy_and_model_reset_recopies(request):
    """after optim.step the batched copy holds the new weights; after model_reset() the next
    call copies the current weights"""
    run_property(module_cases(step=True), request.node.nodeid)


@prop(rows=lambda: [LAYERS["dropout"].row], checks=("value", "grad", "invariant", "error"))
def test_dropout_in_training_mode(request):
    """Dropout(rate)(x, training=True) zeroes exactly int(size * rate) entries, keeps the others
    unscaled, and its gradient is the cotangent where kept and 0 where dropped"""
    run_property(dropout_cases(), request.node.nodeid)
