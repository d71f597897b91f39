"""Names the pipeline, the component code and the exported model agree on."""

# The 0/1 label's name in the transformed data; raw columns keep their own names.
LABEL_KEY = 'label'
# The label column's value as a float (e.g. the rating), which a graded loss fits.
LABEL_VALUE_KEY = 'label_value'

# custom_config keys: Transform and the Trainer get ModelInputs.to_dict() under the
# first, the Trainer TrainingOptions.to_dict() under the second; every component that
# runs project code gets pipeline/fingerprint.py's hash under CODE_FINGERPRINT_KEY (so
# that edited code reruns it).
MODEL_INPUTS_KEY = 'model_inputs'
TRAINING_KEY = 'training'
# The Tuner's TuningOptions.to_dict().
TUNING_KEY = 'tuning'
# The Trainer's RetrievalOptions.to_dict().
RETRIEVAL_KEY = 'retrieval'
CODE_FINGERPRINT_KEY = 'code_fingerprint'

# Dotted paths TFX loads the component code by.
PREPROCESSING_FN = 'modules.transform.preprocessing.preprocessing_fn'
RUN_FN = 'modules.training.trainer.run_fn'
TUNER_FN = 'modules.tuning.tuner_fn'

# Signatures of the exported SavedModel, and the output they score under.
SERVING_SIGNATURE = 'serving_default'
TRANSFORM_SIGNATURE = 'transform_features'
IDS_SIGNATURE = 'serve_ids'
PREDICTION_KEY = 'probability'
# Retrieval: a user's or an item's vector, biases folded in (so that ranking items for a
# user is one inner product), and the top items of the model's catalogue for a user.
USER_EMBEDDING_SIGNATURE = 'user_embedding'
ITEM_EMBEDDING_SIGNATURE = 'item_embedding'
TOP_K_SIGNATURE = 'top_k'
EMBEDDING_KEY = 'embedding'
BIAS_KEY = 'bias'
ITEM_IDS_KEY = 'item_ids'
# With retrieval.index: scann, the approximate index's own SavedModel, in this folder of
# the model's (its top_k takes user_embedding's outputs).
SCANN_INDEX_DIR = 'scann_index'

# The Pusher's PushedModel property naming the serving version that already holds the
# model, when it did not push a copy of it (pipeline/components/pusher/executor.py).
ALREADY_PUSHED_KEY = 'already_pushed_as'
# The property of SpanWindow's Examples naming the spans it holds, e.g. '2,3'
# (pipeline/components/span_window.py).
WINDOW_SPANS_KEY = 'spans'
# The PushedModel property naming the serving version that served before this Pusher ran
# (the one a push replaced, or the one still serving after no push); absent when none did.
PREVIOUSLY_SERVING_KEY = 'previously_serving'
# The Evaluator's ModelEvaluation property naming the evaluation whose metrics it holds,
# when the candidate was its blessed baseline and was not evaluated again
# (pipeline/components/evaluator/executor.py).
REUSED_EVALUATION_KEY = 'reused_from'
