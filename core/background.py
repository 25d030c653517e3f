"""Background threads that yield the CPU to the request path.

A service's own background work (the feature refresher, the shopper-state writer, the popularity
refresh, the attributor, the served-list recorder, the item-cache revalidation) competes with every
process's request threads for the same cores. On a saturated machine the kernel then shares the cores
evenly, and a Rank waits behind a refresh pass. With RECSYS_BACKGROUND_NICE each background thread runs
at that nice level (Linux: setpriority on the thread's own id lowers just that thread), so the request
path wins the cores when both want them and the background work takes what is left over.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable

logger = logging.getLogger(__name__)

_nice = 0  # set once per process by configure()


def configure(nice: int) -> None:
    """The nice level this process's background threads run at, at least (RECSYS_BACKGROUND_NICE)."""
    global _nice
    _nice = nice


def thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A daemon thread (not started) that lowers its own priority to the configured nice level first."""

    def run() -> None:
        if _nice > 0 and sys.platform == "linux":
            try:
                me = threading.get_native_id()
                if os.getpriority(os.PRIO_PROCESS, me) < _nice:  # only ever lower it (a niced process stays niced)
                    os.setpriority(os.PRIO_PROCESS, me, _nice)
            except OSError as exc:  # a container that forbids it: the thread still runs, at normal priority
                logger.warning("%s: could not lower its priority (%s)", name, exc)
        target()

    return threading.Thread(target=run, name=name, daemon=True)
