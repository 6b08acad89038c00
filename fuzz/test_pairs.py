"""The gate's property tests from `reference.suite.test_pairs`, collected here by a plain
`pytest` run of the repository (the gate runs them from the installed package)."""
from reference.suite.test_pairs import *  # noqa: F401,F403
