"""A small convolutional network learns handwritten digits.

    python examples/digits_cnn.py                      # ~20 epochs, about 97-98% test accuracy
    python examples/digits_cnn.py --quick --out /tmp/cnn.png

Conv2D(16 filters, 3x3) -> ReLU -> Flatten -> Linear(16*6*6, 10) on scikit-learn's bundled
digits (no download), inputs (B, 1, 8, 8) in [0, 1], one-hot targets (B, 1, 10). Loss
CCELoss on the logits, optimizer Adam, mini-batches; the loss and accuracy curves are saved
as a PNG (--out). Needs the `examples` extra.
"""
from __future__ import annotations

import numpy as np

from _digits import parse_args, train
from pygrad import Conv2D, Flatten, Linear, Module, ReLU, Tensor


class DigitsCNN(Module):
    """(B, 1, 8, 8) -> Conv2D 3x3 -> (B, filters, 6, 6) -> ReLU -> Flatten -> Linear: logits (B, 1, 10)."""

    def __init__(self, filters: int = 16):
        self.conv1 = Conv2D(filters, 1, 3, 3)          # o_dim, i_dim, kH, kW
        self.relu1 = ReLU()
        self.flatten = Flatten()
        self.dense1 = Linear(filters * 6 * 6, 10)
        super().__init__(x=Tensor(np.ones((1, 1, 8, 8)), leaf=True))   # example inputs, keyword only

    def forward(self, x):
        return self.dense1(self.flatten(self.relu1(self.conv1(x))))


def main(argv=None) -> dict:
    """Train and evaluate; returns {"losses" (per epoch), "test_accuracy", "png", ...}."""
    args = parse_args(argv, __doc__.splitlines()[0], epochs=20, batch_size=32, lr=3e-3, out="digits_cnn.png")
    np.random.seed(args.seed)       # the weights' init and the batch order
    return train(DigitsCNN(), args, "DigitsCNN")


if __name__ == "__main__":
    main()
