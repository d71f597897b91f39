"""Lazy Adam: a sparse step updates only the rows it touched, and their moments.

Keras' (legacy) Adam decays both moment slots of every row of a table at every step,
even for a batch that looked up a few thousand rows of millions: the step's cost grows
with the table (bench/README.md, "Embedding scale").
A TPU's embedding engine runs Adam lazily instead. This optimizer does the same on
CPUs and GPUs, so a step costs what the batch touches and a run means the same on
every device. Dense variables still get plain Adam.
"""


import tensorflow as tf


class Adam(tf.keras.optimizers.legacy.Adam):
  """Adam with lazy sparse updates, TPUEmbedding's default semantics.

  The class keeps the name `Adam` on purpose: tfrs' TPUEmbedding maps a Keras optimizer
  to the TPU embedding engine's by class name, and slot names (`m`, `v`) stay those of
  Keras' Adam, so checkpoints restore across CPU and TPU layouts.
  """

  def __init__(self, *args, **kwargs):
    if kwargs.get('amsgrad'):
      raise ValueError('lazy Adam has no AMSGrad variant (nor does the TPU embedding '
                       'engine); use amsgrad=False')
    super().__init__(*args, **kwargs)

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    # Indices are unique here: the base class sums the gradients of repeated ids first.
    var_device, var_dtype = var.device, var.dtype.base_dtype
    coefficients = (apply_state or {}).get(
        (var_device, var_dtype)) or self._fallback_apply_state(var_device, var_dtype)
    m = self.get_slot(var, 'm')
    v = self.get_slot(var, 'v')
    m_rows = (coefficients['beta_1_t'] * tf.gather(m, indices)
              + coefficients['one_minus_beta_1_t'] * grad)
    v_rows = (coefficients['beta_2_t'] * tf.gather(v, indices)
              + coefficients['one_minus_beta_2_t'] * tf.square(grad))
    step = coefficients['lr'] * m_rows / (tf.sqrt(v_rows) + coefficients['epsilon'])
    return tf.group(
        self._resource_scatter_update(m, indices, m_rows),
        self._resource_scatter_update(v, indices, v_rows),
        self._resource_scatter_add(var, indices, -step))
