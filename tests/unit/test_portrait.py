"""The living portrait (core.portrait): short vs long term, drift, activity, segmentation."""
import numpy as np

from core.domain import ItemText
from core.portrait import activity_level, describe, kmeans, portrait, segment_features, summarise

DAY = 86400.0
NOW = 1000 * DAY
ITEMS = {
    "mug": ItemText("Red Mug", category="kitchen", price=4.0),
    "pot": ItemText("Teapot", category="kitchen", price=12.0),
    "lamp": ItemText("Lamp", category="lighting", price=30.0),
    "bulb": ItemText("Bulb", category="lighting", price=3.0),
}


def test_short_term_and_long_term_and_their_drift():
    old = [("mug", NOW - d * DAY) for d in range(60, 200, 10)] + [("pot", NOW - 100 * DAY)]
    new = [("lamp", NOW - 2 * DAY), ("bulb", NOW - 5 * DAY), ("lamp", NOW - 9 * DAY)]
    picture = portrait(sorted(new + old, key=lambda x: -x[1]), ITEMS, NOW)
    assert picture.short_term.categories == [("lighting", 1.0)] and picture.short_term.events == 3
    assert picture.long_term.categories[0][0] == "kitchen" and picture.long_term.representative[0] == "mug"
    assert picture.short_term.representative[0] == "lamp" and picture.short_term.price_band == "high"
    assert 0.5 < picture.drift <= 1.0  # their taste moved from kitchen to lighting
    steady = portrait([("mug", NOW - d * DAY) for d in range(1, 200, 5)], ITEMS, NOW)
    assert steady.drift < 0.05 and steady.activity == "regular"  # 6 events in 30 days


def test_drift_reads_items_when_the_catalogue_has_no_categories():
    plain = {k: ItemText(v.title, price=v.price) for k, v in ITEMS.items()}
    interests = [("lamp", NOW - DAY), ("mug", NOW - 50 * DAY), ("pot", NOW - 60 * DAY)]
    assert portrait(interests, plain, NOW).drift > 0.3
    assert summarise([], plain).events == 0


def test_activity_levels():
    assert activity_level([("mug", NOW)], NOW) == "new"
    assert activity_level([("mug", NOW - 200 * DAY), ("pot", NOW - 150 * DAY)], NOW) == "dormant"
    assert activity_level([("mug", NOW - 50 * DAY), ("pot", NOW - 60 * DAY)], NOW) == "occasional"
    assert activity_level([("mug", NOW - DAY)] * 5, NOW) == "regular"
    assert activity_level([("mug", NOW - DAY)] * 12, NOW) == "frequent"


def test_kmeans_separates_clear_groups_and_names_them():
    categories = ["kitchen", "lighting"]
    kitchen = [[("mug", NOW - d * DAY) for d in range(1, 12)] for _ in range(30)]
    lighting = [[("lamp", NOW - 100 * DAY - d * DAY)] for d in range(30)]
    x = np.stack([segment_features(i, ITEMS, NOW, categories) for i in kitchen + lighting])
    labels, centres = kmeans(x, 2, seed=0)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[30]
    names = {describe(centres[labels[0]], categories), describe(centres[labels[30]], categories)}
    assert any(n.startswith("kitchen · frequent") for n in names) and any(n.startswith("lighting · lapsed") for n in names)
    one, _ = kmeans(x[:3], 8)
    assert len(one) == 3
