"""Studies over many runs: the probe regime and the eval-set size."""
