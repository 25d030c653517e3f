"""The ranker registry's table: each click model's name (RECSYS_RANKER) and where its `Ranker` lives,
as a "module:Class" path resolved lazily by rankers.get_ranker (Celery's backend aliases work the same
way). It sits in the core so settings can validate a name without importing any model code, and the
core never imports rankers/. A new model is a new folder under rankers/ plus one line here."""
from __future__ import annotations

RANKERS: dict[str, str] = {
    "fusion": "rankers.fusion:FusionRanker",  # two text towers + repeat/popularity/co-purchase signals
    "cross-encoder": "rankers.cross_encoder:CrossEncoderRanker",  # MiniLM over every (shopper, item) pair
}
