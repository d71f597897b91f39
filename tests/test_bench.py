"""Each benchmark runs end to end at smoke size and writes its results file.

These check the harness, not the figures: smoke sizes measure nothing worth reading.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import PROJECT_DIR


def _smoke(tmp_path, script, *args):
  results = tmp_path / 'results'
  completed = subprocess.run(
      [sys.executable, os.path.join(PROJECT_DIR, 'bench', f'{script}.py'), '--smoke',
       '--results-dir', str(results), *args],
      capture_output=True, text=True, timeout=900, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  with open(results / f'{script}.json') as f:
    record = json.load(f)
  assert record['smoke'] and record['machine']['cores'] >= 1
  return record['results'], completed.stdout


@pytest.mark.slow
def test_trainer_throughput_compares_every_path(tmp_path):
  # One steps-per-execution value besides 1 exercises the harness as well as three.
  results, printed = _smoke(tmp_path, 'trainer_throughput', '--steps-per-execution', '64')
  assert set(results['variants']) == {
      'model step alone (in-memory batch)', 'columnar path: input + model',
      'tf.Example path: input + model', 'seed csv path: input + model',
      'columnar path: input alone', 'tf.Example path: input alone',
      'seed csv path: input alone',
      'model step alone, 64 steps per execution',
      'columnar path: input + model, 64 steps per execution',
      'multi-hot: model step alone (in-memory batch)',
      'multi-hot: columnar path: input + model', 'multi-hot: columnar path: input alone',
      'multi-hot: model step alone, 64 steps per execution',
      'multi-hot: columnar path: input + model, 64 steps per execution'}
  assert all(v['examples_per_second'] > 0 for v in results['variants'].values())
  assert 'columnar train / seed csv train (target >= 1.5)' in printed
  assert ('columnar train, 64 steps per execution / model step alone (target >= 0.95)'
          in printed)
  assert 'multi-hot: columnar train / multi-hot model step alone (target >= 0.7)' in printed


@pytest.mark.slow
def test_embedding_scale_measures_each_size_in_its_own_process(tmp_path):
  results, _ = _smoke(tmp_path, 'embedding_scale', '--optimizers', 'adam')
  sizes = [m['user_vocab'] for m in results['measurements']]
  assert sizes == [1_000, 10_000]
  assert all(m['peak_rss_mib'] > 100 and m['step_ms_median'] > 0
             for m in results['measurements'])
  assert set(results['growth']) == {'adam'}


@pytest.mark.slow
def test_serving_times_the_signatures_and_both_searches(tmp_path, sample_run):
  config, _ = sample_run
  model_dir = os.path.join(config.paths.serving_dir, sorted(os.listdir(
      config.paths.serving_dir))[-1])
  results, _ = _smoke(tmp_path, 'serving', '--model', model_dir)
  measured = {(m['signature'].split(',')[0], m['batch_size']) for m in results['measurements']}
  assert measured == {(s, b) for s in ('serving_default (tf.Examples)', 'serve_ids (id tensors)')
                      for b in (1, 100, 10_000)} | {
                          (s, b) for s in ('top_k signature', 'exact search', 'scann search')
                          for b in (1, 100)}
  assert sum(m['signature'].startswith('scann search') for m in results['measurements']) == 4
  assert all(m['p99_ms'] >= m['p50_ms'] > 0 for m in results['measurements'])
  # The sample's 399 movies and (smoke) 10,000 synthetic items.
  assert set(results['scann_indexes']) == {'its catalogue, 399 items', '10,000 synthetic items'}
  assert all(0.5 <= i['recall_of_exact@10'] <= 1 and i['build_seconds'] > 0
             for i in results['scann_indexes'].values())


def _quality_of(tmp_path, run):
  """quality.py's judgement of an existing pipeline run: (its result, what it printed)."""
  config, _ = run
  (result,), printed = _smoke(tmp_path, 'quality', '--config', config.source,
                              '--output-root', config.paths.output_root, '--no-run')
  return result, printed


