"""The Evaluator's executor: TFX's, minus evaluating the blessed baseline against itself.

A rerun with nothing changed reuses the cached Trainer's model, and the latest blessed
model, the Evaluator's baseline, is then that same model: TFX would evaluate it against
itself, for the whole cost of an evaluation, only to bless it again. When the candidate
is the baseline and the baseline was blessed on the same examples with the same
EvalConfig (recorded on its blessing), the decision cannot differ: this executor blesses
it again without evaluating, and the evaluation artifact holds the metrics of the
evaluation that blessed it (its REUSED_EVALUATION_KEY property names it).
"""

import hashlib
import json
import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from contract.names import REUSED_EVALUATION_KEY

BASELINE_BLESSING_KEY = 'baseline_blessing'
# On a blessing: what the decision was made on, and where its metrics are.
JUDGED_ON_KEY = 'judged_on'
EVALUATION_URI_KEY = 'evaluation_uri'


def judged_on(input_dict: Dict[str, List[types.Artifact]],
              exec_properties: Dict[str, Any]) -> str:
  """A digest of what a blessing depends on besides the models: the examples, the
  splits and the EvalConfig (thresholds, slices, metrics)."""
  what = {
      'examples': sorted(a.uri for a in input_dict[standard_component_specs.EXAMPLES_KEY]),
      'splits': exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY),
      'eval_config': exec_properties.get(standard_component_specs.EVAL_CONFIG_KEY),
  }
  return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
  artifacts = input_dict.get(key) or []
  return artifacts[0] if len(artifacts) == 1 else None


class Executor(tfx_evaluator.Executor):
  """TFX's Evaluator executor; a candidate that is its blessed baseline is blessed again
  without being evaluated again."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    candidate = _single(input_dict, standard_component_specs.MODEL_KEY)
    baseline = _single(input_dict, standard_component_specs.BASELINE_MODEL_KEY)
    baseline_blessing = _single(input_dict, BASELINE_BLESSING_KEY)
    judged = judged_on(input_dict, exec_properties)
    evaluation = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EVALUATION_KEY])
    blessing = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BLESSING_KEY])
    if (candidate is not None and baseline is not None and baseline_blessing is not None
        # The same artifact: its URI (on Vertex AI artifacts reach executors without
        # ML Metadata ids).
        and candidate.uri == baseline.uri
        and baseline_blessing.get_int_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSED_KEY) == constants.BLESSED_VALUE
        and baseline_blessing.get_string_custom_property(JUDGED_ON_KEY) == judged
        and baseline_blessing.get_string_custom_property(EVALUATION_URI_KEY)):
      self._bless_again(candidate, baseline, baseline_blessing, evaluation, blessing)
    else:
      super().Do(input_dict, output_dict, exec_properties)
    blessing.set_string_custom_property(JUDGED_ON_KEY, judged)
    blessing.set_string_custom_property(EVALUATION_URI_KEY, evaluation.uri)

  def _bless_again(self, candidate: types.Artifact, baseline: types.Artifact,
                   baseline_blessing: types.Artifact, evaluation: types.Artifact,
                   blessing: types.Artifact) -> None:
    earlier = baseline_blessing.get_string_custom_property(EVALUATION_URI_KEY)
    logging.info('The candidate is the blessed baseline (%s), blessed on the same '
                 'examples with the same EvalConfig: not evaluated again; the metrics '
                 'are those of %s.', candidate.uri, earlier)
    io_utils.copy_dir(earlier, evaluation.uri)
    evaluation.set_string_custom_property(REUSED_EVALUATION_KEY, earlier)
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        candidate.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                                     candidate.id)
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                        baseline.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                     baseline.id)
    io_utils.write_string_file(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME), '')
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     constants.BLESSED_VALUE)
