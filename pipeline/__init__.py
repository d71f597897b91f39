"""The TFX pipeline definition and what runners share; importing it imports no TFX."""


def __getattr__(name: str):
  """`pipeline.DataVerdict`, imported on first use. Vertex AI wants an artifact type named
  `<namespace>.<Name>`, and TFX's container entrypoint imports the class by that very
  name, so the validation gate's type lives at the package's top."""
  if name == 'DataVerdict':
    from pipeline.components.validation_gate.component import DataVerdict  # pylint: disable=g-import-not-at-top
    return DataVerdict
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
