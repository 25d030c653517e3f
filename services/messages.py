"""Small conversions between domain values and protobuf messages shared by the servicers."""
from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def ts(seconds: float) -> Timestamp:
    """A Timestamp for epoch seconds (unset for 0 and infinities)."""
    t = Timestamp()
    if seconds and seconds not in (float("inf"), float("-inf")):
        t.FromNanoseconds(int(seconds * 1e9))
    return t
