"""The fusion ranker (default): a MiniLM item tower, a shopper tower over the embeddings of the
shopper's items, and the repeat / recency / popularity / co-purchase signals of rankers.fusion.signals,
fused by a small network (rankers.fusion.network).

Serving half, torch-free: the shopper's interest events and stored state (their vector for this
version, rankers.fusion.shopper_state), the shop's clock and popularity and the serving version's
co-purchase neighbours come from the online store; the request carries the shopper's vector (or, when
no current state is stored, their history, encoded in the same request), each candidate's text
(Triton caches item embeddings per version) and the signals.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from core.errors import FailedPrecondition
from core.features import ItemFeatures, OnlineFeatures
from core.triton_config import python_model_config
from rankers.base import Ranker, Shopper, Trainer
from rankers.fusion.co_purchase import RECENT_ITEMS, co_purchase_scores
from rankers.fusion.shopper_state import COLD_START, INLINE, STATE_DIM, STORED, History, StateEncoder
from rankers.fusion.signals import SIGNAL_COUNT, SIGNAL_NAMES, candidate_signals, merge_candidates
from shoptext.text import ITEM_TEXT_LENGTH, ItemText, item_text
from shoptext.tokenizer import encode_catalogue_texts

if TYPE_CHECKING:
    from core.settings import Settings

CO_PURCHASE_FILE = "co_purchase.json"  # the version's neighbour table, pushed to the online store
SIMILAR_FILE = "similar_items.json"  # each item's nearest items by text, pushed to the online store
ITEM_TABLE = "item_embeddings.pt"  # the catalogue embedded at publish (read by model.py at load)
SIGNAL_STATS = "signals.json"  # names and training mean / spread of the signals (for operators)


def model_inputs(shopper: np.ndarray | dict[str, np.ndarray], item_texts: Sequence[str], signals: np.ndarray) -> dict[str, np.ndarray]:
    """The fusion_click ranking request: the shopper (their vector [STATE_DIM], or the history inputs
    of shopper_state.history_inputs for one shopper), candidate text tokens, signals."""
    items = encode_catalogue_texts(list(item_texts), ITEM_TEXT_LENGTH)
    user = shopper if isinstance(shopper, dict) else {"user_vector": np.asarray(shopper, dtype=np.float32).reshape(1, -1)}
    return {**user, "item_input_ids": items["input_ids"], "item_attention_mask": items["attention_mask"],
            "signals": signals.astype(np.float32)}


def signals_trained_on(version_dir: Path) -> list[str] | None:
    """The signal names a version was trained on (its signals.json), None for a version without one."""
    path = version_dir / SIGNAL_STATS
    return list(json.loads(path.read_text())["names"]) if path.exists() else None


def shopper_co_purchase(shopper: Shopper) -> Counter:
    """Co-purchase scores of the shopper's recent items (once per request: retrieval and signals share it)."""
    if "co_purchase" not in shopper.derived:
        recent = [item for item, _ in shopper.interests[:RECENT_ITEMS]]
        shopper.derived["co_purchase"] = co_purchase_scores(recent, shopper.co_purchase)
    return shopper.derived["co_purchase"]


def serving_signals(shopper: Shopper, candidates: Sequence[str], items: dict[str, ItemFeatures]) -> np.ndarray:
    """The signals of rankers.fusion.signals from the online features (what build_lists computes offline)."""
    interests = shopper.interests
    now = max(shopper.clock, interests[0][1] if interests else shopper.clock)
    # no basket ids: one basket per timestamp (plain tuples: a namedtuple each took 4x as long to make)
    purchases = [(item, ts, ts) for item, ts in interests]
    co = shopper_co_purchase(shopper)
    pop30 = {c: items[c].popularity_30d for c in candidates if c in items}
    pop7 = {c: items[c].popularity_7d for c in candidates if c in items}
    return candidate_signals(purchases, now, candidates, pop30, pop7, co)


