"""Examples, whatever they check, behind one interface.

A case knows how to `run()` its check (returning an `Outcome`, raising `Mismatch` or
`InvalidExample`), which report rows it counts in and which conditions it reaches -- per use
(`condition_sets()`: [(row, conditions)], one set per application of an op, layer, loss,
optimizer run or engine schedule: the pairs it reached are the pairs inside one set) and per
row (`conditions()`: row -> their union) --, the row a finding without a blamed node goes to (`row`), and
what it runs as plain pygrad code (`script()`: top-level definitions and statements -- the
reproducer of a hang or a crash, and what hypothesis shows for a falsifying example). Module
and training cases can also give the program of registry ops their model runs
(`blame_program()`), which a hang is replayed on to find the op that hangs. Random examples
(drawn by `reference.generators`) and the coverage pass's deterministic ones
(`reference.coverage`) are the same cases, so the harness treats them alike.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from reference.checks import Mismatch, Outcome
from reference.checks.engine import (check_backward_twice, check_deep_graph, check_stop, check_structure,
                                     deep_graph_script)
from reference.checks.layer_alone import DropoutRun, check_dropout, dropout_script
from reference.checks.module_calls import ModuleCalls, calls_script, check_module_calls
from reference.checks.programs import check_program
from reference.checks.tensor_api import check_tensor_api
from reference.checks.tensor_api import conditions as tensor_api_conditions
from reference.checks.tensor_api import script as tensor_api_script
from reference.checks.training import TrainRun, check_training, train_script
from reference.programs import printer
from reference.programs.conditions import by_row, engine_conditions, program_condition_sets
from reference.programs.graph import Program
from reference.programs.nets import build, module_code, module_program, ops_of, program_values, shapes, weight
from reference.registry import ENGINE_ROW, LAYERS, LOSS_OPS, MODULE_LOSSES, MODULE_ROW, Layer, LayerUse, Use, spec_of
from reference.registry.engine_row import EngineUse
from reference.registry.layers import layer_conditions
from reference.registry.regimes import has_offset
from reference.registry.tensor_row import TENSOR_ROW


class Conditions:
    """`conditions()` from `condition_sets()`: row -> the union of its uses' sets."""

    def conditions(self) -> dict:
        return by_row(self.condition_sets())


@dataclass(frozen=True)
class ProgramCase(Conditions):
    """A program and its input values. `check`: "torch" (values and gradients vs torch,
    with `passes` backward passes, and vs finite differences when `fd`), "twice",
    "structure", "stop" (node `stop` marked learnable=False) or "helpers" (Tensor's own
    methods, the learnable inputs changed between two passes as `helpers` says:
    `checks.tensor_api`)."""

    program: Program
    values: dict = field(hash=False)
    seed: int
    fd: bool = False
    check: str = "torch"
    passes: int = 1
    stop: str | None = None
    require_fd: bool = False       # an example where finite differences cannot run is invalid
    helpers: tuple = ()            # "helpers": each learnable input's mode (registry.tensor_row.MODES)

    def run(self) -> Outcome:
        p, v = self.program, self.values
        if self.check == "twice":
            return check_backward_twice(p, v, self.seed)
        if self.check == "structure":
            return check_structure(p, v)
        if self.check == "stop":
            return check_stop(p, v, self.seed, self.stop)
        if self.check == "helpers":
            return check_tensor_api(p, v, self.seed, self.helpers)
        return check_program(p, v, self.seed, fd=self.fd, passes=self.passes)

    def condition_sets(self) -> list:
        sets = program_condition_sets(self.program, self.values, self.check, self.passes)
        if self.check == "helpers":
            sets.append((TENSOR_ROW, frozenset(tensor_api_conditions(self.program, self.helpers))))
        return sets

    def rows(self) -> set:
        return {spec_of(op).row for op in self.program.ops()} | {ENGINE_ROW} | (
            {TENSOR_ROW} if self.check == "helpers" else set())

    @property
    def row(self) -> str:
        """The row a finding of this case is blamed on when no node is."""
        if self.check == "helpers":
            return TENSOR_ROW
        ops = set(self.program.ops())
        return spec_of(ops.pop()).row if len(ops) == 1 and self.check == "torch" else ENGINE_ROW

    def script(self) -> tuple:
        if self.check == "helpers":
            return "", tensor_api_script(self.program, self.values, self.helpers)
        body = printer.program_code(self.program, self.values, backward=False).splitlines()
        root = self.program.root
        calls = {"twice": ["backward()", "backward()"], "structure": ["create_graph()"]}.get(
            self.check, ["backward()"] + ["backward(reset_grad=False)"] * (self.passes - 1))
        stop = [f"{self.stop}.learnable = False"] if self.stop else []
        return "", body + stop + [f"{root}.{c}" for c in calls]

    def __repr__(self):
        return _show(self, f"seed={self.seed}, check={self.check!r}")


