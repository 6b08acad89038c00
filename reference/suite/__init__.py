"""The property tests the gate runs (shipped inside the package, so an installed pygrad-check
needs no source checkout). The repository's top-level `fuzz/` re-exports them for plain
`pytest` runs."""
