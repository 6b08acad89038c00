"""Quick start: fit y = sin(x) with a small MLP (runs in about a second)."""
import numpy as np

from pygrad import Adam, Linear, Module, Tanh, Tensor

np.random.seed(0)
x = Tensor(np.random.uniform(-3, 3, size=(256, 1, 1)), leaf=True)   # (batch, n, features)
y = Tensor(np.sin(x.value), leaf=True)


class MLP(Module):
    def __init__(self):
        self.hidden, self.act, self.out = Linear(1, 32), Tanh(), Linear(32, 1)
        super().__init__(x=Tensor(np.zeros((1, 1, 1)), leaf=True))   # example inputs, keyword only

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


model = MLP()
optim = Adam(model.weights, lr=0.02)
for epoch in range(300):
    optim.zero_grad()
    loss = ((model(x=x) - y) ** 2).mean(axis=None, keepdims=False)
    loss.backward()
    optim.step(loss)
    if epoch == 0:
        print(f"loss before: {loss.item():.6f}")
print(f"loss after:  {loss.item():.6f}")
