# Brook, a Kafka-wire-compatible broker, as a drop-in for Apache Kafka's official image:
#
#   docker build -t brook .
#   docker run -p 9092:9092 -v brook-data:/var/lib/brook/data brook
#
# Configure it as apache/kafka: KAFKA_* variables (KAFKA_ADVERTISED_LISTENERS, KAFKA_NUM_PARTITIONS,
# ...), a server.properties mounted at /mnt/shared/config/server.properties, or arguments
# (--override key=value); see docker/entrypoint.py. Defaults: listen on 0.0.0.0:9092, advertise
# localhost:9092, data in the volume /var/lib/brook/data.
#
# Offline builds: wheels in docker/wheels/ (scripts/container-engine.sh wheels) are installed with
# --no-index. When that folder is empty the build stage downloads them with the base image's pip.
# Both stages use the same base, so it works on the official image (Python in /usr/local) and on a
# local Debian stand-in tagged with this name (Python in /usr/bin): the venv links to either.

FROM python:3.11-slim-bookworm AS build

# Build tools for the offline wheelhouse; scripts/container-engine.sh reads these two lines.
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=80.9.0

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first (this layer is cached until pyproject.toml or the wheels change).
COPY docker/wheels/ /wheels/
COPY pyproject.toml ./
COPY docker/requirements.py docker/
RUN set -eu; \
    python3 docker/requirements.py pyproject.toml > /tmp/requirements.txt; \
    if [ ! -e "/wheels/pip-${PIP_VERSION}-py3-none-any.whl" ]; then \
        echo "docker/wheels/ has no wheelhouse: downloading one with the base image's pip"; \
        python3 -m pip download --only-binary=:all: --dest /wheels \
            "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}" -r /tmp/requirements.txt; \
    fi; \
    python3 -m venv --without-pip /opt/brook; \
    /opt/brook/bin/python "/wheels/pip-${PIP_VERSION}-py3-none-any.whl/pip" install \
        --no-index --find-links=/wheels -r /tmp/requirements.txt

# Then Brook itself, from the repository (built with setuptools from the wheelhouse).
COPY README.md ./
COPY protocol/ protocol/
COPY storage/ storage/
COPY broker/ broker/
RUN /opt/brook/bin/python "/wheels/pip-${PIP_VERSION}-py3-none-any.whl/pip" install \
        --no-index --find-links=/wheels --no-deps /src \
    && /opt/brook/bin/python -c "import broker.app, broker.healthcheck, storage, protocol.api"

# zstandard ships two equivalent backends; the C one is used by default, so the 12 MB cffi one goes.
RUN rm /opt/brook/lib/python3.11/site-packages/zstandard/_cffi.*.so \
    && /opt/brook/bin/python -c "import zstandard as z; assert z.backend == 'cext'; \
assert z.decompress(z.compress(b'brook')) == b'brook'"


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="Brook" \
      org.opencontainers.image.description="A Kafka-wire-compatible message broker written in Python" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 1000 as apache/kafka's appuser; data dirs group-owned by root and group-writable so an
# arbitrary uid in group 0 (OpenShift) can run it too. /var/lib/kafka/data exists (owned by brook)
# so that compose files mounting a volume at Kafka's data path keep working.
RUN groupadd --gid 1000 brook \
    && useradd --uid 1000 --gid brook --home-dir /var/lib/brook --no-create-home \
        --shell /usr/sbin/nologin brook \
    && mkdir -p /var/lib/brook/data /var/lib/kafka/data /mnt/shared/config \
    && chown -R brook:root /var/lib/brook /var/lib/kafka \
    && chmod -R g+rwX /var/lib/brook /var/lib/kafka

COPY --from=build /opt/brook /opt/brook
COPY docker/entrypoint.py /opt/brook/entrypoint.py

ENV PATH=/opt/brook/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 1000:1000
WORKDIR /var/lib/brook
VOLUME ["/var/lib/brook/data"]
EXPOSE 9092

# A real ApiVersions request to the first listener (broker.healthcheck), not a port probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/brook/bin/python", "/opt/brook/entrypoint.py", "healthcheck"]

# Python is PID 1 and handles SIGTERM itself: graceful stop, clean-shutdown marker written.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/brook/bin/python", "/opt/brook/entrypoint.py"]
CMD []
