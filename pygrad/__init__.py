"""pygrad: a small, fast NumPy autodiff library.

`Tensor` records the operations applied to it; `backward()` fills every `.grad`. Layers,
losses, optimizers and `Module` are built on top of the Tensor operations; `function` makes
a new operation from a NumPy forward and its backward rule."""
from pygrad import allocator
from pygrad.constants import PRECISION
from pygrad.tensor import Tensor, array
from pygrad.basics import AddNorm, Conv2D, Dropout, Flatten, Linear, Softmax
from pygrad.activations import ReLU, Sigmoid, Tanh
from pygrad.losses import BCELoss, CCELoss
from pygrad.optims import SGD, SGD_Momentum, RMSProp, Adam
from pygrad.module import Module
from pygrad.function import Function, function

__version__ = "0.1.0"

allocator.apply_at_import()   # keep freed memory for reuse (see pygrad.allocator; off switch there)

__all__ = [
    "PRECISION", "Tensor", "array",
    "Linear", "Conv2D", "Flatten", "Softmax", "Dropout", "AddNorm",
    "ReLU", "Tanh", "Sigmoid",
    "BCELoss", "CCELoss",
    "SGD", "SGD_Momentum", "RMSProp", "Adam",
    "Module",
    "function", "Function",
    "__version__",
]
