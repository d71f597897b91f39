"""What is inside the artifacts people look at: statistics, anomalies, training history,
evaluation metrics and validation, and a SavedModel's signatures, as plain data.

Local files are read directly; TensorFlow (for gs:// paths) and TFMA are imported only
when needed, so that listing runs stays quick.
"""

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from contract.names import LABEL_KEY, TUNING_KEY
from pipeline import artifact_files


def _feature_summary(feature: statistics_pb2.FeatureNameStatistics,
                     num_examples: int) -> Dict[str, Any]:
  kind = feature.WhichOneof('stats')
  stats = getattr(feature, kind)
  common = stats.common_stats
  summary = {
      'type': statistics_pb2.FeatureNameStatistics.Type.Name(feature.type),
      'present': common.num_non_missing,
      'missing': common.num_missing,
      'missing_share': common.num_missing / num_examples if num_examples else 0.0,
  }
  if kind == 'num_stats':
    summary.update(mean=stats.mean, std_dev=stats.std_dev, min=stats.min, max=stats.max,
                   zeros=stats.num_zeros)
  elif kind == 'string_stats':
    summary.update(unique=stats.unique,
                   top_values=[(v.value, v.frequency) for v in stats.top_values[:5]])
  return summary


# Added in another order, sums may differ in their last digits.
_SUM_TOLERANCE = 1e-9


def statistics_protos(uri: str) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """Per split: the statistics as StatisticsGen wrote them."""
  return artifact_files.split_protos(uri, 'FeatureStats.pb',
                                    statistics_pb2.DatasetFeatureStatisticsList)


def statistics_sample_rate(execution_properties: Dict[str, Any]) -> Optional[float]:
  """The share of rows a StatisticsGen execution read, or None when it read them all."""
  sample_rate = execution_properties.get('sample_rate')
  return float(sample_rate) if sample_rate is not None and sample_rate < 1 else None


def statistics_differences(expected_uri: str, actual_uri: str) -> List[str]:
  """What differs between two ExampleStatistics artifacts, a line per split and feature
  (none: the same). Every field must be equal but the means and standard deviations,
  whose sums, added in another order, may differ in their last digits: those are held
  to a relative _SUM_TOLERANCE."""
  expected, actual = statistics_protos(expected_uri), statistics_protos(actual_uri)
  if set(expected) != set(actual):
    return [f'splits {sorted(expected)} != {sorted(actual)}']
  found = []
  for split, proto in expected.items():
    want, got = proto.datasets[0], actual[split].datasets[0]
    want_header, got_header = type(want)(), type(got)()
    want_header.CopyFrom(want)
    got_header.CopyFrom(got)
    want_header.ClearField('features')
    got_header.ClearField('features')
    if want_header != got_header:
      found.append(f'{split}: {want_header} != {got_header}')
    want_features = {'.'.join(f.path.step): f for f in want.features}
    got_features = {'.'.join(f.path.step): f for f in got.features}
    if set(want_features) != set(got_features):
      found.append(f'{split}: features {sorted(want_features)} != {sorted(got_features)}')
      continue
    for name, feature in want_features.items():
      other = type(feature)()
      other.CopyFrom(got_features[name])
      if feature.HasField('num_stats'):
        for field in ('mean', 'std_dev'):
          a, b = getattr(feature.num_stats, field), getattr(other.num_stats, field)
          if not math.isclose(a, b, rel_tol=_SUM_TOLERANCE, abs_tol=_SUM_TOLERANCE):
            found.append(f'{split}: {name}: {field} {a!r} != {b!r}')
          setattr(other.num_stats, field, a)
      if feature != other:
        found.append(f'{split}: {name}: {feature} != {other}')
  return found


def summarize_statistics(protos: Dict[str, statistics_pb2.DatasetFeatureStatisticsList]
                         ) -> Dict[str, Dict[str, Any]]:
  """Per split: the example count and a summary of each feature."""
  result = {}
  for split, stats_list in protos.items():
    dataset = stats_list.datasets[0]
    result[split] = {
        'num_examples': dataset.num_examples,
        'features': {'.'.join(f.path.step) or f.name: _feature_summary(f, dataset.num_examples)
                     for f in dataset.features},
    }
  return result


def bucket_counts(transform_graph_uri: str) -> Dict[str, int]:
  """Rows of each id feature's table, as Transform recorded them in the transformed
  schema (int_domain 0..n-1)."""
  schema = schema_pb2.Schema()
  text_format.Parse(artifact_files.read_bytes(os.path.join(
      transform_graph_uri, 'transformed_metadata', 'schema.pbtxt')).decode(), schema)
  return {f.name: f.int_domain.max + 1 for f in schema.feature
          if f.HasField('int_domain') and f.int_domain.min == 0 and f.name != LABEL_KEY}


