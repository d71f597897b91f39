"""Transform: preprocessing_fn, a row function per feature kind, and the table sizes."""
