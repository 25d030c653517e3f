"""The item tower learns the shop: MiniLM's top transformer layer fine-tuned on the shop's baskets
(RECSYS_TEXT_TOWER=top_layer; `frozen` keeps the packaged weights in every version).

Objective, contrastive next-basket: a training list's shopper vector (the served shopper tower: the
recency-weighted mean of their history items' embeddings, rankers.fusion.network.shopper_from_items)
should lie nearer the items of the basket they bought next than the other lists' basket items and a
sample of catalogue items (InfoNCE, several positives per list).

Why only the top layer, and what it costs on a CPU: the five layers below stay as packaged, so each
item text's input to the top layer is computed once per training run (one frozen pass over the texts
involved) and a step runs one transformer layer over its target items only. The history side uses the
tower's own embeddings without gradient, refreshed every `refresh` steps (a slowly moving target, as
in MoCo), so a step does not re-encode hundreds of history items. Each version carries its whole
encoder in model.pt and its re-embedded catalogue (rankers.fusion.training.item_table), so nothing at
serving time changes: a new version's shopper states are backfilled like any new version's.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
from torch import nn

from rankers.fusion.lists import ListSpec
from rankers.fusion.network import TextEncoder, build_text_encoder, shopper_from_items
from rankers.fusion.shopper_state import history_weights
from shoptext.text import ITEM_TEXT_LENGTH
from shoptext.tokenizer import encode_texts

MODES = ("frozen", "top_layer")


@dataclass
class TowerSettings:
    steps: int = 100  # optimiser steps per training run
    lists_per_step: int = 48  # shoppers per step (their basket items are the step's positives)
    positives_per_list: int = 4
    negatives: int = 96  # catalogue items sampled per step besides the other lists' positives
    temperature: float = 0.05
    lr: float = 2e-5
    refresh: int = 25  # steps between refreshes of the history side's embeddings
    seed: int = 0


def eager_encoder(scripted: Any) -> TextEncoder:
    """An eager TextEncoder (whose layers can be trained) with the weights of `scripted`, a version's
    traced encoder."""
    encoder = build_text_encoder()
    wanted = encoder.state_dict()  # the trace also keeps buffers the eager model does not save (position ids)
    encoder.load_state_dict({k: v for k, v in scripted.state_dict().items() if k in wanted})
    return encoder


class TopLayer:
    """The encoder's last layer over cached inputs: `embed(rows)` = pooled, normalised embeddings of
    those cached texts with gradient through the layer."""

    def __init__(self, encoder: TextEncoder, texts: Sequence[str], batch: int = 128) -> None:
        self.bert = cast(Any, encoder.encoder)  # transformers' BertModel
        self.layer = cast(nn.Module, self.bert.encoder.layer[-1])
        states, masks = [], []
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                tokens = encode_texts(list(texts[start : start + batch]), ITEM_TEXT_LENGTH)
                ids, mask = torch.from_numpy(tokens["input_ids"]), torch.from_numpy(tokens["attention_mask"])
                hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                                   output_hidden_states=True).hidden_states[-2]
                pad = ITEM_TEXT_LENGTH - hidden.shape[1]
                states.append(nn.functional.pad(hidden, (0, 0, 0, pad)))
                masks.append(nn.functional.pad(mask, (0, pad)))
        self.states = torch.cat(states) if states else torch.zeros(0, ITEM_TEXT_LENGTH, 384)
        self.masks = torch.cat(masks) if masks else torch.zeros(0, ITEM_TEXT_LENGTH, dtype=torch.long)

    def embed(self, rows: torch.Tensor) -> torch.Tensor:
        mask = self.masks[rows]
        width = int(mask.sum(1).max())
        mask, hidden = mask[:, :width], self.states[rows, :width]
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        out = self.layer(hidden, attention_mask=additive)
        out = out[0] if isinstance(out, tuple) else out
        weights = mask.unsqueeze(-1).to(out.dtype)
        return nn.functional.normalize((out * weights).sum(1) / weights.sum(1).clamp(min=1.0), dim=-1)

    def table(self, batch: int = 512) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.embed(torch.arange(s, min(s + batch, len(self.states)))) for s in range(0, len(self.states), batch)])


def tune_top_layer(encoder: TextEncoder, specs: Sequence[ListSpec], texts: dict[str, str], settings: TowerSettings = TowerSettings(),
                   progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Fine-tune `encoder`'s last layer in place on `specs` (lists whose labels mark the basket bought);
    `texts`: each item id's model text (every item of the lists, and the catalogue to sample negatives
    from). Returns what it did (steps, seconds, first and last loss)."""
    started = time.perf_counter()
    ids = list(texts)
    row = {i: k for k, i in enumerate(ids)}
    usable = []
    for s in specs:
        positives = [row[c] for c, y in zip(s.candidates, s.labels) if y > 0 and c in row]
        history, weights = history_weights(s.history, row)
        if positives and history:
            usable.append(([row[i] for i in history], weights, positives))
    if not usable or settings.steps <= 0:
        return {"steps": 0, "lists": len(usable), "seconds": round(time.perf_counter() - started, 1)}
    tower = TopLayer(encoder, [texts[i] for i in ids])
    for weight in encoder.parameters():
        weight.requires_grad_(False)
    for weight in tower.layer.parameters():
        weight.requires_grad_(True)
    optimiser = torch.optim.AdamW(tower.layer.parameters(), lr=settings.lr, weight_decay=0.01)
    rng = random.Random(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    losses: list[float] = []
    table = tower.table()  # the history side, without dropout or gradient
    tower.layer.train()
    for step in range(settings.steps):
        if step and step % settings.refresh == 0:
            tower.layer.eval()
            table = tower.table()
            tower.layer.train()
        batch = rng.sample(usable, min(settings.lists_per_step, len(usable)))
        users = _shoppers(table, batch)
        chosen_positives = [rng.sample(bought, min(len(bought), settings.positives_per_list)) for _, _, bought in batch]
        negatives: list[int] = torch.randint(0, len(ids), (settings.negatives,), generator=gen).tolist()
        targets = list(dict.fromkeys([r for chosen in chosen_positives for r in chosen] + negatives))
        at = {r: k for k, r in enumerate(targets)}
        logits = users @ tower.embed(torch.tensor(targets)).T / settings.temperature
        is_positive = torch.zeros_like(logits, dtype=torch.bool)
        for b, chosen in enumerate(chosen_positives):
            is_positive[b, [at[r] for r in chosen]] = True
        loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~is_positive, float("-inf")), 1)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, settings.steps, losses[-1])
    tower.layer.eval()
    for weight in encoder.parameters():
        weight.requires_grad_(False)
    encoder.eval()
    return {"steps": settings.steps, "lists": len(usable), "seconds": round(time.perf_counter() - started, 1),
            "first_loss": round(float(np.mean(losses[:10])), 4), "last_loss": round(float(np.mean(losses[-10:])), 4)}


def _shoppers(table: torch.Tensor, batch: Sequence[tuple[list[int], np.ndarray, list[int]]]) -> torch.Tensor:
    width = max(len(h) for h, _, _ in batch)
    index = torch.full((len(batch), width), -1, dtype=torch.long)
    weights = torch.zeros(len(batch), width)
    for b, (h, w, _) in enumerate(batch):
        index[b, : len(h)] = torch.tensor(h)
        weights[b, : len(h)] = torch.from_numpy(w)
    return shopper_from_items(table, index, weights)
