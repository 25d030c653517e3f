"""Issue 25's findings, each against a real TLS gRPC server with API keys: no work before
authentication, per-RPC message limits, a thread budget reflection cannot take, shopper ids redacted in
the audit log, a chained audit log whose edits show, refusals that cannot flood it, one id validator."""
from __future__ import annotations

import queue
import sqlite3
import threading
import time

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from core.errors import InvalidArgument
from core.experiments.definition import Arm, Experiment, ExperimentError, validated
from core.ids import check_id, check_name, parse_version
from core.security import ensure_secrets
from core.settings import Settings
from core.store import EventLog
from devtools.client import Credentials, open_channel
from services.audit_trail import RefusalLimiter, summary
from services.grpc_server import build_server
from services.interceptors import MESSAGE_LIMITS
from shoprank.v1 import model_admin_pb2

RANK = "/shoprank.v1.ScoringService/Rank"
CREATE = "/shoprank.v1.ModelAdminService/CreateExperiment"
FORGET = "/shoprank.v1.ModelAdminService/ForgetUser"


@pytest.fixture
def settings(tmp_path):
    s = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    ensure_secrets(s)
    return s


class Recorder:
    """Generic handlers for some methods that count how often their request bytes were parsed."""

    def __init__(self, methods: list[str], on_call=None, message=None) -> None:
        self.methods, self.parsed, self.on_call, self.message = methods, 0, on_call or (lambda request: None), message

    def parse(self, data: bytes):
        self.parsed += 1
        return self.message.FromString(data) if self.message else data

    def register(self, server: grpc.Server) -> None:
        by_service: dict[str, dict] = {}
        for method in self.methods:
            service, name = method.strip("/").split("/")
            by_service.setdefault(service, {})[name] = grpc.unary_unary_rpc_method_handler(
                self.answer, request_deserializer=self.parse)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items()])

    def answer(self, request, context) -> bytes:
        self.on_call(request)
        return b"ok"


def serve(settings: Settings, recorder: Recorder, audit=None, workers: int = 4):
    server, port, _ = build_server([recorder.register], ["shoprank.v1.ScoringService"], "127.0.0.1:0", workers=workers,
                                   settings=settings, audit=audit)
    server.start()
    return server, port


def call(port: int, credentials: Credentials, method: str, body: bytes = b"", timeout: float = 10) -> grpc.StatusCode:
    with open_channel(f"127.0.0.1:{port}", credentials) as channel:
        try:
            channel.unary_unary(method)(body, timeout=timeout)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_no_request_body_is_parsed_before_the_key_is_checked(settings):
    recorder = Recorder([RANK, CREATE])
    server, port = serve(settings, recorder)
    try:
        admin = Credentials.of(settings, "admin")
        big = b"\x0a" + b"x" * (3 * 1024 * 1024)
        assert call(port, admin.without_key(), CREATE, big) == grpc.StatusCode.UNAUTHENTICATED
        assert call(port, admin.with_key("sr_guess"), RANK, big) == grpc.StatusCode.UNAUTHENTICATED
        assert call(port, Credentials.of(settings, "storefront"), CREATE, big) == grpc.StatusCode.PERMISSION_DENIED
        assert recorder.parsed == 0  # refused from the metadata alone
        assert call(port, admin, RANK, b"small") == grpc.StatusCode.OK and recorder.parsed == 1
    finally:
        server.stop(0)


def test_each_rpc_has_its_own_message_limit(settings):
    recorder = Recorder([RANK, CREATE])
    server, port = serve(settings, recorder)
    try:
        admin = Credentials.of(settings, "admin")
        assert call(port, admin, CREATE, b"x" * (100 * 1024)) == grpc.StatusCode.RESOURCE_EXHAUSTED  # 64 KiB for admin calls
        assert call(port, admin, RANK, b"x" * (100 * 1024)) == grpc.StatusCode.OK  # Rank may carry 1 MiB
        assert call(port, admin, RANK, b"x" * (MESSAGE_LIMITS[RANK] + 1)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert recorder.parsed == 1
    finally:
        server.stop(0)


def test_reflection_needs_a_key_and_idle_streams_cannot_starve_rank(settings):
    server, port = serve(settings, Recorder([RANK]), workers=4)
    storefront = Credentials.of(settings, "storefront")
    channels, feeds = [], []
    try:
        def open_stream(credentials: Credentials):
            channel = open_channel(f"127.0.0.1:{port}", credentials, own_connection=True)
            channels.append(channel)
            feed: queue.Queue = queue.Queue()
            feeds.append(feed)
            responses = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter(feed.get, None), timeout=20)
            feed.put(reflection_pb2.ServerReflectionRequest(list_services=""))
            return responses

        with pytest.raises(grpc.RpcError) as refused:
            next(open_stream(storefront.without_key()))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        first = open_stream(storefront)
        assert "shoprank.v1.ScoringService" in {s.name for s in next(first).list_services_response.service}
        second = open_stream(storefront)
        next(second)
        with pytest.raises(grpc.RpcError) as third:  # both slots are held by idle streams
            next(open_stream(storefront))
        assert third.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        answers = [call(port, storefront, RANK, b"r", timeout=3) for _ in range(8)]  # two of four threads are left
        assert answers == [grpc.StatusCode.OK] * 8
    finally:
        for feed in feeds:
            feed.put(None)
        for channel in channels:
            channel.close()
        server.stop(0)


