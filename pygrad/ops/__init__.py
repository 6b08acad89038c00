"""Every Tensor operation, one module per family. Each op is a function whose forward and
backward rule sit together; importing a module installs its ops as Tensor methods."""
from pygrad.ops import arithmetic, elementwise, reduction, shape, linalg, nn  # noqa: F401
