"""The engine: backward schedules, graph structure, learnable=False, on random programs.

- reset_grad=False: every node keeps the gradient it holds and adds the new pass to it;
  the torch oracle is `torch.autograd.backward([root, *intermediates], [ones, *previous])`;
- backward() twice equals backward() once (reset_grad=True zeroes everything first);
- `create_graph()` returns every learnable tensor once, in post-order of a left-to-right
  depth-first walk, and the weights (leaf=False) in the same order;
- a node marked learnable=False receives its gradient, passes none on, and leaves `topo`;
- Tensor's own methods (`pygrad.array`, shape and friends, numpy, item, detach, the stored
  graphs) and the helpers that change an input between two passes (new_value, value and
  grad assignment, reset_grad), then backward(reset_grad=False): `checks.tensor_api`."""
import dataclasses

from hypothesis import strategies as st

from reference.checks.engine import canonical
from reference.generators.programs import programs
from reference.harness import prop, run_property
from reference.registry import ENGINE_ROW, TENSOR_ROW
from reference.registry.tensor_row import MODES


def _engine(**params):
    return [ENGINE_ROW]


def _with(check, **kw):
    return programs(min_ops=1, max_ops=8).map(lambda case: dataclasses.replace(case, check=check, fd=False, **kw))


@st.composite
def _stopped(draw):
    case = draw(programs(min_ops=2, max_ops=8))
    canon = canonical(case.program)
    nodes = [n.name for n in case.program.body_nodes() if canon[n.name] == n.name] or [None]
    stop = draw(st.sampled_from(nodes))
    return dataclasses.replace(case, check="stop" if stop else "torch", stop=stop, fd=False)


@prop(rows=_engine, checks=("invariant", "value", "grad", "error"))
def test_backward_reset_grad_false(request):
    """2-3 backward(reset_grad=False) passes accumulate in every node as
    torch.autograd.backward([root, *intermediates], [ones, *previous_grads])"""
    strategy = st.integers(2, 3).flatmap(lambda p: _with("torch", passes=p))
    run_property(strategy, request.node.nodeid)


@prop(rows=_engine, checks=("invariant", "grad", "error"))
def test_backward_twice_equals_once(request):
    """backward() twice leaves the same gradients as backward() once"""
    run_property(_with("twice"), request.node.nodeid)


@prop(rows=_engine, checks=("structure", "error"))
def test_create_graph_structure(request):
    """create_graph() returns every learnable tensor once, constants absent, in the post-order
    of a left-to-right depth-first walk, and the weights in that order"""
    run_property(_with("structure"), request.node.nodeid)


@prop(rows=_engine, checks=("invariant", "structure", "grad", "error"))
def test_learnable_false_receives_its_gradient_and_stops_the_flow(request):
    """a node marked learnable=False gets its own gradient, passes none below it, and it and
    what only it reaches are absent from topo"""
    run_property(_stopped(), request.node.nodeid)


@st.composite
def _helpers(draw):
    case = draw(programs(min_ops=1, max_ops=8))
    modes = tuple(draw(st.sampled_from(MODES)) for _ in case.program.learnable_inputs())
    return dataclasses.replace(case, check="helpers", helpers=modes, fd=False)


@prop(rows=lambda: [TENSOR_ROW], checks=("invariant", "value", "grad", "error"))
def test_tensor_methods_and_helpers_between_passes(request):
    """inputs made with pygrad.array equal Tensor(...); shape, dtype, ndim, size, len, numpy(),
    item(), detach() and the topo/weights backward stores agree with torch and create_graph();
    new_value, value and grad assignment, reset_grad between two passes: the second
    backward(reset_grad=False) leaves each input's held gradient plus the new pass's"""
    run_property(_helpers(), request.node.nodeid)
