"""Health tells the truth: with tritonserver down the scoring service answers Rank `degraded: true`
from the request order and reports NOT_SERVING; when Triton is back, SERVING again. The feedback and
profile services follow their online store the same way."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

from core.settings import PROJECT_ROOT
from devtools.ports import free_port, wait_until
from devtools.suite import grpc_serving
from tests.integration.conftest import start_deployment

pytestmark = pytest.mark.integration

SCORING = "shoprank.v1.ScoringService"


def wait_for(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_scoring_health_follows_triton(tmp_path, shop):
    suite = start_deployment(tmp_path, shop, {})
    client = suite.client("feedback", "scoring")
    try:
        assert grpc_serving(suite.address("scoring"), SCORING, suite.credentials())
        triton = suite.triton
        assert triton is not None
        triton.stop()
        suite.triton = None
        assert wait_for(lambda: not triton.group_alive(), 10), "tritonserver's python stubs outlived it"
        assert wait_for(lambda: not grpc_serving(suite.address("scoring"), SCORING, suite.credentials())), "scoring stayed SERVING with Triton down"
        reply = client.rank("U0001", ["SKU0001", "SKU1001", "SKU2001"])
        assert reply.degraded and [i.item_id for i in reply.items] == ["SKU0001", "SKU1001", "SKU2001"]
        suite.start_triton()
        assert wait_for(lambda: grpc_serving(suite.address("scoring"), SCORING, suite.credentials())), "scoring did not come back"
        assert not client.rank("U0001", ["SKU0001", "SKU1001"]).degraded

        # `make up`'s supervision: whatever is killed is started again, ready, on the same address
        suite.kill_process_keep("scoring")
        suite.kill_process_keep("worker")
        suite.triton.process.kill()
        suite.triton.process.wait()
        assert sorted(suite.restart_dead()) == ["scoring", "triton", "worker"]
        assert grpc_serving(suite.address("scoring"), SCORING, suite.credentials())
        assert wait_for(lambda: not client.rank("U0001", ["SKU0001", "SKU1001"]).degraded)
        assert suite.restart_dead() == []
    finally:
        client.close()
        suite.stop()


def _redis_server(port: int, folder) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _answers(port), 10), "redis-server did not start"
    return proc


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary for a Redis that can be stopped")
def test_feedback_and_profile_health_follow_the_online_store(serving_suite, tmp_path):
    """Both services read a private Redis as their online store: killed, they report NOT_SERVING;
    started again on the same port, SERVING, without a restart of the services."""
    redis_port = free_port()
    redis = _redis_server(redis_port, tmp_path)
    env = {**serving_suite.env(), "RECSYS_FEAST_ONLINE_URL": f"redis://127.0.0.1:{redis_port}/0"}
    services = {"feedback": ("services.feedback_service", "shoprank.v1.FeedbackService"),
                "profile": ("services.profile_service", "shoprank.v1.ProfileService")}
    procs, addresses = {}, {}
    try:
        for name, (module, _) in services.items():
            addresses[name] = f"127.0.0.1:{free_port()}"
            procs[name] = subprocess.Popen([sys.executable, "-m", module, "--address", addresses[name]], env=env, cwd=PROJECT_ROOT,
                                           stdout=open(tmp_path / f"{name}.log", "wb"), stderr=subprocess.STDOUT)
        credentials = serving_suite.credentials()
        for name, (_, service) in services.items():
            wait_until(lambda a=addresses[name], s=service: grpc_serving(a, s, credentials), procs[name], 120, name, tmp_path / f"{name}.log")
        redis.kill()
        redis.wait()
        for name, (_, service) in services.items():
            assert wait_for(lambda a=addresses[name], s=service: not grpc_serving(a, s, credentials)), f"{name} stayed SERVING without its online store"
        redis = _redis_server(redis_port, tmp_path)
        for name, (_, service) in services.items():
            assert wait_for(lambda a=addresses[name], s=service: grpc_serving(a, s, credentials)), f"{name} did not come back with its online store"
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        redis.kill()
        redis.wait()


def test_tritons_control_api_needs_the_control_key(serving_suite):
    """Finding 4 of issue 25: loading a model runs its code, so Triton's model-control API (and the
    repository index, shared memory, trace and logging) answer only callers with the deployment's
    control key; inference and health stay open to the services on Triton's network."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from core.security import TRITON_GRPC_CONTROL_HEADER, triton_control_key
    from rankers import get_ranker

    settings = serving_suite.settings()
    model, key = get_ranker(settings.ranker).model_name, triton_control_key(settings)
    assert key
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{serving_suite.ports['triton_grpc']}")
    try:
        assert client.is_server_ready() and client.is_model_ready(model)  # health: open
        for call in (lambda h: client.get_model_repository_index(headers=h), lambda h: client.load_model(model, headers=h),
                     lambda h: client.unload_model("no_such_model", headers=h)):
            for wrong in (None, {TRITON_GRPC_CONTROL_HEADER: "guess"}):
                with pytest.raises(InferenceServerException, match="protocol is restricted"):
                    call(wrong)
        index = client.get_model_repository_index(headers={TRITON_GRPC_CONTROL_HEADER: key}, as_json=True)
        assert any(m.get("name") == model for m in index.get("models", []))
    finally:
        client.close()

