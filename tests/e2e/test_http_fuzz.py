"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis), on both backends:
whatever the parameters, valid or not, no response is a 5xx.

``/events/stream`` is left out: it streams until the client leaves, so a generated request
that is valid would never return (test_sse covers it, test_http its 422s). Schemathesis'
pytest loader (``from_fixture``) does not run under pytest 9, so each operation's
strategy is driven with Hypothesis directly: positive and negative cases, 30 of each,
derandomized so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from tests.e2e.http_helpers import project_stream

EXAMPLES = 30


@pytest.fixture
def api_schema(settings: Settings, log: EventLog, store: ViewWriter) -> Iterator[Any]:
    project_stream(settings, log, seed=51, tasks=30)
    app = create_app(settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/events/stream")
    app.state.backends.close()  # the ASGI client never runs the app's lifespan


def fuzz(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def no_server_error(case: schemathesis.Case) -> None:
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.query}: {response.text}"

    no_server_error()


def test_no_input_makes_the_api_fail(api_schema: Any) -> None:
    labels, negative = [], []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        fuzz(operation, GenerationMode.POSITIVE)
        try:
            fuzz(operation, GenerationMode.NEGATIVE)
            negative.append(operation.label)
        except Unsatisfiable:
            pass  # nothing about it can be invalid (no parameters, or only a free-text path)
    assert len(labels) == 17 and "GET /events/stream" not in labels, labels
    assert {"GET /tasks/{task_id}/workflow", "GET /workflows/{root_id}"} <= set(labels), labels
    assert {"GET /tasks", "GET /tasks/{task_id}", "GET /stats", "GET /failures", "GET /failures/{fingerprint}",
            "POST /failures/{fingerprint}/resolve", "POST /failures/{fingerprint}/reopen",
            "GET /stats/series", "GET /workers", "GET /workers/{hostname}"} <= set(negative), negative  # fmt: skip
