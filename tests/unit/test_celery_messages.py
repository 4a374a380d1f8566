"""What the ingester accepts from Celery's event exchange, without a broker: the message
bodies Celery publishes (one event, or a ``.multi`` list), the reasons anything else is a
dead letter, and the broker URLs it reads (never printing a password)."""

from __future__ import annotations

import pytest

from ledger.consumers.celery_broker import EventSourceConfig, check_broker_url, redact
from ledger.consumers.celery_messages import Item, NotCeleryEvent, celery_events, checked

EVENT = b'{"type": "task-sent", "uuid": "t-1", "timestamp": 1.5}'


def test_a_message_holds_one_event_or_the_list_a_buffering_worker_sends() -> None:
    assert celery_events(EVENT, "application/json") == [{"type": "task-sent", "uuid": "t-1", "timestamp": 1.5}]
    assert len(celery_events(b"[" + EVENT + b", " + EVENT + b"]", "application/json")) == 2
    assert celery_events(EVENT, None) == celery_events(EVENT, "Application/JSON")  # no content type: try JSON


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (b"{nope", "application/json", "not JSON: "),
    (b"\xff\xfe", "application/json", "not JSON: "),
    (b"[]", "application/json", "not a Celery event: an empty list"),
    (EVENT, "application/x-python-serialize", "content type 'application/x-python-serialize': Celery's events"),
])  # fmt: skip
def test_what_is_no_json_event_says_why(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(NotCeleryEvent) as refused:
        celery_events(body, content_type)
    assert str(refused.value).startswith(reason)


@pytest.mark.parametrize(("value", "reason"), [
    (3, "not a Celery event: a JSON number, not an object with a 'type'"),
    ("task-sent", "not a Celery event: a JSON string, not an object with a 'type'"),
    (None, "not a Celery event: a JSON null, not an object with a 'type'"),
    ({"uuid": "t-1"}, "not a Celery event: 'type' must be a non-empty string, got None"),
    ({"type": ""}, "not a Celery event: 'type' must be a non-empty string, got ''"),
])  # fmt: skip
def test_an_item_is_an_event_only_with_a_type(value: object, reason: str) -> None:
    with pytest.raises(NotCeleryEvent, match=reason):
        checked(value)
    assert checked({"type": "worker-heartbeat"}) == {"type": "worker-heartbeat"}


def test_a_reason_names_the_item_of_a_list_and_not_of_a_single_event() -> None:
    assert Item(0, 2, 3, None).label("bad") == "event 2 of 3: bad"
    assert Item(0, 1, 1, None).label("bad") == "bad"


@pytest.mark.parametrize(("url", "broker"), [
    ("amqp://guest:guest@rabbit:5672//", "rabbitmq"), ("pyamqp://rabbit", "rabbitmq"), ("amqps://rabbit", "rabbitmq"),
    ("redis://127.0.0.1:6379/0", "redis"), ("rediss://:pw@cache:6380/1", "redis"),
])  # fmt: skip
def test_the_brokers_read_are_rabbitmq_and_redis(url: str, broker: str) -> None:
    assert EventSourceConfig(url).broker == broker


@pytest.mark.parametrize(("url", "error"), [
    ("sqs://key:secret@", "--broker: 'sqs://key:***@' is not a RabbitMQ or Redis URL"),
    ("rabbit:5672", "--broker: 'rabbit:5672' is not a RabbitMQ or Redis URL"),
    ("redis://h:70000/0", "--broker: 'redis://h:70000/0' is not a URL"),
])  # fmt: skip
def test_any_other_url_is_refused_naming_the_option_without_its_password(url: str, error: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_broker_url(url)
    assert str(refused.value).startswith(error)
    assert "secret" not in str(refused.value)


def test_a_password_is_never_shown() -> None:
    assert redact("amqp://guest:s3cret@rabbit:5672//") == "amqp://guest:***@rabbit:5672//"
    assert redact("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"


@pytest.mark.parametrize(("options", "error"), [
    ({"queue": " "}, "--queue: the queue name must not be blank"),
    ({"expires_s": 0}, "--expires: must be more than 0 s and at most 30 days, got 0 s"),
    ({"expires_s": 31 * 86_400}, "--expires: must be more than 0 s and at most 30 days, got 2678400 s"),
    ({"prefetch": 0}, "prefetch: must be 1 to 65535"),
])  # fmt: skip
def test_the_queue_options_are_checked_when_made(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        EventSourceConfig("amqp://rabbit//", **options)  # type: ignore[arg-type]
