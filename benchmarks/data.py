"""The workloads' inputs and sizes, shared by every framework's steps (NumPy only).

Every framework starts from the same float64 arrays, so their results can be compared
before they are timed."""
from __future__ import annotations

import numpy as np

CHAIN_OPS = 100                 # 25 rounds of (* x, + x, tanh, * x)
CHAIN_SHAPE = (16, 16)
BATCH, IN, HIDDEN, OUT = 64, 784, 100, 10
LR = 0.01
SOFTMAX_SHAPE = (64, 10, 100)
# conv2D: (batch, in channels, height = width, out channels, kernel size)
CONV = {"batch": 32, "chans": 1, "size": 28, "out": 4, "k": 5}
# conv2D across sizes (the scaling sweep and the regression check): the benchmark's, MNIST-sized
# batches, many channels, large images; by the size of their im2col matrix (float64):
CONV_SIZES = {
    "bench": CONV,                                                         # 4.1 MiB
    "mnist64": {"batch": 64, "chans": 1, "size": 28, "out": 6, "k": 5},   # 8.2 MiB
    "channels": {"batch": 32, "chans": 16, "size": 14, "out": 32, "k": 3},  # 5.9 MiB
    "mnist256": {"batch": 256, "chans": 1, "size": 28, "out": 6, "k": 5},  # 33 MiB
    "image128": {"batch": 8, "chans": 3, "size": 128, "out": 16, "k": 3},  # 27 MiB
    "image224": {"batch": 8, "chans": 3, "size": 224, "out": 16, "k": 3},  # 82 MiB
}


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def chain_input(shape: tuple = CHAIN_SHAPE) -> np.ndarray:
    return rng().uniform(-1, 1, shape)


def mlp_arrays(seed: int = 0, batch: int = BATCH) -> dict[str, np.ndarray]:
    """Inputs, one-hot targets and Linear-style uniform weights in pygrad's layout
    (W (1, in, out), b (1, 1, out)). The weights do not depend on `batch`."""
    gen = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(IN), 1 / np.sqrt(HIDDEN)
    weights = {
        "W1": gen.uniform(-b1, b1, (1, IN, HIDDEN)), "b1": gen.uniform(-b1, b1, (1, 1, HIDDEN)),
        "W2": gen.uniform(-b2, b2, (1, HIDDEN, OUT)), "b2": gen.uniform(-b2, b2, (1, 1, OUT)),
    }
    return {"x": gen.standard_normal((batch, 1, IN)),
            "t": np.eye(OUT)[gen.integers(0, OUT, batch)][:, None, :], **weights}


def conv_matrix_bytes(batch, chans, size, out, k) -> int:
    """Bytes of conv2D's im2col matrix in pygrad's wide layout (float64): C*k*k rows,
    oH * W * B columns."""
    return chans * k * k * (size - k + 1) * size * batch * 8


def conv_label(batch, chans, size, out, k) -> str:
    return f"({batch},{chans},{size},{size}) {out}@{k}x{k}"


def conv_shape(**sizes) -> dict:
    """CONV with some sizes replaced."""
    unknown = set(sizes) - set(CONV)
    if unknown:
        raise ValueError(f"conv sizes: unknown {sorted(unknown)}; known {sorted(CONV)}")
    return {**CONV, **sizes}


def conv_arrays(batch=CONV["batch"], chans=CONV["chans"], size=CONV["size"], out=CONV["out"],
                k=CONV["k"]) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (1, out, chans, k, k) with Conv2D's uniform init, input (batch, chans, size, size))."""
    gen = rng()
    bound = 1 / np.sqrt(chans * k * k)
    return gen.uniform(-bound, bound, (1, out, chans, k, k)), gen.standard_normal((batch, chans, size, size))


def softmax_input(shape: tuple = SOFTMAX_SHAPE) -> np.ndarray:
    return rng().standard_normal(shape)
