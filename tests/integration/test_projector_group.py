"""Several projectors in one consumer group share the partitions and stay exact across
rebalances (real Kafka broker, real PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.bootstrap import build_projector
from ledger.consumers.projector import Projector
from ledger.eventlog.base import EventLog
from ledger.eventlog.confluent_group import ConfluentGroupMember
from ledger.eventlog.kafka_group import KafkaGroupMember
from ledger.projections.store import ViewWriter
from ledger.settings import KafkaClient, Settings, load_settings
from tests.streams import append_all, assert_views_match_fold, stream

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(params=["kafka-python", "confluent"])
def settings(
    request: pytest.FixtureRequest, kafka_bootstrap: str, postgres_dsn: str, kafka_topic: str, pg_schema: str
) -> Settings:
    """Each test on both Kafka clients: the group member is the chosen client's."""
    return load_settings(
        backend="kafka+postgres",
        kafka_client=request.param,
        topic=kafka_topic,
        postgres_schema=pg_schema,
        partitions=6,
        kafka_bootstrap_servers=kafka_bootstrap,
        postgres_dsn=postgres_dsn,
        consumer_poll_timeout_ms=100,
        projector_batch_wait_ms=20,
        projector_batch_size=200,
        projector_group=f"g-{kafka_topic}",
        consumer_session_timeout_ms=6000,
    )


class Member:
    """A projector running in a thread, remembering every partition it was given."""

    def __init__(self, settings: Settings) -> None:
        self.projector: Projector = build_projector(settings)
        self.stop = threading.Event()
        self.owned: set[int] = set()
        assigned = self.projector._on_assigned

        def spy(partitions: set[int]) -> dict[int, int]:
            self.owned |= partitions
            return assigned(partitions)

        self.projector._on_assigned = spy  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.projector.run(self.stop)
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.projector.close()
            self.projector.store.close()

    def start(self) -> Member:
        self.thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, self.error


def member_class(settings: Settings) -> type[KafkaGroupMember | ConfluentGroupMember]:
    return ConfluentGroupMember if settings.kafka_client is KafkaClient.CONFLUENT else KafkaGroupMember


def wait_until_projected(store: ViewWriter, topic: str, total: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while sum(store.offsets("views", topic).values()) < total:
        assert time.monotonic() < deadline, store.offsets("views", topic)
        time.sleep(0.2)


def test_two_projectors_share_the_partitions_and_stay_exact_across_rebalances(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = stream(seed=11, tasks=600)
    positions = append_all(log, events[:1000])
    first = Member(settings).start()
    assert isinstance(first.projector.source, member_class(settings))  # the setting chose the client
    wait_until_projected(store, log.topic, 300)
    second = Member(settings).start()  # a rebalance hands some partitions over
    positions += append_all(log, events[1000:2000])
    deadline = time.monotonic() + 60
    while not second.owned:
        assert time.monotonic() < deadline, "the second member was never given a partition"
        time.sleep(0.1)
    first.halt()  # and another one hands them all to the second member
    positions += append_all(log, events[2000:])
    wait_until_projected(store, log.topic, len(events))
    second.halt()
    assert first.owned and second.owned
    assert_views_match_fold(store, events, positions)


def test_a_member_picks_up_partitions_added_after_it_joined_within_seconds(settings: Settings) -> None:
    """Partitions that appear after a member joined (added by an operator, or a topic whose
    partitions were not in the member's metadata yet when it joined, a moment after its
    creation) are assigned within seconds, not after the Kafka client's default five-minute
    metadata refresh."""
    from kafka.admin import KafkaAdminClient, NewPartitions

    from ledger.bootstrap import build_event_log

    small = settings.model_copy(update={"partitions": 1})
    build_event_log(small).close()  # the topic, with one partition
    source = member_class(settings)(settings.kafka_bootstrap_servers, settings.topic, f"grow-{settings.topic}",
                                    session_timeout_ms=6000)  # fmt: skip
    assigned: set[int] = set()

    def on_assigned(partitions: set[int]) -> dict[int, int]:
        assigned.update(partitions)
        return {p: 0 for p in partitions}

    source.start(on_assigned, lambda _: None)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="ledger-tests")
    try:
        deadline = time.monotonic() + 30
        while not assigned and time.monotonic() < deadline:
            source.poll(10, 100)
        assert assigned == {0}
        admin.create_partitions({settings.topic: NewPartitions(total_count=6)})
        deadline = time.monotonic() + 30
        while assigned != set(range(6)) and time.monotonic() < deadline:
            source.poll(10, 200)
        assert assigned == set(range(6))
    finally:
        admin.close()
        source.close()


def test_a_member_does_not_join_before_it_knows_its_topics_partitions(settings: Settings) -> None:
    """Joining without them, a member that leads the group assigns nothing; with static
    membership (LEDGER_PROJECTOR_INSTANCE_ID) every restarted member inherited that empty
    assignment without a rebalance, and the group owned nothing for good. Now start() waits
    for the partitions and, if the topic never appears, says so (the projector's runner
    retries it with backoff)."""
    from ledger.eventlog.base import EventLogUnavailable

    missing = member_class(settings)(
        settings.kafka_bootstrap_servers, f"{settings.topic}-never", f"g-{settings.topic}",
        request_timeout_ms=2000, instance_id="static-1",
    )  # fmt: skip
    with pytest.raises(EventLogUnavailable, match=r"-never' at .* has no partitions yet"):
        missing.start(lambda partitions: {p: 0 for p in partitions}, lambda _: None)
    missing.close()
