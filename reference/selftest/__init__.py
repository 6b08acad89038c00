"""The self-test: the gate must fail on every deliberately broken pygrad (`mutants`, `run`)."""
# `mutants` defines Mutant before it builds the catalogue from `catalogue`, whose entries need
# Mutant: importing it first lets `import reference.selftest.catalogue` work on its own too.
from reference.selftest import mutants  # noqa: F401,E402
