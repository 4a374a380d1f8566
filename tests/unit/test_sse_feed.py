"""What one event stream is fed (``ledger.http.feed``), without I/O: a listener's choice of
messages and their ids (joined level with the hub, or ahead of it), and the bounded
mailbox between the reading threads and the response."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

from ledger.codec import PLAIN
from ledger.consumers.subscriber import EventFilter
from ledger.domain.events import TaskEvent, TaskFailed, TaskPending, TaskSucceeded
from ledger.eventlog.base import StoredRecord
from ledger.http.feed import Entry, Failure, Listener, Mailbox, Message, format_positions
from ledger.wire import encode

EVENTS: list[tuple[int, TaskEvent]] = [
    (0, TaskPending(task_id="a", task_name="billing.charge")),
    (1, TaskPending(task_id="b", task_name="email.send")),
    (0, TaskFailed(task_id="a", task_name="billing.charge", exc_type="ValueError", exc_message="no")),
    (1, TaskSucceeded(task_id="b", task_name="email.send")),
]


def entries(start: Mapping[int, int]) -> list[Entry]:
    """The entries a reader at ``start`` makes of ``EVENTS`` (partition, event), in order."""
    positions = dict(start)
    made = []
    for partition, event in EVENTS:
        record = encode(event)
        stored = StoredRecord("t", partition, positions[partition], record.key.encode(), record.value, record.headers)
        positions[partition] += 1
        made.append(Entry(stored, PLAIN, format_positions(positions)))
    return made


def undecodable(partition: int, offset: int, cursor: str) -> Entry:
    return Entry(StoredRecord("t", partition, offset, b"k", b"not json"), PLAIN, cursor)


def test_a_joined_listener_shares_the_readers_messages_and_ids() -> None:
    listener = Listener(EventFilter(), {0: 5, 1: 9}, Mailbox())
    listener.join({0: 5, 1: 9})
    made = entries({0: 5, 1: 9})
    items = listener.select(made, made[-1].cursor)
    assert items == [e.message() for e in made] and all(i is e.message() for i, e in zip(items, made, strict=True))
    assert [i.id for i in items if isinstance(i, Message)] == ["0:6,1:9", "0:6,1:10", "0:7,1:10", "0:7,1:11"]


def test_filtered_out_events_leave_one_checkpoint_with_the_cursor_after_them() -> None:
    listener = Listener(EventFilter(statuses=["FAILURE"]), {0: 0, 1: 0}, Mailbox())
    listener.join({0: 0, 1: 0})
    made = entries({0: 0, 1: 0})
    items = listener.select(made, made[-1].cursor)
    assert [(i.id, i.type) for i in items if isinstance(i, Message)] == [("0:2,1:1", "task.failed"), ("0:2,1:2", None)]
    assert listener.select([], made[-1].cursor) == [], "no second checkpoint for the same cursor"


def test_records_that_are_no_event_are_never_shown_but_move_the_cursor() -> None:
    listener = Listener(EventFilter(), {0: 0}, Mailbox())
    listener.join({0: 0})
    assert listener.select([undecodable(0, 0, "0:1")], "0:1") == [Message("0:1")]


def test_a_listener_ahead_of_the_reader_skips_what_precedes_its_cursor_and_keeps_its_own_ids() -> None:
    listener = Listener(EventFilter(), {0: 6, 1: 9}, Mailbox())  # its cursor: partition 0 past the reader's 5
    listener.join({0: 5, 1: 9})
    assert listener.ahead == {0: 6}
    made = entries({0: 5, 1: 9})  # pending a (0:5, already before its cursor), b, failed a, succeeded b
    items = listener.select(made, made[-1].cursor)
    assert [(i.id, i.type) for i in items if isinstance(i, Message)] == [
        ("0:6,1:10", "task.pending"),  # b: the reader's id would be "0:5,..."; its own is "0:6,..."
        ("0:7,1:10", "task.failed"),  # the reader reached its cursor: ids are shared again
        ("0:7,1:11", "task.succeeded"),
    ]
    assert listener.ahead == {} and items[-1] is made[-1].message()


def test_an_ahead_listener_gets_its_own_cursor_in_checkpoints() -> None:
    listener = Listener(EventFilter(task_ids=["nobody"]), {0: 8, 1: 0}, Mailbox())
    listener.join({0: 5, 1: 0})
    made = entries({0: 5, 1: 0})
    assert listener.select(made, made[-1].cursor) == [Message("0:8,1:2")]


def test_a_full_mailbox_refuses_a_whole_offer_and_a_failure_replaces_what_is_pending() -> None:
    mailbox = Mailbox(limit=3)
    assert mailbox.offer([Message("1"), Message("2")])
    assert not mailbox.offer([Message("3"), Message("4")]) and mailbox.pending == 2
    mailbox.fail("too slow")
    assert asyncio.run(mailbox.take(0)) == [Failure("too slow")]


def test_take_is_woken_by_an_offer_from_another_thread() -> None:
    mailbox = Mailbox()
    started = threading.Event()

    async def taker() -> list[object]:
        task = asyncio.create_task(mailbox.take(30))
        await asyncio.sleep(0)
        started.set()
        return list(await task)

    threading.Thread(target=lambda: started.wait() and mailbox.offer([Message("x")]), daemon=True).start()
    assert asyncio.run(taker()) == [Message("x")]


def test_wait_for_room_waits_until_the_response_takes_and_gives_up_when_the_stream_stops() -> None:
    mailbox, stop = Mailbox(limit=2), threading.Event()
    mailbox.offer([Message("1"), Message("2")])
    assert not mailbox.has_room(1)
    done: list[bool] = []
    writer = threading.Thread(target=lambda: done.append(mailbox.wait_for_room(1, stop)), daemon=True)
    writer.start()
    assert asyncio.run(mailbox.take(0)) == [Message("1"), Message("2")]
    writer.join(10)
    assert done == [True] and mailbox.has_room(2)
    mailbox.offer([Message("4"), Message("5")])
    stop.set()
    assert mailbox.wait_for_room(1, stop) is False and mailbox.pending == 2


def test_an_empty_mailbox_has_room_for_more_than_its_limit() -> None:
    assert Mailbox(limit=2).has_room(5), "else a slice bigger than the backlog could never be handed over"
