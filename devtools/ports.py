"""Free local ports and readiness waits shared by the launchers and test fixtures."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessDied(RuntimeError):
    """A child process exited while we waited for it to become ready."""


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen | None, timeout: float, what: str, log: Path | None = None
) -> None:
    """Poll `ready()` until true; fail fast, with the log's tail, if `proc` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessDied(f"{what} exited with code {proc.returncode}:\n{log_tail(log)}")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not up yet; any error means "try again"
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{log_tail(log)}")


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 1.0) -> T:
    """`check()`'s first truthy value within `timeout` seconds, else its last value (the caller asserts):
    for what a service shows only after a cache period, e.g. RECSYS_FEATURE_CACHE_S."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
