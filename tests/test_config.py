"""The run config: every shipped config loads, and every kind of mistake is named."""

import copy
import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import PROJECT_DIR, SAMPLE_CONFIG
from contract import options as options_lib
from contract.model_inputs import LabelSpec, ModelInputs
from pipeline import config as config_lib
from pipeline.config import vertex as vertex_config


def _sample_data():
  with open(SAMPLE_CONFIG) as f:
    return yaml.safe_load(f)


def _parse(data):
  return config_lib.parse_config(data, source='test.yaml', base_dir='/base')


def _error(data) -> config_lib.ConfigError:
  with pytest.raises(config_lib.ConfigError) as caught:
    _parse(data)
  return caught.value


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(PROJECT_DIR, 'configs',
                                                               '*.yaml'))))
def test_every_shipped_config_loads(path):
  config = config_lib.load_config(path)
  assert config.model_inputs.side('user') and config.model_inputs.side('item')


def test_sample_config_is_typed():
  config = config_lib.load_config(SAMPLE_CONFIG)
  assert config.pipeline_name == 'movielens-sample'
  assert config.dataset.columns['rating'] == 'float'
  assert config.dataset.label.spec == LabelSpec(column='rating', operator='>=',
                                                threshold=4.0)
  assert config.dataset.label.spec.expression == 'rating >= 4'
  user, item = config.model_inputs.features
  assert (user.name, user.belongs_to, user.hash, user.column_type) == (
      'userId', 'user', True, 'int')
  assert item.vocab_size == 2000 and item.embedding_dim == 8
  assert config.training.optimizer == 'adagrad' and config.training.steps is None
  assert config.evaluation.slice_by == ('movieId',)
  # Paths are relative to the config file, not to the working directory.
  assert config.paths.input == os.path.join(PROJECT_DIR, 'data', 'sample', '*.csv')
  assert config.paths.metadata_path == os.path.join(
      PROJECT_DIR, 'outputs', 'movielens-sample', 'metadata.sqlite')
  assert config.beam.pipeline_args(setup_file='/p/setup.py') == [
      '--direct_running_mode=in_memory', '--direct_num_workers=1', '--setup_file=/p/setup.py']


def test_large_scale_config_has_the_seed_sizes():
  config = config_lib.load_config(os.path.join(PROJECT_DIR, 'configs', 'large_scale.yaml'))
  sizes = {f.name: (f.vocab_size, f.embedding_dim) for f in config.model_inputs.features}
  assert sizes == {'userId': (25_000_000, 16), 'movieId': (5_000_000, 16)}


def test_model_inputs_round_trip_through_a_dict():
  inputs = config_lib.load_config(SAMPLE_CONFIG).model_inputs
  assert ModelInputs.from_dict(inputs.to_dict()) == inputs


def test_gcs_paths_are_left_alone():
  data = _sample_data()
  data['paths']['output_root'] = 'gs://bucket/ranker'
  del data['paths']['serving_dir']  # defaults to a folder of the output root
  assert _parse(data).paths.serving_dir == 'gs://bucket/ranker/serving'


def _mutated(edit):
  data = _sample_data()
  edit(data)
  return data


