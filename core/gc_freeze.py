"""CPython's full garbage collection kept off the request path's tail (`gc.freeze`).

A serving process holds a few hundred thousand long-lived objects: imported modules, the feature caches,
the tokeniser's cache. CPython's full (generation 2) collection walks all of them whenever enough objects
have survived since the last one; in each scoring process under the shop-like load of `make bench-load`
that was about every 30 s, 300-500 ms of wall time on 2 saturated cores, during which every call in that
process waits for the GIL: the largest Rank latencies of a run (425-691 ms, issue 26's lab).

`gc.freeze()` moves every object alive at that moment into a permanent generation that collections
skip, so a full collection walks only what was allocated since. `start` collects and freezes once now
(after imports, before serving) and then every `every_s` seconds on a background thread: collect what
is younger (short: the frozen objects are not walked), then freeze it too, so what the caches filled
since joins the permanent generation. Frozen objects are still freed by reference counting as usual;
only a reference cycle formed among them after they were frozen would outlive its last reference (the
collection before each freeze takes every cycle that is already garbage), which the soak of
`make bench-load` watches as resident memory.
"""
from __future__ import annotations

import gc
import logging
import threading

from core import background

logger = logging.getLogger(__name__)


def collect_and_freeze() -> int:
    """Collect every generation, then freeze what is left; the number of frozen objects."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def start(every_s: float, stop: threading.Event | None = None) -> threading.Thread | None:
    """Freeze the long-lived objects now and every `every_s` seconds until `stop` is set (RECSYS_GC_FREEZE_S;
    0: CPython's own collection only, nothing frozen). Returns the background thread, if any."""
    if every_s <= 0:
        return None
    logger.debug("gc: %d objects frozen at start", collect_and_freeze())
    stop = stop or threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            collect_and_freeze()

    thread = background.thread(loop, "gc-freeze")
    thread.start()
    return thread
