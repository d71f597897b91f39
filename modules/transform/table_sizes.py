"""Each embedding table's rows, as Transform recorded them in the transformed schema.

The config is not read twice: a vocabulary's size is only known once Transform has run.
"""

from typing import Dict

import tensorflow_transform as tft

from contract.model_inputs import ModelInputs

def table_sizes_from_schema(tft_output: tft.TFTransformOutput,
                            model_inputs: ModelInputs) -> Dict[str, int]:
  """{table: rows} as Transform recorded them (each feature's int_domain), so the config
  is not read twice: a vocabulary's size is only known once Transform has run."""
  schema = {f.name: f for f in tft_output.transformed_metadata.schema.feature}
  sizes: Dict[str, int] = {}
  for table, features in model_inputs.tables().items():
    for feature in features:
      domain = schema[feature.name].int_domain
      if domain.min != 0 or domain.max <= 0:
        raise ValueError(f'transformed feature {feature.name} has no row domain '
                         f'(int_domain {domain.min}..{domain.max}); was it made by '
                         'modules.transform.preprocessing?')
      if sizes.setdefault(table, domain.max + 1) != domain.max + 1:
        raise ValueError(f'features sharing table {table} were given different row '
                         f'counts by Transform ({sizes[table]} and {domain.max + 1})')
  return sizes
