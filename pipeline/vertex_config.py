"""The `vertex:` section of a run config: where and on what Vertex AI runs the pipeline.

Only vertex_runner.py reads it; pipeline/vertex.py turns it into TFX's Google Cloud
component settings.
"""

from typing import Annotated, Literal, Optional, Tuple

import pydantic

from contract.model_inputs import PositiveInt, StrictModel, Text, problem_at

# Vertex AI's accelerator types (google.cloud.aiplatform_v1.AcceleratorType; a test keeps
# these within the installed enum) for the Trainer's custom job.
TpuAccelerator = Literal['TPU_V2', 'TPU_V3', 'TPU_V4_POD', 'TPU_V5_LITEPOD']
GpuAccelerator = Literal['NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                         'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_A100', 'NVIDIA_A100_80GB',
                         'NVIDIA_L4', 'NVIDIA_H100_80GB', 'NVIDIA_H100_MEGA_80GB',
                         'NVIDIA_H200_141GB']
TPU_ACCELERATORS: Tuple[str, ...] = TpuAccelerator.__args__
GPU_ACCELERATORS: Tuple[str, ...] = GpuAccelerator.__args__
# Vertex machine types that come with their TPU chips (TPU VMs: v5e, v5p, v6e).
TPU_VM_MACHINE_PREFIXES = ('ct5lp-', 'ct5p-', 'ct6e-')


class VertexTrainerConfig(StrictModel):
  """The machines of the Trainer's Vertex AI custom job."""
  machine_type: Text = 'n1-standard-8'
  accelerator_type: Optional[Literal[TpuAccelerator, GpuAccelerator]] = None
  accelerator_count: PositiveInt = 1
  tpu_topology: Optional[Text] = None
  # 1 trains on one machine; N > 1 adds N - 1 identical workers (multi-worker strategy).
  replica_count: PositiveInt = 1
  # Defaults to the pipeline image; TPU jobs need one built with tensorflow-tpu.
  image: Optional[Text] = None

  @property
  def uses_tpu(self) -> bool:
    return (self.accelerator_type in TPU_ACCELERATORS
            or self.machine_type.startswith(TPU_VM_MACHINE_PREFIXES))

  @pydantic.model_validator(mode='after')
  def _machines_fit(self) -> 'VertexTrainerConfig':
    accelerator = self.accelerator_type
    if self.machine_type == 'cloud-tpu' and accelerator not in TPU_ACCELERATORS:
      raise problem_at('accelerator_type', 'machine_type cloud-tpu needs a TPU accelerator '
                       f'({", ".join(TPU_ACCELERATORS)}), got {accelerator!r}')
    if accelerator in TPU_ACCELERATORS and self.machine_type != 'cloud-tpu':
      raise problem_at('machine_type', f'{accelerator} runs on machine_type cloud-tpu, '
                       f'got {self.machine_type!r}')
    if self.uses_tpu and self.replica_count != 1:
      # One TPU host drives the whole slice; a bigger slice is a bigger topology.
      raise problem_at('replica_count', 'must be 1 on TPUs (choose a larger TPU '
                       f'instead), got {self.replica_count}')
    return self


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