def test_audit_summaries_carry_pseudonyms_never_shopper_ids(settings):
    log = EventLog.open(settings.eventlog, settings.audit_log)
    recorder = Recorder([FORGET], message=model_admin_pb2.ForgetUserRequest)
    server, port = serve(settings, recorder, audit=log.audit)
    try:
        body = model_admin_pb2.ForgetUserRequest(user_id="C-RAW-SHOPPER-17").SerializeToString()
        assert call(port, Credentials.of(settings, "admin"), FORGET, body) == grpc.StatusCode.OK
    finally:
        server.stop(0)
    rows = log.audit.recent(10)
    assert rows and all("C-RAW-SHOPPER-17" not in r.request for r in rows)
    from core.privacy import Pseudonyms

    assert Pseudonyms.of(settings)("C-RAW-SHOPPER-17") in rows[0].request
    assert settings.audit_log != settings.eventlog  # SQLite: the audit log is a file of its own, off ingest's lock
    for path in settings.data_dir.glob("*.db*"):
        assert b"C-RAW-SHOPPER-17" not in path.read_bytes(), path


def test_summaries_are_bounded_and_redact_nested_ids():
    request = model_admin_pb2.ForgetUserRequest(user_id="raw-id")
    assert summary(request, lambda u: "p" + str(len(u))) == 'user_id: "p6"'
    assert check_id("bad id\n", "user_id") is not None and "bad id" not in check_id("bad id\n", "user_id")
    big = model_admin_pb2.ListAuditRequest(limit=5)
    assert summary(big, str) == "limit: 5"


def test_an_edited_audit_row_breaks_the_chain(settings):
    log = EventLog.open(settings.eventlog, settings.audit_log)
    for outcome in ("CALLED", "OK", "CALLED", "PERMISSION_DENIED"):
        log.audit.record("admin", "/shoprank.v1.ModelAdminService/Rollback", "version: \"2\"", outcome, "", caller="abc", peer="ipv4:1")
    assert log.audit.verify().ok and log.audit.verify().chained_rows == 4
    path = settings.audit_log.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE audit_log SET outcome = 'OK' WHERE id = 4")
    check = log.audit.verify()
    assert not check.ok and "row 4" in check.problem
    with sqlite3.connect(path) as db:
        db.execute("UPDATE audit_log SET outcome = 'PERMISSION_DENIED' WHERE id = 4")
        db.execute("DELETE FROM audit_log WHERE id = 2")
    assert not log.audit.verify().ok and "row 3" in log.audit.verify().problem


def test_refusals_are_rate_limited_and_counted():
    limiter = RefusalLimiter(per_window=5, window_s=10)
    admitted = [limiter.admit("/m", "UNAUTHENTICATED", now=1.0 + i * 0.01) for i in range(50)]
    assert sum(write for write, _ in admitted) == 5
    assert limiter.admit("/m", "UNAUTHENTICATED", now=12.0) == (True, 45)  # the next row counts what was held back
    assert limiter.admit("/m", "PERMISSION_DENIED", now=12.0) == (True, 0)


def test_a_refusal_flood_writes_a_handful_of_rows(settings):
    log = EventLog.open(settings.eventlog, settings.audit_log)
    server, port = serve(settings, Recorder([CREATE]), audit=log.audit)
    try:
        nobody = Credentials.of(settings, "admin").without_key()
        assert all(call(port, nobody, CREATE) == grpc.StatusCode.UNAUTHENTICATED for _ in range(40))
    finally:
        server.stop(0)
    assert len(log.audit.recent(100)) <= 5


