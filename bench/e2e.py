"""End-to-end pipeline wall time, per component, in-process versus multi-processing Beam.

    .venv/bin/python bench/e2e.py                      # 1M generated rows and MovieLens 100K
    .venv/bin/python bench/e2e.py --datasets ml-100k --epochs 5
    .venv/bin/python bench/e2e.py --smoke
    .venv/bin/python bench/e2e.py --rows 1000000 5000000 --modes in_memory   # scaling
    .venv/bin/python bench/e2e.py --rows 25000000 --modes in_memory --config configs/large_scale.yaml

Each (dataset, Beam mode) is a fresh `local_runner.py` process with an empty output root
(nothing cached): its wall time includes start-up and imports. Per-component times come
from ML Metadata (inspection.run_store). Training runs `--epochs` epochs (default 2) so
that the Beam components are not hidden behind a long training; trainer_throughput.py
measures training itself. Start-up is measured on its own as the time to import TFX.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

CONFIGS = os.path.join(common.PROJECT_DIR, 'configs')
MODES = {
    'in_memory': {'direct_running_mode': 'in_memory', 'direct_num_workers': 1},
    'multi_processing': {'direct_running_mode': 'multi_processing', 'direct_num_workers': 0},
}
# Where a component spends its time: Beam pipelines, TensorFlow training, or neither.
KIND = {'CsvExampleGen': 'beam', 'StatisticsGen': 'beam', 'ExampleValidator': 'other',
        'DataValidationGate': 'other', 'ColumnarExamplesGen': 'tf',
        'ImportSchemaGen': 'other', 'Transform': 'beam', 'Trainer': 'tf',
        'latest_blessed_model_resolver': 'other', 'Evaluator': 'beam', 'Pusher': 'other'}


# MovieLens 25M's users and movies per million ratings (162,541 and 59,047 for 25M).
ML25M_USERS_PER_MILLION, ML25M_ITEMS_PER_MILLION = 6_502, 2_362


def scaled(rows_list, config_path: str):
  """name -> (base config, input glob, rows): generated data of MovieLens 25M's shape
  (its users and movies per rating) at each size, written once under bench/work."""
  found = {}
  for rows in rows_list:
    name = f'ml25m-shape-{rows / 1e6:g}m'
    found[name] = (config_path, common.generated_ratings(
        os.path.join(common.WORK_DIR, 'e2e-scaled', name, 'ratings.csv'), rows,
        users=max(1, rows * ML25M_USERS_PER_MILLION // 1_000_000),
        items=max(1, rows * ML25M_ITEMS_PER_MILLION // 1_000_000)), rows)
  return found


def datasets(smoke: bool):
  """name -> (base config, input glob, rows) for each dataset this run measures."""
  if smoke:
    return {'sample': (os.path.join(CONFIGS, 'sample.yaml'), None, 6_000)}
  generated = common.generated_ratings(
      os.path.join(common.WORK_DIR, 'e2e-generated-1m', 'ratings.csv'), 1_000_000,
      users=6040, items=3706)
  found = {'generated-1m': (os.path.join(CONFIGS, 'movielens_1m.yaml'), generated,
                            1_000_000)}
  ml100k = os.path.join(common.PROJECT_DIR, 'data', 'movielens-100k', 'ratings.csv')
  if not os.path.exists(ml100k):
    raw = os.path.join(common.SHARED_DATA_DIR, 'ml-100k', 'u.data')
    if os.path.exists(raw):
      from data import movielens  # pylint: disable=g-import-not-at-top
      movielens.convert(raw, ml100k)
  if os.path.exists(ml100k):
    found['ml-100k'] = (os.path.join(CONFIGS, 'movielens_100k.yaml'), ml100k, 100_000)
  else:
    print('MovieLens 100K not found (data/movielens-100k or ../shared/data): skipped',
          file=sys.stderr)
  return found


def import_seconds() -> float:
  """What every component process pays before any work: importing TFX and TensorFlow."""
  start = time.perf_counter()
  subprocess.run([sys.executable, '-c', 'import tfx.v1, tensorflow'], check=True,
                 capture_output=True)
  return time.perf_counter() - start


def plot_scaling(runs, path: str) -> None:
  """Seconds of each component, and the wall, against rows (log-log: a straight line of
  slope 1 is a cost linear in the rows), to `path` (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  runs = sorted(runs, key=lambda r: r['rows'])
  rows = [r['rows'] for r in runs]
  figure, axis = plt.subplots(figsize=(8, 5))
  axis.plot(rows, [r['wall_seconds'] for r in runs], 'k--', marker='o', label='wall')
  for component in runs[-1]['components']:
    seconds = [r['components'].get(component, 0) for r in runs]
    if max(seconds) >= 1:
      axis.plot(rows, seconds, marker='o', label=component)
  axis.set_xscale('log')
  axis.set_yscale('log')
  axis.set_xlabel('rows')
  axis.set_ylabel('seconds')
  axis.grid(alpha=0.3, which='both')
  axis.legend(fontsize=8)
  axis.set_title('End to end per component, MovieLens-25M-shaped generated data')
  figure.tight_layout()
  figure.savefig(path, dpi=110)


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--datasets', nargs='+', help='generated-1m and/or ml-100k')
  parser.add_argument('--modes', nargs='+', choices=list(MODES), default=list(MODES))
  parser.add_argument('--epochs', type=int, default=2)
  parser.add_argument('--rows', nargs='+', type=int,
                      help='instead of the datasets: generated data of MovieLens 25M\'s '
                      'shape at each of these sizes')
  parser.add_argument('--config', default=os.path.join(CONFIGS, 'movielens_1m.yaml'),
                      help='with --rows: the config the runs extend (default: %(default)s)')
  args = parser.parse_args(argv)
  found = scaled(args.rows, args.config) if args.rows else datasets(args.smoke)
  names = args.datasets or list(found)
  modes = ['in_memory'] if args.smoke else args.modes
  epochs = 1 if args.smoke else args.epochs

  startup = import_seconds()
  runs = []
  for name in names:
    config_path, input_glob, rows = found[name]
    for mode in modes:
      output_root = os.path.join(common.WORK_DIR, 'e2e', f'{name}-{mode}')
      shutil.rmtree(output_root, ignore_errors=True)
      overrides = {'training': {'epochs': epochs}, 'beam': MODES[mode]}
      if input_glob:
        overrides['paths'] = {'input': input_glob}
      outcome = common.run_pipeline(config_path, output_root, overrides)
      components = {e.component: e.seconds for e in outcome['run'].executions}
      # The process tree's peak while each component ran (its ML Metadata times).
      component_peaks = {
          e.component: max((b for t, b in outcome['memory_samples'] if e.start <= t <= e.end),
                           default=0) / 2**30 for e in outcome['run'].executions}
      by_kind = {kind: sum(s for c, s in components.items() if KIND.get(c) == kind)
                 for kind in ('beam', 'tf', 'other')}
      runs.append({'dataset': name, 'config': os.path.basename(config_path), 'rows': rows,
                   'mode': mode,
                   'wall_seconds': outcome['wall_seconds'],
                   'peak_rss_gib': outcome['peak_rss_gib'],
                   'component_peak_rss_gib': component_peaks,
                   'components_seconds': sum(components.values()),
                   'components': components, 'by_kind': by_kind})
      print(f'  {name} {mode}: {outcome["wall_seconds"]:.0f} s, peak '
            f'{outcome["peak_rss_gib"]:.1f} GiB', file=sys.stderr)

  component_names = list(runs[0]['components'])
  print(f'seconds; training {epochs} epoch(s); importing TFX + TensorFlow: {startup:.1f} s\n')
  print(common.text_table(
      ['dataset', 'mode', 'wall', 'peak GiB'] + component_names
      + ['start-up + orchestration', 'beam', 'tf'],
      [[r['dataset'], r['mode'], f'{r["wall_seconds"]:.0f}', f'{r["peak_rss_gib"]:.1f}']
       + [f'{r["components"].get(c, 0):.1f}' for c in component_names]
       + [f'{r["wall_seconds"] - r["components_seconds"]:.0f}',
          f'{r["by_kind"]["beam"]:.0f}', f'{r["by_kind"]["tf"]:.0f}'] for r in runs]))
  ratios = {}
  for name in names:
    by_mode = {r['mode']: r['wall_seconds'] for r in runs if r['dataset'] == name}
    if len(by_mode) == 2:
      ratios[name] = by_mode['multi_processing'] / by_mode['in_memory']
  if ratios:
    print()
    print(common.text_table(('dataset', 'multi_processing wall / in_memory wall'),
                            [(k, f'{v:.2f}') for k, v in ratios.items()]))
  if args.rows:
    print()
    print(common.text_table(
        ['dataset', 'rows'] + component_names,
        [[r['dataset'], f'{r["rows"]:,}'] + [
            f'{r["rows"] / r["components"][c]:,.0f}' if r['components'].get(c) else ''
            for c in component_names] for r in runs]))
    print('(rows per second of each component)\n')
    print(common.text_table(
        ['dataset', 'rows'] + component_names,
        [[r['dataset'], f'{r["rows"]:,}'] + [
            f'{r["component_peak_rss_gib"].get(c, 0):.1f}' for c in component_names]
         for r in runs]))
    print('(peak resident GiB of the run\'s process tree while each component ran)')
  path = common.write_result(args.results_dir, 'e2e_scaling' if args.rows else 'e2e',
                             args.smoke,
                             [os.path.basename(sys.executable), *sys.argv],
                             {'epochs': epochs, 'import_seconds': startup, 'runs': runs,
                              'multi_processing_over_in_memory': ratios})
  if args.rows:  # after the results: they make the folder
    plot_scaling(runs, os.path.join(args.results_dir, 'e2e_scaling.png'))
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
