"""The `vertex:` section of a run config: where and on what Vertex AI runs the pipeline.

Only vertex_runner.py reads it; pipeline/vertex.py turns it into TFX's Google Cloud
component settings.
"""

import re
from typing import Annotated, Literal, NamedTuple, Optional, Tuple

import pydantic

from contract.base import PositiveInt, StrictModel, Text, problem_at

# Vertex AI's accelerator types (google.cloud.aiplatform_v1.AcceleratorType; a test keeps
# these within the installed enum) for the Trainer's custom job. TPUs are those Vertex AI
# trains TensorFlow on ("Training with TPU accelerators"): v2 and v3 on the legacy
# `cloud-tpu` machine, v5e on its TPU VM machines. (v6e trains no TensorFlow there.)
TpuAccelerator = Literal['TPU_V2', 'TPU_V3', 'TPU_V5_LITEPOD']
GpuAccelerator = Literal['NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                         'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_A100', 'NVIDIA_A100_80GB',
                         'NVIDIA_L4', 'NVIDIA_H100_80GB', 'NVIDIA_H100_MEGA_80GB',
                         'NVIDIA_H200_141GB']
TPU_ACCELERATORS: Tuple[str, ...] = TpuAccelerator.__args__
GPU_ACCELERATORS: Tuple[str, ...] = GpuAccelerator.__args__

LEGACY_TPU_MACHINE = 'cloud-tpu'
LEGACY_TPUS = ('TPU_V2', 'TPU_V3')
LEGACY_TPU_CORES = 8  # a v2-8 or v3-8: one host, 8 TensorCores
V5E = 'TPU_V5_LITEPOD'
# v5e TPU VM machines and their chips (one TensorCore each, so one replica each).
V5E_MACHINE_CHIPS = {'ct5lp-hightpu-1t': 1, 'ct5lp-hightpu-4t': 4, 'ct5lp-hightpu-8t': 8}
# The slice shapes v5e comes in; the first three fit on one host.
V5E_TOPOLOGIES = ('1x1', '2x2', '2x4', '4x4', '4x8', '8x8', '8x16', '16x16')
V5E_SINGLE_HOST = {1: '1x1', 4: '2x2', 8: '2x4'}
# Other TPU machine families (v5p, v6e, ...): ct5p-hightpu-4t, ct6e-standard-4t, tpu7x-...
_TPU_MACHINE = re.compile(r'^(ct|tpu)\d')
SINGLE_HOST_CHOICES = ', '.join(f'{V5E_SINGLE_HOST[chips]} on {machine}'
                                for machine, chips in V5E_MACHINE_CHIPS.items())


def _chips(topology: str) -> int:
  rows, columns = topology.split('x')
  return int(rows) * int(columns)


GIB = 1 << 30
# What TFRS 0.7.7's TPUEmbedding layer does with the tables on each TPU, by the chip's
# embedding hardware (tensorflow_recommenders/layers/embedding/tpu_embedding_layer.py):
# v2 and v3 have it, and the tables are sharded over every core; v5e has none, and
# TPUEmbeddingV0 keeps every table and its slots whole on each chip. HBM per core (v2, v3)
# or per chip (v5e, one core a chip).
TPU_EMBEDDING = {
    'TPU_V2': ('TPUEmbedding', 'sharded', 8 * GIB),
    'TPU_V3': ('TPUEmbedding', 'sharded', 16 * GIB),
    V5E: ('TPUEmbeddingV0', 'replicated', 16 * GIB),
}
# The share of HBM the tables and their slots may take: the rest holds the model's
# activations, the batches in flight and the runtime.
TABLE_SHARE_OF_HBM = 0.8


