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


def test_a_fine_tune_learns_from_the_lists_it_served(tmp_path):
    """RECSYS_IMPRESSION_LISTS: the served lists (the scoring service's log) that new clicks name by request id
    become training lists of their own; off, none are read."""
    from collections import defaultdict

    from core.experiments.attribution import ServedList
    from workers.publishing import train_and_publish

    results = {}
    for on in (True, False):
        (tmp_path / str(on)).mkdir()
        shop = fusion_log(tmp_path / str(on), impression_lists=on)
        shown: dict[tuple[str, str], list[str]] = defaultdict(list)
        for e in shop.log.events.read():
            if e.event_type == "impression":
                shown[(e.request_id, e.user_id)].append(e.item_id)
        shop.log.served.append([ServedList(r, u, 0.0, "1", tuple(items)) for (r, u), items in shown.items()])
        _, lineage = train_and_publish(TrainingRun(shop.settings, shop.log, shop.repo, parent=shop.first, since=shop.cut, job_id="v2",
                                                   max_examples=60), shop.ranker, load_in_triton=False)
        results[on] = lineage.notes
    assert results[True]["shown_lists"] > 10 and results[False]["shown_lists"] == 0
    assert results[True]["new_lists"] + results[True]["held_out_lists"] > results[False]["new_lists"] + results[False]["held_out_lists"]
