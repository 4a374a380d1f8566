"""One benchmark run's private names (topics, schemas, consumer group) and their cleanup,
so a run never touches a real ledger's data and leaves nothing behind."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg2
from kafka.admin import KafkaAdminClient
from psycopg2 import sql

from ledger.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class BenchRun:
    """Settings of the ledger under test plus the names of the raw baselines' scratch space."""

    settings: Settings
    run_id: str
    extra_schemas: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.settings.topic

    @property
    def schema(self) -> str:
        return self.settings.postgres_schema

    @property
    def dsn(self) -> str:
        return self.settings.postgres_dsn

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def scratch_topic(self, suffix: str) -> str:
        return f"{self.topic}-{suffix}"

    def scratch_schema(self, suffix: str) -> str:
        name = f"{self.schema}_{suffix}"
        self.extra_schemas.append(name)
        return name

    def child_env(self) -> dict[str, str]:
        """The environment of a child process: the same settings, this run's names."""
        env = dict(os.environ)
        env.update(LEDGER_BACKEND=self.settings.backend.value, LEDGER_TOPIC=self.topic,
                   LEDGER_POSTGRES_SCHEMA=self.schema, LEDGER_PROJECTOR_GROUP=self.settings.projector_group,
                   LEDGER_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, LEDGER_POSTGRES_DSN=self.dsn)  # fmt: skip
        return env


@contextlib.contextmanager
def bench_run(settings: Settings) -> Iterator[BenchRun]:
    """A run with unique names; its topics and schemas are removed afterwards, whatever happens."""
    run_id = uuid.uuid4().hex[:8]
    names = {"topic": f"bench-{run_id}", "postgres_schema": f"bench_{run_id}", "projector_group": f"bench-{run_id}"}
    run = BenchRun(settings.model_copy(update=names), run_id)
    try:
        yield run
    finally:
        cleanup(run)


def cleanup(run: BenchRun) -> None:
    """Delete every topic whose name starts with the run's topic, drop the run's schemas."""
    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=run.bootstrap, client_id="ledger-bench")
        try:
            topics = [t for t in admin.list_topics() if t.startswith(run.topic)]
            if topics:
                admin.delete_topics(topics, raise_errors=False)
        finally:
            admin.close()
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{run.schema}%",))
            for (schema,) in cur.fetchall():
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()