@dataclass(frozen=True)
class ModuleCase(Conditions):
    """Module calls (`checks.module_calls.ModuleCalls`)."""

    calls: ModuleCalls
    row = MODULE_ROW

    def run(self) -> Outcome:
        return check_module_calls(self.calls)

    def condition_sets(self) -> list:
        """The Module's calls, each layer (in order), the loss of each call."""
        spec = self.calls.spec
        acts = shapes(spec)
        sizes = tuple(len(x) for x, _ in self.calls.batches)
        out = [(MODULE_ROW, frozenset(self.calls.conditions()))]
        offset = any(has_offset(x) for x, _ in self.calls.batches)   # the first layer's input
        out += [(layer.spec.row, frozenset(layer_conditions(LayerUse(layer, acts[i], sizes, spec.dtype,
                                                                     offset=offset and i == 0))))
                for i, layer in enumerate(spec.layers)]
        loss = MODULE_LOSSES[spec.loss]
        if loss.op:
            op = LOSS_OPS[loss.op]
            for _, target in self.calls.batches:
                t = np.asarray(target)
                use = Use((t.shape, t.shape), (spec.dtype,) * 2, op.all_args(dict(loss.args)), (np.zeros(t.shape), t))
                out.append((loss.row, frozenset(c.name for c in op.all_conditions() if c.reached(use))))
        return out

    def rows(self) -> set:
        return set(self.conditions()) | {spec_of(op).row for op in ops_of(self.calls.spec)}

    def script(self) -> tuple:
        s = calls_script(self.calls)
        return module_code(self.calls.spec), s.lines

    def blame_program(self) -> tuple:
        x, target = self.calls.batches[0]
        return _module_program(self.calls.spec, self.calls.seed, x, target)

    def __repr__(self):
        return _show(self, f"spec={self.calls.spec!r}")


@dataclass(frozen=True)
class TrainCase(Conditions):
    """An optimizer trajectory (`checks.training.TrainRun`)."""

    train: TrainRun

    @property
    def row(self) -> str:
        return self.train.row

    def prepare(self) -> None:
        """torch.optim's first step imports torch._dynamo (~1 s): not the example's time."""
        import torch
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        torch.optim.SGD([p], lr=0.1).step()

    def run(self) -> Outcome:
        return check_training(self.train)

    def condition_sets(self) -> list:
        n = sum(len(layer.spec.weights(layer)) for layer in self.train.spec.layers)
        return [(self.train.row, frozenset(self.train.conditions(n)))]

    def rows(self) -> set:
        spec = self.train.spec
        return {self.train.row} | {layer.spec.row for layer in spec.layers} | {spec_of(op).row for op in ops_of(spec)}

    def script(self) -> tuple:
        return module_code(self.train.spec), train_script(self.train).lines

    def blame_program(self) -> tuple:
        chunks = self.train.steps[0]
        x, target = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        return _module_program(self.train.spec, self.train.seed, x, target)

    def __repr__(self):
        return _show(self, f"{self.train.name}{dict(self.train.hyper)}")


@dataclass(frozen=True)
class DropoutCase(Conditions):
    """Dropout alone in training mode (`checks.layer_alone`)."""

    run_: DropoutRun
    row = LAYERS["dropout"].row

    def run(self) -> Outcome:
        return check_dropout(self.run_)

    def condition_sets(self) -> list:
        use = LayerUse(Layer.make("dropout", rate=self.run_.rate), self.run_.shape[1:], self.run_.shape[:1],
                       self.run_.dtype, mode="training")
        return [(self.row, frozenset(layer_conditions(use)))]

    def rows(self) -> set:
        return {self.row}

    def script(self) -> tuple:
        return "", dropout_script(self.run_)

    def __repr__(self):
        return _show(self, repr(self.run_))


