"""Features of a backbone: the backbone registry, extraction, the memory-mapped feature store, simulation."""
