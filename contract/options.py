"""How the Trainer trains, the Tuner searches and the exported model retrieves.

Options, not data: each travels through a component's `custom_config` as a plain dict
(`to_dict`) and is validated again on the other side (`from_dict`).
"""

from typing import Annotated, Any, Dict, Literal, Mapping, Optional, Tuple, TypeVar

import pydantic

from contract.base import Integer, PositiveInt, StrictModel, problem_at
from contract.model_inputs import ModelInputs

# Optimizer slots kept per table value (lazy Adam: m and v; Adagrad: the accumulator).
# Each optimizer's step updates only the rows the batch touched, so its cost does not
# grow with the tables; adam is the lazy Adam of modules/model/lazy_adam.py, as on TPUs.
OPTIMIZER_SLOTS: Dict[str, int] = {'adagrad': 1, 'adam': 2, 'sgd': 0}
Optimizer = Literal[tuple(OPTIMIZER_SLOTS)]
# How the Trainer reads Transform's output: columnar blocks (ColumnarExamplesGen) or
# the tf.Examples themselves, parsed row by row.
InputFormat = Literal['columnar', 'tf_example']


_Weight = Annotated[float, pydantic.Field(strict=True, ge=0)]


class LossWeights(StrictModel):
  """What the Trainer fits, each loss by its weight (0: not fitted); their weighted sum is
  minimized. Every loss trains the same towers; `probability` is always the 0/1 head's."""
  # Binary cross-entropy of the 0/1 label: the `probability` that evaluation, blessing
  # and serving use.
  label: _Weight = 1.0
  # Squared error of the label column's value (e.g. the rating), predicted from the
  # same score by a learned line: a 5 and a 4 both read 1 to the label, not to this.
  label_value: _Weight = 0.0
  # In-batch softmax: each row's item (every rated item is one the user picked) against
  # the batch's other items, scored by the user's dot product with each plus the item's
  # own retrieval bias, corrected for how often each item is drawn (its training
  # frequency), so that what a user picks, not only how they rate what they picked,
  # shapes the towers. top_k then retrieves by this score (and still returns each item's
  # probability).
  retrieval: _Weight = 0.0

  @pydantic.model_validator(mode='after')
  def _some_loss(self) -> 'LossWeights':
    if not any(self.model_dump().values()):
      raise problem_at('label', 'every loss weight is 0: give at least one a weight')
    return self


class TrainingOptions(StrictModel):
  """How the Trainer trains: batches, length, optimizer, device."""
  batch_size: PositiveInt
  epochs: Optional[PositiveInt] = None
  steps: Optional[PositiveInt] = None
  learning_rate: Annotated[float, pydantic.Field(strict=True, gt=0)]
  optimizer: Optimizer
  seed: Integer = 42
  # Penalty on the squared norm of the looked-up embedding rows (user and item side).
  l2_regularization: Annotated[float, pydantic.Field(strict=True, ge=0)] = 0.0
  losses: LossWeights = LossWeights()
  # '' trains on CPU/GPU; 'local' uses the TPU attached to this VM; else a TPU name.
  tpu: str = ''
  # A restarted Trainer (a preempted Vertex replica) resumes from its last backup: one
  # at each epoch's end, and every this many steps within an epoch when set.
  checkpoint_every_steps: Optional[PositiveInt] = None
  # latest_blessed: start the tables from the latest blessed model when they fit
  # (hashing keeps every id's row from one run to the next); absent: random tables.
  warm_start: Optional[Literal['latest_blessed']] = None
  # With spans in paths.input: train on this run's span and the N - 1 before it, each
  # read once by the run that first saw it (pipeline/components/span_window.py); absent:
  # this run's span alone.
  window_spans: Optional[PositiveInt] = None
  input_format: InputFormat = 'columnar'
  # Steps in each call of the compiled training function: fewer host round trips (on a
  # TPU, the chip is not left idle between steps); the default is the best measured on
  # a CPU (bench/README.md, "Trainer throughput"). An epoch shorter than this runs in
  # one call.
  steps_per_execution: PositiveInt = 64

  @pydantic.model_validator(mode='after')
  def _one_length(self) -> 'TrainingOptions':
    if (self.epochs is None) == (self.steps is None):
      raise problem_at('epochs', 'give exactly one of epochs or steps')
    return self


class RetrievalOptions(StrictModel):
  """How the exported model finds a user's best catalogue items.

  `brute_force`: the SavedModel's top_k scores every item (exact). `scann`: also an
  approximate ScaNN index of the item vectors, saved beside it as a second SavedModel
  (modules/serving/retrieval.py ScannIndex): the items are split into `num_leaves` clusters, a
  query scores the items of its `leaves_to_search` nearest clusters with compressed
  vectors and rescores its `reorder` best exactly.
  """
  index: Literal['brute_force', 'scann'] = 'brute_force'
  # Absent: about the square root of the catalogue's size.
  num_leaves: Optional[PositiveInt] = None
  # Absent: a tenth of the leaves, and at least enough to hold 1,000 items on average.
  leaves_to_search: Optional[PositiveInt] = None
  reorder: PositiveInt = 100

  @pydantic.model_validator(mode='after')
  def _leaves_for_scann(self) -> 'RetrievalOptions':
    if self.index != 'scann':
      for option in ('num_leaves', 'leaves_to_search'):
        if getattr(self, option) is not None:
          raise problem_at(option, 'is an option of index: scann')
    elif (self.num_leaves and self.leaves_to_search
          and self.leaves_to_search > self.num_leaves):
      raise problem_at('leaves_to_search', f'{self.leaves_to_search} is more than '
                       f'num_leaves ({self.num_leaves})')
    return self