class FusionRanker(Ranker):
    name = "fusion"
    model_name = "fusion_click"
    reads_popularity = True
    related_kinds = ("co_purchase", "similar")

    state_encoder = StateEncoder()

    def triton_config(self, instance_kind: str = "KIND_CPU", instances: int = 1) -> mc.ModelConfig:
        # a ranking request: one shopper (vector or history) and their candidates; a state request: many
        # shoppers' histories and no candidates (triton_models/fusion_click/model.py tells them apart)
        inputs = [("user_vector", mc.TYPE_FP32, [-1, STATE_DIM]),
                  ("history_input_ids", mc.TYPE_INT64, [-1, -1]), ("history_attention_mask", mc.TYPE_INT64, [-1, -1]),
                  ("history_index", mc.TYPE_INT64, [-1, -1]), ("history_weights", mc.TYPE_FP32, [-1, -1]),
                  ("item_input_ids", mc.TYPE_INT64, [-1, -1]), ("item_attention_mask", mc.TYPE_INT64, [-1, -1]),
                  ("signals", mc.TYPE_FP32, [-1, SIGNAL_COUNT])]
        return python_model_config(self.model_name, inputs,
                                   [("probability", mc.TYPE_FP32, [-1, 1]), ("shopper_vector", mc.TYPE_FP32, [-1, STATE_DIM])],
                                   instance_kind=instance_kind, instances=instances, optional=frozenset(name for name, _, _ in inputs))

    def __init__(self) -> None:
        self._texts: dict[str, tuple[ItemText, str]] = {}  # item id -> (its features' text, model text)

    def _item_text(self, item_id: str, text: ItemText) -> str:
        """item_text, remembered per item while the online store hands back the same text object (the
        scoring path's feature cache does), so a cached item costs an identity check."""
        known = self._texts.get(item_id)
        if known is None or known[0] is not text:
            known = (text, item_text(text))
            if len(self._texts) > 1_000_000:
                self._texts.clear()
            self._texts[item_id] = known
        return known[1]

    def shopper(self, features: OnlineFeatures, user_id: str, version: str) -> Shopper:
        base = super().shopper(features, user_id, version)
        recent = [item for item, _ in base.interests[:RECENT_ITEMS]]
        co = features.get_co_purchase(self.version_key(version), recent) if version and recent else {}
        state = None
        if version and base.interests:  # used only when computed from the history read now (same fingerprint)
            stored = features.get_shopper_state(user_id, self.version_key(version))
            if stored is not None and stored.fingerprint == self.state_encoder.fingerprint(base.interests):
                state = stored.vector
        return dataclasses.replace(base, co_purchase=co, state=state)

    def state_source(self, shopper: Shopper) -> str:
        """How this shopper's vector is obtained for a ranking (shopper_state.STORED / INLINE / COLD_START)."""
        if shopper.state is not None:
            return STORED
        return INLINE if shopper.interests else COLD_START

    def context_items(self, shopper: Shopper) -> list[str]:
        # the history's items' texts only when the state must be computed in the request
        return self.state_encoder.needed_items(shopper.interests) if self.state_source(shopper) == INLINE else []

    def retrieve(self, shopper: Shopper, size: int) -> list[str]:
        """The shopper's items (most bought first), co-purchase neighbours and popular items."""
        counts = Counter(item for item, _ in shopper.interests)
        own = sorted(counts, key=lambda i: -counts[i])
        co = shopper_co_purchase(shopper)
        return merge_candidates(own, [i for i, _ in co.most_common(size)], shopper.popular[:size], size)

    def request_inputs(self, shopper: Shopper, candidates: Sequence[str], items: dict[str, ItemFeatures],
                       settings: "Settings") -> dict[str, np.ndarray]:
        return model_inputs(self._shopper_input(shopper, items), [self._item_text(c, items[c].text) for c in candidates],
                            serving_signals(shopper, candidates, items))

    def _shopper_input(self, shopper: Shopper, items: dict[str, ItemFeatures]) -> np.ndarray | dict[str, np.ndarray]:
        source = self.state_source(shopper)
        if source == STORED:
            return shopper.state
        if source == COLD_START:
            return np.zeros(STATE_DIM, dtype=np.float32)
        return self.state_inputs([self.state_encoder.history(shopper.interests, items)], items)

    def state_inputs(self, histories: Sequence[History], items: dict[str, ItemFeatures]) -> dict[str, np.ndarray]:
        """The history inputs of `histories` (their items all in `items`)."""
        texts = {i: self._item_text(i, items[i].text) for h in histories for i in h.items}
        return self.state_encoder.inputs(histories, texts)

    def explanation_inputs(self, inputs: dict[str, np.ndarray], rows: Sequence[int]) -> dict[str, np.ndarray] | None:
        from rankers.fusion.explain import coalition_inputs

        return coalition_inputs(inputs, rows)

    def explanations(self, shopper: Shopper, candidates: Sequence[str], probabilities: np.ndarray,
                     items: dict[str, ItemFeatures], features: OnlineFeatures, version: str) -> list[list[Any]]:
        from rankers.fusion.explain import explain

        similar = self.related_items(features, version, "similar", candidates)
        return explain(shopper, candidates, probabilities, items, similar)

    def materialise(self, version_dir: Path, features: OnlineFeatures, version: int) -> None:
        trained_on = signals_trained_on(version_dir)
        if trained_on is not None and trained_on != list(SIGNAL_NAMES):
            changed = [f"{a} -> {b}" for a, b in zip(trained_on, SIGNAL_NAMES) if a != b] or [f"{len(trained_on)} -> {SIGNAL_COUNT} signals"]
            raise FailedPrecondition(f"version {version} was trained on other signals than this code computes ({', '.join(changed)}): "
                                     "it cannot serve; train a version on this code (TriggerFineTune, or bootstrap on a new deployment)")
        for kind, name in (("co_purchase", CO_PURCHASE_FILE), ("similar", SIMILAR_FILE)):
            path = version_dir / name
            if path.exists():
                table = {a: [(b, float(s)) for b, s in nbs] for a, nbs in json.loads(path.read_text()).items()}
                features.push_co_purchase(self.neighbour_key(version, kind), table)

    def related_items(self, features: OnlineFeatures, version: str, kind: str, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        return features.get_co_purchase(self.neighbour_key(version, kind), item_ids) if version else {}

    def first_version_budget(self, max_steps: int, batch_size: int) -> int:
        return max(200, max_steps * batch_size * 4)  # baskets: each is a whole ranking list

    def fine_tune_budget(self, max_positives: int) -> int:
        return max(50, max_positives)

    def trainer(self) -> Trainer:
        from rankers.fusion.training import FusionTrainer

        return FusionTrainer(self)
