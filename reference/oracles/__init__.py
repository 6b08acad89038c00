"""The oracles: PyTorch in float64 (`torch_run`), with tolerances (`oracle`), and finite
differences of a program's loss (`program_fd`)."""
