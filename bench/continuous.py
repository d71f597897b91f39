"""Continuous training replayed: one pipeline run per span, each model tested on the span
after it (the rows it would have served), three ways of retraining side by side.

    .venv/bin/python bench/continuous.py                 # ML-100K, its last 10 weeks
    .venv/bin/python bench/continuous.py --replay 4 --warm-epochs 3
    .venv/bin/python bench/continuous.py --smoke          # the shipped sample by year

The ratings are cut into spans by week (`data/spans.py`). Every span before the replayed
ones is read into each way's span history first (`graph.create_span_reader`: CsvExampleGen
and SpanWindow, no training), as a pipeline that has run for a while would have it. Then,
for each replayed span s, `local_runner.py --span s` runs in a fresh process and the model
its Trainer wrote is scored on every row of span s + 1 through its `serving_default`:

  warm, window 1   warm start from the latest blessed model, trained on span s alone for
                   --warm-epochs epochs (the first model: cold on all spans before);
  cold, window 4   trained from random tables on spans s-3..s;
  cold, all spans  trained from random tables on every span so far (a static pipeline's
                   model; here its old spans are not read again, which a static pipeline
                   would do, so its wall is a lower bound).

Reported per span and way: the pooled AUC and the in-user AUC (the mean over users with
both labels in span s + 1 of the AUC of their own rows) of `rating >= 4`, the wall of the
run, and whether the Evaluator blessed it; then the means over spans, and a plot of AUC
per span (bench/results/continuous_<dataset>.png).
"""

import csv
import os
import shutil
import subprocess
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top
import quality  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top

from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top

SPANS_TOOL = os.path.join(common.PROJECT_DIR, 'data', 'spans.py')
DATASETS = {
    # config, raw ratings (converted by quality.py's rules), how spans are cut, and the
    # Evaluator's bars for every way (configs/movielens_100k_weekly.yaml's for ML-100K)
    'ml-100k': (os.path.join(common.PROJECT_DIR, 'configs', 'movielens_100k.yaml'),
                'ml-100k', 'week', {'min_auc': 0.65, 'max_auc_regression': 0.02}),
    'sample': (os.path.join(common.PROJECT_DIR, 'configs', 'sample.yaml'), None, 'year',
               {'min_auc': 0.5, 'max_auc_regression': 0.05}),
}
WAYS = ('warm, window 1', 'cold, window 4', 'cold, all spans')


def _spans(ratings: str, by: str, out_dir: str) -> Dict[int, str]:
  """{span: its ratings.csv}, cut once and reused."""
  if not os.path.exists(os.path.join(out_dir, 'spans.csv')):
    shutil.rmtree(out_dir, ignore_errors=True)
    subprocess.run([sys.executable, SPANS_TOOL, ratings, '--by', by, '--out', out_dir],
                   check=True, capture_output=True)
  with open(os.path.join(out_dir, 'spans.csv')) as f:
    return {int(r['span']): os.path.join(out_dir, f'span-{int(r["span"]):03d}', 'ratings.csv')
            for r in csv.DictReader(f)}


def _ratings(config: config_lib.RunConfig, raw_name: str) -> str:
  if raw_name is None:
    return os.path.join(common.PROJECT_DIR, 'data', 'sample', 'ratings.csv')
  # quality.py's rule: the config's input, converted from ../shared/data when missing.
  flat = config.model_copy(update={'paths': config.paths.model_copy(update={
      'input': os.path.join(common.PROJECT_DIR, 'data', 'movielens-100k', '*.csv'),
      'span': None})})
  quality._ensure_input(flat, raw_name)  # pylint: disable=protected-access
  return os.path.join(common.PROJECT_DIR, 'data', 'movielens-100k', 'ratings.csv')


