# thumbx container images. Targets:
#   worker (default, last stage)  the ECS service: `thumbx worker`, non-root, read-only-root friendly
#   lambda                        the same code as a Lambda container image (awslambdaric + lambda_shim)
# Build:  docker build -t thumbx:local .            docker build --target lambda -t thumbx-lambda:local .
# The Python base is pinned by tag (both FROM lines); add the digest (…-slim-bookworm@sha256:…) from your
# registry or mirror if you need bit-for-bit reproducible builds.

# ---- build: wheels for thumbx and every dependency, installed into a self-contained venv ----------------
FROM python:3.11.14-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/thumbx
# Dependencies first (their layer survives source and README edits): pyproject.toml and placeholders.
COPY pyproject.toml ./
RUN mkdir -p worker lambda_shim \
    && touch README.md worker/__init__.py lambda_shim/__init__.py \
    && /opt/thumbx/bin/pip wheel --wheel-dir /wheels . \
    && rm -rf /wheels/thumbx-*.whl build ./*.egg-info README.md worker lambda_shim
COPY README.md ./
COPY worker ./worker
COPY lambda_shim ./lambda_shim
RUN /opt/thumbx/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/thumbx/bin/pip install --no-index --find-links /wheels thumbx \
    && /opt/thumbx/bin/thumbx --version \
    && /opt/thumbx/bin/python -I -c "import worker.cli.main, pyvips; print('libvips', pyvips.version(0), pyvips.version(1))" \
    && /opt/thumbx/bin/thumbx render --build \
    && /opt/thumbx/bin/python -I -c "from importlib.resources import files; from worker.imaging import render; from worker.core.presets import parse_presets; r = render(files('worker').joinpath('sample_data/phone.heic').read_bytes(), parse_presets('t:64:jpeg')); print('HEIC decodes:', r[0].width, 'x', r[0].height)"

# ---- the venvs as shipped: pip and setuptools removed (nothing installs at run time) --------------------
FROM build AS venv-worker
RUN /opt/thumbx/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM build AS venv-lambda
RUN /opt/thumbx/bin/pip install --no-cache-dir "awslambdaric>=3,<5" \
    && /opt/thumbx/bin/python -m pip uninstall --yes --quiet pip setuptools

# ---- runtime base: no compilers, no pip cache, no source tree; a fixed non-root user ---------------------
FROM python:3.11.14-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/thumbx/bin:$PATH \
    TMPDIR=/tmp \
    HOME=/tmp
RUN groupadd --system --gid 10001 thumbx \
    && useradd --system --uid 10001 --gid thumbx --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin thumbx
WORKDIR /tmp

# ---- lambda: `docker build --target lambda`; the handler is lambda_shim.handler.handler --------------------
FROM runtime AS lambda
COPY --from=venv-lambda /opt/thumbx /opt/thumbx
USER 10001:10001
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["lambda_shim.handler.handler"]

# ---- worker (default): the long-running SQS consumer for ECS / docker compose ----------------------------
FROM runtime AS worker
COPY --from=venv-worker /opt/thumbx /opt/thumbx
USER 10001:10001
# Nothing is written outside TMPDIR: run with a read-only root filesystem and a tmpfs on /tmp
# (compose: read_only + tmpfs; ECS: readonlyRootFilesystem + a volume for /tmp).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["thumbx", "healthcheck"]
ENTRYPOINT ["thumbx", "worker"]
