"""A seeded fuzzer of the suite's gRPC API: structured requests with hostile values, mutated and random
raw bytes, and every credential (none, unknown, storefront, admin), sent concurrently to the real
servers. Used by the fuzz test (tests/integration/test_fuzz.py) and the reliability benchmark.

What it checks is the contract: every answer is a defined status, never UNKNOWN or INTERNAL (or a
timeout). It never generates a request that would legitimately start a fine-tune, roll back or
overwrite the catalogue's existing items, so that anything queued or changed afterwards was done by
garbage: its TriggerFineTune requests always carry an invalid field, and its raw bytes for that RPC are
re-drawn until they do not parse as a valid request.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from devtools.client import Credentials, open_channel
from shoprank.v1 import common_pb2, feedback_pb2, model_admin_pb2, profile_pb2, scoring_pb2

HOSTILE = ["", " ", "\n", "abc\n", "²", "①", "٢", "../../etc/passwd", "x/../../../../outside", "\x00", "\x1b[31mred\x1b[0m",
           "🛒", "a" * 129, "b" * 5000, "%s%s%n", "'; DROP TABLE events; --", "U0001", "SKU0001", "SKU0002", "-1", "0", "1e309",
           "NaN", "\u202e", "\ud7ff", "C15444", "ok_id-1", "x" * 64, "job-ok", "999999999", "1" * 5000]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}


def _char(rng: random.Random) -> str:
    """Any code point a protobuf string can carry (no lone surrogates), control characters often."""
    if rng.random() < 0.1:
        return chr(rng.randrange(0, 32))
    point = rng.randrange(0, 0x110000 - 0x800)
    return chr(point + 0x800 if point >= 0xD800 else point)


@dataclass
class FuzzReport:
    cases: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_method: Counter = field(default_factory=Counter)
    forbidden: list[tuple[str, str, str]] = field(default_factory=list)  # (method, status, details), first few
    ok_fine_tunes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "seconds": round(self.seconds, 1), "by_status": dict(self.by_status.most_common()),
                "by_method": dict(self.by_method.most_common()), "forbidden": self.forbidden[:20], "ok_fine_tunes": self.ok_fine_tunes}


class Fuzzer:
    def __init__(self, addresses: dict[str, str], credentials: dict[str, Credentials], seed: int = 0,
                 catalogue: list[str] | None = None) -> None:
        self.addresses = addresses  # feedback, scoring, profile
        self.credentials = credentials  # admin, storefront (with keys); a keyless and an unknown-key variant are derived
        self.seed = seed
        self.catalogue = catalogue or ["SKU0001", "SKU0002", "SKU1001"]
        self._lock = threading.Lock()

    # --- values -----------------------------------------------------------------------------------
    def text(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.5:
            return rng.choice(HOSTILE)
        if roll < 0.7:
            return rng.choice(self.catalogue)
        if roll < 0.9:
            return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
        return "".join(_char(rng) for _ in range(rng.randrange(1, 10)))

    def timestamp(self, rng: random.Random) -> Timestamp | None:
        roll = rng.random()
        if roll < 0.1:
            return None
        t = Timestamp()
        choices = [time.time() - rng.random() * 86400, time.time() + rng.choice([10, 299, 301, 1e6]), -rng.random() * 1e9,
                   rng.choice([0, 1, 253402300799, 946684799])]
        seconds = rng.choice(choices)
        t.seconds = int(seconds)
        t.nanos = rng.choice([0, 5, 999_999_999, 1_000_000_000, -1]) if rng.random() < 0.3 else 0
        return t

    def event(self, rng: random.Random) -> common_pb2.Event:
        e = common_pb2.Event(event_id=f"fz-{rng.getrandbits(40):x}" if rng.random() < 0.6 else self.text(rng), user_id=self.text(rng),
                             item_id=rng.choice(self.catalogue) if rng.random() < 0.6 else self.text(rng),
                             event_type=rng.choice([1, 2, 3, 4, 0, 5, 99, -1]))  # EventType values, unset and unknown numbers
        ts = self.timestamp(rng)
        if ts is not None:
            e.timestamp.CopyFrom(ts)
        if rng.random() < 0.2:
            e.request_id = self.text(rng)
        return e

    def item(self, rng: random.Random) -> common_pb2.Item:
        # new ids only (or invalid ones): the fuzzer never overwrites a real catalogue item
        item_id = f"fz-item-{rng.getrandbits(32):x}" if rng.random() < 0.7 else rng.choice(["", "\n", "a" * 200, "x/..", "²"])
        return common_pb2.Item(item_id=item_id, title=self.text(rng), description=self.text(rng) if rng.random() < 0.5 else "",
                               category=self.text(rng) if rng.random() < 0.5 else "",
                               price=rng.choice([0.0, 9.99, -1.0, float("nan"), float("inf"), 1e308]))

    # --- requests ---------------------------------------------------------------------------------
    def structured(self, rng: random.Random) -> tuple[str, str, Any]:
        """(server, method, request message)."""
        kind = rng.choices(["rank", "recommend", "events", "items", "profile", "versions", "job", "rollback", "trigger", "forget", "audit"],
                           weights=[14, 8, 16, 8, 10, 3, 6, 6, 8, 6, 3])[0]
        if kind == "rank":
            n = rng.choice([0, 1, 3, 10, 60, 600])
            ids = [rng.choice(self.catalogue) if rng.random() < 0.7 else self.text(rng) for _ in range(n)]
            return "scoring", "/shoprank.v1.ScoringService/Rank", scoring_pb2.RankRequest(user_id=self.text(rng), item_ids=ids,
                                                                                          request_id=self.text(rng) if rng.random() < 0.2 else "")
        if kind == "recommend":
            return "scoring", "/shoprank.v1.ScoringService/Recommend", scoring_pb2.RecommendRequest(user_id=self.text(rng),
                                                                                                    k=rng.choice([-5, 0, 1, 10, 100, 101, 2**31 - 1]))
        if kind == "events":
            return "feedback", "/shoprank.v1.FeedbackService/RecordEvents", feedback_pb2.RecordEventsRequest(
                events=[self.event(rng) for _ in range(rng.choice([0, 1, 5, 25]))])
        if kind == "items":
            return "feedback", "/shoprank.v1.FeedbackService/UpsertItems", feedback_pb2.UpsertItemsRequest(
                items=[self.item(rng) for _ in range(rng.choice([0, 1, 4]))])
        if kind == "profile":
            return "profile", "/shoprank.v1.ProfileService/GetProfile", profile_pb2.GetProfileRequest(user_id=self.text(rng))
        if kind == "versions":
            return "feedback", "/shoprank.v1.ModelAdminService/ListVersions", model_admin_pb2.ListVersionsRequest()
        if kind == "job":
            return "feedback", "/shoprank.v1.ModelAdminService/GetJob", model_admin_pb2.GetJobRequest(job_id=self.text(rng))
        if kind == "rollback":
            version = self.text(rng)
            if version.isascii() and version.isdigit() and len(version) <= 9 and int(version) < 1000:
                version = "²"  # a real version number would roll back for real
            return "feedback", "/shoprank.v1.ModelAdminService/Rollback", model_admin_pb2.RollbackRequest(version=version)
        if kind == "trigger":
            return "feedback", "/shoprank.v1.ModelAdminService/TriggerFineTune", self.invalid_trigger(rng)
        if kind == "forget":
            return "feedback", "/shoprank.v1.ModelAdminService/ForgetUser", model_admin_pb2.ForgetUserRequest(
                user_id=rng.choice(["", "\n", "a" * 300, "²", "x/../y"]) if rng.random() < 0.5 else f"fz-nobody-{rng.getrandbits(24):x}")
        return "feedback", "/shoprank.v1.ModelAdminService/ListAudit", model_admin_pb2.ListAuditRequest(limit=rng.choice([-1, 0, 5, 1000, 1001]))

    def invalid_trigger(self, rng: random.Random) -> model_admin_pb2.TriggerFineTuneRequest:
        """A TriggerFineTune request with at least one invalid field (never a real job)."""
        bad = rng.choice(["job", "steps", "lr"])
        return model_admin_pb2.TriggerFineTuneRequest(
            job_id=rng.choice(["x/../../../../outside", "abc\n", "²", "a" * 65, "a b", "..", "\x1b[0m"]) if bad == "job" else "",
            max_steps=rng.choice([-1, 10001, -(2**31)]) if bad == "steps" else rng.choice([0, 5]),
            learning_rate=rng.choice([1.5, -0.1, float("nan"), float("inf")]) if bad == "lr" else 0.0)

    def raw(self, rng: random.Random, method: str, template: Any) -> bytes:
        """Random bytes, or a mutated (flipped, truncated, spliced) encoding of a real request."""
        for _ in range(100):
            if rng.random() < 0.5:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120)))
            else:
                mutated = bytearray(template.SerializeToString())
                for _ in range(rng.randrange(1, 6)):
                    if mutated and rng.random() < 0.6:
                        mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
                    elif mutated:
                        del mutated[rng.randrange(len(mutated)):]
                    mutated += bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 6)))
                data = bytes(mutated)
            if not method.endswith("/TriggerFineTune") or not self._valid_trigger(data):
                return data
        return b"\xff"

    @staticmethod
    def _valid_trigger(data: bytes) -> bool:
        """Whether bytes are a TriggerFineTune request the server would accept (the fuzzer never sends one)."""
        import math
        import re

        try:
            request = model_admin_pb2.TriggerFineTuneRequest.FromString(data)
        except DecodeError:
            return False
        known = model_admin_pb2.TriggerFineTuneRequest()
        known.CopyFrom(request)
        known.DiscardUnknownFields()
        if known.ByteSize() != request.ByteSize():
            return False
        job_ok = not request.job_id or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", request.job_id) is not None
        lr = request.learning_rate
        return job_ok and 0 <= request.max_steps <= 10000 and not math.isnan(lr) and 0 <= lr <= 1

    # --- running ----------------------------------------------------------------------------------
    def run(self, cases: int, threads: int = 8, timeout_s: float = 30.0, progress: Callable[[int], None] | None = None) -> FuzzReport:
        report = FuzzReport()
        started = time.monotonic()
        variants = {
            "admin": self.credentials["admin"], "storefront": self.credentials["storefront"],
            "none": self.credentials["admin"].without_key(), "unknown": self.credentials["admin"].with_key("sr_admin_not-a-real-key"),
        }
        channels = {(server, who): open_channel(address, cred) for server, address in self.addresses.items() for who, cred in variants.items()}
        done = [0]

        def one(index: int) -> None:
            rng = random.Random(self.seed * 1_000_003 + index)
            server, method, message = self.structured(rng)
            who = rng.choices(list(variants), weights=[55, 30, 10, 5])[0]
            payload = self.raw(rng, method, message) if rng.random() < 0.3 else message.SerializeToString()
            call = channels[(server, who)].unary_unary(method)
            try:
                call(payload, timeout=timeout_s)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
            with self._lock:
                report.cases += 1
                report.by_status[code.name] += 1
                report.by_method[f"{method.rsplit('/', 1)[1]} {code.name}"] += 1
                if code in FORBIDDEN and len(report.forbidden) < 50:
                    report.forbidden.append((method, code.name, details[:200]))
                if code == grpc.StatusCode.OK and method.endswith("/TriggerFineTune"):
                    report.ok_fine_tunes += 1
                done[0] += 1
                if progress and done[0] % 1000 == 0:
                    progress(done[0])

        try:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, range(cases)))
        finally:
            for channel in channels.values():
                channel.close()
        report.seconds = time.monotonic() - started
        return report
