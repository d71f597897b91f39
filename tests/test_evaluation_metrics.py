"""The Evaluator's one-pass metrics agree with their textbook definitions."""

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from sklearn import metrics as sklearn_metrics
from tensorflow_model_analysis.metrics import metric_specs, metric_types
from tensorflow_model_analysis.utils import config_util

from modules import evaluation_metrics
from pipeline import config as config_lib
from pipeline import graph
from conftest import SAMPLE_CONFIG

KEY = metric_types.MetricKey(name='_one_pass_summary')


def _inputs(labels, predictions, model_name=None):
  for label, prediction in zip(labels, predictions):
    label, prediction = np.array([label]), np.array([prediction])
    if model_name:
      label, prediction = {model_name: label}, {model_name: prediction}
    yield metric_types.StandardMetricInputs(labels=label, predictions=prediction)


def _summary(labels, predictions, parts=1, model_name=''):
  """The summary of the examples, added in `parts` accumulators and merged."""
  combiner = evaluation_metrics.SummaryCombiner(
      metric_types.MetricKey(name=KEY.name, model_name=model_name), example_weighted=False)
  accumulators = []
  for part in range(parts):
    accumulator = combiner.create_accumulator()
    for element in _inputs(labels[part::parts], predictions[part::parts],
                           model_name=model_name):
      accumulator = combiner.add_input(accumulator, element)
    accumulators.append(accumulator)
  summary, = combiner.extract_output(combiner.merge_accumulators(accumulators)).values()
  return summary


@pytest.fixture
def scored():
  """2,000 examples whose predictions are rounded to 2 decimals, so that many tie."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 2000).astype(float)
  predictions = np.round(np.clip(0.3 * labels + rng.normal(0.4, 0.2, 2000), 0, 1), 2)
  return labels, predictions


def test_exact_metrics_are_the_textbook_ones_with_ties(scored):
  labels, predictions = scored
  summary = _summary(labels, predictions)
  assert evaluation_metrics.roc_auc(summary) == pytest.approx(
      sklearn_metrics.roc_auc_score(labels, predictions), abs=1e-12)
  assert evaluation_metrics.average_precision(summary) == pytest.approx(
      sklearn_metrics.average_precision_score(labels, predictions), abs=1e-12)
  assert evaluation_metrics.binary_accuracy(summary) == pytest.approx(
      np.mean((predictions > 0.5) == labels.astype(bool)))
  assert summary.examples == 2000
  assert summary.label_sum / summary.weight_sum == pytest.approx(labels.mean())


def test_pairs_count_ties_half():
  # Positives 0.8 and 0.5, negatives 0.5 and 0.2: 3 wins and a tie in 4 pairs.
  summary = _summary([1.0, 1.0, 0.0, 0.0], [0.8, 0.5, 0.5, 0.2])
  assert evaluation_metrics.roc_auc(summary) == 3.5 / 4


def test_merged_parts_equal_one_pass(scored):
  labels, predictions = scored
  whole, parts = _summary(labels, predictions), _summary(labels, predictions, parts=3)
  for metric in (evaluation_metrics.roc_auc, evaluation_metrics.average_precision,
                 evaluation_metrics.binary_accuracy):
    assert metric(parts) == pytest.approx(metric(whole), abs=1e-12)


def test_large_slices_fold_into_a_histogram_that_keeps_the_metrics(scored, monkeypatch):
  labels, predictions = scored
  exact = _summary(labels, predictions)
  monkeypatch.setattr(evaluation_metrics, 'EXACT_LIMIT', 300)
  folded = _summary(labels, predictions, parts=4)
  assert folded.histogram is not None and not folded.predictions
  # Two-decimal predictions fall in distinct buckets: the histogram loses nothing.
  for metric in (evaluation_metrics.roc_auc, evaluation_metrics.average_precision,
                 evaluation_metrics.binary_accuracy):
    assert metric(folded) == pytest.approx(metric(exact), abs=1e-9)
  assert folded.examples == 2000


def test_fractional_labels_count_as_part_positive():
  summary = _summary([0.25, 1.0], [0.9, 0.1])
  # Positive weight 0.25 at 0.9 and 1.0 at 0.1; negative weight 0.75 at 0.9.
  # Pairs: the 0.9s tie (half of 0.25 x 0.75); the positive at 0.1 loses.
  assert evaluation_metrics.roc_auc(summary) == pytest.approx(0.5 * 0.25 * 0.75 / (1.25 * 0.75))
  assert summary.label_sum == 1.25


def test_each_model_reads_its_own_predictions(scored):
  labels, predictions = scored
  summary = _summary(labels, predictions, model_name='candidate')
  assert evaluation_metrics.roc_auc(summary) == pytest.approx(
      sklearn_metrics.roc_auc_score(labels, predictions))


def test_one_summary_pass_serves_every_metric_of_every_model():
  eval_config = graph.eval_config(config_lib.load_config(SAMPLE_CONFIG))
  eval_config.model_specs[0].name = 'candidate'
  eval_config.model_specs.add(name='baseline', is_baseline=True)
  # As the Evaluator does: every metrics spec names the models.
  eval_config = config_util.update_eval_config_with_defaults(eval_config, has_baseline=True)
  computations = metric_specs.to_computations(eval_config.metrics_specs,
                                              eval_config=eval_config)
  # The evaluator runs equal computations once.
  summaries = {c for c in computations if isinstance(c, metric_types.MetricComputation)
               and isinstance(c.combiner, evaluation_metrics.SummaryCombiner)}
  assert sorted(c.keys[0].model_name for c in summaries) == ['baseline', 'candidate']
  derived = {(k.name, k.model_name) for c in computations
             if isinstance(c, metric_types.DerivedMetricComputation) for k in c.keys}
  for model in ('baseline', 'candidate'):
    assert {(name, model) for name in ('auc', 'average_precision', 'binary_accuracy',
                                       'calibration', 'example_count', 'mean_label',
                                       'mean_prediction')} <= derived


def test_the_blessing_threshold_is_on_the_one_pass_auc():
  config = config_lib.load_config(SAMPLE_CONFIG)
  eval_config = graph.eval_config(config)
  thresholds = metric_specs.metric_thresholds_from_metrics_specs(
      eval_config.metrics_specs, eval_config=eval_config)
  # The value bar on `auc`, and the regression bar on its difference from the baseline.
  assert {(key.name, key.is_diff) for key in thresholds} == {('auc', False), ('auc', True)}
  by_diff = {key.is_diff: per_slice for key, (per_slice,) in thresholds.items()}
  slicing_spec, value = by_diff[False]
  assert value.lower_bound.value == config.evaluation.min_auc
  assert slicing_spec == tfma.SlicingSpec()  # judged overall, not per movie
  _, change = by_diff[True]
  assert change.absolute.value == -config.evaluation.max_auc_regression
