"""The caches on the ranking path: the scoring service's feature cache (what it keeps, for how long,
what it never keeps), the per-process item tokenisation, and the Triton model's embedding caches
(triton_models/fusion_click/model.py, run in-process by devtools.python_backend)."""
from __future__ import annotations

import sys
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
    assert store.reads == [("items", ("a", "b", "zz"))]  # the second read came from the cache
    store.items["zz"] = ItemFeatures(ItemText("new"))  # upserted a moment later: unknown ids are not remembered
    assert "zz" in cache.get_items(["a", "zz"]) and store.reads[-1] == ("items", ("zz",))
    store.items["a"] = ItemFeatures(ItemText("A renamed"))
    now[0] = 105.0  # the next period: everything is read again, together
    assert cache.get_items(["a", "b"])["a"].text.title == "A renamed"
    assert store.reads[-1] == ("items", ("a", "b"))
    cache.get_user("u")
    cache.get_user("u")
    assert [r for r in store.reads if r[0] == "user"] == [("user", ("u",))] * 2  # a purchase shows in the next Rank
    cache.get_shop()
    cache.get_shop()
    assert [r for r in store.reads if r[0] == "shop"] == [("shop", ())]


def test_feature_cache_keeps_a_versions_neighbours_but_not_their_absence():
    store, now = CountingStore(), [0.0]
    cache = CachedFeatures(store, ttl_s=5.0, clock=lambda: now[0])
    assert cache.get_co_purchase("m:1", ["a", "b"]) == {"a": [("b", 1.0)]}
    now[0] = 50.0
    store.co["b"] = [("a", 0.5)]  # the version's rows finished arriving
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


def _request(user: str, texts: list[str]):
    from rankers.fusion import model_inputs
    from rankers.fusion.signals import SIGNAL_COUNT

    arrays = model_inputs(user, texts, np.zeros((len(texts), SIGNAL_COUNT), np.float32))
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def test_triton_model_serves_the_catalogue_table_and_caches_shoppers(served_version, monkeypatch):
    folder, catalogue = served_version
    module, model = _load_model(folder, monkeypatch, RECSYS_SHOPPER_EMBEDDING_TTL_S="600")
    texts = [item_text(catalogue["b"]), item_text(catalogue["a"])]
    (first,) = model.execute([_request("bought: owl lantern", texts)])
    assert model.model.rows == 1  # the shopper only: both items came from the published table
    (again,) = model.execute([_request("bought: owl lantern", texts)])
    assert model.model.rows == 1 and torch.equal(first[0].value, again[0].value)  # the shopper from the cache
    model.execute([_request("bought: owl lantern; red mug", texts + ["a brand new item"])])
    assert model.model.rows == 3  # a changed history is a new text; an item outside the table is encoded once
    model.execute([_request("bought: owl lantern; red mug", ["a brand new item"])])
    assert model.model.rows == 3


def test_triton_model_answers_what_the_model_computes(served_version, monkeypatch):
    folder, catalogue = served_version
    _, model = _load_model(folder, monkeypatch)
    request = _request("bought: owl lantern", [item_text(catalogue["a"]), "a brand new item"])
    (out,) = model.execute([request])
    scripted = model.model.scripted
    with torch.no_grad():
        user = scripted.encode(request["user_input_ids"], request["user_attention_mask"])
        items = scripted.encode(request["item_input_ids"], request["item_attention_mask"])
        expected = scripted(user.expand(2, -1), items, request["signals"])
    assert torch.allclose(out[0].value, expected, atol=1e-5)


def test_triton_model_forgets_shoppers_after_the_ttl(served_version, monkeypatch):
    folder, catalogue = served_version
    module, model = _load_model(folder, monkeypatch, RECSYS_SHOPPER_EMBEDDING_TTL_S="30")
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    texts = [item_text(catalogue["a"])]
    model.execute([_request("bought: owl lantern", texts)])
    clock[0] += 10
    model.execute([_request("bought: teapot", texts)])
    assert model.model.rows == 2 and len(model.shoppers) == 2
    clock[0] += 25  # the first entry is 35 s old, the second 25 s
    model.execute([_request("bought: teapot", texts)])
    assert model.model.rows == 2 and len(model.shoppers) == 1  # expired entries are dropped, not just ignored


def test_token_keys_ignore_padding_and_tell_texts_apart(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils_module())
    module = load_model_module(MODEL_PY, "fusion_click_model_keys")
    texts = ["owl lantern", "owl lantern red", "lantern owl", "a"]
    both = encode_texts(texts, 32)
    keys = module.token_keys(torch.from_numpy(both["input_ids"]), torch.from_numpy(both["attention_mask"]))
    assert len(set(keys)) == 4
    alone = encode_texts(["owl lantern"], 32)
    assert module.token_keys(torch.from_numpy(alone["input_ids"]), torch.from_numpy(alone["attention_mask"]))[0] == keys[0]
