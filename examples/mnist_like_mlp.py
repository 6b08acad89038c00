"""A two-layer perceptron (the seed's DNN2, sized for 8x8 images) learns handwritten digits.

    python examples/mnist_like_mlp.py                  # ~20 epochs, about 97% test accuracy
    python examples/mnist_like_mlp.py --quick --out /tmp/mlp.png

Data: scikit-learn's bundled digits (no download), inputs (B, 1, 8, 8) in [0, 1],
one-hot targets (B, 1, 10). Loss CCELoss on the logits, optimizer Adam, mini-batches;
the loss and accuracy curves are saved as a PNG (--out). Needs the `examples` extra.
"""
from __future__ import annotations

import numpy as np

from _digits import parse_args, train
from pygrad import Flatten, Linear, Module, ReLU, Tensor


class DNN2(Module):
    """Flatten -> Linear(64, hidden) -> ReLU -> Linear(hidden, 10): logits (B, 1, 10)."""

    def __init__(self, hidden: int = 64):
        self.flatten = Flatten()
        self.dense1 = Linear(8 * 8, hidden)
        self.relu1 = ReLU()
        self.dense2 = Linear(hidden, 10)
        super().__init__(x=Tensor(np.ones((1, 1, 8, 8)), leaf=True))   # example inputs, keyword only

    def forward(self, x):
        return self.dense2(self.relu1(self.dense1(self.flatten(x))))


def main(argv=None) -> dict:
    """Train and evaluate; returns {"losses" (per epoch), "test_accuracy", "png", ...}."""
    args = parse_args(argv, __doc__.splitlines()[0], epochs=20, batch_size=32, lr=3e-3, out="digits_mlp.png")
    np.random.seed(args.seed)       # the weights' init and the batch order
    return train(DNN2(), args, "DNN2 (MLP)")


if __name__ == "__main__":
    main()
