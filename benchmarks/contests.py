"""The contests: each workload in pygrad, the hand-written NumPy step, torch and autograd.

Goals are the issue's targets, as same-process ratios pygrad / framework: every training
workload within 1.15x of its NumPy limit; against torch the MLP step and conv2D within 1.3x,
softmax within 1.8x, the elementwise chain within 0.7x per op; faster than autograd on every
workload. The chain is no training workload: its NumPy column is shown, not judged.
"""
from __future__ import annotations

from benchmarks import floors, hips, ops, training
from benchmarks.registry import Goal, contest


def _goal(numpy=None, torch=None, autograd=1.0) -> Goal:
    limits = tuple((name, limit) for name, limit in
                   (("numpy", numpy), ("torch", torch), ("autograd", autograd)) if limit is not None)
    return Goal("ratios", limits=limits)


WORKLOADS = [
    contest("elementwise_chain", f"elementwise chain, {ops.CHAIN_OPS} ops (16,16), per op",
            _goal(torch=0.7),
            {"pygrad": ops.chain_pygrad, "numpy": floors.chain_numpy, "torch": ops.chain_torch,
             "autograd": hips.chain_autograd},
            per=ops.CHAIN_OPS, note="25 x (y*x, +x, tanh, *x); time of forward + backward divided by 100"),
    contest("mlp_step", "MLP 784-100-10 step, batch 64, plain Tensors",
            _goal(numpy=1.15, torch=1.3),
            {"pygrad": training.mlp_pygrad, "numpy": floors.mlp_numpy, "torch": training.mlp_torch,
             "autograd": hips.mlp_autograd},
            note="x (64,1,784) @ W (1,784,100); manual SGD update. pygrad (and the NumPy step) also "
                 "compute x's and t's gradients: they are Tensors; torch's and autograd's are not"),
    contest("conv2d", "conv2D (32,1,28,28), 4 kernels 5x5",
            _goal(numpy=1.15, torch=1.3),
            {"pygrad": ops.conv_pygrad, "numpy": floors.conv_numpy, "torch": ops.conv_torch,
             "autograd": hips.conv_autograd},
            note="gradients of kernel and input in every framework"),
    contest("softmax", "softmax (64,10,100)", _goal(numpy=1.15, torch=1.8),
            {"pygrad": ops.softmax_pygrad, "numpy": floors.softmax_numpy, "torch": ops.softmax_torch,
             "autograd": hips.softmax_autograd},
            note="last axis; backward seeded with ones"),
    contest("module_mlp_step", "MLP step, Module + SGD", _goal(numpy=1.15, torch=2.0),
            {"pygrad": training.module_pygrad, "numpy": floors.mlp_numpy, "torch": training.module_torch,
             "autograd": hips.mlp_autograd},
            note="pygrad: model_reset, zero_grad, model(x=x), loss, backward, step; torch: nn.Linear "
                 "model, zero_grad, loss, backward, torch.optim.SGD.step; NumPy and autograd have no "
                 "Module: the same step as the MLP row"),
]
