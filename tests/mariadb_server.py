"""A throwaway MariaDB server for the ML Metadata tests: its own data directory, a free
port on 127.0.0.1, a user with a password, stopped (and its files removed) afterwards.

Debian's `mariadb-server` is installed with apt when the binaries are missing and this
process may do so (root, apt-get present); otherwise `skip_reason` says what to install.
"""

import dataclasses
import os
import shutil
import socket
import subprocess
import time
from typing import Iterator, Optional

_SERVER_NAMES = ('mariadbd', 'mysqld')
_INSTALL_DB_NAMES = ('mariadb-install-db', 'mysql_install_db')
_CLIENT_NAMES = ('mariadb', 'mysql')
_SBIN = ('/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin')
_START_TIMEOUT = 60
_STOP_TIMEOUT = 30


@dataclasses.dataclass(frozen=True)
class Server:
  host: str
  port: int
  user: str
  password: str

  def flags(self, database: str):
    """The runner's and the inspection tool's flags for a database on this server."""
    return ['--mysql-host', self.host, '--mysql-port', str(self.port),
            '--mysql-user', self.user, '--mysql-database', database]


def _which(names) -> Optional[str]:
  path = os.pathsep.join([os.environ.get('PATH', ''), *_SBIN])
  return next((found for name in names if (found := shutil.which(name, path=path))), None)


def _binaries():
  return _which(_SERVER_NAMES), _which(_INSTALL_DB_NAMES), _which(_CLIENT_NAMES)


def install_if_missing() -> Optional[str]:
  """None when the server can be started, else why it cannot (the skip reason)."""
  if all(_binaries()):
    return None
  if os.geteuid() != 0 or not shutil.which('apt-get'):
    return ('no MariaDB/MySQL server binaries (mariadbd, mariadb-install-db); install '
            "Debian's mariadb-server to run the ML Metadata on MySQL tests")
  def apt_get(*args):
    return subprocess.run(['apt-get', *args], capture_output=True, text=True, timeout=900,
                          check=False, env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})

  install = ('install', '-y', '-qq', '--no-install-recommends', 'mariadb-server')
  result = apt_get(*install)
  if result.returncode != 0:  # a new machine has no package lists yet
    apt_get('update', '-qq')
    result = apt_get(*install)
  if not all(_binaries()):
    return f'installing mariadb-server failed: {result.stderr.strip()[-500:]}'
  return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _client(client: str, sock: str, sql: str) -> None:
  subprocess.run([client, '--no-defaults', '-uroot', f'--socket={sock}', '-e', sql],
                 check=True, capture_output=True, text=True, timeout=30)


def run(directory: str) -> Iterator[Server]:
  """Starts a server under `directory`, yields it, stops it: a generator for a fixture."""
  server, install_db, client = _binaries()
  data = os.path.join(directory, 'data')
  sock = os.path.join(directory, 'mysqld.sock')
  as_root = ['--user=root'] if os.geteuid() == 0 else []
  subprocess.run([install_db, '--no-defaults', f'--datadir={data}', *as_root,
                  '--auth-root-authentication-method=normal', '--skip-test-db'],
                 check=True, capture_output=True, text=True, timeout=120)
  port = _free_port()
  log = open(os.path.join(directory, 'server.log'), 'w')  # pylint: disable=consider-using-with
  process = subprocess.Popen(
      [server, '--no-defaults', f'--datadir={data}', *as_root, '--bind-address=127.0.0.1',
       f'--port={port}', f'--socket={sock}', f'--pid-file={directory}/mysqld.pid',
       '--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=64M'],
      stdout=log, stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
      try:
        _client(client, sock, 'SELECT 1')
        break
      except subprocess.CalledProcessError:
        if process.poll() is not None or time.monotonic() > deadline:
          raise RuntimeError(f'MariaDB did not start; see {directory}/server.log') from None
        time.sleep(0.5)
    password = 'mlmd-test-password'
    _client(client, sock, f"CREATE USER 'mlmd'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            "GRANT ALL PRIVILEGES ON *.* TO 'mlmd'@'127.0.0.1';")
    yield Server(host='127.0.0.1', port=port, user='mlmd', password=password)
  finally:
    process.terminate()
    try:
      process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
    log.close()
    shutil.rmtree(data, ignore_errors=True)
