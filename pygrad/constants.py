"""Library-wide constants."""
import numpy as np

PRECISION = np.float64
"""The default dtype of every Tensor."""
