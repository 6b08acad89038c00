"""The self-test: the gate must fail on every deliberately broken pygrad.

Layers, each importing only those below it: `mutants` (the mutant types and how one is
applied to a copy of the project), `catalogue` (the hand-written mutants) and `generate`
(mutants derived from pygrad's source), `probes` and `classify` (what a mutant changes,
without the gate), `run` and `generated` (the gate on each mutant: the `--mutants` mode).
"""
