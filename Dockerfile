# The bridge as a container: slim Python, installed as a wheel, run as an unprivileged user.
# Build: docker build -t xpander-bridge:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY generated ./generated
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRIDGE_LISTEN=0.0.0.0:50051 \
    BRIDGE_LOG_FORMAT=json
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bridge
USER 10001:10001
# 50051: gRPC; 9090: Prometheus metrics when BRIDGE_METRICS_LISTEN=0.0.0.0:9090.
EXPOSE 50051 9090
# Asks the gRPC health service (the probe port when BRIDGE_HEALTH_LISTEN is set, else BRIDGE_LISTEN).
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-m", "bridge.ops.healthcheck"]
ENTRYPOINT ["xpander-bridge", "serve"]
