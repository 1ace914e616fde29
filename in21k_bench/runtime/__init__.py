"""Where code runs: device choice, torchrun processes, optional-dependency checks."""
