
import pytest

from core.domain import Lineage
from core.model_repository import TMP_PREFIX, ModelRepository
from core.settings import PROJECT_ROOT
from core.triton_config import parse_config
from rankers import get_ranker


def lineage(job="j"):
    return Lineage(version="", parent_version="", created=1.0, data_from=0.0, data_to=2.0, example_count=3, final_loss=0.5, job_id=job)


def test_publish_numbers_versions_and_keeps_lineage(tmp_path):
    repo = ModelRepository(tmp_path, "bert_click")
    assert repo.latest() is None
    for n in (1, 2):
        v = repo.publish(lambda p: (p / "model.pt").write_bytes(b"weights"), lineage(f"j{n}"), tag=f"j{n}")
        assert v == n
    assert repo.versions() == [1, 2]
    assert repo.lineage(2).job_id == "j2" and repo.lineage(2).version == "2"
    assert (tmp_path / "bert_click" / "2" / "model.py").exists()
    assert parse_config(tmp_path / "bert_click" / "config.pbtxt").name == "bert_click"
    assert not [p for p in (tmp_path / "bert_click").iterdir() if p.name.startswith(TMP_PREFIX)]


def test_failed_write_leaves_no_version(tmp_path):
    repo = ModelRepository(tmp_path, "bert_click")

    def explode(path):
        (path / "model.pt").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        repo.publish(explode, lineage(), tag="x")
    assert repo.versions() == []
    assert repo.clean_stale_temporaries() and repo.versions() == []


@pytest.mark.parametrize("name", ["bert_click", "fusion_click"])
def test_committed_config_is_what_the_builder_makes(name):
    committed = parse_config(PROJECT_ROOT / "triton_models" / name / "config.pbtxt")
    from rankers import ranker_for_model

    assert committed == ranker_for_model(name).triton_config()
    assert committed.backend == "python"
    if name == "bert_click":  # candidate pairs are batched across requests; fusion takes one shopper per request
        assert committed.dynamic_batching.max_queue_delay_microseconds > 0


def test_pin_serves_a_chosen_version_and_survives_reparse(tmp_path):
    repo = ModelRepository(tmp_path, "bert_click")
    for n in (1, 2, 3):
        repo.publish(lambda p: (p / "model.pt").write_bytes(b"w"), lineage(f"j{n}"), tag=f"j{n}")
    assert repo.serving_version() == 3  # fresh config: the newest
    assert repo.pin(2) == 3 and repo.serving_version() == 2
    config = parse_config(tmp_path / "bert_click" / "config.pbtxt")
    assert list(config.version_policy.specific.versions) == [2]
    assert config.input == get_ranker("cross-encoder").triton_config().input  # everything else kept
    with pytest.raises(FileNotFoundError):
        repo.pin(7)


def test_lineage_keeps_the_gate_decision(tmp_path):
    repo = ModelRepository(tmp_path, "bert_click")
    lin = lineage()
    lin.gate = {"passed": False, "reason": "worse", "metrics": {"candidate": {"log_loss": 0.9}}}
    v = repo.publish(lambda p: (p / "model.pt").write_bytes(b"w"), lin, tag="g")
    assert repo.lineage(v).gate["reason"] == "worse"


def test_replay_buffer_is_a_bounded_persistent_reservoir(tmp_path):
    from core.domain import Example
    from core.store import EventLog, ReplayBuffer

    log = EventLog.open(f"sqlite:///{tmp_path / 'log.db'}")
    buffer = ReplayBuffer(log.engine, capacity=50)
    buffer.add([Example("u", f"old {i}", 1.0) for i in range(40)])
    assert len(buffer) == 40
    buffer.add([Example("u", f"new {i}", 0.0) for i in range(200)], seed=1)
    again = ReplayBuffer(EventLog.open(f"sqlite:///{tmp_path / 'log.db'}").engine, capacity=50)  # a restarted worker
    assert len(again) == 50
    texts = [e.item_text for e in again.sample(50)]
    old = sum(t.startswith("old") for t in texts)
    assert 0 < old < 25  # old examples survive in proportion (40/240 of 50 ≈ 8), not wiped out


def test_the_bootstrap_moves_an_existing_config_to_this_hosts_instances_keeping_the_pin(tmp_path):
    from core.triton_config import mc
    repo = ModelRepository(tmp_path, "fusion_click")
    repo.ensure_layout("KIND_CPU", 1)
    (repo.version_dir(3)).mkdir()
    (repo.model_path(3)).write_bytes(b"weights")
    repo.pin(3)
    repo.ensure_layout("KIND_GPU", 2)  # without reconfigure (a worker's publish): left as it is
    kinds = mc.ModelInstanceGroup.Kind
    assert kinds.Name(parse_config(repo.model_dir / "config.pbtxt").instance_group[0].kind) == "KIND_CPU"
    repo.ensure_layout("KIND_GPU", 2, reconfigure=True)  # the bootstrap on a GPU host
    config = parse_config(repo.model_dir / "config.pbtxt")
    assert [(kinds.Name(g.kind), g.count) for g in config.instance_group] == [("KIND_GPU", 2)]
    assert repo.serving_version() == 3


class RecordingTriton:
    """One Triton replica as ModelServing sees it: records each load; fails loads of `refuses`."""

    def __init__(self, url, loads, refuses=()):
        self.url, self.loads, self.refuses = url, loads, set(refuses)

    def load_and_wait_all(self, versions, timeout_s):
        from core.triton_client import InferenceUnavailable

        self.loads.append((self.url, list(versions)))
        if set(versions) & self.refuses:
            raise InferenceUnavailable(f"{self.url} cannot load {versions}")

    def close(self):
        pass


def test_serving_restores_the_exact_snapshot_on_every_replica_when_one_fails(tmp_path):
    from core.model_serving import ModelServing, ServingFailed

    repo = ModelRepository(tmp_path, "fusion_click")
    for n in (1, 2, 3):
        repo.publish(lambda p: (p / "model.pt").write_bytes(b"w"), lineage(f"j{n}"), tag=f"j{n}")
    loads: list = []
    replicas = {"a:8001": RecordingTriton("a:8001", loads), "b:8001": RecordingTriton("b:8001", loads, refuses={3})}
    serving = ModelServing(repo, list(replicas), connect=replicas.__getitem__)
    serving.serve([1, 2], experiment_json='{"experiment_id": "ab"}')  # an experiment serves versions 1 and 2
    before = repo.config_text()
    loads.clear()

    with pytest.raises(ServingFailed, match="versions 1, 2 with its experiment still serves"):
        serving.serve([3])

    assert repo.config_text() == before and repo.served() == ([1, 2], '{"experiment_id": "ab"}')
    # both replicas were asked for 3, then both reloaded the snapshot's versions
    assert loads == [("a:8001", [3]), ("b:8001", [3]), ("a:8001", [1, 2]), ("b:8001", [1, 2])]