@pytest.mark.parametrize('edit, key, words', [
    (lambda d: d.update(extra=1), 'extra', 'unknown key'),
    (lambda d: d['training'].update(batchsize=5), 'training.batchsize', 'unknown key'),
    (lambda d: d['features']['userId'].update(vocabsize=5),
     'features.userId.vocabsize', 'unknown key'),
    (lambda d: d['training'].pop('learning_rate'), 'training.learning_rate', 'required'),
    (lambda d: d.pop('features'), 'features', 'required'),
    (lambda d: d['features']['userId'].pop('vocab_size'), 'features.userId.vocab_size',
     'required'),
    (lambda d: d['features'].update(zip={'vocab_size': 10, 'embedding_dim': 8,
                                         'belongs_to': 'user'}),
     'features.zip', 'not a dataset column'),
    (lambda d: d['features']['userId'].update(belongs_to='users'),
     'features.userId.belongs_to', 'one of user, item'),
    (lambda d: d['features']['userId'].update(vocab_size=0), 'features.userId.vocab_size',
     'must be positive'),
    (lambda d: d['features']['userId'].update(vocab_size=-3),
     'features.userId.vocab_size', 'must be positive, got int -3'),
    (lambda d: d['features']['userId'].update(vocab_size=1.5),
     'features.userId.vocab_size', 'must be an integer, got float 1.5'),
    (lambda d: d['features']['userId'].update(vocab_size=True),
     'features.userId.vocab_size', 'must be an integer, got bool True'),
    (lambda d: d['features']['movieId'].update(embedding_dim=0),
     'features.movieId.embedding_dim', 'must be positive'),
    (lambda d: (d['features']['userId'].update(embedding_dim=1),
                d['features']['movieId'].update(embedding_dim=1)),
     'features.userId.embedding_dim', 'last unit is the bias'),
    (lambda d: d['features']['movieId'].update(embedding_dim=4), 'features',
     'every feature needs the same embedding_dim (each tower is the sum of its features\' '
     'embeddings); got userId 8, movieId 4'),
    (lambda d: d['features']['movieId'].update(belongs_to='user'), 'features',
     'belongs_to: item'),
    (lambda d: d['features'].update(rating={'vocab_size': 10, 'embedding_dim': 8,
                                            'belongs_to': 'item'}),
     'features.rating', 'label column'),
    (lambda d: d['features']['userId'].update(hash='yes'), 'features.userId.hash',
     'true or false'),
    (lambda d: d['dataset']['columns'].update(userId='integer'), 'dataset.columns.userId',
     'one of int, float, string'),
    (lambda d: d['dataset']['columns'].update({'user id': 'int'}),
     'dataset.columns.user id', 'identifiers'),
    (lambda d: d['dataset']['label'].update(column='score'), 'dataset.label.column',
     'not a dataset column'),
    (lambda d: d['dataset']['label'].update(positive_when='at least 4'),
     'dataset.label.positive_when', 'operator'),
    (lambda d: d['dataset']['split'].update(eval=0), 'dataset.split.eval',
     'must be positive'),
    (lambda d: d['training'].update(steps=100), 'training.epochs', 'exactly one'),
    (lambda d: d['training'].pop('epochs'), 'training.epochs', 'exactly one'),
    (lambda d: d['training'].update(learning_rate=0), 'training.learning_rate',
     'positive'),
    (lambda d: d['training'].update(optimizer='rmsprop'), 'training.optimizer',
     'adagrad, adam, sgd'),
    (lambda d: d['training'].update(input_format='parquet'), 'training.input_format',
     'columnar, tf_example'),
    (lambda d: d['training'].update(batch_size='256'), 'training.batch_size',
     "must be an integer, got str '256'"),
    (lambda d: d['evaluation'].update(min_auc=1.5), 'evaluation.min_auc', 'at most 1'),
    (lambda d: d['evaluation'].update(slice_by=['genre']), 'evaluation.slice_by',
     'not a dataset column'),
    (lambda d: d.update(statistics={'sample_rate': 0}), 'statistics.sample_rate',
     'must be positive, got int 0'),
    (lambda d: d.update(statistics={'sample_rate': 1.5}), 'statistics.sample_rate',
     'at most 1'),
    (lambda d: d['dataset']['split'].update(validation=1), 'dataset.split.eval',
     'give eval (two splits) or validation and test (three), not both'),
    (lambda d: d['dataset'].update(split={'train': 8, 'validation': 1}), 'dataset.split.test',
     'validation and test come together'),
    (lambda d: d['dataset'].update(split_by_time={'column': 'timestamp', 'validation': 0.1,
                                                  'test': 0.1}),
     'dataset.split_by_time', 'give split (by hash) or split_by_time, not both'),
    (lambda d: d['dataset'].update(split_by_time={'column': 'when', 'validation': 0.1,
                                                  'test': 0.1}) or d['dataset'].pop('split'),
     'dataset.split_by_time.column', "'when' must be an int or float column"),
    (lambda d: d['dataset'].update(split_by_time={'column': 'timestamp', 'validation': 0.5,
                                                  'test': 0.5}) or d['dataset'].pop('split'),
     'dataset.split_by_time.test', 'validation + test must leave rows to train on'),
    (lambda d: d.update(tuning={'max_trials': 2}), 'tuning', 'lists no option to search'),
    (lambda d: d.update(tuning={'max_trials': 0, 'learning_rate': [0.1]}),
     'tuning.max_trials', 'must be positive'),
    (lambda d: d.update(tuning={'max_trials': 2, 'learning_rate': []}),
     'tuning.learning_rate', 'at least 1'),
    (lambda d: d.update(tuning={'max_trials': 2, 'optimizer': ['rmsprop']}),
     'tuning.optimizer.0', 'adagrad, adam, sgd'),
    # Retrieval: ScaNN's options only with its index, and its catalogue's input.
    (lambda d: d.update(retrieval={'index': 'annoy'}), 'retrieval.index',
     "must be one of brute_force, scann"),
    (lambda d: d.update(retrieval={'num_leaves': 100}), 'retrieval.num_leaves',
     'is an option of index: scann'),
    (lambda d: d.update(retrieval={'index': 'scann', 'num_leaves': 10,
                                   'leaves_to_search': 20}),
     'retrieval.leaves_to_search', '20 is more than num_leaves (10)'),
    (lambda d: d.update(retrieval={'index': 'scann'}) or d['training'].update(
        input_format='tf_example'), 'retrieval.index', 'scann needs training.input_format: '
     'columnar (the item catalogue is gathered by ColumnarExamplesGen)'),
    # Feature kinds: options of another kind, required options, column types, tables.
    (lambda d: d['features']['movieId'].update(kind='vocabulary'),
     'features.movieId.vocab_size', 'is not an option of kind vocabulary (its options: '
     'top_k, frequency_threshold, num_oov_buckets)'),
    (lambda d: d['features']['movieId'].update(kind='lookup'), 'features.movieId.kind',
     'must be one of hash, vocabulary, multi_hot, numeric'),
    (lambda d: d['features']['movieId'].pop('vocab_size'), 'features.movieId.vocab_size',
     'is required for kind hash'),
    (lambda d: d['features'].update(timestamp={'kind': 'numeric', 'embedding_dim': 8,
                                               'belongs_to': 'item'}),
     'features.timestamp.num_buckets', 'is required for kind numeric'),
    (lambda d: d['features'].update(timestamp={'kind': 'numeric', 'num_buckets': 1,
                                               'embedding_dim': 8, 'belongs_to': 'item'}),
     'features.timestamp.num_buckets', 'must be at least 2'),
    (lambda d: d['features'].update(movieId={'kind': 'multi_hot', 'embedding_dim': 8,
                                             'belongs_to': 'item'}),
     'features.movieId', 'is a int column; kind multi_hot takes string columns; a list of '
     'values is a delimited string column'),
    (lambda d: d['features']['movieId'].update(combiner='max'),
     'features.movieId.combiner', 'must be one of mean, sum'),
    (lambda d: d['features']['movieId'].update(delimiter=','),
     'features.movieId.delimiter', 'is not an option of kind hash'),
    (lambda d: d['features'].update(timestamp={'kind': 'vocabulary', 'top_k': 0,
                                               'embedding_dim': 8, 'belongs_to': 'user'}),
     'features.timestamp.top_k', 'must be positive'),
    (lambda d: d['features'].update(timestamp={'kind': 'vocabulary', 'num_oov_buckets': 0,
                                               'embedding_dim': 8, 'belongs_to': 'user'}),
     'features.timestamp.num_oov_buckets', 'must be positive'),
    (lambda d: d['features'].update(timestamp={'kind': 'hash', 'vocab_size': 10,
                                               'embedding_dim': 8, 'belongs_to': 'user',
                                               'table': 'movieId'}),
     'features.timestamp.vocab_size', "shares table 'movieId' with movieId, whose "
     'vocab_size is 2000; features sharing a table need the same kind and options'),
    (lambda d: d['features'].update(timestamp={'kind': 'numeric', 'num_buckets': 10,
                                               'embedding_dim': 8, 'belongs_to': 'user',
                                               'table': 'movieId'}),
     'features.timestamp.kind', "shares table 'movieId' with movieId, whose kind is 'hash'"),
    (lambda d: d['beam'].update(direct_running_mode='fast'), 'beam.direct_running_mode',
     'one of'),
    (lambda d: d.update(pipeline_name='My Pipeline'), 'pipeline_name', 'lower-case'),
    (lambda d: d.update(paths=['a']), 'paths', 'mapping'),
])
def test_bad_config_names_the_file_and_key(edit, key, words):
  error = _error(_mutated(edit))
  assert error.source == 'test.yaml'
  assert error.key == key, str(error)
  assert str(error).startswith(f'test.yaml: {key}: ')
  assert words in str(error)


