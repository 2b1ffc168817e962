# syntax=docker/dockerfile:1
# meshobs as an image: `meshobs` is the entrypoint, so arguments are a meshobs command line.
#   docker build -t meshobs:0.1.0 .                       (add --build-arg EXTRAS=aws for App Mesh)
#   docker run --rm meshobs:0.1.0 diagnose cart-service --from demo
# The drift CronJob (config/drift/) runs it as `drift --intended ...`. See docs/deploy.md.
# For a release, pin the base image by digest too: python:3.11.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: an sdist, then the wheel from it, as a release does ---------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY meshobs/ meshobs/
COPY collectors/ collectors/
COPY tui/ tui/
COPY docs/ docs/
RUN python -m build --outdir /dist .

# --- run: slim, pinned, non-root ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
COPY docker/requirements.lock /tmp/requirements.lock
COPY --from=build /dist/ /tmp/dist/
# Every dependency at the version in the lock file; the wheel is the one built above.
RUN set -eu; wheel=$(echo /tmp/dist/meshobs-*.whl); \
    pip install --no-cache-dir -c /tmp/requirements.lock "${wheel}${EXTRAS:+[$EXTRAS]}"; \
    rm -rf /tmp/dist /tmp/requirements.lock; \
    meshobs --version
# A numeric user, so `runAsNonRoot: true` can verify it (the CronJob runs as 65532 too).
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["meshobs"]
CMD ["--help"]
