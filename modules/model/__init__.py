"""The ranker (ranking.py), its optimizers and warm start."""
