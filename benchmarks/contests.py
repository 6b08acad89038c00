"""The contests: each workload in pygrad, the hand-written NumPy step, torch and autograd,
each in its own fresh interpreter, rounds interleaved (`benchmarks.runner`).

Goals are the issue's targets, as ratios pygrad / framework: every training workload within
1.15x of its NumPy limit; against torch the MLP step and conv2D within 1.3x, softmax within
2.2x (torch's softmax uses both cores, NumPy's ufuncs one), the elementwise chain within
0.7x per op; faster than autograd on every workload. The chain is no training workload: its
NumPy column is shown, not judged.
"""
from __future__ import annotations

from benchmarks import data
from benchmarks.core import FRAMEWORKS, Config, Goal, Workload
from benchmarks.runner import Contender, interleaved, round_ratios, same_results, start, stop


def measure_contest(workload: str, config: Config, params: dict | None = None, per: int = 1) -> dict:
    """The row fields of one contest: times (best round), faults per step (median round),
    ratios pygrad / other (median of the rounds' ratios) with their spread. pygrad and torch
    must run; a framework that cannot says why in `details["unavailable"]`. Before timing,
    every framework's first step is compared with pygrad's (`details["same_result"]`)."""
    contenders = {fw: Contender(fw, workload, params or {}) for fw in FRAMEWORKS}
    children, unavailable = start(contenders, config.threads)
    try:
        if "torch" not in children:
            from benchmarks.core import NotAvailable
            raise NotAvailable(f"torch: {unavailable['torch']}")
        same = same_results(children, "pygrad")
        timed = interleaved(children, config.repeat, config.quick)
        infos = {name: child.info for name, child in children.items()}
    finally:
        stop(children)
    times = {name: t["best_s"] / per for name, t in timed.items()}
    faults = {name: t["faults"] for name, t in timed.items()}
    others = [name for name in times if name != "pygrad"]
    spreads = {name: round_ratios(timed["pygrad"]["samples_s"], timed[name]["samples_s"]) for name in others}
    ratios = {name: spreads[name]["median"] for name in others}
    return {"pygrad_s": times["pygrad"], "torch_s": times["torch"], "ratio": ratios["torch"],
            "value": ratios, "times": times, "faults": faults, "ratios": ratios, "spreads": spreads,
            "details": {"same_result": all(same.values()), "same_result_by_framework": same,
                        "best_ratios": {name: times["pygrad"] / times[name] for name in others},
                        "unavailable": unavailable, "per": per, "timing": timed, "children": infos}}


def contest(id: str, title: str, goal: Goal, per: int = 1, note: str = "") -> Workload:
    return Workload(id, title, goal, lambda config: measure_contest(id, config, per=per), note)


def _goal(numpy=None, torch=None, autograd=1.0) -> Goal:
    limits = tuple((name, limit) for name, limit in
                   (("numpy", numpy), ("torch", torch), ("autograd", autograd)) if limit is not None)
    return Goal("ratios", limits=limits)


_conv = data.CONV
WORKLOADS = [
    contest("elementwise_chain", f"elementwise chain, {data.CHAIN_OPS} ops (16,16), per op",
            _goal(torch=0.7), per=data.CHAIN_OPS,
            note="25 x (y*x, +x, tanh, *x); time of forward + backward divided by 100"),
    contest("mlp_step", "MLP 784-100-10 step, batch 64, plain Tensors", _goal(numpy=1.15, torch=1.3),
            note="x (64,1,784) @ W (1,784,100); manual SGD update. pygrad (and the NumPy step) also "
                 "compute x's and t's gradients: they are Tensors; torch's and autograd's are not"),
    contest("conv2d", f"conv2D ({_conv['batch']},{_conv['chans']},{_conv['size']},{_conv['size']}), "
                      f"{_conv['out']} kernels {_conv['k']}x{_conv['k']}",
            _goal(numpy=1.15, torch=1.3), note="gradients of kernel and input in every framework"),
    contest("softmax", "softmax (64,10,100)", _goal(numpy=1.15, torch=2.2),
            note="last axis; backward seeded with ones"),
    contest("module_mlp_step", "MLP step, Module + SGD", _goal(numpy=1.15, torch=2.0),
            note="pygrad: model_reset, zero_grad, model(x=x), loss, backward, step; torch: nn.Linear "
                 "model, zero_grad, loss, backward, torch.optim.SGD.step; NumPy and autograd have no "
                 "Module: the same step as the MLP row"),
]
