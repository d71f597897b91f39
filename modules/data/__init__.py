"""Reading transformed splits: columnar blocks, tf.Examples, the item catalogue."""
