"""What the two digits examples share: the command line, the data, the training loop and the plot.

The data is scikit-learn's bundled 8x8 digits set (1797 images, no download). Images are
scaled from 0..16 to [0, 1] and shaped (N, 1, 8, 8); targets are one-hot rows (N, 1, 10),
the (B, n, w) layout that `CCELoss` expects.

Needs the `examples` extra: `python -m pip install -e ".[examples]"`
(scikit-learn, matplotlib, tqdm).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from pygrad import Adam, CCELoss, Tensor

N_CLASSES = 10
QUICK_EPOCHS = 3        # --quick: a few epochs ...
QUICK_TRAIN_SIZE = 400  # ... on a subset of the training images


def parse_args(argv, description: str, epochs: int, batch_size: int, lr: float, out: str):
    """The examples' common options, with each script's defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"passes over the training set (default {epochs})")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help=f"images per mini-batch (default {batch_size})")
    parser.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default {lr})")
    parser.add_argument("--out", type=Path, default=Path(out), metavar="PATH.png",
                        help=f"where to save the loss/accuracy plot (default {out})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, the batch order and the train/test split (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_EPOCHS} epochs on {QUICK_TRAIN_SIZE} training images")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        parser.error("--epochs and --batch-size must be positive integers and --lr a positive number")
    if args.quick:
        args.epochs = min(args.epochs, QUICK_EPOCHS)
    return args


def load_data(seed: int, quick: bool = False):
    """(x_train, y_train, x_test, y_test): 75/25 split, stratified by class.

    x: (N, 1, 8, 8) in [0, 1]; y: one-hot (N, 1, 10). `quick` keeps QUICK_TRAIN_SIZE
    training images (the test set stays whole, so accuracies stay comparable)."""
    digits = load_digits()
    x = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    y = np.eye(N_CLASSES)[digits.target].reshape(-1, 1, N_CLASSES)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=digits.target)
    if quick:
        x_train, y_train = x_train[:QUICK_TRAIN_SIZE], y_train[:QUICK_TRAIN_SIZE]
    return x_train, y_train, x_test, y_test


def _inputs(x: np.ndarray, y: np.ndarray):
    """Input and target Tensors: both leaves (never weights); the target takes no gradient."""
    return Tensor(x, leaf=True), Tensor(y, leaf=True, learnable=False)


def evaluate(model, loss_fn, x: np.ndarray, y: np.ndarray):
    """(mean loss, accuracy) of the model's current weights on (x, y), in one batch."""
    model.model_reset()                     # the batched copy must see the latest weights
    xt, yt = _inputs(x, y)
    logits = model(x=xt)
    hits = logits.value.argmax(axis=-1) == y.argmax(axis=-1)
    return float(loss_fn(logits, yt).value), float(hits.mean())


def train(model, args, name: str) -> dict:
    """Train `model` with CCELoss and Adam on the digits, plot the curves to `args.out`,
    and return {"losses", "test_losses", "test_accuracies", "test_accuracy", "png", "seconds"}."""
    x_train, y_train, x_test, y_test = load_data(args.seed, quick=args.quick)
    loss_fn = CCELoss()
    optim = Adam(model.weights, lr=args.lr)
    n_batches = -(-len(x_train) // args.batch_size)
    history = {"losses": [], "test_losses": [], "test_accuracies": []}
    start = time.perf_counter()
    with tqdm(total=args.epochs * n_batches, desc=name, unit="batch") as bar:
        for epoch in range(1, args.epochs + 1):
            order = np.random.permutation(len(x_train))
            total = 0.0
            for first in range(0, len(x_train), args.batch_size):
                idx = order[first:first + args.batch_size]
                x, y_true = _inputs(x_train[idx], y_train[idx])
                # The training step of the pygrad contract:
                model.model_reset()
                optim.zero_grad()
                y_pred = model(x=x)
                loss = loss_fn(y_pred, y_true)
                loss.backward()
                optim.step(loss)
                total += float(loss.value) * len(idx)
                bar.set_postfix(epoch=f"{epoch}/{args.epochs}", loss=f"{float(loss.value):.4f}")
                bar.update()
            test_loss, test_acc = evaluate(model, loss_fn, x_test, y_test)
            history["losses"].append(total / len(x_train))
            history["test_losses"].append(test_loss)
            history["test_accuracies"].append(test_acc)
            bar.write(f"epoch {epoch:3d}/{args.epochs}: train loss {total / len(x_train):.4f}, "
                      f"test loss {test_loss:.4f}, test accuracy {test_acc:.2%}")
    seconds = time.perf_counter() - start
    title = f"{name} on sklearn digits ({len(x_train)} train / {len(x_test)} test images)"
    png = plot(history, args.out, title)
    print(f"{name}: test accuracy {history['test_accuracies'][-1]:.2%} after {args.epochs} epochs "
          f"({seconds:.1f} s of training); plot saved to {png}")
    return {**history, "test_accuracy": history["test_accuracies"][-1], "png": str(png), "seconds": seconds}


def plot(history: dict, path, title: str) -> Path:
    """Save loss (left) and test accuracy (right) per epoch as a PNG at `path`; return the path.
    Draws with the Agg backend directly, so no display and no global matplotlib state is used."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, len(history["losses"]) + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)

    ax_loss.plot(epochs, history["losses"], marker="o", label="train (mean over the epoch)")
    ax_loss.plot(epochs, history["test_losses"], marker="s", label="test (after the epoch)")
    ax_loss.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss (log scale)", yscale="log")
    ax_loss.legend()

    acc = 100 * np.asarray(history["test_accuracies"])
    ax_acc.plot(epochs, acc, marker="o", color="tab:green")
    ax_acc.annotate(f"{acc[-1]:.1f}%", (epochs[-1], acc[-1]), textcoords="offset points", xytext=(0, -16),
                    ha="right")
    ax_acc.set(title="Test accuracy", xlabel="epoch", ylabel="accuracy (%)",
               ylim=(min(80.0, acc.min() - 2), 100.5))

    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path
