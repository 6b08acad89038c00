"""Shape rules: the families of operand layouts that registry entries share.

A rule knows, for every op that names it:
- `conditions`: the bug-prone conditions of the family (broadcast patterns, axis forms,
  1-D matmul operands, ...) as predicates on a `Use`;
- `samples(spec)`: the deterministic examples of the coverage pass, the plain one first and
  then, as far as possible, one per condition (PyTorch OpInfo's `sample_inputs`);
- `error_inputs(spec)`: calls pygrad must refuse;
- `fits(spec, shape, sign)`, `plan(spec, shape, sign, fd, dtype)`: how random programs apply
  the op to an existing node (the anchor), and `operands(spec, fd, dtype)`: fresh operands
  for the op alone. All hypothesis strategies draw structure before values.
"""
from reference.registry.rules.axes import Reduce, Reshape, Softmax, SwapLast, Transpose
from reference.registry.rules.base import F32, FLOAT32, MAX_SIZE, Elementwise, Rule
from reference.registry.rules.binary import Broadcast, Conv, Matmul, PowScalar, Reflected, ReflectedMatmul
from reference.registry.rules.index import Index, Masked

ELEMENTWISE, BROADCAST, REFLECTED = Elementwise(), Broadcast(), Reflected()
POSITIVE_BASE = Reflected(const_domain="pos")
POW, MATMUL_RULE, RMATMUL, REDUCE, SOFTMAX = PowScalar(), Matmul(), ReflectedMatmul(), Reduce(), Softmax()
RESHAPE, TRANSPOSE, SWAP_LAST, CONV = Reshape(), Transpose(), SwapLast(), Conv()
GETITEM = Index("idx")
MASK = Masked()

__all__ = ["F32", "FLOAT32", "MAX_SIZE", "Rule", "ELEMENTWISE", "BROADCAST", "REFLECTED", "POSITIVE_BASE", "POW",
           "MATMUL_RULE", "RMATMUL", "REDUCE", "SOFTMAX", "RESHAPE", "TRANSPOSE", "SWAP_LAST", "CONV", "GETITEM", "MASK"]
