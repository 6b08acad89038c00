"""`python -m reference`: the correctness gate (see `reference.cli`)."""
import sys

from reference.cli import main

sys.exit(main())