@pytest.mark.slow
def test_quality_scores_every_method_on_the_runs_test_rows(tmp_path, sample_run):
  result, _ = _quality_of(tmp_path, sample_run)
  assert result['test_rows'] > 1000 and result['train_rows'] > 4 * 1000
  # The same model judged by TFMA and by the benchmark's own AUC: one number.
  assert result['test_auc']['project model'] == pytest.approx(result['tfma_auc'], abs=1e-3)
  assert result['test_auc']['global mean (no signal)'] == 0.5
  assert 0.6 < result['test_auc']['surprise SVD (tuned on validation)'] < 0.9
  assert set(result['svd_tuned_params']) == {'n_factors', 'reg_all', 'lr_all'}
  assert result['best_peer'] in result['test_auc']
  recalls = {f'{who} recall@{k}' for who in ('project model', 'most popular',
                                            'implicit ALS (tuned on validation)')
             for k in (10, 100)}
  assert set(result['retrieval']) == set(result['validation_retrieval']) == recalls
  assert all(0 <= v <= 1 for v in result['retrieval'].values())
  # Each figure inside its interval over users.
  for key, (low, high) in result['retrieval_interval'].items():
    assert low <= result['retrieval'][key] <= high
  for name, (low, high) in result['in_user_test_auc_interval'].items():
    assert low <= result['in_user_test_auc'][name] <= high
  assert set(result['als_params']) == {'factors', 'regularization', 'alpha'}
  # Hashed 4:1, a few of the sample's users have under 5 training ratings.
  assert 0 < result['cold_users'] < result['test_users'] <= 1000
  assert 0.5 < result['in_user_test_auc']['project model'] < 1
  assert result['in_user_test_auc']['global mean (no signal)'] == 0.5
  # The sample config's ids only: no side columns, no logistic pair, no gain to give.
  assert 'logistic regression, ids' not in result['test_auc']
  assert result['side_feature_gain'] == {}


@pytest.mark.slow
def test_quality_weighs_the_side_columns_for_the_model_and_a_linear_peer(tmp_path, features_run):
  result, printed = _quality_of(tmp_path, features_run)
  with_side = 'logistic regression, ids + side columns'
  for name in ('logistic regression, ids', with_side):
    assert 0.5 < result['test_auc'][name] < 1 and 0.5 < result['in_user_test_auc'][name] < 1
  # The sample's side columns are drawn from its users' and movies' latent factors:
  # with them the linear model puts each user's items in a better order.
  assert (result['in_user_test_auc'][with_side]
          > result['in_user_test_auc']['logistic regression, ids'] + 0.01)
  for rows in ('test', 'cold users'):
    gain = result['side_feature_gain'][f'{with_side} - logistic regression, ids'][rows]
    assert gain['low'] < gain['gain'] < gain['high']
  assert 'What the side columns add to test AUC' in printed


@pytest.mark.slow
def test_e2e_times_every_component_of_a_fresh_run(tmp_path):
  results, _ = _smoke(tmp_path, 'e2e')
  run, = results['runs']
  assert run['mode'] == 'in_memory' and run['rows'] == 6000
  assert {'CsvExampleGen', 'Transform', 'Trainer', 'Evaluator', 'Pusher'} <= set(
      run['components'])
  assert run['wall_seconds'] > run['components_seconds'] > 0


def test_example_gen_peer(tmp_path):
  results, printed = _smoke(tmp_path, 'example_gen')
  assert results['split_counts']['tfx'] == results['split_counts']['project']
  assert results['project_over_tfx'] > 0 and 'project / tfx rows per second' in printed


def test_statistics_gen_peer(tmp_path):
  results, printed = _smoke(tmp_path, 'statistics_gen')
  assert results['differences'] == []
  assert results['project_over_tfx'] > 0 and 'statistics: the same' in printed
