"""A run's analyses over its checkpoints: streamed Grams, the trajectory (A1-A7), updates, gradients and Fisher
(A8-A10), controls."""
