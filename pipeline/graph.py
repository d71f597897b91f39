"""`create_pipeline`: the TFX pipeline as a pure factory, shared by every runner.

Runners decide where metadata lives and how Beam runs; this module only wires
components from a validated RunConfig, so the local and Vertex pipelines are the same
graph by construction.
"""

import json
import os
from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from contract import names
from modules import evaluation_metrics
from pipeline import config as config_lib
from pipeline import fingerprint
from pipeline import paths
from pipeline import spans
from pipeline import vertex as vertex_lib
from pipeline.components import columnar_examples_gen
from pipeline.components import span_window as span_window_lib
from pipeline.components import statistics_gen as statistics_gen_lib
from pipeline.components.csv_example_gen import component as csv_example_gen
from pipeline.components.evaluator import component as evaluator_component
from pipeline.components.pusher import executor as pusher_executor
from pipeline.components.validation_gate import component as validation_gate

# The Vertex pipeline's runtime parameter choosing the span ExampleGen reads: a
# RangeConfig as JSON (`vertex_runner.py --span N` writes it), the latest span by default.
SPAN_PARAMETER = 'range_config'


def range_config(span: Optional[int]) -> Optional[tfx.proto.RangeConfig]:
  """ExampleGen's RangeConfig for one span; None (the latest) when no span is given."""
  if span is None:
    return None
  return tfx.proto.RangeConfig(static_range=tfx.proto.StaticRange(
      start_span_number=span, end_span_number=span))


def span_parameter_value(span: Optional[int]) -> str:
  """The SPAN_PARAMETER value for one span, or for the latest (TFX's single-span rolling
  range, what ExampleGen's driver does without a RangeConfig)."""
  chosen = range_config(span) or tfx.proto.RangeConfig(
      rolling_range=tfx.proto.RollingRange(num_spans=1))
  return json.dumps(json_format.MessageToDict(chosen), sort_keys=True)


def vertex_parameter_values(config: config_lib.RunConfig) -> Dict[str, str]:
  """The values of the Vertex pipeline's parameters that a run takes unless it is given
  others (the compiler writes them into the spec's runtimeConfig)."""
  if not spans.has_spans(config.paths.input):
    return {}
  return {SPAN_PARAMETER: span_parameter_value(config.paths.span)}


def local_beam_args(config: config_lib.RunConfig) -> List[str]:
  """Beam's flags for a run on this machine."""
  return config.beam.pipeline_args(
      setup_file=os.path.join(fingerprint.PROJECT_DIR, 'setup.py'))


def _example_gen(config: config_lib.RunConfig, code_fingerprint: str,
                 on_vertex: bool = False):
  input_base, pattern = paths.split_input_glob(config.paths.input)
  dataset = config.dataset
  time_split = dataset.split_by_time
  # A time split names its splits here; the executor splits by time, not by these buckets.
  buckets = ({name: 1 for name in dataset.split_names} if time_split
             else dataset.split.buckets())
  splits = [tfx.proto.SplitConfig.Split(name=name, hash_buckets=count)
            for name, count in buckets.items()]
  # With spans in the input, ExampleGen's driver reads the latest unless the config says;
  # on Vertex the span is chosen when a run starts (TFX's periodic-training advice: name
  # the span rather than trust "latest"), the config's the default.
  chosen = range_config(config.paths.span)
  if on_vertex and spans.has_spans(config.paths.input):
    chosen = tfx.dsl.experimental.RuntimeParameter(
        name=SPAN_PARAMETER, ptype=str, default=span_parameter_value(config.paths.span))
  return csv_example_gen.CsvExampleGen(
      columns=dataset.columns,
      delimiter=dataset.delimiter,
      time_split=time_split.model_dump() if time_split else None,
      code_fingerprint=code_fingerprint,
      input_base=input_base,
      input_config=tfx.proto.Input(
          splits=[tfx.proto.Input.Split(name='single_split', pattern=pattern)]),
      output_config=tfx.proto.Output(
          split_config=tfx.proto.SplitConfig(splits=splits)),
      range_config=chosen)


def _span_window(config: config_lib.RunConfig, example_gen, code_fingerprint: str):
  """The latest span history's resolver and the SpanWindow that extends it."""
  history_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
      history=tfx.dsl.Channel(type=span_window_lib.HISTORY_TYPE),
  ).with_id('latest_span_history_resolver')
  span_window = span_window_lib.SpanWindow(
      examples=example_gen.outputs['examples'],
      previous_history=history_resolver.outputs['history'],
      window_spans=config.training.window_spans or 1,
      pipeline_key=f'{config.pipeline_name} {config.paths.input}',
      code_fingerprint=code_fingerprint)
  return history_resolver, span_window


