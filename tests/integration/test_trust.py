"""Trust on the running suite: shopper ids never reach a store in clear, ForgetUser reaches every store
and leaves a receipt, admin calls are audited, and Triton's ports listen on loopback only."""
from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from core.features import FeatureClient
from core.privacy import Pseudonyms
from core.store import EventLog
from devtools.client import event_message
from shoprank.v1 import feedback_pb2, model_admin_pb2, profile_pb2

pytestmark = pytest.mark.integration


def store_files(data_dir: Path) -> list[Path]:
    """Every file the event log and Feast's online store live in (WAL files included)."""
    return [p for p in data_dir.rglob("*") if p.is_file() and (".db" in p.name) and "celery" not in p.name]


def test_shopper_ids_are_pseudonymised_at_rest(serving_suite):
    from core.domain import Event

    client = serving_suite.client()
    storefront_id = "trust-clear-id-7731"
    event = Event("trust-e1", storefront_id, "SKU0001", "purchase", time.time() - 5)
    reply = client.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(event)]), timeout=30)
    assert reply.accepted == 1
    profile = client.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=storefront_id), timeout=30)
    assert profile.user_id == storefront_id and profile.purchase_count == 1  # the storefront's id keeps working
    settings = serving_suite.settings()
    key = Pseudonyms.of(settings)(storefront_id)
    assert [e.event_id for e in EventLog.open(settings.eventlog).events.of_user(key)] == ["trust-e1"]
    files = store_files(settings.data_dir)
    assert any("eventlog" in p.name for p in files) and any("online_store" in p.name for p in files)
    for path in files:
        assert storefront_id.encode() not in path.read_bytes(), f"{path} holds the storefront id in clear"
    client.close()


def test_forget_user_reaches_every_store_and_is_audited(serving_suite):
    from core.domain import Event

    settings = serving_suite.settings()
    storefront = serving_suite.client(role="storefront")
    admin = serving_suite.client(role="admin")
    shopper = "trust-forget-me"
    now = time.time()
    events = [Event(f"trust-f{k}", shopper, f"SKU{k:04d}", "purchase" if k % 2 else "click", now - 60 + k) for k in range(1, 5)]
    storefront.record_events(events)
    assert storefront.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=shopper), timeout=30).event_count == 4

    with pytest.raises(grpc.RpcError) as denied:
        storefront.admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=shopper), timeout=30)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    receipt = admin.admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=shopper), timeout=60)
    key = Pseudonyms.of(settings)(shopper)
    assert receipt.user_key == key and receipt.requested_by == "admin" and receipt.receipt_id
    assert receipt.removed["events"] == 4 and receipt.removed["online_feature_rows"] > 0
    assert list(receipt.trained_versions) == []  # arrived after version 1's window

    # every store searched for them afterwards
    log = EventLog.open(settings.eventlog)
    assert log.events.of_user(key) == [] and log.replay(settings.replay_capacity).count_user(key) == 0
    assert not FeatureClient(settings).has_user(key)
    with pytest.raises(grpc.RpcError) as gone:
        storefront.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=shopper), timeout=30)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    ranked = storefront.rank(shopper, ["SKU0001", "SKU0002"])  # ranked again as a new shopper
    assert len(ranked.items) == 2 and not ranked.degraded

    never_seen = "trust-never-seen-4411"
    with pytest.raises(grpc.RpcError) as unknown:
        storefront.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=never_seen), timeout=30)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND and never_seen not in unknown.value.details()

    listed = admin.admin.ListAudit(model_admin_pb2.ListAuditRequest(limit=20), timeout=30)
    forgets = [(e.client, e.outcome) for e in listed.entries if e.method.endswith("/ForgetUser")]
    assert ("admin", "OK") in forgets and ("admin", "CALLED") in forgets and ("storefront", "PERMISSION_DENIED") in forgets
    assert listed.chain_ok and listed.chained_entries >= 3 and not listed.chain_problem
    assert all(e.peer for e in listed.entries) and all(e.caller for e in listed.entries if e.outcome != "UNAUTHENTICATED")
    # no raw shopper id at rest: every file of the deployment (stores, WALs, audit log, service logs)
    time.sleep(1)  # log lines flushed
    for path in raw_id_files(settings.data_dir):
        data = path.read_bytes()
        for raw in (shopper, never_seen):
            assert raw.encode() not in data, f"{path} holds the shopper id {raw!r}"
    storefront.close()
    admin.close()


def raw_id_files(data_dir: Path) -> list[Path]:
    """Every file under the data directory but model weights (the model repository and its exports)."""
    return [p for p in data_dir.rglob("*") if p.is_file() and p.suffix not in (".pt", ".onnx", ".safetensors", ".bin")]


def test_forgetting_a_trained_on_shopper_names_the_versions(serving_suite, shop):
    admin = serving_suite.client(role="admin")
    shopper = sorted({e.user_id for e in shop.split(0.6)[0]})[-1]  # in version 1's training data
    receipt = admin.admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=shopper), timeout=60)
    assert receipt.removed["events"] > 0 and "1" in receipt.trained_versions
    admin.close()


LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")  # 127.0.0.1, ::1, ::ffff:127.0.0.1


def test_triton_listens_on_loopback_only(serving_suite):
    """Triton's gRPC API loads and unloads models: no other machine may reach it."""
    triton = serving_suite.triton
    for port in (triton.grpc_port, triton.http_port):
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    listening.append(address)
        assert listening and all(a in LOOPBACK for a in listening), (port, listening)
