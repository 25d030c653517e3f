"""The trigger decision (one function; the Celery sender is replaced by a recorder)."""
import time

from core.domain import Event, Lineage
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from core.triggers import maybe_fine_tune


class Recorder:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args, task_id, queue):
        self.sent.append((name, task_id, queue, args[0]))


def setup(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models")
    log = EventLog.open(settings.eventlog)
    lineage = Lineage("", "", time.time(), 0.0, 1000.0, 1, 0.5, "bootstrap")
    ModelRepository(settings.model_repository, "fusion_click").publish(lambda p: (p / "model.pt").write_bytes(b"w"), lineage, tag="b")
    return settings, log


def events(n, start=2000.0):
    return [Event(f"e{start}-{i}", "u", "i", "purchase", start + i) for i in range(n)]


def test_volume_trigger_fires_once_per_window_and_never_twice_at_once(tmp_path):
    settings, log = setup(tmp_path)
    sender = Recorder()
    log.events.append(events(4) + [Event("old", "u", "i", "purchase", 500.0), Event("imp", "u", "i", "impression", 3000.0)])
    assert maybe_fine_tune(settings, log, sender, "fusion_click", 5, "volume") is None  # 4 new positives: not enough
    log.events.append(events(2, start=4000.0))
    job = maybe_fine_tune(settings, log, sender, "fusion_click", 5, "volume")
    assert job is not None and job.parent_version == "1" and len(sender.sent) == 1
    name, task_id, queue, payload = sender.sent[0]
    assert task_id == job.job_id and queue == "training" and payload["job_id"] == job.job_id
    log.events.append(events(20, start=5000.0))
    assert maybe_fine_tune(settings, log, sender, "fusion_click", 5, "volume") is None  # one is pending: never two at once
    log.jobs.update(job.job_id, state="SUCCEEDED")
    assert maybe_fine_tune(settings, log, sender, "fusion_click", 5, "volume") is not None and len(sender.sent) == 2


def test_beat_schedule_runs_the_scheduled_check_and_the_materialisation():
    from workers.app import app

    entry = app.conf.beat_schedule["fine-tune-on-schedule"]
    assert entry["task"] == "workers.scheduled.scheduled_fine_tune" and entry["schedule"] > 0
    assert app.conf.beat_schedule["materialise-features"]["task"] == "workers.materialise.materialise_features"


def test_retention_runs_on_beat_only_when_configured(monkeypatch, tmp_path):
    from workers.app import app, make_app
    from workers.retention import purge

    assert "retention" not in app.conf.beat_schedule  # off by default
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_RETENTION_DAYS", "90")
    configured = make_app()
    assert configured.conf.beat_schedule["retention"]["task"] == "workers.retention.purge_expired_events"
    assert configured.conf.task_routes["workers.retention.purge_expired_events"] == {"queue": "features"}
    assert purge(Settings(data_dir=tmp_path, model_repository=tmp_path / "m", retention_days=0)) == "retention is off (RECSYS_RETENTION_DAYS=0)"


def test_claim_job_lets_one_run_at_a_time(tmp_path):
    _, log = setup(tmp_path)
    log.jobs.create("a", "1", 5)
    log.jobs.create("b", "1", 5)
    assert log.jobs.claim("a") and not log.jobs.claim("b")
    log.jobs.update("a", state="SUCCEEDED")
    assert log.jobs.claim("b")


def test_a_lease_that_runs_out_frees_the_model_for_another_worker(tmp_path):
    _, log = setup(tmp_path)
    log.jobs.create("a", "1", 5)
    log.jobs.create("b", "1", 5)
    assert log.jobs.claim("a", owner="w1", lease_s=60)
    assert not log.jobs.claim("b", owner="w2", lease_s=60)  # a is alive
    assert not log.jobs.claim("a", owner="w2", lease_s=60)  # nor can a second worker take a running job
    assert [j.job_id for j in log.jobs.active(60)] == ["a", "b"]
    assert log.jobs.abandoned("w2", 60) == []  # another worker starting leaves a live job alone
    assert [j.job_id for j in log.jobs.abandoned("w1", 60)] == ["a"]  # w1 restarting knows it died
    log.jobs.update("a", updated=0.0)  # w1 stopped reporting long ago
    assert [j.job_id for j in log.jobs.abandoned("w2", 60)] == ["a"]
    assert [j.job_id for j in log.jobs.active(60)] == ["b"]  # a dead job does not block triggers
    assert log.jobs.claim("b", owner="w2", lease_s=60)


def test_touch_renews_only_a_running_job(tmp_path):
    _, log = setup(tmp_path)
    log.jobs.create("a", "1", 5)
    log.jobs.update("a", updated=1.0)
    log.jobs.touch("a")  # PENDING: untouched
    assert log.jobs.get("a").updated == 1.0
    log.jobs.claim("a", owner="w1")
    log.jobs.update("a", updated=1.0)
    log.jobs.touch("a")
    assert log.jobs.get("a").updated > 1.0


def test_an_old_log_gains_the_owner_column(tmp_path):
    import sqlalchemy as sa

    from core.store import EventLog

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the jobs table as the first release created it
        conn.execute(sa.text("CREATE TABLE jobs (job_id VARCHAR PRIMARY KEY, state VARCHAR NOT NULL, progress FLOAT NOT NULL, "
                             "message VARCHAR NOT NULL, parent_version VARCHAR NOT NULL, new_version VARCHAR NOT NULL, "
                             "max_steps INTEGER NOT NULL, created FLOAT NOT NULL, updated FLOAT NOT NULL)"))
        conn.execute(sa.text("INSERT INTO jobs VALUES ('old', 'SUCCEEDED', 1.0, 'done', '1', '2', 5, 1.0, 1.0)"))
    log = EventLog.open(url)
    assert log.jobs.get("old").owner == ""
    assert log.jobs.claim("new") is False  # unknown job id: nothing to claim
