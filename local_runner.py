"""Runs the pipeline on this machine: Beam's DirectRunner and a SQLite ML Metadata store.

    python local_runner.py                                    # configs/sample.yaml
    python local_runner.py --config configs/movielens_100k.yaml
    python local_runner.py --output-root /tmp/ranker          # somewhere else

Everything a run makes lands under the config's `paths.output_root`:
`metadata.sqlite` (ML Metadata) and `pipeline_root/` (one folder per component).
"""

import argparse
import logging
import os
import sys

from pipeline import runtime

runtime.configure()

from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs',
                              'sample.yaml')


def validate(config: config_lib.RunConfig) -> None:
  """Everything that can be checked before a component runs; raises ValueError."""
  from pipeline import csv_example_gen  # pylint: disable=g-import-not-at-top
  files = config_lib.check_inputs_exist(config)
  csv_example_gen.check_headers(files, config.dataset.columns)
  if config.paths.schema_file and not os.path.exists(config.paths.schema_file):
    raise config_lib.ConfigError(config.source, 'paths.schema',
                                 f'no such file: {config.paths.schema_file}')


def run(config: config_lib.RunConfig, enable_cache: bool = True) -> None:
  """Runs the whole pipeline in this process and returns when it is done."""
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  os.makedirs(config.paths.output_root, exist_ok=True)
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      config.paths.metadata_path)
  tfx.orchestration.LocalDagRunner().run(create_pipeline(
      config, metadata_connection_config=metadata, enable_cache=enable_cache))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', default=DEFAULT_CONFIG, help='run config (YAML)')
  parser.add_argument('--output-root', help='override paths.output_root (and the '
                      'serving dir, which goes under it)')
  parser.add_argument('--no-cache', action='store_true',
                      help='rerun every component even when its inputs are unchanged')
  args = parser.parse_args(argv)
  try:
    config = config_lib.load_config(args.config)
    if args.output_root:
      config = config_lib.with_output_root(config, os.path.abspath(args.output_root))
    validate(config)
  except ValueError as e:
    print(f'local_runner.py: {e}', file=sys.stderr)
    return 2
  logging.getLogger().setLevel(logging.INFO)
  run(config, enable_cache=not args.no_cache)
  print(f'Pipeline {config.pipeline_name} finished.\n'
        f'  ML Metadata: {config.paths.metadata_path}\n'
        f'  artifacts:   {config.paths.pipeline_root}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