def _read_into_history(config_path: str, overrides: Dict, output_root: str,
                       spans: List[int]) -> None:
  """Each of `spans` read by the pipeline's own CsvExampleGen into its span history."""
  code = ('import sys, yaml\n'
          'from pipeline import config as config_lib, graph\n'
          'from pipeline.local import metadata_store\n'
          'from tfx import v1 as tfx\n'
          'config_path, output_root, *spans = sys.argv[1:]\n'
          'for span in spans:\n'
          '  config = config_lib.with_output_root(config_lib.load_config(\n'
          '      config_path, [f"paths.span={span}"]), output_root)\n'
          '  tfx.orchestration.LocalDagRunner().run(graph.create_span_reader(\n'
          '      config, metadata_store.sqlite_connection(config.paths.metadata_path)))\n')
  derived = os.path.join(output_root, 'history_config.yaml')
  os.makedirs(output_root, exist_ok=True)
  import yaml  # pylint: disable=g-import-not-at-top
  with open(derived, 'w') as f:
    yaml.safe_dump({'extends': os.path.abspath(config_path), **overrides}, f)
  subprocess.run([sys.executable, '-c', code, derived, output_root, *map(str, spans)],
                 cwd=common.PROJECT_DIR, check=True, capture_output=True)


def _examples(path: str) -> quality.Rows:
  """A span's ratings.csv as (users, items, ratings, serialized raw tf.Examples)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  users, items, ratings, records = [], [], [], []
  with open(path) as f:
    for row in csv.DictReader(f):
      user, item, rating = int(row['userId']), int(row['movieId']), float(row['rating'])
      features = {
          'userId': tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
          'movieId': tf.train.Feature(int64_list=tf.train.Int64List(value=[item])),
          'rating': tf.train.Feature(float_list=tf.train.FloatList(value=[rating])),
          'timestamp': tf.train.Feature(int64_list=tf.train.Int64List(
              value=[int(row['timestamp'])]))}
      users.append(user)
      items.append(item)
      ratings.append(rating)
      records.append(tf.train.Example(features=tf.train.Features(
          feature=features)).SerializeToString())
  return np.array(users), np.array(items), np.array(ratings), np.array(records, dtype=object)


def _scored(model_dir: str, rows: quality.Rows, threshold: float) -> Dict:
  (scores,) = quality._model_scores(model_dir, rows)  # pylint: disable=protected-access
  labels = (rows[2] >= threshold).astype(int)
  return {'rows': len(labels), 'users': int(len(np.unique(rows[0]))),
          'auc': quality._auc(labels, scores),  # pylint: disable=protected-access
          'in_user_auc': quality._in_user_auc(rows[0], labels, scores)}  # pylint: disable=protected-access


def _way_settings(way: str, warm_epochs: int, every_span: int) -> Dict:
  if way == 'warm, window 1':
    # configs/movielens_100k_weekly.yaml's: a week's validation split must fill a batch.
    return {'training': {'window_spans': 1, 'warm_start': 'latest_blessed',
                         'epochs': warm_epochs, 'batch_size': 64}}
  if way == 'cold, window 4':
    return {'training': {'window_spans': 4}}
  return {'training': {'window_spans': every_span}}


def _plot(results: List[Dict], path: str, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
  for way in WAYS:
    runs = [r for r in results if r['way'] == way]
    spans = [r['tested_on_span'] for r in runs]
    axes[0].plot(spans, [r['auc'] for r in runs], marker='o', label=way)
    axes[1].plot(spans, [r['in_user_auc'] for r in runs], marker='o', label=way)
  for axis, name in zip(axes, ('pooled AUC', 'in-user AUC')):
    axis.set_xlabel('span scored (the model trained up to the span before)')
    axis.set_ylabel(name)
    axis.grid(alpha=0.3)
  axes[0].legend()
  figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=110)


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--dataset', choices=[d for d in DATASETS if d != 'sample'],
                      default='ml-100k')
  parser.add_argument('--replay', type=int, default=10,
                      help='how many of the last spans to replay (each scored on the next)')
  parser.add_argument('--warm-epochs', type=int, default=5,
                      help='epochs of each warm-started run on its one span (default: '
                      'configs/movielens_100k_weekly.yaml\'s)')
  args = parser.parse_args(argv)
  dataset = 'sample' if args.smoke else args.dataset
  replay = 2 if args.smoke else args.replay
  config_path, raw_name, by, bars = DATASETS[dataset]
  config = config_lib.load_config(config_path)
  work = os.path.join(common.WORK_DIR, 'continuous', dataset)
  span_files = _spans(_ratings(config, raw_name), by,
                      os.path.join(common.WORK_DIR, 'continuous', f'{dataset}-{by}s'))
  every = sorted(span_files)
  replayed = every[-replay - 1:-1]
  before = [s for s in every if s < replayed[0]]
  pattern = os.path.join(os.path.dirname(os.path.dirname(span_files[every[0]])),
                         'span-{SPAN:3}', 'ratings.csv')
  threshold = float(config.dataset.label.positive_when.split()[-1])
  tested = {s: _examples(span_files[s + 1]) for s in replayed}

  results = []
  for way in WAYS:
    root = os.path.join(work, way.replace(', ', '-').replace(' ', '-'))
    shutil.rmtree(root, ignore_errors=True)
    settings = _way_settings(way, args.warm_epochs, len(every))
    base = {'paths': {'input': pattern}, 'evaluation': bars}
    _read_into_history(config_path, {**base, **settings}, root, before)
    if way == 'warm, window 1':
      # The model a warm-started pipeline begins from: cold, on every span before.
      common.run_pipeline(config_path, root, {
          **base, 'paths': {**base['paths'], 'span': before[-1]},
          'training': {'window_spans': len(every)}})
    for span in replayed:
      outcome = common.run_pipeline(config_path, root, {
          **base, 'paths': {**base['paths'], 'span': span}, **settings})
      store, run = outcome['store'], outcome['run']
      model = store.output(run, 'Trainer', 'model')
      blessing = store.output(run, 'Evaluator', 'blessing')
      trainer = run.execution('Trainer')
      entry = {'way': way, 'trained_through_span': span, 'tested_on_span': span + 1,
               'wall_seconds': round(outcome['wall_seconds'], 1),
               'trainer_seconds': round(trainer.seconds, 1),
               'blessed': bool(blessing and blessing.properties.get('blessed')),
               **_scored(os.path.join(model.uri, 'Format-Serving'), tested[span], threshold)}
      results.append(entry)
      print(f'{way:<16} span {span:>3} -> {span + 1:<3} AUC {entry["auc"]:.4f}  in-user '
            f'{quality._shown(entry["in_user_auc"])}  {entry["wall_seconds"]:6.1f} s'  # pylint: disable=protected-access
            f'{"" if entry["blessed"] else "  (not blessed)"}', flush=True)

  summary = []
  for way in WAYS:
    runs = [r for r in results if r['way'] == way]
    in_user = [r['in_user_auc'] for r in runs if r['in_user_auc'] is not None]
    summary.append({'way': way, 'mean_auc': float(np.mean([r['auc'] for r in runs])),
                    'mean_in_user_auc': float(np.mean(in_user)) if in_user else None,
                    'mean_wall_seconds': float(np.mean([r['wall_seconds'] for r in runs])),
                    'mean_trainer_seconds': float(np.mean([r['trainer_seconds']
                                                           for r in runs])),
                    'blessed': sum(r['blessed'] for r in runs), 'runs': len(runs)})
  print()
  print(common.text_table(
      ['way', 'mean AUC', 'mean in-user AUC', 'wall per run', 'Trainer per run', 'blessed'],
      [[s['way'], f'{s["mean_auc"]:.4f}', quality._shown(s['mean_in_user_auc']),  # pylint: disable=protected-access
        f'{s["mean_wall_seconds"]:.1f} s', f'{s["mean_trainer_seconds"]:.1f} s',
        f'{s["blessed"]}/{s["runs"]}'] for s in summary]))
  warm, _, full = summary
  print(f'\nwarm, window 1 vs cold, all spans: AUC {warm["mean_auc"] - full["mean_auc"]:+.4f}, '
        f'wall x{warm["mean_wall_seconds"] / full["mean_wall_seconds"]:.2f}')
  name = 'continuous' + ('' if args.smoke else f'_{dataset}')
  results_dir = os.path.join(args.results_dir)
  path = common.write_result(results_dir, name, args.smoke, sys.argv, {
      'dataset': dataset, 'spans_by': by, 'replayed_spans': replayed,
      'spans_read_before': len(before), 'warm_epochs': args.warm_epochs,
      'per_span': results, 'summary': summary})
  _plot(results, os.path.join(results_dir, f'{name}.png'),
        f'{dataset}: each model scored on the {by} after its last span')
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