def test_a_string_label_column_is_refused():
  def edit(d):
    d['dataset']['columns']['rating'] = 'string'
  assert 'string column' in str(_error(_mutated(edit)))


def test_a_float_id_column_is_refused():
  def edit(d):
    d['dataset']['columns']['userId'] = 'float'
  assert 'float column' in str(_error(_mutated(edit)))


def test_unhashed_ids_must_be_ints():
  def edit(d):
    d['dataset']['columns']['userId'] = 'string'
    d['features']['userId']['hash'] = False
  assert _error(_mutated(edit)).key == 'features.userId.hash'


def _write(tmp_path, text, name='run.yaml'):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_unsafe_yaml_tags_are_refused_without_running_anything(tmp_path):
  marker = tmp_path / 'ran'
  path = _write(tmp_path, f"pipeline_name: !!python/object/apply:os.system "
                          f"['touch {marker}']\n")
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(path)
  assert str(caught.value).startswith(f'{path}: <yaml>: is not valid YAML')
  assert not marker.exists()


def test_malformed_yaml_and_missing_file_are_named(tmp_path):
  path = _write(tmp_path, 'features: [unclosed\n')
  with pytest.raises(config_lib.ConfigError, match='is not valid YAML'):
    config_lib.load_config(path)
  with pytest.raises(config_lib.ConfigError, match='cannot be read'):
    config_lib.load_config(str(tmp_path / 'absent.yaml'))


