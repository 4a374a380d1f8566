import gc
from collections.abc import Iterator

import pytest

from ledger.collector import collector_paused


@pytest.fixture
def enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


def test_the_collector_is_paused_inside_and_back_after(enabled: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_is_back_after_an_error(enabled: None) -> None:
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("boom")
    assert gc.isenabled()


def test_a_collector_paused_before_stays_paused(enabled: None) -> None:
    gc.disable()
    with collector_paused():
        with collector_paused():  # nested, as two threads' reads may be
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()
