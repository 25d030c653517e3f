"""How every process logs: one line per record, text by default or JSON (RECSYS_LOG_FORMAT=json), with
the request id of the RPC being served and the fine-tune job id being trained when there is one, so an
operator can follow one Rank (its `request_id` is in the response) or one job through every line.

The ids travel in context variables: the scoring service sets `request_id` per call, the fine-tune
task sets `job_id` for its run; `configure(process)` installs the formatter on the root logger."""
from __future__ import annotations

import contextvars
import json
import logging
import os
import time
from contextlib import contextmanager
from typing import Iterator

from core.tracing import current_trace_id

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
job_id: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="")


@contextmanager
def bound(var: contextvars.ContextVar[str], value: str) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        record.trace_id = current_trace_id()  # empty unless tracing is on (core/tracing.py)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "process": self.process_name, "logger": record.name, "message": record.getMessage()}
        for key in ("request_id", "job_id", "trace_id"):
            if getattr(record, key, ""):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [f"{k}={getattr(record, k)}" for k in ("request_id", "job_id") if getattr(record, k, "")]
        return f"{text} [{' '.join(ids)}]" if ids else text


def configure(process: str, level: int = logging.INFO, fmt: str | None = None) -> None:
    """Log `process`'s records to stderr in RECSYS_LOG_FORMAT (text | json), with the ids in context."""
    fmt = fmt or os.environ.get("RECSYS_LOG_FORMAT", "text")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else TextFormatter(process))
    handler.addFilter(_Context())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
