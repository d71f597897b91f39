"""The Evaluator's metrics, all read off one pass over the examples.

TFMA's stock AUC, AUCPrecisionRecall, BinaryAccuracy, Calibration, MeanLabel and
MeanPrediction each run their own combiner, and each combiner walks every example of
every slice through TFMA's generic label/prediction unpacking in Python: most of the
Evaluator's time (bench/README.md, "How we got here"). Here one combiner keeps what all of
them need, a slice's (prediction, label, weight) triples, and each metric is derived from
it at the end, so an example costs one small append per slice it falls in.

Small slices (a movie's few hundred ratings) keep their exact values, so their AUC is
exact (ties counted half); a slice past EXACT_LIMIT values is folded into a histogram of
HISTOGRAM_BUCKETS prediction buckets, as TFMA's own AUC does for every slice, so memory
stays bounded at any data size. Labels may be fractional (a label of 0.3 is 0.3 of a
positive and 0.7 of a negative), as in TFMA.

Used through tfma.MetricConfig(class_name=..., module='modules.evaluation_metrics');
the metric names (auc, average_precision, ...) are what the report and the blessing
thresholds refer to.
"""

import array
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

HISTOGRAM_BUCKETS = 10_000
EXACT_LIMIT = 100_000
_SUMMARY_NAME = '_one_pass_summary'


