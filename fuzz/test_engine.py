"""The engine's `learnable=False`: a random program, one random intermediate marked
learnable=False after the forward pass (`reference.invariants.check_stop`).

The marked node must receive the gradient torch gives that node when it is detached into a
leaf (the sum of its consumers' contributions); nothing below it may get gradient through
it (only through other paths); it and what only it reaches are absent from `topo`. A
mismatch is an `invariant` finding (a `structure` one for `topo`) -- unless the unmarked
program shows the same wrong gradient, which is then reported as the `grad` finding it is."""
from hypothesis import assume, given, note, strategies as st

from fuzz.harness import run_stop
from fuzz.strategies import programs
from reference.check import canonical


@given(data=st.data())
def test_learnable_false_receives_its_gradient_and_stops_the_flow(data):
    case = data.draw(programs(min_ops=2, max_ops=8), label="case")
    canon = canonical(case.program)
    nodes = [n.name for n in case.program.body_nodes() if canon[n.name] == n.name]
    assume(nodes)  # every node is `.T` of a 0-D or 1-D tensor, i.e. the input itself
    stop = data.draw(st.sampled_from(nodes), label="node marked learnable=False")
    note(f"{stop}.learnable = False")
    run_stop(case, stop)
