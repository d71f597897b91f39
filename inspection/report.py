"""One HTML page per pipeline run: data, anomalies, training curves, evaluation, the model.

Self-contained (inline CSS and SVG charts, no downloads) so it can be mailed or archived
with the run. The Facets view of the statistics is the one part that loads scripts from
the web, and it sits in a collapsed section.
"""

import html
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from contract.names import ALREADY_PUSHED_KEY
from inspection import artifact_contents
from inspection import as_data
from inspection import models
from inspection import text
from inspection.run_store import RunRecord, RunStore, StoreError
from pipeline import paths
from pipeline.components.validation_gate import anomalies as anomalies_lib

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
pre.stopped { color: #a00; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
.ok { color: #176f2c; font-weight: bold; } .bad { color: #b00020; font-weight: bold; }
code, pre { background: #f6f6f6; } pre { padding: .8em; overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
"""
_COLOURS = ('#1f77b4', '#d62728', '#2ca02c', '#9467bd')


def default_path(store: RunStore, run: RunRecord) -> str:
  """Where the report goes without --output.

  Args:
    store: a SQLite store (a MySQL one has no folder: StoreError).
    run: the run reported on.

  Returns:
    report-<run id>.html beside the store's file.
  """
  if paths.is_uri(store.where):
    raise StoreError('a MySQL store has no folder to write the report beside: pass --output')
  safe_id = re.sub(r'[^0-9A-Za-z_.-]', '-', run.id)
  return os.path.join(os.path.dirname(os.path.abspath(store.where)), f'report-{safe_id}.html')


def _e(value: Any) -> str:
  return html.escape(str(value))


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.4f}'
  if isinstance(value, int) and not isinstance(value, bool):
    return f'{value:,}'
  return '-' if value is None else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  head = ''.join(f'<th>{_e(h)}</th>' for h in headers)
  body = ''.join(
      '<tr>' + ''.join(
          f'<td class="n">{_e(_format(v))}</td>' if isinstance(v, (int, float))
          and not isinstance(v, bool) else f'<td>{_e(_format(v))}</td>' for v in row)
      + '</tr>' for row in rows)
  return f'<table><tr>{head}</tr>{body}</table>'


def line_chart(title: str, series: Dict[str, Sequence[float]], width: int = 460,
               height: int = 240, x_label: str = 'epoch') -> str:
  """An SVG line chart of values by step (epochs by default), one line per series."""
  values = [v for points in series.values() for v in points]
  if not values:
    return ''
  low, high = min(values), max(values)
  if high == low:
    low, high = low - 0.5, high + 0.5
  epochs = max(len(points) for points in series.values())
  left, right, top, bottom = 48, 12, 24, 34
  plot_w, plot_h = width - left - right, height - top - bottom

  def x(i: int) -> float:
    return left + (plot_w * i / (epochs - 1) if epochs > 1 else plot_w / 2)

  def y(v: float) -> float:
    return top + plot_h * (1 - (v - low) / (high - low))

  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{_e(title)}">',
           f'<text x="{left}" y="16" font-weight="bold">{_e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
           'stroke="#bbb"/>']
  for fraction in (0, 0.5, 1):
    value = low + (high - low) * fraction
    parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" font-size="11" '
                 f'text-anchor="end">{value:.3g}</text>')
  parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" '
               f'text-anchor="middle">{_e(x_label)} (1-{epochs})</text>')
  for index, (name, points) in enumerate(series.items()):
    colour = _COLOURS[index % len(_COLOURS)]
    path = ' '.join(f'{x(i):.1f},{y(v):.1f}' for i, v in enumerate(points))
    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                 f'points="{path}"/>')
    parts.append(f'<text x="{left + 8 + 110 * index}" y="{top + 14}" font-size="11" '
                 f'fill="{colour}">{_e(name)}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _components_section(store: RunStore, run: RunRecord) -> str:
  described = as_data.describe_run(run)
  stopped = as_data.stop_reason(store, run)
  return ('<h2>Components</h2>'
          + (f'<pre class="stopped">{_e(chr(10).join(stopped))}</pre>' if stopped else '')
          + _table(
      ('component', 'execution', 'state', 'started', 'seconds'),
      [(c['component'], c['execution_id'], c['state'], c['started'], f'{c["seconds"]:.1f}')
       for c in described['components']]))


def _statistics_section(store: RunStore, run: RunRecord) -> str:
  statistics = store.output(run, 'StatisticsGen', 'statistics')
  if statistics is None:
    return '<h2>Data</h2><p>StatisticsGen did not run.</p>'
  protos = artifact_contents.statistics_protos(statistics.uri)
  by_split = artifact_contents.summarize_statistics(protos)
  sample_rate = artifact_contents.statistics_sample_rate(statistics.producer.properties
                                                         if statistics.producer else {})
  parts = ['<h2>Data</h2>',
           '<p>' + ', '.join(f'{_e(split)}: {s["num_examples"]:,} examples'
                             for split, s in by_split.items())
           + (f' (statistics.sample_rate: a {sample_rate:.0%} sample)' if sample_rate else '')
           + '</p>']
  for split, stats in by_split.items():
    rows = [(name, f['type'], f['present'], f['missing'], f.get('mean'), f.get('std_dev'),
             f.get('min'), f.get('max'), f.get('unique'))
            for name, f in stats['features'].items()]
    parts.append(f'<h3>{_e(split)}</h3>' + _table(
        ('feature', 'type', 'present', 'missing', 'mean', 'std dev', 'min', 'max', 'unique'),
        rows))
  parts.append(_facets(protos))
  anomalies = store.output(run, 'ExampleValidator', 'anomalies')
  if anomalies is not None:
    found = [(split, feature, problem)
             for split, by_feature in anomalies_lib.read(anomalies.uri).items()
             for feature, problem in by_feature.items()]
    parts.append('<h3>Anomalies against the schema</h3>' + (
        _table(('split', 'feature', 'anomaly'), found) if found
        else '<p class="ok">None: every split matches the schema.</p>'))
  return ''.join(parts)


def _facets(protos) -> str:
  """TFDV's interactive view (Facets Overview); it loads its scripts from the web."""
  from tensorflow_data_validation.utils import display_util  # pylint: disable=g-import-not-at-top
  names = list(protos)
  page = display_util.get_statistics_html(
      protos[names[0]], protos[names[1]] if len(names) > 1 else None,
      lhs_name=names[0], rhs_name=names[1] if len(names) > 1 else 'rhs_statistics')
  return ('<details><summary>Interactive statistics (TFDV Facets; needs internet access '
          f'to load)</summary><iframe style="width:100%;height:600px;border:0" '
          f'srcdoc="{html.escape(page, quote=True)}"></iframe></details>')


def _training_section(store: RunStore, run: RunRecord) -> str:
  model_run = store.output(run, 'Trainer', 'model_run')
  record = artifact_contents.training_record(model_run.uri) if model_run else None
  if record is None:
    return '<h2>Training</h2><p>No training record (the Trainer did not run or wrote none).</p>'
  history: Dict[str, List[float]] = record['history']
  charts = []
  for metric in ('loss', 'auc', 'pr_auc', 'binary_accuracy'):
    series = {name: history[name] for name in (metric, f'val_{metric}') if name in history}
    if series:
      charts.append(line_chart(metric, series))
  training = record.get('config', {}).get('training', {})
  return ('<h2>Training</h2>'
          f'<p>{len(history.get("loss", []))} epochs on {record.get("replicas", 1)} '
          f'replica(s); table sizes {_e(record.get("table_sizes"))}; options '
          f'<code>{_e(training)}</code></p>'
          + _tuning_table(store, run)
          + f'<div class="charts">{"".join(charts)}</div>'
          '<h3>Final metrics on the validation split (Keras)</h3>'
          + _table(('metric', 'value'), sorted(record.get('eval', {}).items())))


def _tuning_table(store: RunStore, run: RunRecord) -> str:
  """The Tuner's trials, best first, when the run tuned."""
  results = store.output(run, 'Tuner', 'tuner_results')
  trials = artifact_contents.tuner_trials(results.uri) if results else []
  if not trials:
    return ''
  options = list(trials[0]['values'])
  execution = run.execution('Tuner')
  objective = artifact_contents.tuner_objective(execution.properties if execution else {})
  return (f'<h3>Tuner: {len(trials)} trial(s), best first (the Trainer used the first)'
          '</h3>' + _table(['trial', objective] + options,
                           [[t['trial_id'], t['score']] + [t['values'].get(o) for o in options]
                            for t in trials]))


def _evaluation_section(store: RunStore, run: RunRecord) -> str:
  described = as_data.describe_evaluation(store, run, max_slices=20)
  evaluation = described['evaluation']
  if evaluation is None:
    return '<h2>Evaluation</h2><p>The Evaluator did not run.</p>'
  blessing = described['blessing']
  verdict = ('<span class="ok">BLESSED</span>' if blessing['blessed']
             else '<span class="bad">NOT BLESSED</span>')
  overall = evaluation['overall']
  names = [n for n in overall if not n.endswith('_diff')]
  columns = [n for n in ('example_count', 'auc', 'average_precision', 'mean_label',
                         'mean_prediction', 'calibration') if n in names]
  slices = ''
  if evaluation['slices']:
    slices = (f'<h3>Slices ({len(evaluation["slices"])} largest of '
              f'{evaluation["slice_count"]})</h3>' + _table(
                  ['slice'] + columns,
                  [[s['slice']] + [s['metrics'].get(c) for c in columns]
                   for s in evaluation['slices']]))
  return ('<h2>Evaluation (TFMA)</h2>'
          f'<p>Model #{_e(blessing["candidate_model_id"])}: {verdict}: '
          f'{_e(blessing["reason"])}.<br>Thresholds: {_e("; ".join(blessing["thresholds"]))}'
          + (f'<br>Baseline: model #{_e(blessing["baseline_model_id"])}'
             if blessing['baseline_model_id'] else '') + '</p>'
          '<h3>Overall</h3>'
          + _table(('metric', 'value', 'change vs baseline'),
                   [(n, overall[n], overall.get(f'{n}_diff')) for n in names])
          + slices)


def _pushed_model_dir(store: RunStore, run: RunRecord) -> Tuple[Optional[str], str]:
  """Where the run's model is served, and a note when this run did not copy it there."""
  pushed = store.output(run, 'Pusher', 'pushed_model')
  if pushed is None:
    return None, ''
  already = pushed.properties.get(ALREADY_PUSHED_KEY)
  if already:
    return already, ' (pushed by an earlier run: this run\'s model is the same)'
  if pushed.properties.get('pushed') != 1:
    return None, ''
  return pushed.properties.get('pushed_destination'), ''


def _model_section(store: RunStore, run: RunRecord) -> str:
  destination, note = _pushed_model_dir(store, run)
  if destination is None:
    return '<h2>Pushed model</h2><p>Nothing was pushed in this run.</p>'
  rows = []
  for name, signature in artifact_contents.signatures(destination).items():
    rows.append((name, ', '.join(f'{k}: {v}' for k, v in signature['inputs'].items()),
                 ', '.join(f'{k}: {v}' for k, v in signature['outputs'].items())))
  return ('<h2>Pushed model</h2>'
          f'<p><code>{_e(destination)}</code>{_e(note)}</p>'
          + _table(('signature', 'inputs', 'outputs'), rows))


def _lineage_section(store: RunStore, run: RunRecord) -> str:
  pushed = store.output(run, 'Pusher', 'pushed_model')
  if pushed is None:
    return ''
  return ('<h2>Lineage of the pushed model</h2>'
          f'<pre>{_e(text.lineage_text(store.lineage(pushed)))}</pre>')


def _models_section(store: RunStore) -> str:
  """Every model the pipeline trained, its AUC over time and which one serves."""
  history = models.history(store)
  if not history:
    return ''
  aucs = [m.auc for m in history if m.auc is not None]
  return ('<h2>Models, oldest first</h2>'
          + (line_chart('AUC of each model (Evaluator)', {'AUC': aucs},
                        x_label='model') if len(aucs) > 1 else '')
          + f'<pre>{_e(text.models_text(history))}</pre>')


def render(store: RunStore, run: RunRecord) -> str:
  sections = [_components_section(store, run), _statistics_section(store, run),
              _training_section(store, run), _evaluation_section(store, run),
              _model_section(store, run), _lineage_section(store, run),
              _models_section(store)]
  title = f'{store.pipeline}: run {run.id}'
  return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
          f'<title>{_e(title)}</title><style>{_STYLE}</style></head><body>'
          f'<h1>{_e(title)}</h1>'
          f'<p>Started {_e(as_data.describe_run(run)["started"])}, took '
          f'{run.seconds:.0f} s. Store: <code>{_e(store.where)}</code></p>'
          + ''.join(sections) + '</body></html>\n')


def write(store: RunStore, run: RunRecord, path: str) -> None:
  """Writes the run's HTML report.

  Args:
    store: the store the run is in.
    run: the run.
    path: the HTML file, replaced whole once it is complete.
  """
  page = render(store, run)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = f'{path}.tmp'
  with open(temporary, 'w', encoding='utf-8') as f:
    f.write(page)
  os.replace(temporary, path)
