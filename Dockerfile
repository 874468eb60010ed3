# resize-proxy: multi-stage, slim, non-root. No container engine runs on our CI machines, so
# .ci/run performs the same install (scripts/install-runtime.sh), the same config check and
# the same health check (scripts/healthcheck.py) on the host, proving these steps.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY scripts/install-runtime.sh ./scripts/
RUN ./scripts/install-runtime.sh /opt/venv

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/resize-proxy resize-proxy
COPY --from=build /opt/venv /opt/venv
COPY config.toml /etc/resize-proxy/config.toml
COPY scripts/healthcheck.py /usr/local/bin/healthcheck.py
# Single keys of the mounted config.toml can be overridden like this (PROXY_<SECTION>__<KEY>);
# e.g. docker run -e PROXY_SERVER__WORKERS=4 -e PROXY_AUTH__TOKENS='{ app = "..." }' ...
ENV PATH=/opt/venv/bin:$PATH \
    PROXY_SERVER__HOST=0.0.0.0 \
    PROXY_SERVER__WORKERS=2 \
    PROXY_STORAGE__PATH=/var/lib/resize-proxy/data
USER resize-proxy
WORKDIR /var/lib/resize-proxy
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["python", "/usr/local/bin/healthcheck.py"]
CMD ["resize-proxy", "serve", "--config", "/etc/resize-proxy/config.toml"]
