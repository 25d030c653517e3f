"""The item tower that learns (rankers.fusion.text_tower): only MiniLM's top layer moves, the cached
inputs reproduce the full encoder, and a published version carries its own tower and re-embedded
catalogue, gated against the serving version's own tower."""
import json

import numpy as np
import torch

from rankers.base import TrainingRun
from rankers.fusion import ITEM_TABLE
from rankers.fusion.lists import ListSpec
from rankers.fusion.network import build_text_encoder, embed_texts, load_fusion
from rankers.fusion.text_tower import TopLayer, TowerSettings, tune_top_layer
from shoptext.text import ITEM_TEXT_LENGTH
from tests.unit.fusion_log import fusion_log

TEXTS = {"mug": "white ceramic mug. category kitchen", "cup": "tea cup and saucer. category kitchen",
         "bag": "jumbo bag red retrospot. category bags", "tote": "shopping tote bag. category bags",
         "lamp": "hanging heart t-light holder. category home", "candle": "scented candle. category home"}


def spec(history, bought):
    candidates = list(TEXTS)
    return ListSpec("u", 0.0, [(i, 100.0 - k) for k, i in enumerate(history)], candidates, np.zeros((len(candidates), 1), np.float32),
                    np.asarray([1.0 if c in bought else 0.0 for c in candidates], np.float32))


def test_the_cached_top_layer_reproduces_the_encoder():
    encoder = build_text_encoder()
    tower = TopLayer(encoder, list(TEXTS.values()))
    np.testing.assert_allclose(tower.table().numpy(), embed_texts(encoder, list(TEXTS.values()), ITEM_TEXT_LENGTH), atol=1e-5)


def test_tuning_moves_only_the_top_layer_and_lowers_the_loss():
    encoder = build_text_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    specs = [spec(["mug"], {"cup"}), spec(["bag"], {"tote"}), spec(["lamp"], {"candle"})] * 8
    done = tune_top_layer(encoder, specs, TEXTS, TowerSettings(steps=12, lists_per_step=6, negatives=4, lr=1e-4, refresh=4))
    assert done["steps"] == 12 and done["lists"] == len(specs) and done["last_loss"] < done["first_loss"]
    top = f"encoder.encoder.layer.{len(encoder.encoder.encoder.layer) - 1}."
    changed = {k for k, v in encoder.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(top) for k in changed)
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training


def test_a_fine_tune_publishes_its_own_tower_and_catalogue(tmp_path):
    from workers.publishing import train_and_publish

    shop = fusion_log(tmp_path, text_tower="top_layer", text_tower_steps=3)
    repo, first = shop.repo, shop.first
    second, lineage = train_and_publish(TrainingRun(shop.settings, shop.log, repo, parent=first, since=shop.cut, job_id="v2", max_examples=200),
                                        shop.ranker, load_in_triton=False)
    assert lineage.notes["text_tower"]["mode"] == "top_layer" and lineage.notes["text_tower"]["steps"] == 3
    assert "newest" in json.dumps(lineage.gate)  # gated on held-out lists, the serving version through its own tower
    towers = [load_fusion(repo.model_path(v))[0].state_dict() for v in (first, second)]
    packaged = build_text_encoder()
    pretrained = packaged.state_dict()
    top = f"encoder.encoder.layer.{len(packaged.encoder.encoder.layer) - 1}."
    assert any(not torch.equal(towers[0][k], pretrained[k]) for k in pretrained if k.startswith(top))  # version 1 learned too
    assert any(not torch.equal(towers[1][k], towers[0][k]) for k in towers[0] if k.startswith(top))
    assert all(torch.equal(towers[1][k], pretrained[k]) for k in pretrained if not k.startswith(top))
    tables = [torch.load(repo.version_dir(v) / ITEM_TABLE) for v in (first, second)]
    assert tables[0]["keys"] == tables[1]["keys"] and not torch.allclose(tables[0]["vectors"], tables[1]["vectors"])
