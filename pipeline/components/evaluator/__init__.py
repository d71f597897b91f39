"""The Evaluator (component.py): TFX's, minus evaluating the blessed baseline against itself."""
