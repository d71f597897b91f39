"""The Evaluator: TFX's component with the baseline's blessing as one more input.

The blessing says on what the baseline was blessed (executor.py), which is what lets the
executor skip evaluating a candidate that is the baseline itself. Everything else is
TFX's Evaluator: the same id, artifacts, EvalConfig and executor.
"""

from typing import List, Optional

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from pipeline.components.evaluator import executor


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
  INPUTS = {
      **standard_component_specs.EvaluatorSpec.INPUTS,
      executor.BASELINE_BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
  }


class Evaluator(base_beam_component.BaseBeamComponent):
  """TFX's Evaluator, told the baseline's blessing too."""
  SPEC_CLASS = EvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               eval_config: tfma.EvalConfig, example_splits: List[str],
               baseline_model: Optional[types.BaseChannel] = None,
               baseline_blessing: Optional[types.BaseChannel] = None):
    """The component.

    Args:
      examples: the raw examples to evaluate on.
      model: the candidate model.
      eval_config: TFMA's EvalConfig: metrics, slices and the blessing's thresholds.
      example_splits: the splits to evaluate on.
      baseline_model: the latest blessed model, when there is one.
      baseline_blessing: that model's blessing (the same resolver's).
    """
    super().__init__(spec=EvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        baseline_blessing=baseline_blessing, eval_config=eval_config,
        example_splits=json_utils.dumps(example_splits),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
