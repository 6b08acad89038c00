"""pygrad: a small, fast NumPy autodiff library.

`Tensor` records the operations applied to it; `backward()` fills every `.grad`."""
from pygrad.constants import PRECISION
from pygrad.tensor import Tensor, array

__version__ = "0.1.0"

__all__ = ["PRECISION", "Tensor", "array", "__version__"]
