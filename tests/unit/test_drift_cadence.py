"""The drift cadence: the beat check scores the serving version on the behaviour since its last check
and fine-tunes only when it fell below its own record (the ranker's scorer is replaced by a script in
the first test; the second scores a real published fusion version)."""
import time

from core.domain import Lineage
from core.drift import QualityRecord
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from tests.unit.fusion_log import fusion_log
from workers.scheduled import drift_detected, quality_record


class ScriptedTrainer:
    def __init__(self, scores):
        self.scores, self.windows = list(scores), []

    def serving_quality(self, settings, log, repo, version, since, until, max_lists):
        self.windows.append((version, since, until))
        return self.scores.pop(0)


class ScriptedRanker:
    model_name = "fusion_click"

    def __init__(self, scores):
        self._trainer = ScriptedTrainer(scores)

    def trainer(self):
        return self._trainer


def test_quality_record_keeps_each_versions_checks(tmp_path):
    record = QualityRecord(tmp_path / "q" / "m.json")
    assert record.series(1) == [] and record.last_checked(1) is None
    assert record.add(1, 100.0, 0.3) == [0.3]
    assert record.add(1, 200.0, 0.2) == [0.3, 0.2]
    record.add(2, 250.0, 0.4)
    assert QualityRecord(tmp_path / "q" / "m.json").series(1) == [0.3, 0.2] and record.last_checked(1) == 200.0


def test_drift_check_fires_only_when_the_serving_version_falls_below_its_own_record(tmp_path):
    settings = Settings(data_dir=tmp_path, model_repository=tmp_path / "models", drift_ndcg_drop=0.03, drift_min_lists=50)
    log = EventLog.open(settings.eventlog)
    ranker = ScriptedRanker([(0.30, 400), (0.29, 400), (0.10, 20), (0.20, 400)])
    assert drift_detected(settings, log, ranker, now=1500.0)  # no version yet: the first fine-tune trains one
    lineage = Lineage("", "", time.time(), 0.0, 1000.0, 1, 0.5, "bootstrap")
    ModelRepository(settings.model_repository, "fusion_click").publish(lambda p: (p / "model.pt").write_bytes(b"w"), lineage, tag="b")
    assert not drift_detected(settings, log, ranker, now=2000.0)  # the first check: its record starts
    assert not drift_detected(settings, log, ranker, now=3000.0)  # 0.29 vs 0.30: within the threshold
    assert not drift_detected(settings, log, ranker, now=4000.0)  # 20 new baskets: too few to judge, not recorded
    assert drift_detected(settings, log, ranker, now=5000.0)  # 0.20, 0.095 below its mean: fine-tune
    # each check scores the behaviour since the previous recorded one (the first: since its training window)
    assert ranker.trainer().windows == [(1, 1000.0, 2000.0), (1, 2000.0, 3000.0), (1, 3000.0, 4000.0), (1, 3000.0, 5000.0)]
    assert quality_record(settings, ranker).series(1) == [0.30, 0.29, 0.20]


def test_the_fusion_trainer_scores_a_published_version_on_new_baskets(tmp_path):
    shop = fusion_log(tmp_path)
    settings, log, repo, ranker, version, cut = shop.settings, shop.log, shop.repo, shop.ranker, shop.first, shop.cut
    ndcg, lists = ranker.trainer().serving_quality(settings, log, repo, version, cut, float("inf"), 60)
    assert lists > 10 and 0.0 < ndcg <= 1.0
    assert ranker.trainer().serving_quality(settings, log, repo, version, float("inf"), float("inf"), 60) == (0.0, 0)
