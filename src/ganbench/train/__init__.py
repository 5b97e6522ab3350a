"""Training: the GAN step, the loop, optimisers and schedules, checkpoints, and one run's training."""
