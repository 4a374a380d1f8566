# Image for the projector and the Celery-events ingester (and, later, the API) in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
# the celery extra: kombu and Celery, which `ledger ingest celery` reads the brokers with
RUN pip install --no-cache-dir ".[celery]"
ENTRYPOINT []
CMD ["ledger", "project"]
