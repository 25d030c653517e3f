"""core.gc_freeze: long-lived objects leave CPython's full collections; cyclic garbage does not."""
import gc
import threading
import time
import weakref

import pytest

from core import gc_freeze


@pytest.fixture(autouse=True)
def unfrozen():
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: "_Node | None" = None


def test_objects_alive_at_start_are_frozen_and_the_periodic_pass_freezes_later_ones():
    gc.unfreeze()
    stop = threading.Event()
    thread = gc_freeze.start(0.05, stop)
    try:
        at_start = gc.get_freeze_count()
        assert at_start > 1000  # the interpreter's modules and everything the test session imported
        cache = [_Node() for _ in range(5000)]  # a cache filled while serving (objects the collector tracks)
        deadline = time.monotonic() + 5
        while gc.get_freeze_count() < at_start + 5000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gc.get_freeze_count() >= at_start + 5000
        assert cache[0].other is None
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_cycle_that_is_already_garbage_is_collected_not_frozen():
    gc.unfreeze()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b  # unreachable, but only the cyclic collector frees it
    gc_freeze.collect_and_freeze()
    assert gone() is None


def test_zero_leaves_collection_to_cpython():
    gc.unfreeze()
    assert gc_freeze.start(0) is None
    assert gc.get_freeze_count() == 0
