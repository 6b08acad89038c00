"""Side-by-side benchmarks of pygrad against PyTorch: `python -m benchmarks`.

Nothing here is imported by pygrad, and nothing here asserts a timing: the command measures,
compares against the goals of `benchmarks.contests` and reports. Every framework's step runs
in its own fresh interpreter (`benchmarks.runner`, `benchmarks.child`); `python -m
benchmarks compare` times two versions of pygrad the same way (`benchmarks.regression`).

Layers, lowest first (checked by import-linter, see pyproject.toml): `core` (types), `data`,
`timing`, `environment` -> `steps` (one module per framework) -> `child`, `runner` ->
`contests`, `memory`, `probes`, `scaling`, `profiling`, `regression` -> `catalogue`, `report`
-> `cli`. The package imports no NumPy at import time, so the command can clean the BLAS
environment before NumPy loads."""
