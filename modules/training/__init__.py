"""Training: run_fn (trainer.py), the loop, distribution and metrics.json."""
