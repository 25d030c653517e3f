"""A fusion fine-tune's replay: RECSYS_REPLAY_RATIO older baskets per new one, with distillation from the parent on them."""
from __future__ import annotations

from rankers.base import TrainingRun
from tests.unit.fusion_log import fusion_log


def test_a_fine_tune_replays_the_ratio_of_older_baskets_and_distils_on_them(tmp_path):
    from workers.publishing import train_and_publish

    shop = fusion_log(tmp_path, replay_ratio=2.0, distill_weight=1.0)
    _, lineage = train_and_publish(TrainingRun(shop.settings, shop.log, shop.repo, parent=shop.first, since=shop.cut, job_id="v2",
                                               max_examples=60), shop.ranker, load_in_triton=False)
    notes = lineage.notes
    new = notes["new_lists"] + notes["held_out_lists"]
    replayed = notes["replay_lists"] + notes["held_out_replay_lists"]
    assert new > 0 and 1.5 * new <= replayed <= 2 * new, notes
