"""Quality: the project's model versus a peer library's matrix factorisation, same split.

    .venv/bin/python bench/quality.py                  # MovieLens 100K and latest-small
    .venv/bin/python bench/quality.py --config configs/movielens_100k.yaml

For each dataset the pipeline runs as its config says (or, with --no-run, an earlier
run is read), then on the pipeline's own train/eval split (CsvExampleGen's output,
read back from ML Metadata) scikit-surprise fits SVD (Funk matrix factorisation with
biases, its defaults) and BaselineOnly (user and item biases alone) on the train
ratings; their predicted ratings score the eval rows. Every model is judged by the
same AUC (scikit-learn) on the same 0/1 label, `rating >= 4`; the pushed model is
scored through its `serve_ids` signature, and TFMA's AUC is shown beside it.
Real MovieLens files come from ../shared/data and are converted on first use.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top

import numpy as np  # pylint: disable=g-import-not-at-top

from inspection import artifact_contents  # pylint: disable=g-import-not-at-top
from pipeline import config as config_lib  # pylint: disable=g-import-not-at-top

# config -> the raw MovieLens file under ../shared/data it is converted from.
DATASETS = {
    os.path.join(common.PROJECT_DIR, 'configs', 'movielens_100k.yaml'):
        os.path.join('ml-100k', 'u.data'),
    os.path.join(common.PROJECT_DIR, 'configs', 'movielens_latest_small.yaml'):
        os.path.join('ml-latest-small', 'ratings.csv'),
}


def _ensure_input(config: config_lib.RunConfig, raw_name: str) -> None:
  if _matches(config):
    return
  raw = os.path.join(common.SHARED_DATA_DIR, raw_name) if raw_name else ''
  if not raw or not os.path.exists(raw):
    raise SystemExit(f'{config.paths.input} matches nothing and there is no {raw_name} '
                     f'under {common.SHARED_DATA_DIR}: download it with data/movielens.py')
  from data import movielens  # pylint: disable=g-import-not-at-top
  movielens.convert(raw, config.paths.input.replace('*', 'ratings'))


def _matches(config: config_lib.RunConfig) -> bool:
  try:
    config_lib.check_inputs_exist(config)
    return True
  except config_lib.ConfigError:
    return False


def _rows(examples_uri: str, split: str):
  """(user ids, item ids, ratings) of one split of CsvExampleGen's output."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*.gz'))
  spec = {'userId': tf.io.FixedLenFeature([], tf.int64),
          'movieId': tf.io.FixedLenFeature([], tf.int64),
          'rating': tf.io.FixedLenFeature([], tf.float32)}
  users, items, ratings = [], [], []
  for batch in tf.data.TFRecordDataset(files, compression_type='GZIP').batch(65_536).map(
      lambda records: tf.io.parse_example(records, spec)):
    users.append(batch['userId'].numpy())
    items.append(batch['movieId'].numpy())
    ratings.append(batch['rating'].numpy())
  return np.concatenate(users), np.concatenate(items), np.concatenate(ratings)


def _surprise_scores(algorithm, train, evaluation) -> np.ndarray:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import surprise  # pylint: disable=g-import-not-at-top
  frame = pd.DataFrame({'user': train[0], 'item': train[1], 'rating': train[2]})
  data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(0.5, 5.0)))
  algorithm.fit(data.build_full_trainset())
  return np.array([algorithm.predict(u, i).est for u, i in zip(evaluation[0], evaluation[1])])


def _model_scores(model_dir: str, evaluation) -> np.ndarray:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  serve_ids = tf.saved_model.load(model_dir).signatures['serve_ids']
  return serve_ids(userId=tf.constant(evaluation[0]),
                   movieId=tf.constant(evaluation[1]))['probability'].numpy().ravel()


def evaluate(config: config_lib.RunConfig, output_root: str, run: bool) -> dict:
  """The AUC of every method on the eval split of one dataset's pipeline run."""
  import surprise  # pylint: disable=g-import-not-at-top
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  from inspection import run_store  # pylint: disable=g-import-not-at-top
  if run:
    outcome = common.run_pipeline(config.source, output_root, {})
    store, pipeline_run = outcome['store'], outcome['run']
  else:
    store = run_store.RunStore(run_store.sqlite_connection(
        os.path.join(output_root, 'metadata.sqlite')), config.pipeline_name)
    pipeline_run = store.run()
  examples = store.output(pipeline_run, 'CsvExampleGen', 'examples')
  model = store.output(pipeline_run, 'Trainer', 'model')
  evaluation_artifact = store.output(pipeline_run, 'Evaluator', 'evaluation')
  train, evaluation = _rows(examples.uri, 'train'), _rows(examples.uri, 'eval')
  label = config.dataset.label.spec
  if label.column != 'rating' or label.operator != '>=':
    raise SystemExit(f'{config.source}: the baselines predict ratings; the label must be '
                     f'rating >= threshold, not {label.expression}')
  labels = evaluation[2] >= label.threshold

  scores = {
      'project model (serve_ids)': _model_scores(os.path.join(model.uri, 'Format-Serving'),
                                                 evaluation),
      'surprise SVD': _surprise_scores(surprise.SVD(random_state=1), train, evaluation),
      'surprise BaselineOnly (biases)': _surprise_scores(surprise.BaselineOnly(verbose=False),
                                                        train, evaluation),
      'global mean (no signal)': np.zeros(len(labels)),
  }
  auc = {name: float(roc_auc_score(labels, s)) if np.ptp(s) > 0 else 0.5
         for name, s in scores.items()}
  tfma = artifact_contents.evaluation(evaluation_artifact.uri)['slices'][0]['metrics']
  return {'pipeline': config.pipeline_name, 'train_rows': int(len(train[0])),
          'eval_rows': int(len(labels)), 'positive_share': float(labels.mean()),
          'auc': auc, 'tfma_auc': tfma.get('auc'),
          'model_over_svd': auc['project model (serve_ids)'] / auc['surprise SVD']}


def main(argv=None) -> int:
  parser = common.parser(__doc__.split('\n\n')[0])
  parser.add_argument('--config', action='append',
                      help='a dataset config (repeatable; default: MovieLens 100K and '
                      'latest-small)')
  parser.add_argument('--output-root', help='with one --config: its run\'s output root '
                      '(default: bench/work/quality/<pipeline>)')
  parser.add_argument('--no-run', action='store_true',
                      help='read the latest existing run instead of running the pipeline')
  args = parser.parse_args(argv)
  configs = args.config or list(DATASETS)
  if args.output_root and len(configs) != 1:
    parser.error('--output-root needs exactly one --config')

  results = []
  for path in configs:
    config = config_lib.load_config(path)
    if not args.no_run:
      _ensure_input(config, DATASETS.get(os.path.abspath(path), ''))
    output_root = args.output_root or os.path.join(common.WORK_DIR, 'quality',
                                                   config.pipeline_name)
    results.append(evaluate(config, output_root, run=not args.no_run))

  methods = list(results[0]['auc'])
  print(common.text_table(
      ['dataset', 'eval rows', 'positive'] + methods + ['TFMA AUC', 'model / SVD'],
      [[r['pipeline'], f'{r["eval_rows"]:,}', f'{r["positive_share"]:.3f}']
       + [f'{r["auc"][m]:.4f}' for m in methods]
       + [f'{r["tfma_auc"]:.4f}', f'{r["model_over_svd"]:.3f}'] for r in results]))
  path = common.write_result(args.results_dir, 'quality', args.smoke,
                             [os.path.basename(sys.executable), *sys.argv], results)
  print(f'\nwrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
