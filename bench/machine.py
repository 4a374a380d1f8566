"""What the figures were measured on: hardware, load and the versions of every part."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg2

from bench.runctx import BenchRun


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _postgres_version(run: BenchRun) -> str:
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return str((cur.fetchone() or ("?",))[0])
    finally:
        conn.close()


def _kafka_version(run: BenchRun) -> dict[str, Any]:
    """The broker's API version as kafka-python negotiates it, and the release from the
    jars ``scripts/services`` runs (the protocol does not tell a broker's release)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=run.bootstrap, client_id="ledger-bench")
    try:
        api = ".".join(str(part) for part in admin._client.check_version())
    finally:
        admin.close()
    cache = Path(os.environ.get("LEDGER_CACHE_DIR", Path.home() / ".cache" / "task-ledger"))
    jars = sorted(cache.glob("kafka-*/libs/kafka-clients-*.jar"))
    release = jars[-1].stem.removeprefix("kafka-clients-") if jars else None
    return {"kafka_release": release, "kafka_api_version": api}


def machine_info(run: BenchRun) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka_python": _version("kafka-python"),
        "confluent_kafka": _version("confluent-kafka"),
        "psycopg2": psycopg2.__version__.split()[0],
        "pydantic": _version("pydantic"),
        "celery": _version("celery"),
        "postgresql": _postgres_version(run),
        **_kafka_version(run),
    }
