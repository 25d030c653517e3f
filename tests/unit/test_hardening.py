"""Issue 10, items 3-5: version numbers, job ids, ids and texts that reach files or terminals, and
inputs echoed back, handled at their cause."""
from __future__ import annotations

import grpc
import pytest

from core.domain import Lineage
from core.errors import InvalidArgument, status_for
from core.ids import check_id, check_job_id, parse_version
from core.model_repository import TMP_PREFIX, ModelRepository
from services.interceptors import reject_unknown_fields
from services.validation import validate_events, validate_items
from shoprank.v1 import common_pb2, feedback_pb2, model_admin_pb2


@pytest.mark.parametrize("text", ["²", "①", "٢", "1" * 5000, "-1", "1.0", " 1", "1\n", ""])
def test_rollback_versions_are_ascii_digits_or_invalid_argument(text):
    with pytest.raises(InvalidArgument) as info:
        parse_version(text)
    assert status_for(info.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert len(info.value.message) < 200  # a 5,000-digit string is not echoed whole


def test_version_numbers_parse():
    assert parse_version("2") == 2 and parse_version("012") == 12


@pytest.mark.parametrize("job_id", ["x/../../../../outside", "..", "a.b", "abc\n", "a b", "é", "x" * 65, ""])
def test_job_ids_that_could_reach_the_file_system_are_refused(job_id):
    assert check_job_id(job_id) is not None


@pytest.mark.parametrize("job_id", ["ft-0123abcd", "volume-v1-1700000000-2", "good", "after_kill"])
def test_ordinary_job_ids_pass(job_id):
    assert check_job_id(job_id) is None


def test_ids_with_a_trailing_newline_are_refused():
    assert check_id("abc\n", "user_id") is not None and check_id("abc", "user_id") is None


def test_a_publish_tag_never_leaves_the_model_folder(tmp_path):
    repo = ModelRepository(tmp_path, "bert_click")
    lineage = Lineage("", "", 0.0, 0.0, 0.0, 0, 0.0, "j")

    def write(folder):
        assert folder.parent == repo.model_dir and folder.name.startswith(TMP_PREFIX)
        (folder / "model.pt").write_bytes(b"w")

    assert repo.publish(write, lineage, tag="x/../../../../outside") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert_click"]


def test_titles_with_terminal_escapes_are_rejected():
    items = [common_pb2.Item(item_id="a", title="\x1b[2J\x1b[31mred"), common_pb2.Item(item_id="b", title="Plain mug")]
    good, bad = validate_items(items)
    assert list(good) == ["b"] and "control characters" in bad[0].reason


def test_rejections_do_not_echo_huge_ids():
    huge = "e" * 1_000_000
    _, bad = validate_events([common_pb2.Event(event_id=huge, user_id="u", item_id="i", event_type=common_pb2.EVENT_TYPE_PURCHASE)], ["i"])
    assert len(bad[0].id) <= 128 and len(bad[0].reason) < 200


def test_bytes_of_another_message_are_not_a_request():
    """Bytes that happen to parse (here: an Item's, whose field 1 lands on job_id) carry unknown fields:
    refused instead of queueing a fine-tune with whatever job_id fell out."""
    foreign = common_pb2.Item(item_id="x", title="not a job", description="d", category="c", price=3.0).SerializeToString()
    request = model_admin_pb2.TriggerFineTuneRequest.FromString(foreign)
    with pytest.raises(InvalidArgument) as info:
        reject_unknown_fields(request)
    assert "shoprank.v1.TriggerFineTuneRequest" in info.value.message


def test_a_well_formed_request_passes_the_unknown_field_check():
    reject_unknown_fields(feedback_pb2.RecordEventsRequest(events=[common_pb2.Event(event_id="e", user_id="u")]))
    reject_unknown_fields(model_admin_pb2.TriggerFineTuneRequest(job_id="j", max_steps=3))


def test_bytes_that_are_not_a_message_are_invalid_argument_not_internal():
    """gRPC itself answers INTERNAL "Exception deserializing request!"; the interceptor's lenient
    deserializer turns such bytes into INVALID_ARGUMENT naming the message (the fuzz test found it)."""
    import grpc

    from services.grpc_server import build_server
    from shoprank.v1 import model_admin_pb2

    served = []

    def register(server):
        handler = grpc.unary_unary_rpc_method_handler(lambda r, c: served.append(r) or model_admin_pb2.GetJobResponse(job_id="x"),
                                                      request_deserializer=model_admin_pb2.TriggerFineTuneRequest.FromString,
                                                      response_serializer=model_admin_pb2.GetJobResponse.SerializeToString)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("shoprank.v1.ModelAdminService", {"TriggerFineTune": handler})])

    server, port, _ = build_server([register], ["shoprank.v1.ModelAdminService"], "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/shoprank.v1.ModelAdminService/TriggerFineTune")
            for garbage in (b"\x07\x01", b"\xff\xff\xff", b"\x0a\x05ab"):
                try:
                    call(garbage, timeout=5)
                    raise AssertionError(f"{garbage!r} was accepted")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
                    assert "not a valid shoprank.v1.TriggerFineTuneRequest" in exc.details()
    finally:
        server.stop(0)
    assert served == []  # the handler never ran
