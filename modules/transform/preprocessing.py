"""Transform's `preprocessing_fn`: raw columns -> rows of embedding tables, and the label
(0/1, and the value it is derived from).

Each table's columns go through their kind's row function (feature_rows.py); features
sharing a table share one vocabulary (or one set of bucket boundaries) computed over
all of their columns. The features and label arrive through Transform's
`custom_config`, never as globals.
"""

import tensorflow as tf

from contract.model_inputs import LabelSpec, ModelInputs
from contract.names import LABEL_KEY, LABEL_VALUE_KEY, MODEL_INPUTS_KEY
from modules.transform import feature_rows

_COMPARISONS = {
    '>=': tf.greater_equal,
    '>': tf.greater,
    '<=': tf.less_equal,
    '<': tf.less,
    '==': tf.equal,
    '!=': tf.not_equal,
}


def derive_label(tensor, label: LabelSpec):
  """The 0/1 label, e.g. `rating >= 4`, as int64 for the BCE loss and TFMA."""
  values = feature_rows.floats(tensor)
  positive = _COMPARISONS[label.operator](values, label.threshold)
  return tf.cast(positive, tf.int64)


def preprocessing_fn(inputs, custom_config):
  """tf.Transform entry point.

  Args:
    inputs: {raw column: tensor}, as the raw schema parses them.
    custom_config: {MODEL_INPUTS_KEY: ModelInputs.to_dict(), ...} from the pipeline.

  Returns:
    {feature name: int64 table rows} for every feature, LABEL_KEY: the 0/1 label, and
    LABEL_VALUE_KEY: the label column's float value (a graded loss fits it).
  """
  model_inputs = ModelInputs.from_dict(custom_config[MODEL_INPUTS_KEY])
  outputs = {}
  for table, features in model_inputs.tables().items():
    row_function = feature_rows.rows_of(features[0].kind)
    outputs.update(row_function([inputs[f.name] for f in features], features, table))
  label_column = inputs[model_inputs.label.column]
  outputs[LABEL_KEY] = derive_label(label_column, model_inputs.label)
  outputs[LABEL_VALUE_KEY] = feature_rows.floats(label_column)
  return outputs