def test_an_empty_file_is_not_a_config(tmp_path):
  with pytest.raises(config_lib.ConfigError, match='<top level>: must be a mapping'):
    config_lib.load_config(_write(tmp_path, ''))


def test_loading_from_a_file_names_that_file(tmp_path):
  data = _sample_data()
  data['features']['userId']['vocab_size'] = 0
  path = _write(tmp_path, yaml.safe_dump(data))
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(path)
  assert str(caught.value).startswith(f'{path}: features.userId.vocab_size:')


def test_an_input_glob_matching_nothing_is_an_error(tmp_path):
  data = _sample_data()
  data['paths']['input'] = str(tmp_path / '*.csv')
  with pytest.raises(config_lib.ConfigError, match='paths.input: matches no files'):
    config_lib.check_inputs_exist(_parse(copy.deepcopy(data)))


VERTEX_CONFIG = os.path.join(PROJECT_DIR, 'configs', 'vertex_movielens_1m.yaml')


def _with_vertex(**vertex):
  data = _sample_data()
  data['vertex'] = {'project': 'p', 'region': 'us-central1', **vertex}
  return data


def test_the_vertex_config_extends_the_1m_config():
  base = config_lib.load_config(os.path.join(PROJECT_DIR, 'configs', 'movielens_1m.yaml'))
  config = config_lib.load_config(VERTEX_CONFIG)
  assert config.features == base.features and config.training == base.training
  # The base's relative schema path still points where the base meant it to.
  assert config.paths.schema_file == base.paths.schema_file
  assert config.paths.input == 'gs://my-bucket/movielens-1m/*.csv'
  trainer = config.vertex.trainer
  assert trainer.machine_type == 'ct5lp-hightpu-4t'
  assert trainer.tpu == vertex_config.TpuSlice('TPU_V5_LITEPOD', 4, '2x2', replicas=4)
  assert trainer.uses_tpu and config.vertex.dataflow.max_workers == 8
  assert config.vertex.endpoint is None


