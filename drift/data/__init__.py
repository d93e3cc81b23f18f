"""Data: the offline story grammar, tokenizers, corpus loading, the probe, batches and the run context."""
