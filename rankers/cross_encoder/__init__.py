"""The cross-encoder ranker: MiniLM reads every (shopper text, item text) pair, a click head gives the
probability (rankers.cross_encoder.network). Serving half, torch-free: the shopper's recent history and the
candidates' text from the online store, one tokenised pair per candidate; Triton batches pairs
dynamically across requests."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from core.features import ItemFeatures
from core.triton_config import python_model_config
from rankers.base import Ranker, Shopper, Trainer
from shoptext.text import item_text, user_text
from shoptext.tokenizer import encode_pairs

if TYPE_CHECKING:
    from core.settings import Settings

MAX_BATCH = 512  # candidates scored in one forward pass at most


class CrossEncoderRanker(Ranker):
    name = "cross-encoder"
    model_name = "bert_click"

    def triton_config(self, instance_kind: str = "KIND_CPU", instances: int = 1) -> mc.ModelConfig:
        inputs = [(n, mc.TYPE_INT64, [-1]) for n in ("input_ids", "attention_mask", "token_type_ids")]
        return python_model_config(self.model_name, inputs, [("probability", mc.TYPE_FP32, [1])], max_batch_size=MAX_BATCH,
                                   dynamic_batching=True, instance_kind=instance_kind, instances=instances)

    def retrieve(self, shopper: Shopper, size: int) -> list[str]:
        """The shopper's recent items, then the shop's popular items (padded from the catalogue)."""
        return list(dict.fromkeys([h.item_id for h in shopper.recent] + shopper.popular + shopper.filler))[:size]

    def request_inputs(self, shopper: Shopper, candidates: Sequence[str], items: dict[str, ItemFeatures],
                       settings: "Settings") -> dict[str, np.ndarray]:
        text = user_text(shopper.recent, {i: f.text.title for i, f in items.items()})
        return encode_pairs([text] * len(candidates), [item_text(items[c].text) for c in candidates], settings.max_length)

    def trainer(self) -> Trainer:
        from rankers.cross_encoder.training import CrossEncoderTrainer

        return CrossEncoderTrainer(self)
