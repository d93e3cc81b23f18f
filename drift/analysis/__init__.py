"""A run's analyses over its checkpoints: streamed Grams, the trajectory (A1-A7), mechanism (A8-A10), controls."""