FLOAT_BYTES = 4


def known_table_values(model_inputs: ModelInputs) -> Dict[str, int]:
  """{table: rows x dim} of the tables whose rows the config fixes (a vocabulary
  without top_k is sized by the data, and MovieLens-sized at most in practice)."""
  return {f.table_name: f.max_rows * f.embedding_dim
          for f in model_inputs.features if f.max_rows is not None}


def table_bytes(model_inputs: ModelInputs, optimizer: str, retrieval_bias: bool = False
                ) -> int:
  """Memory of the embedding tables the config sizes and their optimizer slots; with
  `retrieval_bias` (the retrieval loss), also the one-unit table on the item key."""
  values = sum(known_table_values(model_inputs).values())
  item_key = model_inputs.side('item')[0]
  if retrieval_bias and item_key.max_rows is not None:
    values += item_key.max_rows
  return values * FLOAT_BYTES * (1 + OPTIMIZER_SLOTS[optimizer])


_PositiveNumber = Annotated[float, pydantic.Field(strict=True, gt=0)]
_NonNegativeNumber = Annotated[float, pydantic.Field(strict=True, ge=0)]
_T = TypeVar('_T')
# A list of values to choose among (at least one).
_Choices = Annotated[Tuple[_T, ...], pydantic.Field(min_length=1)]


# What a trial is scored by on the validation split (modules/training/user_metrics.py):
# the pooled AUC, the mean of each user's own AUC, or recall@`recall_at` of top_k.
TuningObjective = Literal['auc', 'in_user_auc', 'recall']


class TuningOptions(StrictModel):
  """What the Tuner searches: each listed option's values (absent: the training value
  stays), `max_trials` combinations of them chosen by the `oracle` (random, Bayesian
  optimization: a Gaussian process over the trials so far, or the grid in order), each trained up to
  `epochs` epochs and scored by its best epoch's `objective` on the validation split;
  the Trainer trains the best combination for its best epoch count."""
  max_trials: PositiveInt
  epochs: PositiveInt = 1
  seed: Integer = 42
  # grid: every combination once, in order (repeated searches try the same points).
  oracle: Literal['random', 'bayesian', 'grid'] = 'random'
  # in_user_auc and recall need training.input_format: columnar (whole splits are read).
  objective: TuningObjective = 'auc'
  recall_at: PositiveInt = 10
  learning_rate: Optional[_Choices[_PositiveNumber]] = None
  l2_regularization: Optional[_Choices[_NonNegativeNumber]] = None
  # Every feature's embedding_dim (so both towers keep equal widths).
  embedding_dim: Optional[_Choices[PositiveInt]] = None
  batch_size: Optional[_Choices[PositiveInt]] = None
  optimizer: Optional[_Choices[Optimizer]] = None
  # Weights of training.losses' label_value and retrieval losses.
  label_value_loss: Optional[_Choices[_NonNegativeNumber]] = None
  retrieval_loss: Optional[_Choices[_NonNegativeNumber]] = None

  @property
  def objective_key(self) -> str:
    """The Keras log entry a trial is scored by."""
    return f'val_recall@{self.recall_at}' if self.objective == 'recall' else (
        f'val_{self.objective}')

  def search_space(self) -> Dict[str, Tuple[Any, ...]]:
    """Option name -> the values to choose among, for the options being tuned."""
    return {name: values for name, values in self.model_dump().items()
            if name in TUNED_OPTIONS and values is not None}


# How the search runs; every other field of TuningOptions is an option it can search
# (TrainingOptions fields, and every feature's embedding_dim).
_SEARCH_SETTINGS = ('max_trials', 'epochs', 'seed', 'oracle', 'objective', 'recall_at')
TUNED_OPTIONS: Tuple[str, ...] = tuple(
    name for name in TuningOptions.model_fields if name not in _SEARCH_SETTINGS)


def with_hyperparameters(model_inputs: ModelInputs, training: TrainingOptions,
                         values: Mapping[str, Any]) -> Tuple[ModelInputs, TrainingOptions]:
  """The model inputs and training options with the tuned `values` in place (and the
  Tuner's `epochs`, its best trial's best epoch, unless training counts steps)."""
  update = dict(values)
  epochs = update.pop('epochs', None)
  unknown = set(update) - set(TUNED_OPTIONS)
  if unknown:
    raise ValueError(f'not tunable: {", ".join(sorted(unknown))}')
  losses = {loss: update.pop(f'{loss}_loss') for loss in ('label_value', 'retrieval')
            if f'{loss}_loss' in update}
  if losses:
    update['losses'] = training.losses.model_copy(update=losses)
  embedding_dim = update.pop('embedding_dim', None)
  if embedding_dim is not None:
    model_inputs = model_inputs.model_copy(update={'features': tuple(
        f.model_copy(update={'embedding_dim': embedding_dim})
        for f in model_inputs.features)})
  if epochs is not None and training.steps is None:
    update['epochs'] = epochs
  return model_inputs, training.model_copy(update=update)
