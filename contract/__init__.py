"""The contract between the pipeline and the code that runs inside its components.

`names` holds the keys and signature names both sides must agree on; `model_inputs`
the typed objects the pipeline hands Transform and the Trainer. It imports nothing of
this project, so every layer above can depend on it.
"""
