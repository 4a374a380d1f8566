# Image for the projector (and, later, the API) in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["ledger", "project"]