class TpuSlice(NamedTuple):
  """The TPU a trainer config asks for, as Vertex AI's machine spec names it."""
  accelerator_type: str
  accelerator_count: int
  topology: Optional[str]
  replicas: int  # TensorCores: the replicas TPUStrategy trains on, one host's

  @property
  def embedding_api(self) -> str:
    """The TPU embedding API TFRS picks on this chip."""
    return TPU_EMBEDDING[self.accelerator_type][0]

  @property
  def tables_sharded(self) -> bool:
    """Whether the tables are split over the cores (else whole on every chip)."""
    return TPU_EMBEDDING[self.accelerator_type][1] == 'sharded'

  @property
  def table_memory(self) -> int:
    """Bytes the tables and their optimizer slots may take: a share of every core's HBM
    when they are sharded, of one chip's when each chip holds them all."""
    hbm = TPU_EMBEDDING[self.accelerator_type][2]
    return int(TABLE_SHARE_OF_HBM * hbm * (self.replicas if self.tables_sharded else 1))

  @property
  def placement(self) -> str:
    """How the tables are placed, for messages and the README."""
    if self.tables_sharded:
      return f'sharded over its {self.replicas} cores ({self.embedding_api})'
    return f'replicated whole on each of its {self.replicas} chip(s) ({self.embedding_api})'

  @property
  def needs_pjrt(self) -> bool:
    """TensorFlow trains on v5e only through the PJRT runtime; v2/v3 default to the
    stream executor runtime that needs no setting."""
    return self.accelerator_type == V5E


class VertexTrainerConfig(StrictModel):
  """The machines of the Trainer's Vertex AI custom job.

  TPUs: `machine_type: ct5lp-hightpu-4t` (v5e; accelerator, chip count and the
  single-host `tpu_topology` follow from the machine), or the legacy
  `machine_type: cloud-tpu` with `accelerator_type: TPU_V2` or `TPU_V3` (8 cores).
  """
  machine_type: Text = 'n1-standard-8'
  accelerator_type: Optional[Literal[TpuAccelerator, GpuAccelerator]] = None
  # GPUs per machine (1 when absent); on TPUs it follows from the machine.
  accelerator_count: Optional[PositiveInt] = None
  tpu_topology: Optional[Text] = None
  # 1 trains on one machine; N > 1 adds N - 1 identical workers (multi-worker strategy).
  replica_count: PositiveInt = 1
  # Defaults to the pipeline image; TPU jobs need one built with tensorflow-tpu.
  image: Optional[Text] = None

  @property
  def tpu(self) -> Optional[TpuSlice]:
    """The TPU of this machine, or None for CPU and GPU machines."""
    if self.machine_type == LEGACY_TPU_MACHINE:
      return TpuSlice(self.accelerator_type, LEGACY_TPU_CORES, None, LEGACY_TPU_CORES)
    chips = V5E_MACHINE_CHIPS.get(self.machine_type)
    if chips is None:
      return None
    return TpuSlice(V5E, chips, self.tpu_topology or V5E_SINGLE_HOST[chips], chips)

  @property
  def uses_tpu(self) -> bool:
    return self.tpu is not None

  @pydantic.model_validator(mode='after')
  def _machines_fit(self) -> 'VertexTrainerConfig':
    machine, accelerator = self.machine_type, self.accelerator_type
    if machine == LEGACY_TPU_MACHINE:
      if accelerator not in LEGACY_TPUS:
        raise problem_at('accelerator_type', f'machine_type {machine} needs a TPU '
                         f'accelerator ({", ".join(LEGACY_TPUS)}), got {accelerator!r}')
      self._fixed('accelerator_count', LEGACY_TPU_CORES, f'{machine} has 8 TPU cores')
      if self.tpu_topology is not None:
        raise problem_at('tpu_topology', f'is for TPU VM machines (ct5lp-hightpu-*), '
                         f'not {machine}')
    elif machine in V5E_MACHINE_CHIPS:
      chips = V5E_MACHINE_CHIPS[machine]
      self._fixed('accelerator_type', V5E, f'{machine} is a TPU v5e machine')
      self._fixed('accelerator_count', chips, f'{machine} has {chips} TPU chips')
      self._check_v5e_topology(machine, chips)
    elif _TPU_MACHINE.match(machine):
      raise problem_at('machine_type', 'TensorFlow trains on Vertex AI TPUs v2/v3 '
                       f'({LEGACY_TPU_MACHINE}) and v5e ({", ".join(V5E_MACHINE_CHIPS)}), '
                       f'got {machine!r}')
    else:
      if accelerator in TPU_ACCELERATORS:
        where = (LEGACY_TPU_MACHINE if accelerator in LEGACY_TPUS
                 else 'a ct5lp-hightpu-* machine_type')
        raise problem_at('machine_type', f'{accelerator} runs on {where}, '
                         f'got {machine!r}')
      if self.tpu_topology is not None:
        raise problem_at('tpu_topology', f'is for TPU VM machines (ct5lp-hightpu-*), '
                         f'not {machine}')
    if self.uses_tpu and self.replica_count != 1:
      # One TPU host drives the whole slice; a bigger slice is a bigger machine.
      raise problem_at('replica_count', 'must be 1 on TPUs (choose a larger TPU '
                       f'instead), got {self.replica_count}')
    return self

  def _fixed(self, key: str, value, why: str) -> None:
    """A setting the machine decides: absent, or equal to what the machine has."""
    given = getattr(self, key)
    if given is not None and given != value:
      raise problem_at(key, f'must be {value} or left out ({why}), got {given!r}')

  def _check_v5e_topology(self, machine: str, chips: int) -> None:
    topology = self.tpu_topology
    if topology is None or topology == V5E_SINGLE_HOST[chips]:
      return
    if topology not in V5E_TOPOLOGIES:
      raise problem_at('tpu_topology', f'must be one of {", ".join(V5E_TOPOLOGIES)} on '
                       f'TPU v5e, got {topology!r}')
    slice_chips = _chips(topology)
    if slice_chips <= chips:
      raise problem_at('tpu_topology', f'must be {V5E_SINGLE_HOST[chips]} on {machine} '
                       f'(its {chips} chips), got {topology!r}')
    # A multi-host slice: TPUStrategy with `tpu: local` drives the chips of the host it
    # runs on, and reaching the other hosts takes TensorFlow servers on them, which a
    # Vertex AI custom container does not start.
    # (Multi-host v5e slices are made of 4-chip hosts.)
    raise problem_at('tpu_topology', f'{topology} is {slice_chips} chips on '
                     f'{slice_chips // 4} hosts; the Trainer drives one host\'s '
                     f'TPU, so choose a single-host slice ({SINGLE_HOST_CHOICES})')


