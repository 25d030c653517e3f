"""The caches on the ranking path: the scoring service's feature cache (what it keeps, for how long,
what it never keeps), the per-process item tokenisation, and the Triton model's embedding caches
(triton_models/fusion_click/model.py, run in-process by devtools.python_backend)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.feature_cache import CachedFeatures
from core.features import ItemFeatures, ShopFeatures, UserFeatures
from devtools.python_backend import load_model_module, utils_module
from shoptext.text import ItemText, item_text
from shoptext.tokenizer import encode_catalogue_texts, encode_texts

MODEL_PY = Path(__file__).resolve().parents[2] / "triton_models" / "fusion_click" / "model.py"


class CountingStore:
    """An OnlineFeatures that counts what is asked of it."""

    def __init__(self) -> None:
        self.items = {"a": ItemFeatures(ItemText("A")), "b": ItemFeatures(ItemText("B"))}
        self.co = {"a": [("b", 1.0)]}
        self.reads: list[tuple[str, tuple[str, ...]]] = []

    def get_user(self, user_id: str) -> UserFeatures | None:
        self.reads.append(("user", (user_id,)))
        return UserFeatures([], 0, 0, 0.0)

    def get_shop(self) -> ShopFeatures:
        self.reads.append(("shop", ()))
        return ShopFeatures(1.0, [])

    def get_items(self, item_ids, popularity=False):
        self.reads.append(("items", tuple(item_ids)))
        return {i: self.items[i] for i in item_ids if i in self.items}

    def get_co_purchase(self, key, item_ids):
        self.reads.append(("co", tuple(item_ids)))
        return {i: self.co[i] for i in item_ids if i in self.co}

    def push_co_purchase(self, key, table) -> None:
        pass


def test_feature_cache_keeps_items_for_the_period_and_never_keeps_shoppers():
    store, now = CountingStore(), [100.0]
    cache = CachedFeatures(store, ttl_s=5.0, clock=lambda: now[0])
    assert set(cache.get_items(["a", "b", "zz"])) == {"a", "b"}
    assert set(cache.get_items(["a", "b"])) == {"a", "b"}
    assert [r for r in store.reads if r[0] == "items"] == [("items", ("a", "b", "zz"))]  # the second read came from the cache
    store.items["zz"] = ItemFeatures(ItemText("new"))  # upserted a moment later: unknown ids are not remembered
    assert "zz" in cache.get_items(["a", "zz"]) and store.reads[-1] == ("items", ("zz",))
    store.items["a"] = ItemFeatures(ItemText("A renamed"))
    now[0] = 105.0  # the next period: served from the cache at once, while one background read brings both up to date
    reads = len(store.reads) + 1  # the shop row is read first, once per period (the catalogue stamp)
    assert cache.get_items(["a", "b"])["a"].text.title == "A"
    deadline = time.monotonic() + 5
    while cache.get_items(["a"])["a"].text.title != "A renamed" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get_items(["a"])["a"].text.title == "A renamed"
    assert store.reads[reads:] == [("items", ("a", "b"))]  # one read, off the request path
    store.items["b"] = ItemFeatures(ItemText("B renamed"))
    now[0] = 116.0  # two periods on, nothing asked for in between: older than stale, read on the request path
    assert cache.get_items(["b"])["b"].text.title == "B renamed" and store.reads[-1] == ("items", ("b",))
    cache.get_user("u")
    cache.get_user("u")
    assert [r for r in store.reads if r[0] == "user"] == [("user", ("u",))] * 2  # a purchase shows in the next Rank
    cache.get_shop()
    cache.get_shop()
    assert [r for r in store.reads if r[0] == "shop"] == [("shop", ())] * 3  # once per period (at 100, 105 and 116)


def test_feature_cache_keeps_items_for_the_item_period_and_rereads_them_when_the_catalogue_moves():
    """Issue 26: re-reading every item every 5 s cost a quarter of the scoring service's CPU in the
    shop-like load. Items live for their own period (popularity moves slowly); a change of text or
    status moves the catalogue stamp read with the shop row, and every item stored before it is
    served stale once while one background read brings them up to date."""
    store, now = CountingStore(), [100.0]
    stamp = [1.0]
    store.get_shop = lambda: (store.reads.append(("shop", ())), ShopFeatures(1.0, [], catalogue_stamp=stamp[0]))[1]  # type: ignore[method-assign]
    cache = CachedFeatures(store, ttl_s=5.0, clock=lambda: now[0], item_ttl_s=30.0)
    cache.get_items(["a", "b"])
    store.items["a"] = ItemFeatures(ItemText("A"), popularity_30d=7)  # a popularity push: no stamp
    for t in (105.0, 110.0, 119.0):  # shop-row periods go by, the item period (90-120) has not
        now[0] = t
        assert cache.get_items(["a", "b"])["a"].popularity_30d == 0
    assert [r for r in store.reads if r[0] == "items"] == [("items", ("a", "b"))]
    store.items["b"] = ItemFeatures(ItemText("B"), available=False)  # out of stock: pushed with a new stamp
    stamp[0] = 2.0
    now[0] = 121.0  # the next shop-row period: the stamp moved, both items are stale
    cache.get_items(["a", "b"])  # served stale once, read again off the request path
    deadline = time.monotonic() + 5
    while cache.get_items(["b"])["b"].available and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cache.get_items(["b"])["b"].available and cache.get_items(["a"])["a"].popularity_30d == 7
    reads = len([r for r in store.reads if r[0] == "items"])
    now[0] = 126.0  # the stamp stays: nothing is read again within the item period
    cache.get_items(["a", "b"])
    assert len([r for r in store.reads if r[0] == "items"]) == reads
    del store.items["a"]  # deleted: the store no longer returns it, and the push moved the stamp
    stamp[0] = 3.0
    now[0] = 131.0
    cache.get_items(["a", "b"])  # served stale once while the background read finds it gone
    deadline = time.monotonic() + 5
    while "a" in cache.get_items(["a", "b"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(cache.get_items(["a", "b"])) == {"b"}  # dropped at once, not served stale until it aged out


def test_feature_cache_keeps_a_versions_neighbours_and_their_absence_for_the_item_period():
    store, now = CountingStore(), [0.0]
    cache = CachedFeatures(store, ttl_s=5.0, clock=lambda: now[0], item_ttl_s=300.0)
    assert cache.get_co_purchase("m:1", ["a", "b"]) == {"a": [("b", 1.0)]}
    reads = len(store.reads)
    now[0] = 50.0  # many feature periods later, within the item period: b's absence is not read again
    assert cache.get_co_purchase("m:1", ["a", "b"]) == {"a": [("b", 1.0)]} and len(store.reads) == reads
    now[0] = 320.0
    store.co["b"] = [("a", 0.5)]  # the version's rows finished arriving (they are pushed before it serves, but were not)
    assert cache.get_co_purchase("m:1", ["a", "b"]) == {"a": [("b", 1.0)], "b": [("a", 0.5)]}
    assert store.reads[-1] == ("co", ("b",))  # a's neighbours came from the cache, b's absence was re-read


def test_no_cache_reads_everything():
    store = CountingStore()
    cache = CachedFeatures(store, ttl_s=0.0)
    cache.get_items(["a"])
    cache.get_items(["a"])
    cache.get_shop()
    cache.get_shop()
    assert len(store.reads) == 4


def test_cached_tokenisation_equals_the_batch_tokeniser():
    texts = [item_text(ItemText("Owl Lantern", category="garden", price=3.0)), "a", item_text(ItemText("Pink Floral Teapot " * 9))]
    for _ in range(2):  # the second time from the cache
        cached, batch = encode_catalogue_texts(texts, 32), encode_texts(texts, 32)
        assert np.array_equal(cached["input_ids"], batch["input_ids"])
        assert np.array_equal(cached["attention_mask"], batch["attention_mask"])


# --- the Triton model -------------------------------------------------------------------------------

class CountingEncoder(torch.nn.Module):
    def __init__(self, scripted):
        super().__init__()
        self.scripted, self.rows = scripted, 0

    def encode(self, ids, mask):
        self.rows += ids.shape[0]
        return self.scripted.encode(ids, mask)

    def shopper(self, item_vectors, index, weights):
        return self.scripted.shopper(item_vectors, index, weights)

    def forward(self, user, items, signals):
        return self.scripted(user, items, signals)


@pytest.fixture(scope="module")
def served_version(tmp_path_factory):
    from rankers.fusion.network import FusionRanker, build_text_encoder, save_fusion
    from rankers.fusion.training import item_table

    folder = tmp_path_factory.mktemp("repo") / "fusion_click" / "1"
    folder.mkdir(parents=True)
    encoder = build_text_encoder()
    save_fusion(encoder, FusionRanker(), folder / "model.pt")
    catalogue = {"a": ItemText("Owl Lantern"), "b": ItemText("Pink Floral Teapot With A Long Name", category="kitchen")}
    torch.save(item_table(encoder, catalogue), folder / "item_embeddings.pt")
    return folder, catalogue


def _load_model(folder: Path, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils_module())
    module = load_model_module(MODEL_PY, "fusion_click_model")
    model = module.TritonPythonModel()
    model.initialize({"model_repository": str(folder.parent), "model_version": folder.name})
    model.model = CountingEncoder(model.model)
    return module, model


def _torch(arrays):
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _request(shopper, texts: list[str]):
    from rankers.fusion import model_inputs
    from rankers.fusion.signals import SIGNAL_COUNT

    return _torch(model_inputs(shopper, texts, np.linspace(0, 1, len(texts) * SIGNAL_COUNT, dtype=np.float32).reshape(len(texts), -1)))


def _histories(catalogue, *interests):
    from rankers.fusion.shopper_state import StateEncoder, history_inputs

    encoder = StateEncoder()
    histories = [encoder.history(h, catalogue) for h in interests]
    return histories, _torch(history_inputs(histories, {i: item_text(t) for i, t in catalogue.items()}))


def test_triton_model_serves_the_catalogue_table_and_keeps_nothing_per_shopper(served_version, monkeypatch):
    folder, catalogue = served_version
    _, model = _load_model(folder, monkeypatch)
    texts = [item_text(catalogue["b"]), item_text(catalogue["a"])]
    vector = np.full(384, 0.05, np.float32)
    (first,) = model.execute([_request(vector, texts)])
    assert model.model.rows == 0  # a stored shopper vector and both items from the published table: no encoding
    model.execute([_request(vector, texts + ["a brand new item"])])
    model.execute([_request(vector, ["a brand new item"])])
    assert model.model.rows == 1  # an item outside the table is encoded once
    assert not [k for k in vars(model) if "shopper" in k]  # nothing keyed by shopper: nothing to forget


def test_triton_model_answers_what_the_model_computes(served_version, monkeypatch):
    folder, catalogue = served_version
    _, model = _load_model(folder, monkeypatch)
    vector = np.random.default_rng(0).normal(size=384).astype(np.float32)
    request = _request(vector, [item_text(catalogue["a"]), "a brand new item"])
    (out,) = model.execute([request])
    scripted = model.model.scripted
    with torch.no_grad():
        items = scripted.encode(request["item_input_ids"], request["item_attention_mask"])
        expected = scripted(torch.from_numpy(vector).expand(2, -1), items, request["signals"])
    assert torch.allclose(out[0].value, expected, atol=1e-5)


def test_state_request_encodes_many_shoppers_as_training_does(served_version, monkeypatch):
    """One request, three shoppers (one with no usable history): the vectors the training lists use."""
    from rankers.fusion.network import build_text_encoder, embed_texts
    from rankers.fusion.training import shopper_vectors
    from shoptext.text import ITEM_TEXT_LENGTH

    folder, catalogue = served_version
    _, model = _load_model(folder, monkeypatch)
    day = 86400.0
    interests = [[("a", 90 * day), ("b", 30 * day), ("a", 0.0)], [("b", 5 * day)], [("deleted", 1.0)]]
    _, request = _histories(catalogue, *interests)
    (out,) = model.execute([request])
    assert out[0].name == "shopper_vector" and out[0].value.shape == (3, 384)
    assert model.model.rows == 0  # the history's items came from the table
    vectors = dict(zip(catalogue, embed_texts(build_text_encoder(), [item_text(t) for t in catalogue.values()], ITEM_TEXT_LENGTH)))
    expected = shopper_vectors([[x for x in h if x[0] in catalogue] for h in interests], vectors)
    assert np.allclose(out[0].value.numpy(), expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(expected[:2], axis=1), 1.0) and not expected[2].any()  # the zero vector: cold start


def test_inline_ranking_equals_ranking_with_the_stored_state(served_version, monkeypatch):
    """Rank's fallback (the history in the ranking request) scores exactly as the stored vector does."""
    folder, catalogue = served_version
    _, model = _load_model(folder, monkeypatch)
    texts = [item_text(catalogue["a"]), item_text(catalogue["b"])]
    _, states = _histories(catalogue, [("b", 10.0), ("a", 0.0)])
    ((vector,),) = model.execute([states])
    (stored,) = model.execute([_request(vector.value[0].numpy(), texts)])
    _, inline_history = _histories(catalogue, [("b", 10.0), ("a", 0.0)])
    ranking = {k: v for k, v in _request(np.zeros(384, np.float32), texts).items() if k != "user_vector"}
    (inline,) = model.execute([{**ranking, **inline_history}])
    assert torch.allclose(stored[0].value, inline[0].value, atol=1e-6)


def test_token_keys_ignore_padding_and_tell_texts_apart(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils_module())
    module = load_model_module(MODEL_PY, "fusion_click_model_keys")
    texts = ["owl lantern", "owl lantern red", "lantern owl", "a"]
    both = encode_texts(texts, 32)
    keys = module.token_keys(torch.from_numpy(both["input_ids"]), torch.from_numpy(both["attention_mask"]))
    assert len(set(keys)) == 4
    alone = encode_texts(["owl lantern"], 32)
    assert module.token_keys(torch.from_numpy(alone["input_ids"]), torch.from_numpy(alone["attention_mask"]))[0] == keys[0]