def create_span_reader(config: config_lib.RunConfig, metadata_connection_config,
                       pipeline_root: Optional[str] = None) -> tfx.dsl.Pipeline:
  """Reads the config's span into the pipeline's span history, and nothing else: how
  past spans join the history before a continuous pipeline's first training run (the
  ids are create_pipeline's, so its later runs find these Examples)."""
  code_fingerprint = fingerprint.code_fingerprint()
  example_gen = _example_gen(config, code_fingerprint)
  history_resolver, span_window = _span_window(config, example_gen, code_fingerprint)
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=pipeline_root or config.paths.pipeline_root,
      components=[example_gen, history_resolver, span_window],
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=local_beam_args(config))


def eval_config(config: config_lib.RunConfig, code_fingerprint: str = '') -> tfma.EvalConfig:
  """AUC must clear an absolute bar and not fall more than allowed below the latest
  blessed model; both come from the run config.

  Args:
    config: the validated run config.
    code_fingerprint: handed to each metric (which ignores it): the Evaluator has no
      custom_config, and its cache key must change when the metrics' code does.

  Returns:
    The Evaluator's EvalConfig.
  """
  evaluation = config.evaluation
  auc_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': evaluation.min_auc}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -evaluation.max_auc_regression}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=names.SERVING_SIGNATURE,
          prediction_key=names.PREDICTION_KEY,
          label_key=names.LABEL_KEY,
          # The 0/1 label exists only after Transform: TFMA gets it from the model.
          preprocessing_function_names=[names.TRANSFORM_SIGNATURE])],
      slicing_specs=[tfma.SlicingSpec()] + [
          tfma.SlicingSpec(feature_keys=[column]) for column in evaluation.slice_by],
      # One pass over the examples gives every metric (modules/evaluation_metrics.py).
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(
              class_name=metric.__name__, module=evaluation_metrics.__name__,
              config=json.dumps({'name': metric.METRIC,
                                 'code_fingerprint': code_fingerprint}),
              # Judged overall: a rarely rated movie's slice is too small to gate on.
              per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                  slicing_specs=[tfma.SlicingSpec()], threshold=auc_threshold)]
              if metric is evaluation_metrics.OnePassAUC else None)
          for metric in evaluation_metrics.CLASSES])])


