"""Code that TFX components run, loaded by dotted path: importable and testable without TFX.

transform/ (preprocessing_fn and a row function per feature kind), model/ (the ranker,
its optimizers, warm start), data/ (the two readers of transformed splits, the
catalogue), training/ (run_fn, the loop, distribution, metrics.json), serving/ (the
exported signatures, retrieval), tuning.py (tuner_fn), evaluation_metrics.py (TFMA).
"""

import os

# TFRS and tf.Transform are written for Keras 2; TF 2.16 defaults to Keras 3. Set here,
# before any submodule imports TensorFlow, so every component process gets it.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