def test_vertex_defaults_to_one_cpu_machine_and_no_dataflow():
  vertex = _parse(_with_vertex()).vertex
  assert vertex.trainer == vertex_config.VertexTrainerConfig(
      machine_type='n1-standard-8', accelerator_type=None, accelerator_count=None,
      tpu_topology=None, replica_count=1, image=None)
  assert not vertex.trainer.uses_tpu and vertex.dataflow is None
  assert _parse(_sample_data()).vertex is None


@pytest.mark.parametrize('trainer, tpu', [
    # A v5e machine decides its accelerator, chip count and single-host topology.
    ({'machine_type': 'ct5lp-hightpu-1t'}, ('TPU_V5_LITEPOD', 1, '1x1', 1)),
    ({'machine_type': 'ct5lp-hightpu-4t', 'tpu_topology': '2x2'},
     ('TPU_V5_LITEPOD', 4, '2x2', 4)),
    ({'machine_type': 'ct5lp-hightpu-8t', 'accelerator_type': 'TPU_V5_LITEPOD',
      'accelerator_count': 8}, ('TPU_V5_LITEPOD', 8, '2x4', 8)),
    ({'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V2'}, ('TPU_V2', 8, None, 8)),
    ({'machine_type': 'n1-standard-8', 'accelerator_type': 'NVIDIA_TESLA_T4'}, None),
])
def test_a_tpu_follows_from_its_machine(trainer, tpu):
  resolved = _parse(_with_vertex(trainer=trainer)).vertex.trainer
  assert resolved.tpu == (vertex_config.TpuSlice(*tpu) if tpu else None)
  assert resolved.uses_tpu == (tpu is not None)


def test_offered_accelerators_are_vertex_ai_accelerators():
  from google.cloud.aiplatform_v1.types import AcceleratorType  # pylint: disable=g-import-not-at-top
  names = {a.name for a in AcceleratorType}
  assert set(vertex_config.TPU_ACCELERATORS + vertex_config.GPU_ACCELERATORS) <= names


@pytest.mark.parametrize('vertex, key, words', [
    ({'region': None}, 'vertex.region', 'is required'),
    ({'project': ''}, 'vertex.project', 'must not be empty'),
    ({'trainer': {'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V9'}},
     'vertex.trainer.accelerator_type', "must be one of TPU_V2, TPU_V3, TPU_V5_LITEPOD"),
    ({'trainer': {'machine_type': 'cloud-tpu'}}, 'vertex.trainer.accelerator_type',
     'needs a TPU accelerator (TPU_V2, TPU_V3)'),
    ({'trainer': {'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V5_LITEPOD'}},
     'vertex.trainer.accelerator_type', 'needs a TPU accelerator (TPU_V2, TPU_V3)'),
    ({'trainer': {'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V3',
                  'accelerator_count': 32}}, 'vertex.trainer.accelerator_count',
     'must be 8 or left out (cloud-tpu has 8 TPU cores), got 32'),
    ({'trainer': {'machine_type': 'n1-standard-8', 'accelerator_type': 'TPU_V3'}},
     'vertex.trainer.machine_type', 'TPU_V3 runs on cloud-tpu'),
    ({'trainer': {'machine_type': 'n1-standard-8', 'accelerator_type': 'TPU_V5_LITEPOD'}},
     'vertex.trainer.machine_type', 'TPU_V5_LITEPOD runs on a ct5lp-hightpu-* machine_type'),
    ({'trainer': {'machine_type': 'n1-standard-8', 'tpu_topology': '2x2'}},
     'vertex.trainer.tpu_topology', 'is for TPU VM machines'),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-4t', 'accelerator_type': 'NVIDIA_L4'}},
     'vertex.trainer.accelerator_type', 'must be TPU_V5_LITEPOD or left out'),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-4t', 'accelerator_count': 8}},
     'vertex.trainer.accelerator_count', 'ct5lp-hightpu-4t has 4 TPU chips'),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-4t', 'tpu_topology': '3x3'}},
     'vertex.trainer.tpu_topology', "must be one of 1x1, 2x2, 2x4, 4x4"),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-8t', 'tpu_topology': '2x2'}},
     'vertex.trainer.tpu_topology', "must be 2x4 on ct5lp-hightpu-8t (its 8 chips)"),
    ({'trainer': {'machine_type': 'ct6e-standard-4t'}}, 'vertex.trainer.machine_type',
     'TensorFlow trains on Vertex AI TPUs v2/v3 (cloud-tpu) and v5e'),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-2t'}}, 'vertex.trainer.machine_type',
     "(ct5lp-hightpu-1t, ct5lp-hightpu-4t, ct5lp-hightpu-8t), got 'ct5lp-hightpu-2t'"),
    ({'trainer': {'machine_type': 'cloud-tpu', 'accelerator_type': 'TPU_V3',
                  'replica_count': 2}}, 'vertex.trainer.replica_count', 'must be 1 on TPUs'),
    ({'trainer': {'machine_type': 'ct5lp-hightpu-4t', 'replica_count': 4}},
     'vertex.trainer.replica_count', 'must be 1 on TPUs'),
    ({'trainer': {'accelerator_count': 0}}, 'vertex.trainer.accelerator_count',
     'must be positive'),
    ({'trainer': {'gpus': 2}}, 'vertex.trainer.gpus', 'unknown key'),
    ({'dataflow': {'max_workers': 4}}, 'vertex.dataflow.temp_location', 'is required'),
    ({'dataflow': {'temp_location': '/tmp/x'}}, 'vertex.dataflow.temp_location',
     'gs:// URI'),
    ({'endpoint': {'name': 'e'}}, 'vertex.endpoint.serving_image', 'is required'),
    ({'endpoint': {'name': 'e', 'serving_image': 'i', 'min_replicas': 3,
                   'max_replicas': 2}}, 'vertex.endpoint.max_replicas', 'at least'),
    ({'zone': 'us-central1-a'}, 'vertex.zone', 'unknown key'),
])
def test_bad_vertex_settings_name_their_key(vertex, key, words):
  error = _error(_with_vertex(**vertex))
  assert error.key == key, str(error)
  assert words in str(error)


