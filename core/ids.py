"""The one validator of names and ids that come from outside: shopper, item, event and request ids,
job ids, experiment and arm names, model version numbers; and how an error may echo a value.

Every module that checks such a value imports it from here, so a rule is the same everywhere: patterns
are matched with `fullmatch` (a trailing newline slips through `re.match("^…$")` and would forge a log
line), digits are ASCII digits (`str.isdigit()` also accepts "²" and "٣"), an echoed value is cut to
SHOWN_CHARS, and a shopper id is never echoed at all (errors reach logs; logs must not hold raw ids).
"""
from __future__ import annotations

import re

from core.errors import InvalidArgument

MAX_ID_LENGTH = 128
SHOWN_CHARS = 40  # an echoed value is cut to this many characters (errors, rejections, logs)
_ID = re.compile(r"[\w.:@/+-]+")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # names a temporary folder of the model repository
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # experiment and arm names: they appear in logs and metric labels
_VERSION = re.compile(r"[0-9]{1,9}")
ID_CHARACTERS = "letters, digits and ._:@/+-"


def shown(value: str) -> str:
    """`value` as an error message may echo it: repr, cut to SHOWN_CHARS characters."""
    return repr(value) if len(value) <= SHOWN_CHARS else repr(value[:SHOWN_CHARS]) + f"... ({len(value)} characters)"


def check_id(value: str, what: str) -> str | None:
    """A reason the id is bad, or None. A `user_id` is never echoed (it identifies a person)."""
    if not value:
        return f"missing {what}"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} longer than {MAX_ID_LENGTH} characters"
    if not _ID.fullmatch(value):
        echo = "" if what == "user_id" else f" {shown(value)}"
        return f"{what}{echo} has characters outside {ID_CHARACTERS}"
    return None


def check_job_id(value: str) -> str | None:
    """A reason the job id is bad, or None (job ids become folder names: ASCII letters, digits, _ and -)."""
    if not _JOB_ID.fullmatch(value):
        return f"job_id {shown(value)} must be 1 to 64 ASCII letters, digits, '_' or '-'"
    return None


def check_name(value: str, what: str) -> str | None:
    """A reason an experiment or arm name is bad, or None."""
    if not _NAME.fullmatch(value):
        return f"{what} {shown(value)} must be 1-64 ASCII letters, digits, '-', '_' or '.'"
    return None


def is_version(value: str) -> bool:
    return bool(_VERSION.fullmatch(value))


def parse_version(value: str) -> int:
    """A model version number from its text (ASCII digits), or InvalidArgument."""
    if not is_version(value):
        raise InvalidArgument(f"version {shown(value)} is not a version number (ASCII digits, e.g. \"3\")")
    return int(value)
