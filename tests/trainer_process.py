"""One Trainer process as Vertex AI starts each replica of a training job: TF_CONFIG (if
any) in the environment, the Trainer's own run_fn. Started by tests/test_multi_worker.py
and tests/test_resume.py.

    python tests/trainer_process.py ARGS_JSON

ARGS_JSON holds the Trainer's inputs (custom_config, transform_output, train_files,
eval_files, model_run_dir, serving_model_dir) and:
- `report`: a JSON file this process writes at the end: the input pipeline the Trainer
  used, the rows that pipeline reads of the train split in one pass, and the tables;
- `kill_after_epoch`: the process SIGKILLs itself once that epoch (1-based) is recorded,
  as a preempted machine dies: no exception, no cleanup.
"""

import json
import os
import signal
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline import process_env  # pylint: disable=g-import-not-at-top

process_env.configure()

import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top

from modules.data import reader
from modules.training import loop
from modules.training import trainer  # pylint: disable=g-import-not-at-top


def main() -> None:
  args = json.loads(sys.argv[1])
  fn_args = types.SimpleNamespace(**{k: v for k, v in args.items()
                                     if k not in ('report', 'kill_after_epoch')})
  # Which part of each split the Trainer asked for: observed, not assumed.
  parts = {}
  read_part = reader.input_dataset

  def observed_input_dataset(input_format, file_patterns, *rest, **options):
    parts[tuple(file_patterns)] = (input_format, options['pipeline_id'],
                                   options['num_pipelines'])
    return read_part(input_format, file_patterns, *rest, **options)

  reader.input_dataset = observed_input_dataset
  if args.get('kill_after_epoch'):
    record_epoch = loop.EpochHistory.on_epoch_end

    def record_then_die(callback, epoch, logs=None):
      record_epoch(callback, epoch, logs)
      if epoch + 1 == args['kill_after_epoch']:
        os.kill(os.getpid(), signal.SIGKILL)

    loop.EpochHistory.on_epoch_end = record_then_die
  model = trainer.run_fn(fn_args)
  if not args.get('report'):
    return

  input_format, pipeline_id, num_pipelines = parts[tuple(fn_args.train_files)]
  feature_spec = tft.TFTransformOutput(fn_args.transform_output).transformed_feature_spec()
  part = read_part(input_format, fn_args.train_files, feature_spec, 1, shuffle=False, seed=0,
                   pipeline_id=pipeline_id, num_pipelines=num_pipelines)
  rows = [[int(b['userId'][0]), int(b['movieId'][0]), int(b['label'][0])] for b in part]
  tables = {v.name: v.numpy().tolist() for v in model.embedding.trainable_variables}
  with open(args['report'], 'w') as f:
    json.dump({'pipeline': [pipeline_id, num_pipelines], 'rows': rows, 'tables': tables}, f)


if __name__ == '__main__':
  main()
