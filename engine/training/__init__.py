"""Training: optimizers, learning-rate schedules and the Trainer."""
