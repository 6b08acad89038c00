"""`python -m reference`: the correctness gate (see `reference.gate.cli`)."""
import sys

from reference.gate.cli import main

sys.exit(main())
