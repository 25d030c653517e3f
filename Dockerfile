# syntax=docker/dockerfile:1
# The services' and workers' image (compose.yaml's x-app): gRPC services, the Celery worker, beat, Flower
# and the bootstrap one-shot all run from it. Built from the repository alone: `docker compose build`.
# Multi-stage: dependencies are installed in a virtualenv in one stage and copied into a slim runtime
# that runs as an unprivileged user. Generated gRPC code (gen/) is committed, so no protoc runs here.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch from PyTorch's index, at pyproject.toml's pin: the CPU build by default (the gRPC services never
# import it; the worker trains on the CPU); compose.gpu.yaml builds the worker with a CUDA index instead.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --extra-index-url "${TORCH_INDEX_URL}" -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 shoprank \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin shoprank \
 && mkdir -p /data /models /secrets \
 && chown 10001:10001 /data /models /secrets
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY gen/ gen/
COPY core/ core/
COPY services/ services/
COPY workers/ workers/
COPY rankers/ rankers/
COPY shoptext/ shoptext/
COPY ranking/ ranking/
COPY shopdata/ shopdata/
COPY feature_repo/ feature_repo/
COPY shoprank_client/ shoprank_client/
COPY triton_models/ triton_models/
COPY pyproject.toml ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    RECSYS_DATA_DIR=/data \
    RECSYS_MODEL_REPOSITORY=/models \
    RECSYS_SECRETS_DIR=/secrets
USER 10001:10001
EXPOSE 50051 50052 50053 9101 9102 9103 5555
CMD ["python", "-m", "workers.bootstrap"]