def test_extends_overrides_key_by_key_and_resolves_each_files_paths(tmp_path):
  base_dir = tmp_path / 'base'
  base_dir.mkdir()
  data = _sample_data()
  data['paths'] = {'input': 'data/*.csv', 'output_root': 'out'}
  (base_dir / 'base.yaml').write_text(yaml.safe_dump(data))
  child = tmp_path / 'child.yaml'
  child.write_text('extends: base/base.yaml\n'
                   'training: {epochs: 3}\n'
                   'paths: {output_root: elsewhere}\n')
  config = config_lib.load_config(str(child))
  assert config.training.epochs == 3 and config.training.learning_rate == 0.5
  assert config.paths.input == str(base_dir / 'data' / '*.csv')
  assert config.paths.output_root == str(tmp_path / 'elsewhere')
  assert config.pipeline_name == 'movielens-sample'


def test_extends_errors_name_the_file(tmp_path):
  missing = tmp_path / 'a.yaml'
  missing.write_text('extends: nowhere.yaml\n')
  with pytest.raises(config_lib.ConfigError, match=f'{missing}: extends: no such file'):
    config_lib.load_config(str(missing))
  loop = tmp_path / 'loop.yaml'
  loop.write_text('extends: loop.yaml\n')
  with pytest.raises(config_lib.ConfigError, match='extends: forms a cycle'):
    config_lib.load_config(str(loop))
  bad = tmp_path / 'bad.yaml'
  bad.write_text('extends: [1]\n')
  with pytest.raises(config_lib.ConfigError, match='extends: must be the path'):
    config_lib.load_config(str(bad))


@pytest.mark.parametrize('edit, message', [
    # A misspelled required key: the misspelling is what to fix, not the missing key.
    (lambda d: d['training'].update(learning_rat=d['training'].pop('learning_rate')),
     'test.yaml: training.learning_rat: unknown key; did you mean learning_rate?'),
    (lambda d: d['features']['userId'].update(embeding_dim=8),
     'test.yaml: features.userId.embeding_dim: unknown key; did you mean embedding_dim?'),
    (lambda d: d['vertex'].update(trainer={'acelerator_type': 'TPU_V3'}) if 'vertex' in d
     else d.update(vertex={'project': 'p', 'region': 'r',
                           'trainer': {'acelerator_type': 'TPU_V3'}}),
     'test.yaml: vertex.trainer.acelerator_type: unknown key; did you mean '
     'accelerator_type?'),
    (lambda d: d.update(zzz=1), 'test.yaml: zzz: unknown key; expected one of beam, '
     'dataset, evaluation, features, paths, pipeline_name, retrieval, statistics, '
     'training, tuning, validation, vertex'),
])
def test_unknown_keys_suggest_the_closest_known_one(edit, message):
  assert str(_error(_mutated(edit))) == message


