"""Which tf.distribute strategy a training run uses, and building it.

The choice is explicit for TPUs (the config's `training.tpu`, passed through the
Trainer's custom_config): probing for a TPU that is not there costs minutes of
time-outs. GPUs and multi-worker clusters announce themselves.
"""

import json
import os
from typing import Optional, Sequence

from absl import logging
import tensorflow as tf

TPU, MULTI_WORKER, MIRRORED, DEFAULT = 'tpu', 'multi_worker', 'mirrored', 'default'


def choose(tpu: str, tf_config: Optional[str], gpus: Sequence[object]) -> str:
  """The kind of strategy for a TPU name ('' for none), a TF_CONFIG value and the GPUs."""
  if tpu:
    return TPU
  cluster = json.loads(tf_config).get('cluster', {}) if tf_config else {}
  if sum(len(cluster.get(role, [])) for role in ('chief', 'worker')) > 1:
    return MULTI_WORKER
  if gpus:
    return MIRRORED
  return DEFAULT


def create(tpu: str = '') -> tf.distribute.Strategy:
  """The strategy for this process; `tpu` is 'local', a TPU name or address, or ''."""
  kind = choose(tpu, os.environ.get('TF_CONFIG'), tf.config.list_physical_devices('GPU'))
  if kind == TPU:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    if tpu != 'local':
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if kind == MULTI_WORKER:
    return tf.distribute.MultiWorkerMirroredStrategy()
  if kind == MIRRORED:
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def distribute(strategy: tf.distribute.Strategy, dataset_fn, global_batch_size: int):
  """(distributed dataset, number of input pipelines): one input pipeline per worker,
  each given its pipeline id and per-replica batch size. Ids stay on the host, as
  TPUEmbedding requires; under the default strategy it is the same contract on one
  replica."""
  contexts = []

  def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
    contexts.append(context)
    logging.info('Input pipeline %d of %d', context.input_pipeline_id,
                 context.num_input_pipelines)
    return dataset_fn(context.get_per_replica_batch_size(global_batch_size),
                      context.input_pipeline_id, context.num_input_pipelines)

  dataset = strategy.distribute_datasets_from_function(
      make, options=tf.distribute.InputOptions(experimental_fetch_to_device=False))
  return dataset, contexts[0].num_input_pipelines


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's outputs: the chief, or worker 0 of a cluster
  without one, or the only process."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type or resolver.task_type == 'chief':
    return True
  has_chief = 'chief' in resolver.cluster_spec().as_dict()
  return resolver.task_type == 'worker' and resolver.task_id == 0 and not has_chief


def barrier(strategy: tf.distribute.Strategy) -> None:
  """Returns once every replica has reached it: a worker that exits while the chief
  still exports is reported as failed by the cluster's coordination service."""
  if strategy.num_replicas_in_sync > 1:
    strategy.reduce(tf.distribute.ReduceOp.SUM,
                    strategy.run(lambda: tf.constant(1.0)), axis=None)
