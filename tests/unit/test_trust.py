"""Access control and privacy, each piece over real sockets or real stores: TLS (and mutual TLS) on a
gRPC port, API keys and roles in the one interceptor, the audit log, pseudonyms, forgetting a shopper
in every store, retention."""
from __future__ import annotations

import sqlite3
import time

import grpc
import pandas as pd
import pytest

from core.domain import Event, Example, ItemText, Lineage
from core.feature_sync import FeatureSync
from core.features import FeatureClient, apply
from core.model_repository import ModelRepository
from core.privacy import Pseudonyms, forget, purge_older_than, versions_trained_on
from core.security import ApiKeys, Client, ensure_secrets, key_digest
from core.settings import PROJECT_ROOT, Settings
from core.store import EventLog
from devtools.client import Credentials, open_channel
from services.auth import Authorizer
from services.grpc_server import build_server


def echo_server(settings: Settings, method: str = "/shoprank.v1.ScoringService/Rank", audit=None):
    service, name = method.strip("/").split("/")

    def register(server):
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            service, {name: grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok")})])

    return build_server([register], [service], "127.0.0.1:0", settings=settings, audit=audit)


def call(port: int, credentials: Credentials, method: str = "/shoprank.v1.ScoringService/Rank") -> tuple[grpc.StatusCode, str]:
    with open_channel(f"127.0.0.1:{port}", credentials) as channel:
        try:
            channel.unary_unary(method)(b"", timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as exc:
            return exc.code(), exc.details()


@pytest.fixture
def settings(tmp_path):
    s = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    ensure_secrets(s)
    return s


def test_generated_secrets_are_private_and_stable(settings):
    folder = settings.secrets_path
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    assert {"ca.pem", "server.pem", "server-key.pem", "api_keys.json", "storefront.key", "admin.key", "pseudonym.key"} <= set(before)
    for private in ("server-key.pem", "ca-key.pem", "admin.key", "storefront.key", "pseudonym.key", "api_keys.json"):
        assert (folder / private).stat().st_mode & 0o077 == 0, private
    assert (folder / "admin.key").read_text().strip() not in (folder / "api_keys.json").read_text()  # only hashes kept
    ensure_secrets(settings)
    assert before == {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def test_keys_and_roles_over_tls(settings):
    server, port, _ = echo_server(settings)
    admin_method = "/shoprank.v1.ModelAdminService/Rollback"
    server2, port2, _ = echo_server(settings, admin_method)
    server.start()
    server2.start()
    try:
        storefront, admin = Credentials.of(settings, "storefront"), Credentials.of(settings, "admin")
        assert call(port, storefront) == (grpc.StatusCode.OK, "")
        code, message = call(port, storefront.without_key())
        assert code == grpc.StatusCode.UNAUTHENTICATED and "authorization: Bearer" in message
        code, message = call(port, storefront.with_key("sr_admin_guessed"))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "not known" in message
        code, message = call(port2, storefront, admin_method)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "admin role" in message and "'storefront'" in message
        assert call(port2, admin, admin_method)[0] == grpc.StatusCode.OK
        assert call(port, admin)[0] == grpc.StatusCode.OK  # admin may do what a storefront may
        assert call(port, Credentials(None, storefront.key))[0] == grpc.StatusCode.UNAVAILABLE  # no plaintext port
    finally:
        server.stop(0)
        server2.stop(0)


def test_mutual_tls_refuses_clients_without_a_certificate(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models", tls_client_auth="require")
    ensure_secrets(settings)
    server, port, _ = echo_server(settings)
    server.start()
    try:
        with_cert = Credentials.of(settings, "storefront")
        assert with_cert.certificate is not None
        assert call(port, with_cert)[0] == grpc.StatusCode.OK
        assert call(port, Credentials(with_cert.ca, with_cert.key))[0] == grpc.StatusCode.UNAVAILABLE  # handshake refused
        # a service's own probe presents the service's pair (a client certificate too) and gets its answer
        from services.healthcheck import status

        assert status(f"127.0.0.1:{port}", "", settings) == "SERVING"
    finally:
        server.stop(0)


def test_admin_calls_are_audited_with_their_outcome(settings):
    log = EventLog.open(settings.eventlog)
    method = "/shoprank.v1.ModelAdminService/Rollback"
    server, port, _ = echo_server(settings, method, audit=log.audit)
    server.start()
    try:
        call(port, Credentials.of(settings, "admin"), method)
        call(port, Credentials.of(settings, "storefront"), method)
        call(port, Credentials.of(settings, "admin").without_key(), method)
    finally:
        server.stop(0)
    entries = log.audit.recent(10)
    assert [(e.client, e.outcome) for e in entries] == [
        ("anonymous", "UNAUTHENTICATED"), ("storefront", "PERMISSION_DENIED"), ("admin", "OK"), ("admin", "CALLED")]
    assert all(e.method == method and e.at > 0 and e.peer.startswith("ipv4:127.0.0.1:") for e in entries)
    assert entries[0].caller == "" and len(entries[1].caller) == 12 and entries[1].caller != entries[2].caller
    assert log.audit.verify().ok and log.audit.verify().chained_rows == 4


def test_authorizer_reads_both_headers():
    auth = Authorizer(ApiKeys({key_digest("k1"): Client("shop-a", "storefront")}))
    assert auth.authorize("/shoprank.v1.ScoringService/Rank", [("x-api-key", "k1")]).name == "shop-a"
    assert auth.authorize("/shoprank.v1.ScoringService/Rank", [("authorization", "Bearer k1")]).role == "storefront"
    assert Authorizer(None).authorize("/shoprank.v1.ModelAdminService/Rollback", []).role == "admin"  # RECSYS_AUTH=false


def test_pseudonyms_are_keyed_stable_and_opaque():
    a, b = Pseudonyms(b"k" * 32), Pseudonyms(b"j" * 32)
    assert a("C15444") == a("C15444") != b("C15444")
    assert a("C15444").startswith("p") and "15444" not in a("C15444") and len(a("C15444")) == 33
    with pytest.raises(ValueError):
        Pseudonyms(b"short")


def test_forget_removes_the_shopper_from_every_store(settings):
    apply(settings)
    log = EventLog.open(settings.eventlog)
    catalogue = {i: ItemText(f"item {i}") for i in "abc"}
    log.catalogue.upsert(catalogue)
    features = FeatureClient(settings)
    features.push_items(catalogue)
    sync = FeatureSync(log, features)
    key, other = Pseudonyms.of(settings)("shopper-to-forget"), Pseudonyms.of(settings)("someone-else")
    now = time.time()
    log.events.append([Event("f1", key, "a", "purchase", now - 10), Event("f2", key, "b", "click", now - 5),
                       Event("o1", other, "a", "purchase", now - 3)])
    sync.after_batch({key, other}, {"a", "b"})
    log.replay(100).add([Example("bought: item a", "item b", 1.0, key), Example("bought: item a", "item c", 0.0, other)])
    repo = ModelRepository(settings.model_repository, "fusion_click")
    repo.publish(lambda p: (p / "model.pt").write_bytes(b"w"), Lineage("", "", now, now - 10, now - 3, 3, 0.5, "b", seq_to=3), tag="b")
    assert features.has_user(key) and features.get_items(["a"], popularity=True)["a"].popularity_30d == 2

    receipt = forget(key, "admin", settings, log, features, repo, sync)

    assert receipt.removed["events"] == 2 and receipt.removed["replay_examples"] == 1 and receipt.removed["online_feature_rows"] > 0
    assert receipt.trained_versions == ["1"] and receipt.requested_by == "admin"
    assert log.erasures.of_user(key)[0].receipt_id == receipt.receipt_id
    # search every store: the event log's tables, Feast's online store, the replay reservoir, Feast's offline files
    assert log.events.of_user(key) == [] and log.replay(100).count_user(key) == 0 and not features.has_user(key)
    with sqlite3.connect(settings.data_dir / "eventlog.db") as db:
        for table in ("events", "replay_buffer", "jobs", "items"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            assert not any(key in str(r) for r in rows), table
    with sqlite3.connect(settings.feast_dir / "online_store.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            assert not any(key.encode() in bytes(r[0]) for r in db.execute(f"SELECT entity_key FROM {table}") if isinstance(r[0], bytes)), table
    for parquet in (PROJECT_ROOT / "feature_repo" / "data").glob("*.parquet"):
        assert key not in pd.read_parquet(parquet).astype(str).to_string()
    # the shop's popularity no longer counts their events; the other shopper is untouched
    assert features.get_items(["a"], popularity=True)["a"].popularity_30d == 1
    assert features.get_user(other) is not None and log.replay(100).count_user(other) == 1


def test_versions_trained_on_uses_the_arrival_window(tmp_path):
    repo = ModelRepository(tmp_path / "models", "fusion_click")
    for seq_to in (10, 20):
        repo.publish(lambda p: (p / "model.pt").write_bytes(b"w"), Lineage("", "", 0.0, 0.0, 0.0, 1, 0.5, "j", seq_to=seq_to), tag="j")
    assert versions_trained_on(repo, [15, 30], [5.0, 6.0]) == ["2"]
    assert versions_trained_on(repo, [5], [1.0]) == ["1", "2"]
    assert versions_trained_on(repo, [25], [1.0]) == []


def test_retention_deletes_old_events_only(tmp_path):
    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    now = 100 * 86400.0
    log.events.append([Event("old", "u", "a", "purchase", now - 40 * 86400), Event("new", "u", "a", "purchase", now - 86400)])
    assert purge_older_than(log, 30, now=now) == (1, 1)
    assert [e.event_id for e in log.events.read()] == ["new"]


@pytest.mark.redis
def test_forget_on_the_redis_online_store_removes_only_that_shopper(tmp_path):
    """The Redis store (core.feast_redis, chosen by the config's type) forgets through the same interface."""
    from devtools.local_servers import flush_redis_db, redis_available

    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    flush_redis_db(REDIS_FORGET_DB)
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models", feast_online_url=f"redis://127.0.0.1:6379/{REDIS_FORGET_DB}")
    try:
        apply(settings)
        features = FeatureClient(settings)
        assert type(features.online).__name__ == "ErasableRedisOnlineStore" and features.reachable()
        log = EventLog.open(settings.eventlog)
        log.catalogue.upsert({"a": ItemText("item a")})
        features.push_items({"a": ItemText("item a")})
        now = time.time()
        log.events.append([Event("r1", "shopper-1", "a", "purchase", now - 5), Event("r2", "shopper-2", "a", "click", now - 3)])
        FeatureSync(log, features).after_batch({"shopper-1", "shopper-2"}, {"a"})
        assert features.has_user("shopper-1") and features.get_user("shopper-1") is not None

        assert features.forget_user("shopper-1") >= 1
        assert not features.has_user("shopper-1") and features.get_user("shopper-1") is None
        assert features.has_user("shopper-2") and features.get_items(["a"])["a"].text.title == "item a"
        assert features.forget_user("shopper-1") == 0  # idempotent
    finally:
        flush_redis_db(REDIS_FORGET_DB)


REDIS_FORGET_DB = 10  # its own database: the reliability bench flushes 11, the ingest test 12