def test_a_null_value_means_the_key_is_absent():
  def edit(d):
    d['beam'] = None
    d['training']['seed'] = None
  config = _parse(_mutated(edit))
  assert config.beam.direct_running_mode == 'in_memory' and config.training.seed == 42
  assert _error(_mutated(lambda d: d['training'].update(batch_size=None))).key == (
      'training.batch_size')


def test_overrides_are_typed_by_the_models_like_the_file():
  config = config_lib.load_config(SAMPLE_CONFIG, [
      'training.epochs=7', 'training.learning_rate=0.25', 'features.userId.hash=false',
      'evaluation.slice_by=[userId, movieId]', 'vertex.project=p', 'vertex.region=r'])
  assert config.training.epochs == 7 and config.training.learning_rate == 0.25
  assert config.features['userId'].hash is False
  assert config.evaluation.slice_by == ('userId', 'movieId')
  assert config.vertex.project == 'p'
  assert config.source == SAMPLE_CONFIG


@pytest.mark.parametrize('override, message', [
    ('training.epochs=three', 'training.epochs: must be an integer, got str \'three\''),
    ('training.epoch=3', 'training.epoch: unknown key; did you mean epochs?'),
    ('training', '--set training: must look like key.path=value'),
    ('pipeline_name.x=1', '--set pipeline_name.x: pipeline_name is not a mapping'),
    ('training.epochs=[', '--set training.epochs: is not a YAML value'),
])
def test_bad_overrides_name_the_key(override, message):
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(SAMPLE_CONFIG, [override])
  assert str(caught.value).startswith(f'{SAMPLE_CONFIG}: {message}')


def test_the_shipped_json_schema_is_current_and_describes_the_configs():
  with open(os.path.join(PROJECT_DIR, 'configs', 'config.schema.json')) as f:
    shipped = json.load(f)
  assert shipped == config_lib.json_schema(), (
      'regenerate: python -m pipeline.config schema --output configs/config.schema.json')
  assert set(shipped['required']) == {'pipeline_name', 'dataset', 'features', 'training',
                                       'evaluation', 'paths'}
  assert 'extends' in shipped['properties'] and 'schema' in shipped['$defs'][
      'PathsConfig']['properties']
  assert shipped['$defs']['TrainingOptions']['properties']['optimizer']['enum'] == [
      'adagrad', 'adam', 'sgd']


def _config_command(*args):
  return subprocess.run([sys.executable, '-m', 'pipeline.config', *args], cwd=PROJECT_DIR,
                        capture_output=True, text=True, timeout=120, check=False)


def test_the_config_command_prints_the_resolved_config_or_one_error_line():
  result = _config_command('check', SAMPLE_CONFIG, '--set', 'training.epochs=9')
  assert result.returncode == 0, result.stderr
  resolved = yaml.safe_load(result.stdout)
  assert resolved['training']['epochs'] == 9
  assert resolved['paths']['serving_dir'].endswith('outputs/movielens-sample/serving')
  result = _config_command('check', SAMPLE_CONFIG, '--set', 'training.optimiser=adam')
  assert result.returncode == 2 and result.stdout == ''
  assert result.stderr == (f'config: {SAMPLE_CONFIG}: training.optimiser: unknown key; '
                           'did you mean optimizer?\n')


