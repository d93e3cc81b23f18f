"""Training: optimizer and schedule, the one training loop, low precision, distributed, control-run definitions."""
