"""The tables behind the item-to-item RPCs: text neighbours (rankers.fusion.text_neighbours) and the shop's
trending list (core.feature_sync.trending)."""
import numpy as np

from core.feature_sync import trending
from rankers.fusion.text_neighbours import text_neighbours


def unit(rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_text_neighbours_are_nearest_first_without_the_item_itself_or_its_duplicates():
    vectors = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.5, 0.5, 0], [1, 0, 0]])
    table = text_neighbours(["a", "b", "c", "d", "a-copy"], vectors, neighbours=3)
    assert [i for i, _ in table["a"]] == ["b", "d", "c"]  # a-copy has the same text: not a suggestion
    assert table["c"][0][0] == "d" and all(s <= 1.0 for _, s in table["c"])
    assert set(table) == {"a", "b", "c", "d", "a-copy"}


def test_text_neighbours_cover_every_chunk():
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(5000, 16)))
    ids = [f"i{k}" for k in range(5000)]
    table = text_neighbours(ids, vectors, neighbours=5)
    k = 4321  # a row in the third chunk: its best neighbour is the true nearest
    sims = vectors @ vectors[k]
    sims[k] = -np.inf
    assert table[ids[k]][0][0] == ids[int(np.argmax(sims))]


def test_trending_ranks_rising_items_and_skips_noise_and_hidden_ones():
    pop30 = {"steady": 40, "new-hit": 9, "noise": 2, "gone": 20}
    pop7 = {"steady": 9, "new-hit": 9, "noise": 2, "gone": 20}
    ranked = trending(pop30, pop7, hidden={"gone"})
    assert [i for i, _ in ranked] == ["new-hit", "steady"]
    assert ranked[0][1] > 3.0 and 0.5 < ranked[1][1] < 1.5
