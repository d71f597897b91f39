"""The TFX pipeline definition and what runners share; importing it imports no TFX."""


def __getattr__(name: str):
  """`pipeline.DataVerdict` and `pipeline.SpanHistory`, imported on first use. Vertex AI
  wants an artifact type named `<namespace>.<Name>`, and TFX's container entrypoint
  imports the class by that very name, so the custom types live at the package's top."""
  # pylint: disable=g-import-not-at-top
  if name == 'DataVerdict':
    from pipeline.components.validation_gate.component import DataVerdict
    return DataVerdict
  if name == 'SpanHistory':
    from pipeline.components.span_window import SpanHistory
    return SpanHistory
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
