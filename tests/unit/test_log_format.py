"""Log lines carry the request id and job id in context; JSON lines parse and keep exceptions."""
import json
import logging

from core import log_format


def _capture(fmt: str) -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(log_format.JsonFormatter("scoring") if fmt == "json" else log_format.TextFormatter("scoring"))
    handler.addFilter(log_format._Context())
    logger = logging.getLogger(f"test-log-format-{fmt}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, lines


def test_json_lines_carry_the_ids_in_context():
    logger, lines = _capture("json")
    logger.info("outside")
    with log_format.bound(log_format.request_id, "req-1"), log_format.bound(log_format.job_id, "job-7"):
        logger.warning("inside %s", "x")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    logger.info("after")
    records = [json.loads(line) for line in lines]
    assert "request_id" not in records[0] and "request_id" not in records[-1]
    assert records[1]["request_id"] == "req-1" and records[1]["job_id"] == "job-7" and records[1]["message"] == "inside x"
    assert records[1]["process"] == "scoring" and records[1]["level"] == "WARNING"
    assert "ValueError: boom" in records[2]["exception"]


def test_text_lines_name_the_ids():
    logger, lines = _capture("text")
    with log_format.bound(log_format.request_id, "req-2"):
        logger.info("ranked")
    logger.info("plain")
    assert lines[0].endswith("ranked [request_id=req-2]") and lines[1].endswith("plain")
