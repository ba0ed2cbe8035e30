# Pullable's container image: `pullable serve` (the webhook receiver) by default; run the same
# image with `pullable worker` for the job workers. Build from the repository root:
#   docker build -t pullable .
# Every Python package comes from requirements/*.txt, hash-checked (refresh: scripts/lock).
# The base image is pinned by digest (python:3.11-slim-bookworm, a multi-platform index); the
# scheduled Pullable scan of this repository keeps it pullable.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba

# --- build: the locked dependencies and the wheel, in /opt/pullable ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/ requirements/
RUN python -m venv /opt/pullable \
 && /opt/pullable/bin/pip install --require-hashes --no-deps -r requirements/app.txt \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY rules/ rules/
COPY bot/ bot/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --no-index -w /dist . \
 && /opt/pullable/bin/pip install --no-deps --no-index /dist/pullable-*.whl \
 && /opt/pullable/bin/pullable --version

# --- runtime: the venv only, as an unprivileged user ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pullable \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pullable --create-home pullable
COPY --from=build /opt/pullable /opt/pullable
ENV PATH=/opt/pullable/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    PULLABLE_DATA_DIR=/var/lib/pullable
WORKDIR /var/lib/pullable
USER 10001:10001
EXPOSE 3000
# The web process answers /healthz (the queue is reachable). A worker has no HTTP port: run it
# with --no-healthcheck (docker run) or `healthcheck: disable: true` (compose), as deploy/ does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
CMD ["pullable", "serve"]
