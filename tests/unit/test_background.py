"""core.background: a service's background threads run at RECSYS_BACKGROUND_NICE (Linux lowers just
that thread), so the request path wins the cores when both want them; the thread calling it is not
changed."""
from __future__ import annotations

import os
import sys
import threading

import pytest

from core import background
from core.settings import Settings


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_a_background_thread_runs_at_the_configured_nice_and_nothing_else_does(monkeypatch):
    monkeypatch.setattr(background, "_nice", 0)
    background.configure(Settings().background_nice)  # the default
    seen: dict[str, int] = {}
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def work() -> None:
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = background.thread(work, "test-background")
    assert t.daemon and t.name == "test-background"
    t.start()
    t.join(5)
    assert seen["nice"] == max(mine, 10)  # at least the configured level, never above the process's own
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's priority is its own


def test_nice_zero_leaves_the_thread_alone(monkeypatch):
    monkeypatch.setattr(background, "_nice", 0)
    seen: dict[str, int] = {}
    t = background.thread(lambda: seen.setdefault("nice", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())), "t")
    t.start()
    t.join(5)
    assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, 0)
