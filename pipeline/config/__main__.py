"""`python -m pipeline.config check CONFIG` prints a config resolved (or its one-line
error, exit 2); `python -m pipeline.config schema` writes the JSON schema for editors:

    python -m pipeline.config schema --output configs/config.schema.json
    python -m pipeline.config check configs/movielens_100k.yaml --set training.epochs=3
"""

import argparse
import json
import sys
from typing import Optional, Sequence

import yaml

from pipeline.config.errors import ConfigError
from pipeline.config.run_config import add_override_argument, json_schema, load_config


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m pipeline.config',
                                   description='Check a run config or write its JSON schema.')
  commands = parser.add_subparsers(dest='command', required=True)
  check = commands.add_parser('check', help='validate a config and print it resolved')
  check.add_argument('config')
  add_override_argument(check)
  schema = commands.add_parser('schema', help='write the JSON schema of run configs')
  schema.add_argument('--output', help='file to write (default: standard output)')
  args = parser.parse_args(argv)
  if args.command == 'schema':
    text = json.dumps(json_schema(), indent=2) + '\n'
    if args.output:
      with open(args.output, 'w', encoding='utf-8') as f:
        f.write(text)
    else:
      sys.stdout.write(text)
    return 0
  try:
    config = load_config(args.config, args.overrides)
  except ConfigError as e:
    print(f'config: {e}', file=sys.stderr)
    return 2
  print(yaml.safe_dump(config.model_dump(mode='json', by_alias=True), sort_keys=False),
        end='')
  return 0


if __name__ == '__main__':
  sys.exit(main())
