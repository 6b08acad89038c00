"""The gate: the command line, its worker-side session and pytest plugin, and its report."""