class _Summary:
  """What one slice's examples add up to: exact triples, then (past EXACT_LIMIT) a
  histogram of negative and positive weight per prediction bucket."""
  __slots__ = ('predictions', 'labels', 'weights', 'histogram', 'examples',
               'weight_sum', 'label_sum', 'prediction_sum')

  def __init__(self):
    self.predictions = array.array('d')
    self.labels = array.array('d')
    self.weights = array.array('d')
    self.histogram: Optional[np.ndarray] = None  # [2, HISTOGRAM_BUCKETS]
    self.examples = 0
    self.weight_sum = self.label_sum = self.prediction_sum = 0.0

  def exact_values(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept (predictions, labels, weights), as arrays (no copy)."""
    return tuple(np.frombuffer(a, np.float64)
                 for a in (self.predictions, self.labels, self.weights))

  def add_histogram(self, histogram: np.ndarray) -> None:
    if self.histogram is None:
      self.histogram = np.zeros([2, HISTOGRAM_BUCKETS])
    self.histogram += histogram

  def fold_into_histogram(self) -> None:
    predictions, labels, weights = self.exact_values()
    self.add_histogram(_weight_by_label(bucket_of(predictions), labels, weights,
                                        HISTOGRAM_BUCKETS))
    self.predictions, self.labels, self.weights = (array.array('d') for _ in range(3))


def _weight_by_label(groups: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                     size: int) -> np.ndarray:
  """[2, size]: the negative and the positive weight of each group (a fractional label
  is that share of a positive)."""
  return np.stack([np.bincount(groups, weights * (1 - labels), size),
                   np.bincount(groups, weights * labels, size)])


def bucket_of(predictions: np.ndarray) -> np.ndarray:
  """Bucket i holds predictions in (i/B, (i+1)/B] (bucket 0 also holds 0), so that
  `prediction > 0.5` is exactly `bucket >= B/2`."""
  buckets = np.ceil(np.clip(predictions, 0.0, 1.0) * HISTOGRAM_BUCKETS).astype(np.int64) - 1
  return np.maximum(buckets, 0)


def _one_value(value: Any, model_name: str, output_name: str, what: str) -> float:
  """The single number a (possibly per-model, per-output) label or prediction holds."""
  if isinstance(value, dict):
    value = value[model_name] if model_name in value or len(value) != 1 else (
        next(iter(value.values())))
  if isinstance(value, dict):
    value = value[output_name] if output_name in value or len(value) != 1 else (
        next(iter(value.values())))
  values = np.asarray(value, dtype=np.float64).reshape(-1)
  if values.size != 1:
    raise ValueError(f'the Evaluator\'s metrics need one {what} per example, got '
                     f'{values.size}')
  return float(values[0])


class SummaryCombiner(beam.CombineFn):
  """Sums a slice's examples into a _Summary."""

  def __init__(self, key: metric_types.MetricKey, example_weighted: bool):
    self._key = key
    self._example_weighted = example_weighted

  def create_accumulator(self) -> _Summary:
    return _Summary()

  def add_input(self, summary: _Summary,
                element: metric_types.StandardMetricInputs) -> _Summary:
    name, output = self._key.model_name, self._key.output_name
    label = _one_value(element.label, name, output, 'label')
    prediction = _one_value(element.prediction, name, output, 'prediction')
    weight = 1.0
    if self._example_weighted and element.example_weight is not None:
      weight = _one_value(element.example_weight, name, output, 'example weight')
    summary.predictions.append(prediction)
    summary.labels.append(label)
    summary.weights.append(weight)
    summary.examples += 1
    summary.weight_sum += weight
    summary.label_sum += weight * label
    summary.prediction_sum += weight * prediction
    if len(summary.predictions) >= EXACT_LIMIT:
      summary.fold_into_histogram()
    return summary

  def merge_accumulators(self, summaries: Iterable[_Summary]) -> _Summary:
    summaries = iter(summaries)
    merged = next(summaries)
    for summary in summaries:
      merged.predictions.extend(summary.predictions)
      merged.labels.extend(summary.labels)
      merged.weights.extend(summary.weights)
      if summary.histogram is not None:
        merged.add_histogram(summary.histogram)
      merged.examples += summary.examples
      merged.weight_sum += summary.weight_sum
      merged.label_sum += summary.label_sum
      merged.prediction_sum += summary.prediction_sum
      if len(merged.predictions) >= EXACT_LIMIT:
        merged.fold_into_histogram()
    return merged

  def extract_output(self, summary: _Summary) -> Dict[metric_types.MetricKey, _Summary]:
    if summary.histogram is not None and len(summary.predictions):
      summary.fold_into_histogram()
    return {self._key: summary}


def _by_score(summary: _Summary) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(negative weight, positive weight, predicted positive at 0.5) per distinct score,
  or per bucket of a folded summary, in ascending order of score."""
  if summary.histogram is not None:
    negatives, positives = summary.histogram
    above_half = np.arange(HISTOGRAM_BUCKETS) >= HISTOGRAM_BUCKETS // 2
    return negatives, positives, above_half
  predictions, labels, weights = summary.exact_values()
  scores, group = np.unique(predictions, return_inverse=True)
  negatives, positives = _weight_by_label(group, labels, weights, len(scores))
  return negatives, positives, scores > 0.5


def roc_auc(summary: _Summary) -> float:
  """The probability that a positive outscores a negative, ties counting half."""
  negatives, positives, _ = _by_score(summary)
  total_negative, total_positive = negatives.sum(), positives.sum()
  if total_negative <= 0 or total_positive <= 0:
    return float('nan')
  negatives_below = np.cumsum(negatives) - negatives
  wins = np.sum(positives * (negatives_below + 0.5 * negatives))
  return float(wins / (total_negative * total_positive))


def average_precision(summary: _Summary) -> float:
  """Precision at each positive's score, averaged over the positives (the step-wise
  area under the precision-recall curve)."""
  negatives, positives, _ = _by_score(summary)
  negatives, positives = negatives[::-1], positives[::-1]
  total_positive = positives.sum()
  if total_positive <= 0:
    return float('nan')
  true_positives, false_positives = np.cumsum(positives), np.cumsum(negatives)
  predicted = true_positives + false_positives
  precision = np.divide(true_positives, predicted, out=np.zeros_like(predicted),
                        where=predicted > 0)
  return float(np.sum(positives * precision) / total_positive)


def binary_accuracy(summary: _Summary) -> float:
  """The share of examples on the right side of 0.5."""
  negatives, positives, above_half = _by_score(summary)
  total = negatives.sum() + positives.sum()
  if total <= 0:
    return float('nan')
  return float((positives[above_half].sum() + negatives[~above_half].sum()) / total)


def _ratio(numerator: float, denominator: float) -> float:
  return numerator / denominator if denominator else float('nan')


_RESULTS = {
    'auc': roc_auc,
    'average_precision': average_precision,
    'binary_accuracy': binary_accuracy,
    'calibration': lambda s: _ratio(s.prediction_sum, s.label_sum),
    'mean_label': lambda s: _ratio(s.label_sum, s.weight_sum),
    'mean_prediction': lambda s: _ratio(s.prediction_sum, s.weight_sum),
    'example_count': lambda s: s.examples,
}


def _computations(
    name: str,
    metric: str,
    model_names: Optional[List[str]] = None,
    output_names: Optional[List[str]] = None,
    example_weighted: bool = False) -> metric_types.MetricComputations:
  """The shared summary (TFMA runs identical computations once) and `metric` from it,
  reported as `name`."""
  result = _RESULTS[metric]
  computations = []
  for model_name in model_names or ['']:
    for output_name in output_names or ['']:
      summary_key, key = (
          metric_types.MetricKey(name=key_name, model_name=model_name,
                                 output_name=output_name, example_weighted=example_weighted)
          for key_name in (_SUMMARY_NAME, name))
      computations.append(metric_types.MetricComputation(
          keys=[summary_key], preprocessors=None,
          combiner=SummaryCombiner(summary_key, example_weighted)))
      computations.append(metric_types.DerivedMetricComputation(
          keys=[key],
          result=lambda metrics, key=key, summary_key=summary_key: {
              key: result(metrics[summary_key])}))
  return computations


class _OnePassMetric(metric_types.Metric):
  """A metric derived from the shared summary; each subclass says which."""
  METRIC = ''

  def __init__(self, name: Optional[str] = None, metric: Optional[str] = None,
               code_fingerprint: Optional[str] = None):
    # get_config() hands the metric back; the class decides it. The fingerprint is in
    # the EvalConfig only for the Evaluator's cache key (pipeline/graph.py).
    del metric, code_fingerprint
    super().__init__(_computations, name=name or self.METRIC, metric=self.METRIC)


class OnePassExampleCount(_OnePassMetric):
  """Examples in the slice (unweighted)."""
  METRIC = 'example_count'


class OnePassAUC(_OnePassMetric):
  """Area under the ROC curve; exact below EXACT_LIMIT examples."""
  METRIC = 'auc'


class OnePassAveragePrecision(_OnePassMetric):
  """Step-wise area under the precision-recall curve."""
  METRIC = 'average_precision'


class OnePassBinaryAccuracy(_OnePassMetric):
  """Accuracy of `prediction > 0.5`."""
  METRIC = 'binary_accuracy'


class OnePassCalibration(_OnePassMetric):
  """Mean prediction over mean label: 1 is calibrated."""
  METRIC = 'calibration'


class OnePassMeanLabel(_OnePassMetric):
  METRIC = 'mean_label'


class OnePassMeanPrediction(_OnePassMetric):
  METRIC = 'mean_prediction'


# In the order the report shows their metrics.
CLASSES = (OnePassExampleCount, OnePassAUC, OnePassAveragePrecision, OnePassBinaryAccuracy,
           OnePassCalibration, OnePassMeanLabel, OnePassMeanPrediction)
