"""The self-test: the gate must fail on every deliberately broken pygrad.

Layers, each importing only those before it: `mutants` (the mutant types and how one is
applied to a copy of the project); `catalogue` (the hand-written mutants) and `generate`
(mutants derived from pygrad's source); `probe_base`, `probe_ops`, `probe_state` and `probes`
(what a mutant changes, seen without the gate); `classify` (live, crash-only, silent);
`run` and `generated` (the gate on each mutant: the `--mutants` mode).
"""