class DataflowConfig(StrictModel):
  """Where the Beam components run on Google Cloud (Dataflow) instead of in their pod."""
  temp_location: Annotated[Text, pydantic.Field(pattern=r'^gs://')]
  region: Optional[Text] = None
  machine_type: Text = 'n1-standard-4'
  max_workers: PositiveInt = 4
  disk_size_gb: Optional[PositiveInt] = None


class EndpointConfig(StrictModel):
  """A Vertex AI Endpoint the Pusher deploys the blessed model to."""
  name: Text
  serving_image: Text
  machine_type: Text = 'n1-standard-2'
  min_replicas: PositiveInt = 1
  max_replicas: PositiveInt = 1

  @pydantic.model_validator(mode='after')
  def _replicas_ordered(self) -> 'EndpointConfig':
    if self.max_replicas < self.min_replicas:
      raise problem_at('max_replicas', f'must be at least min_replicas '
                       f'({self.min_replicas}), got {self.max_replicas}')
    return self


class VertexConfig(StrictModel):
  """Google Cloud settings; only vertex_runner.py reads them."""
  project: Text
  region: Text
  image: Optional[Text] = None
  service_account: Optional[Text] = None
  trainer: VertexTrainerConfig = VertexTrainerConfig()
  dataflow: Optional[DataflowConfig] = None
  endpoint: Optional[EndpointConfig] = None
