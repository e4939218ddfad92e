# Build the wheel in one stage, run it as a non-root user in another; mirrors the README's install steps.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 mcp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER mcp
WORKDIR /home/mcp
# Bind all interfaces inside the container; Host checks stay on: set ITWIN_INSIGHTS_ALLOWED_HOSTS to your host name.
ENV ITWIN_INSIGHTS_HOST=0.0.0.0 \
    ITWIN_INSIGHTS_PORT=8000 \
    ITWIN_INSIGHTS_ALLOWED_HOSTS=localhost \
    INSIGHTS_SANDBOX_DB=/home/mcp/data/sandbox.db \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["itwin-insights-mcp", "serve", "--transport", "http"]
