# Quanyi: the API with its background workers (projections, audit tree, sweepers, webhook
# and top-up dispatchers).
# Embedded SQLite under /data by default; set QUANYI_DATABASE_URL for PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 QUANYI_DATA_DIR=/data
RUN useradd --create-home --uid 10001 quanyi && mkdir /data && chown quanyi /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY projections ./projections
COPY runtime ./runtime
COPY replay ./replay
COPY api ./api
COPY supplier_adapters ./supplier_adapters
COPY supplier_sim ./supplier_sim
RUN pip install --no-cache-dir .

USER quanyi
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["quanyi", "serve", "--host", "0.0.0.0", "--port", "8000"]
