"""What every benchmark shares: the machine, timing statistics, data, and the results file.

Benchmarks compare variants measured side by side in one process or one run: these
machines are noisy, so ratios within a run mean more than absolute figures across runs.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
from typing import Any, Dict, List, Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PROJECT_DIR = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
# Scratch space for generated data and pipeline runs (gitignored).
WORK_DIR = os.path.join(BENCH_DIR, 'work')
SHARED_DATA_DIR = os.path.join(os.path.dirname(PROJECT_DIR), 'shared', 'data')

sys.path.insert(0, PROJECT_DIR)

from pipeline import process_env  # pylint: disable=g-import-not-at-top

process_env.configure()

from inspection.text import text_table  # pylint: disable=g-import-not-at-top,unused-import


def parser(description: str) -> argparse.ArgumentParser:
  result = argparse.ArgumentParser(description=description)
  result.add_argument('--smoke', action='store_true',
                      help='tiny sizes: checks that the benchmark runs, measures nothing')
  result.add_argument('--results-dir', default=RESULTS_DIR,
                      help='where to write <benchmark>.json (default: %(default)s)')
  return result


def machine() -> Dict[str, Any]:
  """What the figures were measured on."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  memory_gib = None
  try:
    with open('/proc/meminfo') as f:
      memory_gib = round(int(f.readline().split()[1]) / 2**20, 1)
  except (OSError, ValueError, IndexError):
    pass
  return {'cpu': cpu, 'cores': os.cpu_count(), 'memory_gib': memory_gib,
          'python': platform.python_version(), 'platform': platform.platform()}


def peak_rss_mib() -> float:
  """This process's peak resident memory so far."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], q: float) -> float:
  ordered = sorted(values)
  index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
  return ordered[index]


def median(values: Sequence[float]) -> float:
  return statistics.median(values)


def write_result(results_dir: str, name: str, smoke: bool, command: List[str],
                 results: Any) -> str:
  """Writes <results_dir>/<name>.json with the machine and command; returns its path."""
  os.makedirs(results_dir, exist_ok=True)
  path = os.path.join(results_dir, f'{name}.json')
  record = {
      'benchmark': name,
      'smoke': smoke,
      'when': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'command': ' '.join(command),
      'machine': machine(),
      'results': results,
  }
  with open(path, 'w') as f:
    json.dump(record, f, indent=2)
    f.write('\n')
  return path


def generated_ratings(path: str, rows: int, users: int, items: int, seed: int = 1) -> str:
  """A MovieLens-shaped CSV from the project's generator, written once and reused."""
  if not os.path.exists(path):
    from data import generate_sample  # pylint: disable=g-import-not-at-top
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ratings = generate_sample.generate(rows=rows, users=users, items=items,
                                       factors=3, seed=seed)
    generate_sample.write_csv(ratings, path)
  return path


def tree_rss_bytes(root_pid: int) -> int:
  """Resident memory of a process and all its descendants now (Linux /proc)."""
  parents = {}
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        with open(f'/proc/{entry}/stat') as f:
          # The command name (2nd field) may hold spaces; the parent follows its ')'.
          parents[int(entry)] = int(f.read().rsplit(')', 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
  tree, changed = {root_pid}, True
  while changed:
    found = {pid for pid, parent in parents.items() if parent in tree} - tree
    tree |= found
    changed = bool(found)
  page = os.sysconf('SC_PAGE_SIZE')
  total = 0
  for pid in tree:
    try:
      with open(f'/proc/{pid}/statm') as f:
        total += int(f.read().split()[1]) * page
    except (OSError, IndexError, ValueError):
      continue
  return total


def run_pipeline(config_path: str, output_root: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
  """Runs local_runner.py in a fresh process on `config_path` with `overrides` on top
  (written as a config that extends it); returns the wall time, the resident memory of
  its whole process tree (sampled twice a second: `memory_samples`, (UTC time, bytes),
  and their peak), the run as ML Metadata recorded it, and the RunStore to read its
  artifacts."""
  import datetime  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  from inspection import run_store  # pylint: disable=g-import-not-at-top
  os.makedirs(output_root, exist_ok=True)
  derived = os.path.join(output_root, 'bench_config.yaml')
  with open(derived, 'w') as f:
    yaml.safe_dump({'extends': os.path.abspath(config_path), **overrides}, f)
  start = time.perf_counter()
  with open(os.path.join(output_root, 'bench_stderr.log'), 'w') as errors:
    process = subprocess.Popen(
        [sys.executable, os.path.join(PROJECT_DIR, 'local_runner.py'), '--config', derived,
         '--output-root', output_root], stdout=subprocess.DEVNULL, stderr=errors)
    samples = []
    while process.poll() is None:
      samples.append((datetime.datetime.now(datetime.timezone.utc),
                      tree_rss_bytes(process.pid)))
      time.sleep(0.5)
  wall = time.perf_counter() - start
  if process.returncode != 0:
    with open(os.path.join(output_root, 'bench_stderr.log')) as f:
      raise SystemExit(f'the pipeline failed on {derived}:\n{f.read()[-4000:]}')
  store = run_store.RunStore(run_store.existing_sqlite_store(
      os.path.join(output_root, 'metadata.sqlite')))
  return {'wall_seconds': wall, 'memory_samples': samples,
          'peak_rss_gib': max((b for _, b in samples), default=0) / 2**30,
          'run': store.run(), 'store': store}
