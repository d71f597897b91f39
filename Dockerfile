# The pipeline image for Vertex AI: TFX's own image with this project installed, so that
# every component (and Dataflow workers, via --sdk_container_image) can import
# the component code (modules/, pipeline/components/).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/ranker/pipeline:1.0 .
#   docker build --build-arg ACCELERATOR=tpu -t REGION-docker.pkg.dev/PROJECT/ranker/pipeline-tpu:1.0 .
#
# The TFX version must match requirements.txt (tests/test_vertex_runner.py checks it).
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# cpu (also fine for GPU machines: the TFX image's TensorFlow is CUDA-enabled) or tpu.
ARG ACCELERATOR=cpu

WORKDIR /pipeline
ENV TF_USE_LEGACY_KERAS=1

# The exact versions CI tested, whatever the base image happens to carry.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -r requirements.txt

# TPU VMs need TensorFlow built for TPUs and the libtpu its wheel names (2.16.0rc0, from
# Google's index, not PyPI). tensorflow-tpu replaces tensorflow (same modules, same
# version). Vertex AI expects libtpu.so in /lib, and on v5e TensorFlow loads it from
# there as its PJRT device (pipeline/vertex.py sets the trainer's environment for it).
RUN if [ "$ACCELERATOR" = "tpu" ]; then \
      pip uninstall -y tensorflow && \
      pip install --no-cache-dir --no-deps tensorflow-tpu==2.16.2 libtpu==2.16.0rc0 \
        -f https://storage.googleapis.com/libtpu-tf-releases/index.html && \
      ln -s "$(python -c 'import importlib.util as u; \
          print(u.find_spec("libtpu").submodule_search_locations[0])')/libtpu.so" \
        /lib/libtpu.so && \
      test -f /lib/libtpu.so; \
    elif [ "$ACCELERATOR" != "cpu" ]; then \
      echo "ACCELERATOR must be cpu or tpu, got $ACCELERATOR" >&2; exit 1; \
    fi

COPY setup.py ./
COPY contract/ contract/
COPY modules/ modules/
COPY pipeline/ pipeline/
COPY configs/ configs/
COPY data/sample/ data/sample/
RUN pip install --no-cache-dir --no-deps -e .
