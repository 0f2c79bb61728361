# syntax=docker/dockerfile:1
# Studio9 in one image. Build the edge image (default) or the cloud one:
#   docker build -t studio9 .
#   docker build -t studio9:cloud --build-arg EXTRAS=cloud .
# Run: docker run -p 8080:8080 -v studio9-data:/data studio9

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=edge
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/studio9
COPY pyproject.toml README.md ./
COPY studio9 ./studio9
COPY adapters ./adapters
COPY migrations ./migrations
RUN /opt/studio9/bin/pip install ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim
ARG BUILD=dev
LABEL org.opencontainers.image.title="studio9" \
      org.opencontainers.image.description="Collaborative data management and ML, edge to cloud"
RUN groupadd --system studio9 \
    && useradd --system --gid studio9 --home-dir /data --no-create-home studio9 \
    && mkdir -p /data \
    && chown studio9:studio9 /data
COPY --from=build /opt/studio9 /opt/studio9
ENV PATH="/opt/studio9/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    STUDIO9_DATA_DIR=/data \
    STUDIO9_HOST=0.0.0.0 \
    STUDIO9_PORT=8080 \
    STUDIO9_BUILD=${BUILD}
USER studio9
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status != 200)"]
ENTRYPOINT ["studio9"]
CMD ["serve"]
