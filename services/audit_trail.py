"""What the interceptor writes to the audit log, and how little work it costs: a bounded summary of the
request with every shopper id pseudonymised, the caller's key fingerprint and address, an intent row
before an admin action takes effect, and refusals rate-limited so that a flood of refused calls writes a
handful of rows (the rest are counted into the next row written) instead of one fsync'd row each."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from google.protobuf import text_format
from google.protobuf.message import Message

from core.errors import Unavailable
from core.security import Client, key_digest
from services.auth import AuditSink

logger = logging.getLogger(__name__)

SUMMARY_CHARS = 300
FORMATTED_BYTES = 4096  # a larger request is summarised by type and size, never formatted
SHOPPER_FIELDS = ("user_id", "user_ids")
REFUSALS_PER_WINDOW = 5  # rows per (method, outcome) per window; the rest are counted
REFUSAL_WINDOW_S = 10.0
INTENT = "CALLED"  # the outcome of the row written before an admin handler runs

Redact = Callable[[str], str]


def fingerprint(key: str | None) -> str:
    """A short, non-reversible name for an API key (the first 12 hex digits of its SHA-256)."""
    return key_digest(key)[:12] if key else ""


def summary(request: Any, redact: Redact) -> str:
    """The request as one line for the audit log: shopper ids replaced by `redact` (their pseudonym),
    cut to SUMMARY_CHARS; a request over FORMATTED_BYTES is named by its type and size only."""
    if not isinstance(request, Message):
        return f"<{type(request).__name__}>"
    try:
        return _summary(request, redact)
    except Exception:  # noqa: BLE001 - a request that cannot be summarised is audited by its type
        logger.exception("could not summarise a %s for the audit log", type(request).__name__)
        return f"<{type(request).DESCRIPTOR.full_name}>"


def _summary(request: Message, redact: Redact) -> str:
    size = request.ByteSize()
    if size > FORMATTED_BYTES:
        return f"<{type(request).DESCRIPTOR.full_name} of {size} bytes>"
    copy = type(request)()
    copy.CopyFrom(request)
    _redact(copy, redact)
    text = text_format.MessageToString(copy, as_one_line=True)
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS] + "..."


def _redact(message: Message, redact: Redact) -> None:
    for field, value in message.ListFields():
        if field.name in SHOPPER_FIELDS and field.type == field.TYPE_STRING:
            if field.is_repeated:
                replaced = [redact(v) for v in value]
                del value[:]
                value.extend(replaced)
            else:
                setattr(message, field.name, redact(value))
        elif field.type == field.TYPE_MESSAGE:
            for child in (value if field.is_repeated else [value]):
                if isinstance(child, Message):
                    _redact(child, redact)


class RefusalLimiter:
    """At most REFUSALS_PER_WINDOW rows per (method, outcome) per REFUSAL_WINDOW_S; `admit` returns
    whether to write a row now and how many refusals were held back since the last one written."""

    def __init__(self, per_window: int = REFUSALS_PER_WINDOW, window_s: float = REFUSAL_WINDOW_S) -> None:
        self.per_window, self.window_s = per_window, window_s
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}  # start, written, held back

    def admit(self, method: str, outcome: str, now: float | None = None) -> tuple[bool, int]:
        now = time.monotonic() if now is None else now
        key = (method, outcome)
        with self._lock:
            start, written, held = self._windows.get(key, (now, 0, 0))
            if now - start >= self.window_s:
                start, written = now, 0
            if written < self.per_window:
                self._windows[key] = (start, written + 1, 0)
                return True, held
            self._windows[key] = (start, written, held + 1)
            return False, held + 1


class AuditTrail:
    """The interceptor's one way into the audit sink; an audit failure is logged, the answer stands."""

    def __init__(self, sink: AuditSink, redact: Redact) -> None:
        self.sink, self.redact = sink, redact
        self.refusals = RefusalLimiter()

    def intent(self, client: Client, method: str, request: Any, caller: str, peer: str) -> None:
        """The row written before the admin handler runs; Unavailable (and no action) if it cannot be."""
        try:
            self.sink.record(client, method, summary(request, self.redact), INTENT, "", caller=caller, peer=peer)
        except Exception as exc:  # noqa: BLE001 - no admin action without its audit row
            logger.exception("could not write the audit log for %s; the call is refused", method)
            raise Unavailable("the audit log cannot be written now; the admin call was not carried out") from exc

    def outcome(self, client: Client, method: str, request: Any, code: str, detail: str, caller: str, peer: str) -> None:
        self._write(client, method, summary(request, self.redact), code, detail, caller, peer)

    def refusal(self, client: Client, method: str, code: str, detail: str, caller: str, peer: str) -> None:
        """A call refused before its body was read (no key, unknown key, wrong role)."""
        write, held = self.refusals.admit(method, code)
        if not write:
            return
        if held:
            detail = f"{detail} (+{held} similar refusals not written separately)"
        self._write(client, method, "<not read: refused before the request was parsed>", code, detail, caller, peer)

    def _write(self, client: Client, method: str, request: str, outcome: str, detail: str, caller: str, peer: str) -> None:
        try:
            self.sink.record(client, method, request, outcome, detail, caller=caller, peer=peer)
        except Exception:  # noqa: BLE001 - an audit failure is logged, the answer stands
            logger.exception("could not write the audit log for %s", method)
