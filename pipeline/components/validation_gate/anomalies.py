"""What ExampleValidator found, as lines a person reads, and the error that stops a run.

Shared by the validation gate (which stops the run on anomalies) and the inspection tool
(which shows them); no TFX and no TensorFlow for local artifacts.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from contract.model_inputs import LabelSpec
from pipeline import artifact_files

DATASET = '<dataset>'  # an anomaly of the whole split (too few examples), not of a feature


class DataAnomaliesError(RuntimeError):
  """The data broke the schema; `lines` says how, one anomaly each."""

  def __init__(self, lines: Sequence[str]):
    self.lines = list(lines)
    super().__init__(f'{len(self.lines)} data anomal{"y" if len(lines) == 1 else "ies"}: '
                     'the run stops before Transform (fix the data or the schema; '
                     'validation.on_anomalies: warn continues anyway)')


def _text(info: anomalies_pb2.AnomalyInfo) -> str:
  """`Out-of-range values (Unexpectedly high value: 9>5)`: what, and by how much
  (without the "(upto six significant digits)" TFDV appends to numbers)."""
  short, detail = info.short_description, info.description.split('(upto')[0].strip()
  if short and detail and detail != short:
    return f'{short} ({detail})'
  return short or detail


def read(uri: str) -> Dict[str, Dict[str, str]]:
  """Per split of an ExampleAnomalies artifact: each anomalous feature (or DATASET) and
  what is wrong with it; empty dicts when the data is clean."""
  found_by_split = {}
  for split, found in artifact_files.split_protos(uri, 'SchemaDiff.pb',
                                                  anomalies_pb2.Anomalies).items():
    described = {name: _text(info) for name, info in found.anomaly_info.items()}
    if found.HasField('dataset_anomaly_info'):
      described[DATASET] = _text(found.dataset_anomaly_info)
    found_by_split[split] = described
  return found_by_split


Statistics = Dict[str, statistics_pb2.DatasetFeatureStatisticsList]


def read_statistics(uri: str) -> Statistics:
  """Per split, the statistics of an ExampleStatistics artifact."""
  return artifact_files.split_protos(uri, 'FeatureStats.pb',
                                     statistics_pb2.DatasetFeatureStatisticsList)


def example_counts(statistics: Statistics) -> Dict[str, int]:
  """Per split, how many examples it has."""
  return {split: sum(dataset.num_examples for dataset in by_split.datasets)
          for split, by_split in statistics.items()}


def with_empty_splits(found_by_split: Dict[str, Dict[str, str]],
                      counts: Dict[str, int]) -> Dict[str, Dict[str, str]]:
  """The anomalies, plus one for each split without examples: TFDV validates nothing of
  an empty split (not even the schema's min_examples_count), so it reports none."""
  found = {split: dict(by_feature) for split, by_feature in found_by_split.items()}
  for split, count in counts.items():
    if count == 0:
      found.setdefault(split, {})[DATASET] = ('no examples (an input with no data rows, '
                                              'or a split that received none)')
  return found


# Whether the condition holds for every value, for none, from the values' [low, high]
# range (None: the range cannot tell).
_ALL_POSITIVE = {
    '>=': lambda low, high, t: low >= t, '>': lambda low, high, t: low > t,
    '<=': lambda low, high, t: high <= t, '<': lambda low, high, t: high < t,
    '==': lambda low, high, t: low == high == t, '!=': lambda low, high, t: t < low or t > high,
}
_ALL_NEGATIVE = {
    '>=': lambda low, high, t: high < t, '>': lambda low, high, t: high <= t,
    '<=': lambda low, high, t: low > t, '<': lambda low, high, t: low >= t,
    '==': lambda low, high, t: t < low or t > high, '!=': lambda low, high, t: low == high == t,
}


def one_class_labels(statistics: Statistics, label: LabelSpec) -> Dict[str, Dict[str, str]]:
  """Per split whose label has one class only, as its column's range shows: an anomaly
  of the label column (a model cannot learn from it, and its AUC means nothing)."""
  column, operator, threshold = label.column, label.operator, label.threshold
  found = {}
  for split, by_split in statistics.items():
    for dataset in by_split.datasets:
      for feature in dataset.features:
        name = '.'.join(feature.path.step) or feature.name
        if name != column or not feature.HasField('num_stats') or dataset.num_examples == 0:
          continue
        low, high = feature.num_stats.min, feature.num_stats.max
        for every_row, test in (('positive', _ALL_POSITIVE), ('negative', _ALL_NEGATIVE)):
          if test[operator](low, high, threshold):
            found.setdefault(split, {})[column] = (
                f'the label ({label.expression}) is {every_row} in every row '
                f'({column} from {low:g} to {high:g}): a model cannot learn from one class')
  return found


def lines(found_by_split: Dict[str, Dict[str, str]]) -> List[str]:
  """`split.feature: what is wrong`, one per anomaly."""
  return [f'{split}.{feature}: {text}' for split, found in found_by_split.items()
          for feature, text in sorted(found.items())]


class TooFewRowsError(RuntimeError):
  """A split the Trainer reads cannot fill one batch."""


class Judgement(NamedTuple):
  """What the gate found: too few rows to train on (stops any run), and the anomalies
  (stop it unless validation.on_anomalies is warn), a line each."""
  too_few_rows: Optional[str]
  anomalies: List[str]


def judge(anomalies_uri: Optional[str], statistics_uri: Optional[str],
          trained_splits: str = '', batch_size: int = 0, label: str = '') -> Judgement:
  """The validation gate's judgement, from its inputs' URIs (an absent artifact adds
  nothing) and its parameters as the gate holds them: the splits the Trainer reads
  (comma-separated), the largest batch it may use and the label rule (LabelSpec JSON).
  The gate decides by it, and the inspection tool says why a run stopped by it."""
  statistics = read_statistics(statistics_uri) if statistics_uri else {}
  counts = example_counts(statistics)
  found = with_empty_splits(read(anomalies_uri) if anomalies_uri else {}, counts)
  if label:
    for split, by_feature in one_class_labels(
        statistics, LabelSpec.model_validate_json(label)).items():
      found.setdefault(split, {}).update(by_feature)
  return Judgement(too_few_rows([s for s in trained_splits.split(',') if s], counts,
                                batch_size) if batch_size else None, lines(found))


def too_few_rows(splits: Sequence[str], counts: Dict[str, int],
                 batch_size: int) -> Optional[str]:
  """What to change when any of `splits` (those the Trainer reads) has fewer rows than
  one batch; None when each fills one."""
  short = [f'{split} {counts[split]:,}' for split in splits
           if counts.get(split, batch_size) < batch_size]
  if not short:
    return None
  return (f'too few rows to train on: {", ".join(short)}, where each split the Trainer '
          f'reads needs one batch of {batch_size:,} rows; lower the batch size '
          '(training.batch_size, tuning.batch_size) or give the data more rows')