def test_the_intent_row_is_written_before_the_admin_handler_runs(settings):
    log = EventLog.open(settings.eventlog, settings.audit_log)
    seen: list[list[str]] = []
    recorder = Recorder([CREATE], on_call=lambda request: seen.append([r.outcome for r in log.audit.recent(5)]))
    server, port = serve(settings, recorder, audit=log.audit)
    try:
        assert call(port, Credentials.of(settings, "admin"), CREATE, b"") == grpc.StatusCode.OK
    finally:
        server.stop(0)
    assert seen == [["CALLED"]]
    assert [r.outcome for r in log.audit.recent(5)] == ["OK", "CALLED"]


def test_one_id_validator_refuses_what_drifted_between_modules():
    assert check_name("exp-1\n", "experiment_id") is not None  # re.match("^…$") let this through
    with pytest.raises(InvalidArgument):
        parse_version("²")
    with pytest.raises(InvalidArgument):
        parse_version("٣")
    for version in ("²", "٣"):
        arms = (Arm("control", "1", 0.5), Arm("b", version, 0.5))
        with pytest.raises(ExperimentError, match="no published version"):
            validated(Experiment("e1", arms, "control"), published=[1, 2], serving=1)
    with pytest.raises(ExperimentError, match="arm name"):
        validated(Experiment("e1", (Arm("control", "1", 0.5), Arm("b\nforged", "2", 0.5)), "control"), [1, 2], 1)
    long_bad = "x" * 600 + "\n"
    assert len(check_name(long_bad, "experiment_id") or "") < 140  # an echo is cut short (600 characters sent)
    assert len(check_id("y" * 100 + " ", "item_id") or "") < 140


def test_concurrency_is_bounded_by_the_server(settings):
    """More calls in flight than maximum_concurrent_rpcs are refused at once, not queued without bound."""
    release = threading.Event()
    recorder = Recorder([RANK], on_call=lambda request: release.wait(10))
    server, port = serve(settings, recorder, workers=2)  # max(64, 8 * 2) = 64 in flight
    storefront = Credentials.of(settings, "storefront")
    try:
        with open_channel(f"127.0.0.1:{port}", storefront) as channel:
            rank = channel.unary_unary(RANK)
            futures = [rank.future(b"r", timeout=15) for _ in range(80)]
            deadline = time.monotonic() + 5
            while sum(f.done() for f in futures) < 16 and time.monotonic() < deadline:
                time.sleep(0.05)
            refused = [f for f in futures if f.done() and f.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
            release.set()
            assert len(refused) == 16  # 64 in flight (2 running, 62 waiting for a thread), 16 refused at once
            assert sum(f.code() == grpc.StatusCode.OK for f in futures) == 64
    finally:
        release.set()
        server.stop(0)


def test_pins_beyond_k_are_refused_before_being_checked():
    from services.validation import validate_rules
    from shoprank.v1 import common_pb2

    rules = common_pb2.RecommendRules(pins=[common_pb2.Pin(item_id=f"i{n}", position=1) for n in range(10_000)])
    with pytest.raises(InvalidArgument, match="at most k"):
        validate_rules(rules, k=10)


def test_the_client_refuses_plaintext_unless_asked():
    from shoprank_client import ShopRankClient
    from shoprank_client.channel import open_channel as client_channel

    with pytest.raises(ValueError, match="plaintext=True"):
        ShopRankClient("127.0.0.1:1", api_key="sr_secret")
    with pytest.raises(ValueError, match="no CA"):
        client_channel("127.0.0.1:1", None, "sr_secret")
    client_channel("127.0.0.1:1", None, "sr_secret", plaintext=True).close()


def test_deleting_nothing_costs_no_shop_wide_refresh(settings):
    from core.domain import ItemText
    from core.feature_sync import FeatureSync
    from core.features import FeatureClient, apply
    from core.privacy import Pseudonyms
    from services.feedback_service import FeedbackServicer
    from shoprank.v1 import feedback_pb2

    class CountingSync(FeatureSync):
        refreshes = 0

        def refresh_all(self) -> None:
            CountingSync.refreshes += 1
            super().refresh_all()

    apply(settings)
    log, features = EventLog.open(settings.eventlog), FeatureClient(settings)
    log.catalogue.upsert({"a": ItemText("an item")})
    servicer = FeedbackServicer(settings, log, features, sender=None, pseudonyms=Pseudonyms.of(settings),
                                sync=CountingSync(log, features))
    reply = servicer.DeleteItems(feedback_pb2.DeleteItemsRequest(item_ids=["no-such-item", "bad id"]), None)
    assert reply.deleted == 0 and len(reply.rejected) == 2 and CountingSync.refreshes == 0
    assert servicer.DeleteItems(feedback_pb2.DeleteItemsRequest(item_ids=["a"]), None).deleted == 1
    assert CountingSync.refreshes == 1
