"""The contract between the pipeline and the code that runs inside its components.

`names`: the keys and signature names both sides agree on. `base`: the strict typed
model every option object builds on. `feature_kinds`: the table of feature kinds and a
feature's options. `model_inputs`: the features and the label Transform and the
Trainer are handed. `options`: how the Trainer trains, the Tuner searches and the
model retrieves. It imports nothing of this project, so every layer above can use it.
"""
