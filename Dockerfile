# Build the wheel in one stage (`python -m build`, as packaging/build.sh does), run it as a non-root user in another.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY skills ./skills
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 mcp && install -d -o mcp -g mcp /home/mcp/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER mcp
WORKDIR /home/mcp
# Streamable HTTP at /mcp (health check at /healthz) on every interface of the container. The server refuses to
# start until `docker run -e` gives it:
#   ITWIN_INSIGHTS_ALLOWED_HOSTS  the host name(s) clients reach it by (DNS-rebinding protection), e.g. mcp.example.com
#   ITWIN_INSIGHTS_AUTH           who may call it: service (+ ITWIN_INSIGHTS_API_KEYS) or oauth (+ see the README)
# Bentley credentials: ITWIN_CLIENT_ID + ITWIN_CLIENT_SECRET; with none it serves the sandbox. State and exports
# live in the volume /home/mcp/data. Every variable: the README's Configuration table, or `itwin-insights-mcp serve
# --help`. Pass secrets with -e / --env-file at run time, never as build arguments.
ENV ITWIN_INSIGHTS_TRANSPORT=http \
    ITWIN_INSIGHTS_HOST=0.0.0.0 \
    ITWIN_INSIGHTS_PORT=8000 \
    INSIGHTS_SANDBOX_DB=/home/mcp/data/sandbox.db \
    ITWIN_INSIGHTS_STATE_DB=/home/mcp/data/state.db \
    ITWIN_INSIGHTS_EXPORT_DIR=/home/mcp/data/exports \
    PYTHONUNBUFFERED=1
VOLUME /home/mcp/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["itwin-insights-mcp", "serve", "--transport", "http"]
