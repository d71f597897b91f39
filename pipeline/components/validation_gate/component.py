"""DataValidationGate: the run goes on to Transform only when the data met the schema.

ExampleValidator only reports. This component reads its anomalies and, by default, stops
the run there, with a line per anomaly, before Transform, training or a push. With
`validation.on_anomalies: warn` it lets the run continue and records that it did.
Transform waits for it (pipeline/graph.py), so a run never trains on data nobody validated.
"""

import logging

from tfx import v1 as tfx

from pipeline.components.validation_gate import anomalies as anomalies_lib

FAIL, WARN = 'fail', 'warn'


class DataVerdict(tfx.dsl.Artifact):
  """What the gate decided: `anomalies` found and `on_anomalies` then in force."""
  # <namespace>.<Name>, the form Vertex AI requires, and importable by that name (TFX's
  # Vertex entrypoint imports the class by it): pipeline/__init__.py provides it.
  TYPE_NAME = 'pipeline.DataVerdict'


@tfx.dsl.components.component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics],
    verdict: tfx.dsl.components.OutputArtifact[DataVerdict],
    on_anomalies: tfx.dsl.components.Parameter[str] = FAIL,
    # The splits the Trainer reads, comma-separated, and the largest batch it (or the
    # Tuner) may use: each must fill one batch.
    trained_splits: tfx.dsl.components.Parameter[str] = '',
    batch_size: tfx.dsl.components.Parameter[int] = 0,
    # The label rule (LabelSpec JSON): a label of one class only is an anomaly.
    label: tfx.dsl.components.Parameter[str] = '',
    # Not read: pipeline/fingerprint.py's hash, so that edited code reruns the gate.
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Stops the run on anomalies unless told to warn.

  Args:
    anomalies: ExampleValidator's output.
    statistics: StatisticsGen's (an empty split counts as an anomaly).
    verdict: records how many anomalies there were and what `on_anomalies` was.
    on_anomalies: 'fail' (raise DataAnomaliesError, one line each) or 'warn'.
    trained_splits: the splits the Trainer reads, comma-separated.
    batch_size: the largest batch the Trainer or the Tuner may use; a trained split
      with rows but fewer than this stops the run (TooFewRowsError), whatever
      `on_anomalies` says: nothing could be trained.
    label: the label rule, LabelSpec JSON; a split whose label has one class only is
      an anomaly.
    code_fingerprint: pipeline/fingerprint.py's hash, for the cache key only.
  """
  del code_fingerprint
  judgement = anomalies_lib.judge(anomalies.uri, statistics.uri, trained_splits, batch_size,
                                  label)
  if judgement.too_few_rows:
    raise anomalies_lib.TooFewRowsError(judgement.too_few_rows)
  found = judgement.anomalies
  if found and on_anomalies != WARN:
    raise anomalies_lib.DataAnomaliesError(found)
  for line in found:
    logging.warning('data anomaly (validation.on_anomalies: warn, continuing): %s', line)
  verdict.set_int_custom_property('anomalies', len(found))
  verdict.set_string_custom_property('on_anomalies', on_anomalies)