def create_pipeline(
    config: config_lib.RunConfig,
    *,
    pipeline_root: Optional[str] = None,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
    enable_cache: bool = True,
    on_vertex: bool = False,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline a RunConfig describes.

  Args:
    config: the validated run config.
    pipeline_root: where artifacts go; defaults to <paths.output_root>/pipeline_root.
    metadata_connection_config: the MLMD store; None lets the orchestrator choose
      (Vertex AI brings its own).
    beam_pipeline_args: Beam flags; defaults to those the config gives.
    enable_cache: reuse an earlier execution's outputs when inputs are unchanged.
    on_vertex: build for Vertex AI Pipelines as `config.vertex` describes: the Trainer
      a custom job, Beam on Dataflow if configured, the Pusher to an Endpoint if
      configured, project paths as the pipeline image holds them.

  Returns:
    The pipeline, its components in the order they run.

  Raises:
    ConfigError: on_vertex with a config that cannot run there.
  """
  if on_vertex:
    vertex_lib.check_runs_on_vertex(config)
    config = vertex_lib.for_image(config)
  # Every component that runs project code gets it: an edit of that code reruns them.
  code_fingerprint = fingerprint.code_fingerprint()
  example_gen = _example_gen(config, code_fingerprint, on_vertex)
  statistics_gen = statistics_gen_lib.StatisticsGen(
      examples=example_gen.outputs['examples'],
      sample_rate=config.statistics.sample_rate or 1.0,
      code_fingerprint=code_fingerprint)
  if config.paths.schema_file:
    schema_gen = tfx.components.ImportSchemaGen(schema_file=config.paths.schema_file)
  else:
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  # The largest batch the Trainer (or a Tuner's trial) may ask each split to fill.
  tuned_batch_sizes = (config.tuning.batch_size or ()) if config.tuning else ()
  gate = validation_gate.DataValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      statistics=statistics_gen.outputs['statistics'],
      on_anomalies=config.validation.on_anomalies,
      trained_splits=','.join(config.dataset.trained_splits),
      # A window of several spans trains on more rows than this span's: the Trainer
      # reads the window, so only a one-span run is held to a batch per split here.
      batch_size=(0 if (config.training.window_spans or 1) > 1
                  else max((config.training.batch_size, *tuned_batch_sizes))),
      label=config.dataset.label.spec.model_dump_json(),
      code_fingerprint=code_fingerprint)
  # What every component that loads the model code needs.
  module_config = {
      names.MODEL_INPUTS_KEY: config.model_inputs.to_dict(),
      names.CODE_FINGERPRINT_KEY: code_fingerprint,
  }
  training = vertex_lib.training(config) if on_vertex else config.training
  span_window = history_resolver = None
  trained_examples = example_gen.outputs['examples']
  if training.window_spans is not None:
    history_resolver, span_window = _span_window(config, example_gen, code_fingerprint)
    # Only validated spans join a window.
    span_window.add_upstream_node(gate)
    trained_examples = span_window.outputs['window']
  transform = tfx.components.Transform(
      examples=trained_examples,
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=names.PREPROCESSING_FN,
      custom_config=module_config,
      # Transformed tf.Examples are written only for the Trainer that reads them; the
      # columnar input applies the transform graph itself, in TensorFlow, far faster.
      materialize=training.input_format == 'tf_example',
      # Nothing reads Transform's own statistics (StatisticsGen has the raw data's) or
      # its analyzer cache (no run passes one back in).
      disable_statistics=True,
      disable_analyzer_cache=True)
  # Nothing is transformed, trained or pushed from data the gate has not let through.
  transform.add_upstream_node(gate)
  columnar = None
  if training.input_format == 'columnar':
    columnar = columnar_examples_gen.ColumnarExamplesGen(
        examples=trained_examples,
        transform_graph=transform.outputs['transform_graph'],
        # Only what the Trainer reads: never the test split.
        splits=','.join(config.dataset.trained_splits),
        # Every item of every split, test included: retrieval ranks them all.
        catalogue_key=config.model_inputs.side('item')[0].name,
        seed=training.seed,
        code_fingerprint=code_fingerprint)
    training_examples = columnar.outputs['columnar_examples']
  else:
    training_examples = transform.outputs['transformed_examples']
  latest_blessed_model = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id('latest_blessed_model_resolver')
  trainer_args = dict(
      run_fn=names.RUN_FN,
      examples=training_examples,
      transform_graph=transform.outputs['transform_graph'],
      # run_fn trains for the config's epochs or steps; TFX's own step counts would
      # be a second, conflicting copy.
      train_args=tfx.proto.TrainArgs(splits=['train']),
      eval_args=tfx.proto.EvalArgs(splits=[config.dataset.validation_split]),
      custom_config={**module_config, names.TRAINING_KEY: training.to_dict(),
                     names.RETRIEVAL_KEY: config.retrieval.to_dict()})
  tuner = None
  if config.tuning is not None:
    # Searches on train, scored on validation; the Trainer trains with its best values.
    tuner = tfx.components.Tuner(
        tuner_fn=names.TUNER_FN,
        examples=training_examples,
        transform_graph=transform.outputs['transform_graph'],
        train_args=trainer_args['train_args'],
        eval_args=trainer_args['eval_args'],
        custom_config={**trainer_args['custom_config'],
                       names.TUNING_KEY: config.tuning.to_dict()})
    trainer_args['hyperparameters'] = tuner.outputs['best_hyperparameters']
  if training.warm_start == 'latest_blessed':
    # The tables start from the model the Evaluator would compare against.
    trainer_args['base_model'] = latest_blessed_model.outputs['model']
  if on_vertex:
    trainer_args['custom_config'].update(vertex_lib.trainer_custom_config(config.vertex))
    trainer = tfx.extensions.google_cloud_ai_platform.Trainer(**trainer_args)
  else:
    trainer = tfx.components.Trainer(**trainer_args)
  evaluator = evaluator_component.Evaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=latest_blessed_model.outputs['model'],
      # What the baseline was blessed on: a candidate that is the baseline itself (a
      # rerun with nothing changed) is then blessed again without an evaluation.
      baseline_blessing=latest_blessed_model.outputs['model_blessing'],
      # With three splits, the model is judged on rows neither training nor its
      # validation saw.
      example_splits=[config.dataset.test_split],
      eval_config=eval_config(config, code_fingerprint))
  if on_vertex and config.vertex.endpoint:
    pusher = tfx.extensions.google_cloud_ai_platform.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        custom_config=vertex_lib.pusher_custom_config(config.vertex))
  else:
    pusher = tfx.components.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=config.paths.serving_dir)),
        custom_config={names.CODE_FINGERPRINT_KEY: code_fingerprint},
        # No second copy of a model the serving directory already holds.
        custom_executor_spec=executor_spec.ExecutorClassSpec(pusher_executor.Executor))

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=pipeline_root or config.paths.pipeline_root,
      components=[c for c in (example_gen, statistics_gen, schema_gen, example_validator,
                              gate, history_resolver, span_window, transform, columnar,
                              tuner, trainer,
                              latest_blessed_model, evaluator, pusher) if c is not None],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=(
          beam_pipeline_args if beam_pipeline_args is not None
          else vertex_lib.beam_pipeline_args(config) if on_vertex
          else local_beam_args(config)))
