"""The self-test: the gate must fail on every deliberately broken pygrad (`mutants`, `run`)."""
