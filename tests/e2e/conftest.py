"""The e2e tests of the HTTP API run on both backends: the same ``settings`` / ``log`` /
``store`` / ``reader`` fixtures as the integration tests (embedded, and real Kafka + PostgreSQL)."""

from tests.integration.conftest import log, reader, settings, store

__all__ = ["log", "reader", "settings", "store"]
