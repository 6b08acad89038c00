"""Root pytest configuration: the suite's hypothesis profiles (`reference.profiles`).

`HYPOTHESIS_PROFILE` picks one -- `dev`, `ci` (the default here, so a plain
`python -m pytest -n 2` is deterministic) or `thorough`."""
from reference.profiles import load

load(default="ci")