@dataclass(frozen=True)
class DeepGraphCase(Conditions):
    steps: int
    row = ENGINE_ROW

    def run(self) -> Outcome:
        return check_deep_graph(self.steps)

    def condition_sets(self) -> list:
        """The chain x -> -(x + b) -> ... as the engine row sees it: b in every step."""
        return [(ENGINE_ROW, engine_conditions(_deep_use(self.steps)))]

    def rows(self) -> set:
        return {ENGINE_ROW}

    def script(self) -> tuple:
        return "", deep_graph_script(self.steps)

    def __repr__(self):
        return f"DeepGraphCase(steps={self.steps})"


@dataclass(frozen=True)
class ErrorCase(Conditions):
    """A call pygrad must refuse (an `ErrorInput` of op `op`)."""

    op: str
    index: int

    @property
    def error_input(self):
        spec = spec_of(self.op)
        return (list(spec.rule.error_inputs(spec)) + list(spec.error_inputs))[self.index]

    def _call(self) -> tuple:
        spec, e = spec_of(self.op), self.error_input
        arrays = e.make(np.random.default_rng(self.index)) if e.make else [np.ones(s) for s in e.shapes]
        names = [f"x{i}" for i in range(len(arrays))]
        call = spec.render(names, e.args, lambda k, v: printer.subscript(v) if k == "idx" else printer.literal(v))
        return arrays, names, call

    def script(self) -> tuple:
        arrays, names, call = self._call()
        e = self.error_input
        return "", [f"{n} = Tensor({printer.array_literal(a)})" for n, a in zip(names, arrays)] + [
            f"with pytest.raises({e.error.__name__}, match={e.match!r}):", f"    {call}"]

    def run(self) -> Outcome:
        from pygrad import Tensor
        spec, e = spec_of(self.op), self.error_input
        arrays, _, call = self._call()
        body = self.script()[1]

        def fail(what, did):
            raise Mismatch("error", spec.row, f"{call} with shapes {e.shapes}: pygrad {what}, but it must raise "
                           f"{e.error.__name__} naming {e.match!r}", f"{call}  [{self.op}]",
                           printer.regression_test("error", self.op, body),
                           what=f"{did} where {self.op} must raise {e.error.__name__}")
        try:
            spec.call(*[Tensor(a) for a in arrays], **e.args)
        except e.error as exc:
            if e.match not in str(exc):
                fail(f"raised {type(exc).__name__} without naming the op ({exc})", "an unnamed error")
        except Exception as exc:  # noqa: BLE001
            fail(f"raised {type(exc).__name__} ({exc})", type(exc).__name__)
        else:
            fail("returned a result", "a result")
        return Outcome()

    def condition_sets(self) -> list:
        return [(spec_of(self.op).row, frozenset())]

    def rows(self) -> set:
        return {spec_of(self.op).row}

    @property
    def row(self) -> str:
        return spec_of(self.op).row

    def __repr__(self):
        return _show(self, repr(self.op))


@functools.lru_cache(maxsize=4)
def _deep_use(steps: int) -> EngineUse:
    body, y = [], "x"
    for k in range(steps):
        body += [(f"a{k}", (y, "b")), (f"y{k}", (f"a{k}",))]
        y = f"y{k}"
    return EngineUse(tuple(body), frozenset({"input", "weight", "constant"}), check="deep")


def _show(case, what: str) -> str:
    """`Case(what)` followed by the pygrad code it runs (hypothesis prints it for a failure)."""
    definitions, body = case.script()
    code = "\n".join(([definitions.rstrip()] if definitions else []) + body).replace("\n", "\n    ")
    return f"{type(case).__name__}({what}):\n    {code}"


def _module_program(spec, seed, x, target) -> tuple:
    """(program, values): the Module's forward and loss as registry ops, initial weights."""
    model, weights = build(spec, seed)
    prog, _ = module_program(spec, len(x), weights)
    return prog, program_values(spec, weights, {w.name: weight(model, w.name).value for w in weights}, x, target)
