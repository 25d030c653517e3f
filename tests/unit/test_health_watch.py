"""The health watcher's checks have deadlines: a dependency that hangs fails its check in time and is
not asked again while its last call is stuck; one that raises fails; one that answers passes."""
import threading
import time

from services.health_watch import Checker


def test_a_hanging_check_fails_within_its_deadline_and_is_not_piled_up():
    release = threading.Event()
    calls = []

    def hangs() -> bool:
        calls.append(1)
        release.wait(10)
        return True

    def raises() -> bool:
        raise ConnectionError("refused")

    checker = Checker(timeout_s=0.2)
    started = time.monotonic()
    assert checker.failing([("redis", hangs), ("db", raises), ("triton", lambda: True)]) == ["redis", "db"]
    assert time.monotonic() - started < 2
    assert checker.failing([("redis", hangs)]) == ["redis"]  # still stuck: not called a second time
    assert len(calls) == 1
    release.set()
    time.sleep(0.1)
    assert checker.failing([("redis", hangs)]) == []  # answered again: passes
