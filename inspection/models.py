"""Every model the pipeline trained, as a history: the spans it saw, the model it
warm-started from, its AUC, whether it was blessed and pushed, and which one serves now
(`python -m inspection models`)."""

import dataclasses
from typing import Dict, List, Optional

from contract.names import WINDOW_SPANS_KEY
from inspection import artifact_contents
from inspection.run_store import ArtifactRecord, LineageNode, RunStore


@dataclasses.dataclass(frozen=True)
class ModelHistory:
  model_id: int
  run_id: str
  trained: str  # when its Trainer ended (UTC)
  spans: List[int]  # of the raw examples it learned from; [0] for an input without spans
  warm_started_from: Optional[int]  # the model whose tables it started from
  auc: Optional[float]  # the Evaluator's, over its evaluation split
  blessed: Optional[bool]  # None: never evaluated
  pushed: bool
  serving: bool  # the model most recently pushed

  def as_dict(self) -> Dict:
    return dataclasses.asdict(self)


def _spans(node: LineageNode) -> List[int]:
  """The spans of the raw Examples the model learned from: a SpanWindow's, else
  CsvExampleGen's, upstream of it (not those of the model it warm-started from)."""
  found = set()
  stack = [node]
  while stack:
    current = stack.pop()
    artifact = current.artifact
    producer = artifact.producer.component if artifact.producer is not None else ''
    if artifact.type == 'Examples' and producer == 'SpanWindow':
      found.update(int(s) for s in str(artifact.properties.get(WINDOW_SPANS_KEY, '')).split(',') if s)
      continue  # its inputs hold every span read before: not what this model saw
    if artifact.type == 'Examples' and producer == 'CsvExampleGen':
      found.add(int(artifact.properties.get('span', 0)))
    stack.extend(n for key, nodes in current.inputs.items() if key != 'base_model'
                 for n in nodes)
  return sorted(found)


def _first(outputs: Dict[str, List[ArtifactRecord]], key: str) -> Optional[ArtifactRecord]:
  found = outputs.get(key) or []
  return found[0] if found else None


def history(store: RunStore) -> List[ModelHistory]:
  """One entry per trained model, oldest first."""
  run_of = {e.id: run.id for run in store.runs() for e in run.executions}
  models = store.artifacts(type_name='Model')
  entries = []
  pushed_at = {}
  for model in models:
    lineage = store.lineage(model)
    base = lineage.inputs.get('base_model') or []
    auc, blessed = None, None
    # Not as the baseline of a later candidate's evaluation.
    evaluators = store.consumers(model, 'Evaluator', key='model')
    if evaluators:
      outputs = store.outputs(evaluators[-1])
      blessing, evaluation = _first(outputs, 'blessing'), _first(outputs, 'evaluation')
      blessed = bool(blessing.properties.get('blessed')) if blessing else None
      if evaluation is not None:
        slices = artifact_contents.evaluation(evaluation.uri)['slices']
        auc = slices[0]['metrics'].get('auc') if slices else None
    for pusher in store.consumers(model, 'Pusher', key='model'):
      pushed = _first(store.outputs(pusher), 'pushed_model')
      if pushed is not None and pushed.properties.get('pushed') == 1:
        pushed_at[model.id] = pushed.id
    producer = model.producer
    entries.append(dict(
        model_id=model.id, run_id=run_of.get(producer.id, '') if producer else '',
        trained=producer.end.strftime('%Y-%m-%d %H:%M:%S') if producer else '',
        spans=_spans(lineage), warm_started_from=base[0].artifact.id if base else None,
        auc=auc, blessed=blessed, pushed=model.id in pushed_at))
  serving = max(pushed_at, key=pushed_at.get) if pushed_at else None
  return [ModelHistory(**entry, serving=entry['model_id'] == serving) for entry in entries]
