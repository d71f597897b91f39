"""Runs the Trainer's run_fn in real processes, as Vertex AI starts its replicas, for the
multi-worker and resume tests: inputs from the sample run, bounded waits, no leftovers."""

import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional

from conftest import PROJECT_DIR
from contract.names import MODEL_INPUTS_KEY, TRAINING_KEY

TRAINER_PROCESS = os.path.join(PROJECT_DIR, 'tests', 'trainer_process.py')


def trainer_inputs(sample_run, out_dir, **training) -> Dict:
  """What the sample run's Trainer was given, with `training` options changed and its
  outputs under `out_dir`."""
  config, record = sample_run
  execution = record.executions_by_component()['Trainer'][0]  # a later run may be cached
  inputs = record.inputs_of(execution.id)
  examples = inputs['examples'][0].uri
  return {
      'custom_config': {MODEL_INPUTS_KEY: config.model_inputs.to_dict(),
                        TRAINING_KEY: config.training.model_copy(update=training).to_dict()},
      'transform_output': inputs['transform_graph'][0].uri,
      'train_files': [os.path.join(examples, 'Split-train', '*')],
      'eval_files': [os.path.join(examples, 'Split-eval', '*')],
      'model_run_dir': str(out_dir / 'model_run'),
      'serving_model_dir': str(out_dir / 'serving'),
  }


def run(processes_args: List[Dict], log_dir, deadline_seconds: float,
        envs: Optional[List[Dict[str, str]]] = None) -> List[int]:
  """Starts one trainer process per args (each with its extra environment), waits for
  all of them until the deadline, kills whatever is left; their exit codes (-9 for a
  SIGKILL). Each process's output is in log_dir/process<i>.log."""
  envs = envs or [{} for _ in processes_args]
  processes, logs = [], []
  try:
    for index, (args, env) in enumerate(zip(processes_args, envs)):
      log = open(os.path.join(log_dir, f'process{index}.log'), 'a')  # pylint: disable=consider-using-with
      logs.append(log)
      processes.append(subprocess.Popen([sys.executable, TRAINER_PROCESS, json.dumps(args)],
                                        env={**os.environ, **env}, stdout=log,
                                        stderr=subprocess.STDOUT))
    deadline = time.monotonic() + deadline_seconds
    for process in processes:
      process.wait(timeout=max(1, deadline - time.monotonic()))
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
    for log in logs:
      log.close()
  return [p.returncode for p in processes]


def log_of(log_dir, index: int = 0) -> str:
  with open(os.path.join(log_dir, f'process{index}.log')) as f:
    return f.read()