def training_record(model_run_uri: str) -> Optional[Dict[str, Any]]:
  """The trainer's metrics.json (history per epoch, final eval, config), if written."""
  path = os.path.join(model_run_uri, 'metrics.json')
  try:
    return json.loads(artifact_files.read_bytes(path))
  except (OSError, ValueError):
    return None


def tuner_objective(properties: Mapping[str, Any]) -> str:
  """What a Tuner execution (its properties) scored trials by, e.g. 'validation in-user
  AUC'."""
  try:
    tuning = json.loads(properties['custom_config'])[TUNING_KEY]
    objective, recall_at = tuning.get('objective', 'auc'), tuning.get('recall_at', 10)
  except (KeyError, ValueError, TypeError):
    objective, recall_at = 'auc', 10
  return 'validation ' + {'auc': 'AUC', 'in_user_auc': 'in-user AUC'}.get(
      objective, f'recall@{recall_at}')


def tuner_trials(tuner_results_uri: str) -> List[Dict[str, Any]]:
  """The Tuner's completed trials, best first: trial_id, score (tuner_objective) and
  values (each chosen option's value). TFX writes the options beside the other two."""
  try:
    rows = json.loads(artifact_files.read_bytes(
        os.path.join(tuner_results_uri, 'tuner_results.json')))
  except (OSError, ValueError):
    return []
  return [{'trial_id': row.pop('trial_id'), 'score': row.pop('score'), 'values': row}
          for row in rows]


def _number(value: Dict[str, Any]) -> Optional[float]:
  return value.get('doubleValue') if isinstance(value, dict) else None


def _slice_name(slice_key) -> str:
  return ', '.join(f'{column}={value}' for column, value in slice_key) or 'Overall'


def evaluation(uri: str) -> Dict[str, Any]:
  """TFMA metrics per slice ('Overall' first, then by example count) and the validation.

  A `<metric>_diff` is the change against the baseline model, when there was one.
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result = tfma.load_eval_result(uri)
  slices = []
  for slice_key, by_output in result.slicing_metrics:
    metrics = by_output.get('', {}).get('', {})
    values = {name: _number(value) for name, value in metrics.items()
              if _number(value) is not None}
    if 'example_count' in values:
      values['example_count'] = int(values['example_count'])
    slices.append({'slice': _slice_name(slice_key), 'metrics': values})
  slices.sort(key=lambda s: (s['slice'] != 'Overall',
                             -(s['metrics'].get('example_count') or 0), s['slice']))
  return {'slices': slices, 'validation': validation(uri)}


def validation(uri: str) -> Dict[str, Any]:
  """Whether the model passed its thresholds and, if not, which failed and by how much."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  try:
    result = tfma.load_validation_result(uri)
  except (AssertionError, OSError) as e:
    return {'ok': None, 'failures': [], 'error': f'unreadable validation result: {e!r}'}
  failures = []
  for per_slice in result.metric_validations_per_slice:
    for failure in per_slice.failures:
      failures.append({
          'slice': _slice_name(tuple((c.column, c.bytes_value.decode() or c.int64_value
                                      or c.float_value)
                                     for c in per_slice.slice_key.single_slice_keys)),
          'metric': failure.metric_key.name + ('_diff' if failure.metric_key.is_diff else ''),
          'value': failure.metric_value.double_value.value,
          'message': failure.message,
      })
  return {'ok': result.validation_ok, 'failures': failures,
          'missing_slices': [str(s) for s in result.missing_slices]}


def signatures(saved_model_dir: str) -> Dict[str, Dict[str, Dict[str, str]]]:
  """A SavedModel's signatures: each input and output with its dtype and shape."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow.core.framework import types_pb2  # pylint: disable=g-import-not-at-top
  model = saved_model_pb2.SavedModel.FromString(
      artifact_files.read_bytes(os.path.join(saved_model_dir, 'saved_model.pb')))

  def describe(tensors) -> Dict[str, str]:
    described = {}
    for name, info in sorted(tensors.items()):
      dims = [str(d.size) if d.size >= 0 else 'None' for d in info.tensor_shape.dim]
      shape = '?' if info.tensor_shape.unknown_rank else f'({", ".join(dims)})'
      described[name] = f'{types_pb2.DataType.Name(info.dtype)[3:].lower()} {shape}'
    return described

  return {name: {'inputs': describe(sig.inputs), 'outputs': describe(sig.outputs)}
          for name, sig in sorted(model.meta_graphs[0].signature_def.items())
          if not name.startswith('__')}
