# tfxmed in a container: the image Cloud Build pushes and the TPU VM runs (cloudbuild.yaml).
#   docker build --build-arg EXTRAS=tpu -t tfxmed .      # tensorflow-tpu + libtpu (Cloud TPU VM)
#   docker build --build-arg EXTRAS=gpu -t tfxmed .      # tensorflow[and-cuda] (run with --gpus all)
#   docker build --build-arg EXTRAS=cpu -t tfxmed .      # tensorflow-cpu
#   docker run --rm tfxmed train --config configs/tiny.yaml --set runtime.run_dir=/tmp/run
FROM python:3.11-slim

# Which TensorFlow the image gets: one of setup.cfg's extras cpu | gpu | tpu (they exclude each other).
ARG EXTRAS=tpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# A user without privileges owns the code and the working folder; nothing runs as root.
RUN groupadd --system tfxmed && useradd --system --gid tfxmed --create-home --home-dir /home/tfxmed tfxmed
WORKDIR /app
COPY --chown=tfxmed:tfxmed setup.cfg pyproject.toml README.md ./
COPY --chown=tfxmed:tfxmed tfxmed ./tfxmed
COPY --chown=tfxmed:tfxmed tfrecords_tools ./tfrecords_tools
COPY --chown=tfxmed:tfxmed configs ./configs
# libtpu for tensorflow-tpu comes from Google's index (ignored by the cpu and gpu extras).
RUN case "${EXTRAS}" in cpu|gpu|tpu) ;; *) echo "EXTRAS must be cpu, gpu or tpu, got '${EXTRAS}'" >&2; exit 2;; esac \
    && pip install --find-links https://storage.googleapis.com/libtpu-tf-releases/index.html ".[${EXTRAS}]" \
    && chown tfxmed:tfxmed /app

USER tfxmed
ENTRYPOINT ["python", "-m", "tfxmed"]
CMD ["--help"]
