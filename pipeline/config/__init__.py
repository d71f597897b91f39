"""The run config: YAML in, typed and validated objects out (run_config.py).

What the runners and the pipeline graph use is here; the sections are defined in
sections.py, vertex.py and contract/ (sections.py says which goes where).
"""

from pipeline.config.errors import ConfigError
from pipeline.config.run_config import (RunConfig, add_override_argument, check_inputs_exist,
                                        json_schema, load_config, parse_config,
                                        with_output_root)

__all__ = ['ConfigError', 'RunConfig', 'add_override_argument', 'check_inputs_exist',
           'json_schema', 'load_config', 'parse_config', 'with_output_root']
