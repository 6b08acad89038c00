"""Hypothesis generators of the suite's examples: random programs and ops alone (`programs`),
random Modules, their calls and their training (`modules`)."""
