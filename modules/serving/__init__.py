"""The exported SavedModel (export.py), top-K retrieval and how well it retrieves."""
