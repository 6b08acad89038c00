"""A user-defined op, checked: softplus with its own backward rule.

1. define `softplus` from a NumPy forward and its backward rule (`pygrad.function`);
2. check its gradient with `reference.gradcheck` -- against finite differences, and
   against PyTorch's softplus as a twin;
3. use it inside a Module and check the Module with `reference.check_module`;
4. make the classic slip in the rule (sigmoid(-x) for sigmoid(x)) and watch gradcheck catch it.

Run: python examples/custom_op.py   (needs the test extras: torch, hypothesis)
"""
import numpy as np
import torch

import pygrad
from pygrad import Linear, Module, Tensor
from reference import GradientMismatch, check_module, gradcheck


@pygrad.function
def softplus(x):
    """log(1 + e^x), computed without overflow; its derivative is sigmoid(x)."""
    def backward(g):                        # g: the gradient arriving at softplus(x)
        return g * 0.5 * (1 + np.tanh(x / 2))     # g * sigmoid(x), stable for any x
    return np.logaddexp(0.0, x), backward


@pygrad.function
def softplus_wrong(x):
    """The same forward, with a slip in the rule: sigmoid(-x) instead of sigmoid(x)."""
    def backward(g):
        return g / (1 + np.exp(x))
    return np.logaddexp(0.0, x), backward


class MLP(Module):
    def __init__(self, act):
        self.hidden, self.act, self.out = Linear(3, 8), act, Linear(8, 2)
        super().__init__(x=Tensor(np.zeros((1, 1, 3)), leaf=True))   # example inputs, keyword only

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


np.random.seed(0)
x = Tensor([[-1.5, 0.25, 2.0], [0.75, -0.5, 1.25]], label="x")

print("gradcheck(softplus, x):", gradcheck(softplus, x))
print("gradcheck(softplus, x, torch_fn=F.softplus):",
      gradcheck(softplus, x, torch_fn=torch.nn.functional.softplus))
print("float32 too:", gradcheck(softplus, Tensor(x.value, dtype=np.float32)))

model = MLP(softplus)
batch = Tensor(np.random.normal(size=(4, 1, 3)), leaf=True)       # (batch, n, features)
print("check_module(model, x=x):", check_module(model, x=batch))

try:
    gradcheck(softplus_wrong, x)
except GradientMismatch as e:
    print(f"\nthe slip is caught -- {type(e).__name__}: {e}")
else:
    raise SystemExit("gradcheck missed the wrong rule")
