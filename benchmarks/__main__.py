"""`python -m benchmarks [--quick] [--json PATH] [--repeat N] ...`"""
import sys

from benchmarks.cli import main

sys.exit(main())
