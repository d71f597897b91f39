"""Runs a compiled Vertex AI pipeline spec on this machine, as Vertex AI Pipelines would.

`vertex_runner.py --emulate DIR` hands the PipelineJob JSON that `--submit` would send to
`run.emulate`: each task's container command and args from the spec, with `{{$}}` filled
by an ExecutorInput, in a subprocess of this project's environment standing in for the
image and a folder laid out as the Dockerfile lays out the image (`image.py`); resolver
nodes answered from an ML Metadata store kept under DIR with the spec's own filters
(`store.py`); the Trainer's custom job taken at the Vertex AI client and its worker pools
run as local processes, an Endpoint deployment recorded, not made
(`container/emulated_services.py`). gs:// stands for DIR/gcs.

What it cannot check: IAM and quotas, the image build itself (its Python packages are
this environment's), the TPU runtime (TPU pools train on CPU), Dataflow (the DirectRunner
runs the Beam steps) and Endpoint deployment (skipped).
"""
