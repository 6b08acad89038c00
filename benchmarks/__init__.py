"""Side-by-side benchmarks of pygrad against PyTorch: `python -m benchmarks`.

Nothing here is imported by pygrad, and nothing here asserts a timing: the command measures,
compares against the goals in `benchmarks.registry` and reports. The package imports no
NumPy at import time, so the command can clean the BLAS environment before NumPy loads."""
