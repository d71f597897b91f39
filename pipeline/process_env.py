"""Process settings every entry point applies before TensorFlow is first imported."""

import os
import warnings


def configure() -> None:
  # TFRS and tf.Transform are written for Keras 2; TF 2.16 defaults to Keras 3.
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  # CUDA-not-found and cuDNN-registration lines on every CPU-only import.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # Google client libraries warn on every import that Python 3.10 is past end of
  # life; 3.10 is what TFX 1.16 supports, so the warning says nothing actionable.
  warnings.filterwarnings('ignore', category=FutureWarning, module=r'google(\.|$)')
  warnings.filterwarnings('ignore', message=r'.*Python version.*', category=FutureWarning)
  # aiplatform nags about google-cloud-storage 3; the tested pins have 2.19.
  warnings.filterwarnings('ignore', message=r'.*google-cloud-storage.*', category=FutureWarning)
