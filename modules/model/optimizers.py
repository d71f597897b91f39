"""The optimizers a config can name, as TPUEmbedding needs them.

TPUEmbedding keeps optimizer slots in the layout of these (legacy) Keras optimizers;
contract/options.py OPTIMIZER_SLOTS names them and counts their slots.
"""

import tensorflow as tf

from contract.options import OPTIMIZER_SLOTS
from modules.model import lazy_adam

_OPTIMIZERS = {
    'adagrad': tf.keras.optimizers.legacy.Adagrad,
    'adam': lazy_adam.Adam,
    'sgd': tf.keras.optimizers.legacy.SGD,
}


def make_optimizer(name: str, learning_rate: float) -> tf.keras.optimizers.legacy.Optimizer:
  return _OPTIMIZERS[name](learning_rate=learning_rate)


assert set(_OPTIMIZERS) == set(OPTIMIZER_SLOTS), 'contract/options.py OPTIMIZER_SLOTS'
