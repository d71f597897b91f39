"""What ExampleValidator found, as lines a person reads, and the error that stops a run.

Shared by the validation gate (which stops the run on anomalies) and the inspection tool
(which shows them); no TFX and no TensorFlow for local artifacts.
"""

from typing import Dict, List, Optional, Sequence

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

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


def example_counts(statistics_uri: str) -> Dict[str, int]:
  """Per split of an ExampleStatistics artifact: how many examples it has."""
  return {split: sum(dataset.num_examples for dataset in statistics.datasets)
          for split, statistics in artifact_files.split_protos(
              statistics_uri, 'FeatureStats.pb',
              statistics_pb2.DatasetFeatureStatisticsList).items()}


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


def lines(found_by_split: Dict[str, Dict[str, str]]) -> List[str]:
  """`split.feature: what is wrong`, one per anomaly."""
  return [f'{split}.{feature}: {text}' for split, found in found_by_split.items()
          for feature, text in sorted(found.items())]


def gate_lines(anomalies_uri: Optional[str], statistics_uri: Optional[str]) -> List[str]:
  """What the validation gate judges by: ExampleValidator's anomalies and the empty
  splits of StatisticsGen's statistics, a line each (an absent artifact adds none)."""
  return lines(with_empty_splits(read(anomalies_uri) if anomalies_uri else {},
                                 example_counts(statistics_uri) if statistics_uri else {}))