def test_tuned_values_replace_the_options_and_the_best_epoch_count_the_epochs():
  config = config_lib.load_config(SAMPLE_CONFIG)
  model_inputs, training = options_lib.with_hyperparameters(
      config.model_inputs, config.training,
      {'learning_rate': 0.1, 'embedding_dim': 4, 'epochs': 3})
  assert training.learning_rate == 0.1 and training.epochs == 3
  assert {f.embedding_dim for f in model_inputs.features} == {4}
  by_steps = config.training.model_copy(update={'epochs': None, 'steps': 100})
  _, training = options_lib.with_hyperparameters(config.model_inputs, by_steps,
                                                      {'epochs': 3})
  assert training.steps == 100 and training.epochs is None
  with pytest.raises(ValueError, match='not tunable: tpu'):
    options_lib.with_hyperparameters(config.model_inputs, config.training, {'tpu': 'x'})
  _, training = options_lib.with_hyperparameters(
      config.model_inputs, config.training, {'retrieval_loss': 0.3, 'label_value_loss': 0.0})
  assert training.losses == options_lib.LossWeights(label=1.0, label_value=0.0, retrieval=0.3)


@pytest.mark.parametrize('setting, message', [
    ('tuning={max_trials: 2, learning_rate: [1], objective: in_user_auc}',
     'tuning.objective: in_user_auc needs training.input_format: columnar'),
    ('training.losses={label: 0}', 'training.losses.label: every loss weight is 0'),
])
def test_objectives_and_losses_the_setup_cannot_serve_are_refused(setting, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.load_config(SAMPLE_CONFIG, ['training.input_format=tf_example', setting])


def test_the_retrieval_loss_needs_a_single_valued_item_key():
  """The first item feature tells the batch's items apart (a repeat is no negative)."""
  from pipeline.config import files, run_config  # pylint: disable=g-import-not-at-top
  path = os.path.join(PROJECT_DIR, 'configs', 'sample_features.yaml')
  data = files.read_document(path, ['training.losses.retrieval=0.5'])
  assert run_config.parse_config(data, path, os.path.dirname(path)).training.losses.retrieval
  features = data['features']
  data['features'] = {'genres': features['genres'],
                      **{n: f for n, f in features.items() if n != 'genres'}}
  with pytest.raises(config_lib.ConfigError, match='training.losses.retrieval: needs one '
                     r'value a row in the first item feature \(genres\)'):
    run_config.parse_config(data, path, os.path.dirname(path))


@pytest.mark.parametrize('text, message', [
    ('training:\n  epochs: 3\n  batch_size: 64\n  epochs: 4\n',
     'training.epochs: duplicate key (lines 2 and 4); give it once'),
    ('training: {epochs: 3}\ndataset: {}\ntraining: {epochs: 4}\n',
     'training: duplicate key (lines 1 and 3); give it once'),
    ('features:\n  - {a: 1, a: 2}\n', 'features[0].a: duplicate key (twice on line 2)'),
])
def test_a_key_given_twice_is_refused_with_both_lines(tmp_path, text, message):
  """YAML 1.2 says keys are unique; PyYAML would keep the last and drop the first."""
  path = _write(tmp_path, text)
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(path)
  assert str(caught.value).startswith(f'{path}: {message}')


def test_a_key_given_twice_in_an_extended_config_or_a_set_value_is_refused(tmp_path):
  base = _write(tmp_path, 'training:\n  epochs: 3\n  epochs: 4\n', name='base.yaml')
  path = _write(tmp_path, 'extends: base.yaml\n')
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(path)
  assert str(caught.value).startswith(f'{base}: training.epochs: duplicate key')
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.load_config(SAMPLE_CONFIG, ['training={epochs: 1, epochs: 2}'])
  assert str(caught.value).startswith(
      f'{SAMPLE_CONFIG}: --set training.epochs: duplicate key (twice on line 1)')


def test_the_runner_refuses_a_duplicate_key_in_one_line(tmp_path):
  with open(SAMPLE_CONFIG) as f:
    sample = f.read()
  first = next(i for i, line in enumerate(sample.splitlines(), 1)
               if line.startswith('pipeline_name:'))
  path = _write(tmp_path, sample + 'pipeline_name: other\n')
  result = subprocess.run([sys.executable, os.path.join(PROJECT_DIR, 'local_runner.py'),
                           '--config', path, '--output-root', str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f'local_runner.py: {path}: pipeline_name: duplicate key (lines {first} and '
      f'{len(sample.splitlines()) + 1}); give it once']
  assert not (tmp_path / 'out').exists()
