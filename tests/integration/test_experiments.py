"""Online experiments through real gRPC against real processes (feedback + attributor, scoring,
tritonserver serving several versions): simulated shoppers with hidden drifting tastes
(shopdata/simulator.py) meet a good and a deliberately degraded version; attribution must be exact,
the degraded canary must lose and be rolled back, shadows must never be shown."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
import requests

from core.features import FeatureClient
from core.model_repository import ModelRepository
from core.privacy import Pseudonyms
from core.settings import PROJECT_ROOT
from core.store import EventLog
from devtools.client import SuiteClient
from devtools.degrade import publish_copy, publish_degraded
from devtools.online_sim import simulate
from devtools.ports import eventually, free_port, wait_until
from devtools.suite import deploy, grpc_serving
from shopdata.simulator import SimulatedShoppers
from shopdata.synthetic import generate
from shoprank.v1 import experiments_pb2, model_admin_pb2

pytestmark = pytest.mark.integration

ENV = {"RECSYS_MAX_CANDIDATES": "50", "RECSYS_FINE_TUNE_BATCH": "8", "RECSYS_FINE_TUNE_STEPS": "3",
       "RECSYS_ATTRIBUTION_GRACE_S": "0.5", "RECSYS_EXPERIMENT_CHECK_S": "1",
       # gated fine-tunes start as canaries on 10% of shoppers (a tolerant gate: the test is about what follows it)
       "RECSYS_CANARY_SHARE": "0.1", "RECSYS_GATE_NDCG_TOLERANCE": "1.0"}


@pytest.fixture(scope="module")
def shop():
    """More shoppers than the shared suite's 16: the sequential test counts a look only once each arm
    has core.experiments.stats.MIN_UNITS shoppers."""
    return generate(n_users=40, n_days=30, seed=11)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, shop):
    suite = deploy(tmp_path_factory.mktemp("experiments"), shop, ENV, bootstrap_steps=20)
    settings = suite.settings()
    repo = ModelRepository(settings.model_repository, "fusion_click")
    degraded = publish_degraded(repo, 1)
    client = suite.client()
    yield suite, client, repo, degraded
    client.close()
    suite.stop()


def arms(*specs: tuple[str, int, float, bool]) -> list[experiments_pb2.ExperimentArm]:
    return [experiments_pb2.ExperimentArm(name=n, version=str(v), share=s, shadow=sh) for n, v, s, sh in specs]


def create(client, experiment_id: str, arm_list, canary: bool = False, control_arm: str = "", **policy) -> experiments_pb2.Experiment:
    request = model_admin_pb2.CreateExperimentRequest(experiment_id=experiment_id, arms=arm_list, canary=canary, control_arm=control_arm,
                                                      policy=experiments_pb2.ExperimentPolicy(**policy))
    return client.admin.CreateExperiment(request, timeout=180).experiment


def get(client, experiment_id: str) -> experiments_pb2.Experiment:
    return client.admin.GetExperiment(model_admin_pb2.GetExperimentRequest(experiment_id=experiment_id), timeout=60).experiment


def test_bad_experiments_get_clear_statuses(deployment):
    _, client, _, degraded = deployment
    cases = [
        (arms(("control", 1, 0.5, False), ("b", 99, 0.5, False)), grpc.StatusCode.INVALID_ARGUMENT, "no published version"),
        (arms(("control", 1, 0.5, False), ("b", degraded, 0.6, False)), grpc.StatusCode.INVALID_ARGUMENT, "sum to 1.1"),
        (arms(("control", degraded, 0.5, False), ("b", 1, 0.5, False)), grpc.StatusCode.INVALID_ARGUMENT, "must serve the current version"),
        (arms(("control", 1, 1.0, False)), grpc.StatusCode.INVALID_ARGUMENT, "2 to 8"),
    ]
    for arm_list, code, words in cases:
        with pytest.raises(grpc.RpcError) as err:
            create(client, "bad", arm_list, control_arm="control")
        assert err.value.code() == code and words in err.value.details(), err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        get(client, "no-such-experiment")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_shadow_arm_scores_in_background_and_assignment_is_sticky(deployment, shop):
    suite, client, repo, degraded = deployment
    created = create(client, "sticky-shadow", arms(("control", 1, 0.5, False), ("b", 1, 0.5, False), ("shadow", degraded, 0.0, True)))
    assert created.state == experiments_pb2.EXPERIMENT_STATE_RUNNING and created.control_arm == "control"
    with pytest.raises(grpc.RpcError) as err:  # one experiment at a time
        create(client, "second", arms(("control", 1, 0.5, False), ("b", degraded, 0.5, False)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert create(client, "sticky-shadow", created.arms).experiment_id == "sticky-shadow"  # idempotent by id
    users = sorted({e.user_id for e in shop.events})
    seen: dict[str, set[str]] = {}
    request_ids = []
    for _ in range(3):
        for user in users:
            answer = client.recommend(user, k=5)
            assert answer.experiment_id == "sticky-shadow" and answer.model_version == "1"  # the shadow is never shown
            seen.setdefault(user, set()).add(answer.arm)
            request_ids.append(answer.request_id)
    assert all(len(a) == 1 for a in seen.values()), seen  # sticky across requests
    assert {a for s in seen.values() for a in s} == {"control", "b"}
    # the shopper-state writer encodes every serving version, the shadow arm's included (backfilled when it
    # started to serve), into each shopper's one row
    features, key = FeatureClient(suite.settings()), Pseudonyms.of(suite.settings())(users[0])
    assert eventually(lambda: all(features.get_shopper_state(key, f"fusion_click:{v}") is not None for v in (1, degraded)), timeout=60)
    # the assignment is a pure function of experiment id and shopper: any replica computes the same
    from core.experiments.definition import Arm, Experiment

    definition = Experiment("sticky-shadow", (Arm("control", "1", 0.5), Arm("b", "1", 0.5), Arm("shadow", str(degraded), 0, True)), "control")
    pseudonyms = Pseudonyms.of(suite.settings())
    assert all(seen[u] == {definition.assign(pseudonyms(u)).name} for u in users)
    # and a second scoring replica (its own process and port) puts every shopper in the same arm
    port = free_port()
    log_path = suite.log_dir / "scoring-replica.log"
    replica = subprocess.Popen([sys.executable, "-m", "services.scoring_service", "--address", f"127.0.0.1:{port}"], env=suite.env(),
                               cwd=PROJECT_ROOT, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: grpc_serving(f"127.0.0.1:{port}", "shoprank.v1.ScoringService", suite.credentials()), replica, 120,
                   "a second scoring replica", log_path)
        other = SuiteClient(suite.address("feedback"), f"127.0.0.1:{port}", credentials=suite.credentials())
        replies = {u: other.recommend(u, k=5) for u in users}
        other.close()
        assert all(replies[u].arm in seen[u] and replies[u].experiment_id == "sticky-shadow" for u in users)
        request_ids += [r.request_id for r in replies.values()]
    finally:
        replica.terminate()
        replica.wait(30)
    log = EventLog.open(suite.settings().eventlog)

    def shadows_recorded() -> bool:
        served = log.served.of_experiment("sticky-shadow")
        return len({s.request_id for s in served if s.shadow and s.version == str(degraded)}) == len(request_ids)

    assert eventually(shadows_recorded, timeout=60), "every request scored by the shadow arm"
    metrics = {m.arm: m for m in get(client, "sticky-shadow").metrics}
    assert metrics["shadow"].shadow and metrics["shadow"].requests == len(request_ids)
    assert metrics["control"].requests + metrics["b"].requests == len(request_ids)
    # Prometheus: answers per arm from scoring, online metrics per arm from the feedback service
    scoring_metrics = requests.get(suite.metrics_url("scoring"), timeout=10).text
    assert 'shoprank_experiment_answers_total{arm="b",experiment="sticky-shadow",version="1"}' in scoring_metrics
    feedback_metrics = requests.get(suite.metrics_url("feedback"), timeout=10).text
    assert 'shoprank_experiment_events{arm="shadow",experiment="sticky-shadow",kind="requests",version="' in feedback_metrics
    assert 'metric="ctr"' in feedback_metrics and "shoprank_experiment_always_valid_p" in feedback_metrics
    ended = client.admin.EndExperiment(model_admin_pb2.EndExperimentRequest(experiment_id="sticky-shadow"), timeout=180).experiment
    assert ended.state == experiments_pb2.EXPERIMENT_STATE_KEPT_CONTROL and ended.winner_arm == "control"
    assert repo.served() == ([1], "")
    answer = client.recommend(users[0], k=5)
    assert answer.experiment_id == "" and answer.arm == ""


def test_degraded_canary_loses_with_exact_attribution_and_is_rolled_back(deployment, shop):
    suite, client, repo, degraded = deployment
    create(client, "canary-degraded", arms(("control", 1, 0.5, False), ("candidate", degraded, 0.5, False)), canary=True,
           metric=experiments_pb2.EXPERIMENT_METRIC_CTR, min_impressions=300, max_impressions=50000)
    shoppers = SimulatedShoppers(shop, steps=800, seed=5)
    sim = simulate(client, shoppers, "canary-degraded", steps=800, start_ts=shop.events[-1].timestamp + 3600, look_every=20)
    assert sim.final_state == "rolled_back", (sim.steps, sim.events, [m for m in get(client, "canary-degraded").metrics])
    assert sim.served["control"] > 0 and sim.served["candidate"] > 0
    # attribution: every event the shoppers sent, to the request, arm, version and position they saw
    log = EventLog.open(suite.settings().eventlog)
    ids = list(sim.truth)
    assert eventually(lambda: len(log.attributions.of_events(ids)) == len(ids), timeout=60), "every simulated event attributed"
    found = log.attributions.of_events(ids)
    for event_id, truth in sim.truth.items():
        a = found[event_id]
        assert (a.request_id, a.experiment_id, a.arm, a.version, a.position, a.method) == (
            truth.request_id, truth.experiment_id, truth.arm, truth.version, truth.position, truth.method), event_id
    assert {t.method for t in sim.truth.values()} == {"request", "window"}
    # the degraded arm lost on what shoppers did, and the canary was rolled back everywhere
    final = get(client, "canary-degraded")
    metrics = {m.arm: m for m in final.metrics}
    assert metrics["candidate"].ctr_at_k.value < metrics["control"].ctr_at_k.value
    assert metrics["candidate"].versus_control.verdict == "worse"
    assert metrics["candidate"].versus_control.always_valid_p < 0.05
    assert final.state == experiments_pb2.EXPERIMENT_STATE_ROLLED_BACK and "rolled back automatically" in final.decision
    assert repo.served() == ([1], "")
    notes = repo.lineage(degraded).notes["experiments"]
    assert any(n["experiment_id"] == "canary-degraded" and n["event"] == "rolled_back" for n in notes)
    versions = {v.version: v for v in client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions}
    assert eventually(lambda: {v.version for v in client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions
                               if v.serving} == {"1"}, timeout=60), "Triton serves version 1 alone"
    assert str(degraded) in versions


def test_a_gated_fine_tune_starts_as_a_canary(deployment):
    suite, client, repo, degraded = deployment
    job = client.trigger(job_id="ft-canary", max_steps=3)
    state = eventually(lambda: (s := client.job(job.job_id).state) in (model_admin_pb2.JOB_STATE_SUCCEEDED, model_admin_pb2.JOB_STATE_REJECTED,
                                                                        model_admin_pb2.JOB_STATE_FAILED) and s, timeout=300, interval=2.0)
    assert state == model_admin_pb2.JOB_STATE_SUCCEEDED, client.job(job.job_id)
    version = client.job(job.job_id).new_version
    listed = client.admin.ListExperiments(model_admin_pb2.ListExperimentsRequest(), timeout=30).experiments
    canary = next(e for e in listed if e.experiment_id == f"canary-v{version}")
    assert canary.canary and canary.state == experiments_pb2.EXPERIMENT_STATE_RUNNING
    assert {(a.name, a.version, round(a.share, 3)) for a in canary.arms} == {("control", "1", 0.9), ("candidate", version, 0.1)}
    assert repo.served()[0] == [1, int(version)]  # Triton serves both; the control is the primary
    assert any(n["event"] == "started" for n in repo.lineage(int(version)).notes["experiments"])
    client.admin.EndExperiment(model_admin_pb2.EndExperimentRequest(experiment_id=canary.experiment_id), timeout=180)


def test_a_failed_load_during_an_experiment_leaves_its_arms_served(deployment, shop):
    """core.model_serving restores the exact snapshot: a Rollback whose version Triton cannot load,
    while an experiment runs, answers UNAVAILABLE and the experiment's arms (and its definition) stay
    in the config and in Triton, still answering shoppers."""
    suite, client, repo, degraded = deployment
    broken = publish_copy(repo, 1)
    (repo.version_dir(broken) / "model.pt").write_bytes(b"not a TorchScript file")
    create(client, "survives-a-failed-load", arms(("control", 1, 0.5, False), ("b", degraded, 0.5, False)))
    config_before = repo.config_text()
    with pytest.raises(grpc.RpcError) as err:
        client.admin.Rollback(model_admin_pb2.RollbackRequest(version=str(broken)), timeout=300)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "still serves" in err.value.details(), err.value.details()
    assert repo.config_text() == config_before  # the exact snapshot, experiment included
    assert repo.served()[0] == [1, degraded] and "survives-a-failed-load" in repo.served()[1]
    assert get(client, "survives-a-failed-load").state == experiments_pb2.EXPERIMENT_STATE_RUNNING
    listed = lambda: {v.version for v in client.admin.ListVersions(model_admin_pb2.ListVersionsRequest(), timeout=30).versions if v.serving}
    assert eventually(lambda: {"1", str(degraded)} <= listed(), timeout=60), listed()
    users = sorted({e.user_id for e in shop.events})
    answers = [client.recommend(u, k=5) for u in users]
    assert all(a.experiment_id == "survives-a-failed-load" and not a.degraded for a in answers)
    assert {a.model_version for a in answers} == {"1", str(degraded)}
    client.admin.EndExperiment(model_admin_pb2.EndExperimentRequest(experiment_id="survives-a-failed-load"), timeout=180)
    assert repo.served() == ([1], "")
