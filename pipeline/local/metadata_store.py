"""Where runs are recorded in ML Metadata: the config's SQLite file, or a MySQL server
that a team shares. The runner and the inspection tool take the same flags."""

import argparse
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from pipeline.local import run_log

# The password never goes on a command line, where `ps` would show it.
PASSWORD_VARIABLE = 'MLMD_MYSQL_PASSWORD'


def add_arguments(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
      'ML Metadata on MySQL (instead of the config\'s SQLite file; password from '
      f'${PASSWORD_VARIABLE})')
  group.add_argument('--mysql-host', help='server host name or address')
  group.add_argument('--mysql-port', type=int, default=3306, help='(default: %(default)s)')
  group.add_argument('--mysql-database', default='mlmd',
                     help='database, created when absent (default: %(default)s)')
  group.add_argument('--mysql-user', default='root', help='(default: %(default)s)')


def mysql_connection(args: argparse.Namespace
                     ) -> Optional[metadata_store_pb2.ConnectionConfig]:
  """The MySQL store the flags name, or None when they name none."""
  if not args.mysql_host:
    return None
  config = metadata_store_pb2.ConnectionConfig()
  config.mysql.host = args.mysql_host
  config.mysql.port = args.mysql_port
  config.mysql.database = args.mysql_database
  config.mysql.user = args.mysql_user
  config.mysql.password = os.environ.get(PASSWORD_VARIABLE, '')
  return config


def sqlite_connection(path: str, read_only: bool = False
                      ) -> metadata_store_pb2.ConnectionConfig:
  """The SQLite store at `path`: one a run may create and write, or `read_only` (then
  MLMD creates nothing, not even an empty store at a wrong path)."""
  modes = metadata_store_pb2.SqliteMetadataSourceConfig
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = modes.READONLY if read_only else modes.READWRITE_OPENCREATE
  return config


def open_store(connection: metadata_store_pb2.ConnectionConfig):
  """An ML Metadata store. Its C++ client logs its own lines when it cannot connect
  (blaming MySQL 8 authentication whatever the cause); they are kept off the terminal,
  and callers say in their error what to check."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  with run_log.output_to(os.devnull):
    return metadata_store.MetadataStore(connection)


_SQLITE_HEADER = b'SQLite format 3\x00'


def _check_sqlite_file(path: str) -> None:
  """A SQLite store that is there must be a SQLite database this process may write;
  one that is not there yet is created by the run. The file is only read."""
  fix = 'move it away, or give another --output-root'
  if not os.path.exists(path):
    return
  if not os.path.isfile(path):
    raise ValueError(f'{path}: the ML Metadata store is not a file; {fix}')
  try:
    with open(path, 'rb') as f:
      header = f.read(len(_SQLITE_HEADER))
  except OSError as e:
    raise ValueError(f'{path}: cannot read the ML Metadata store ({e.strerror}); {fix}') from None
  # An empty file is what SQLite creates before its first write: a store to fill.
  if header and header != _SQLITE_HEADER:
    raise ValueError(f'{path}: not an ML Metadata store (the file is not a SQLite '
                     f'database); {fix}')
  if not os.access(path, os.W_OK) or not os.access(os.path.dirname(path) or '.', os.W_OK):
    raise ValueError(f'{path}: the ML Metadata store is not writable here; {fix}')


def check_reachable(connection: metadata_store_pb2.ConnectionConfig) -> None:
  """Before the first component, in one line (ValueError): a MySQL server is connected
  to once (creating the database if it is absent), so that a wrong host or password
  fails now; a SQLite store's file is checked to be a database this run can write."""
  if not connection.HasField('mysql'):
    _check_sqlite_file(connection.sqlite.filename_uri)
    return
  from ml_metadata import errors  # pylint: disable=g-import-not-at-top
  try:
    open_store(connection)
  except (errors.StatusError, RuntimeError) as e:
    raise ValueError(f'{describe(connection)}: cannot open the ML Metadata store ({e}); '
                     f'check --mysql-host, --mysql-port, --mysql-user and '
                     f'${PASSWORD_VARIABLE}') from None


def describe(connection: metadata_store_pb2.ConnectionConfig) -> str:
  """Where the store is, for messages (never the password)."""
  if connection.HasField('mysql'):
    mysql = connection.mysql
    return f'mysql://{mysql.user}@{mysql.host}:{mysql.port}/{mysql.database}'
  return connection.sqlite.filename_uri
