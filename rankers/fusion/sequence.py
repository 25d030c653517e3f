"""A sequence-aware shopper tower (issue 27, item 2): self-attention over the item-tower embeddings of the
shopper's newest interest events, with their time gaps (the SASRec / BERT4Rec family, with text-based item
embeddings as in UniSRec / Recformer).

The served shopper vector today is the recency-weighted mean of those embeddings
(`network.shopper_from_items`). `SequenceShopper` starts from exactly that mean and adds a learned
correction: the embeddings are projected to a small width, each gets an embedding of its position and of its
age (days before the shopper's newest event, in log2 buckets), one transformer layer lets every event
attend to the others, and the newest event's output, projected back to the item tower's width, is added to
the mean before normalising. The correction's last layer starts at zero, so an untrained tower is the
served one and training can only move away from it where the listwise loss says so.

Ages count from the newest event, as `shopper_state.history_weights` does, so the vector does not change
between a shopper's events and can be stored like today's state.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from rankers.fusion.network import EMBEDDING_DIM, FusionRanker, RankingList
from rankers.fusion.shopper_state import HALF_LIFE_DAYS, STATE_HISTORY
from rankers.fusion.signals import SIGNAL_COUNT

AGE_BUCKETS = 12  # log2(1 + days): 0, 1, 2-3, 4-7, ... 1024+ days
# The tower's rate in the ranker's listwise training, as a multiple of the ranker's (validation months, research
# harness: 1x ends +0.0003 NDCG@10 over the mean it starts from, 10x -0.0010: it overfits the labelled lists).
TOWER_LR_SCALE = float(os.environ.get("RECSYS_SEQUENCE_LR_SCALE", "1"))


class SequenceShopper(nn.Module):
    """Shopper vectors [B, D] from their history's item embeddings [B, H, D] (newest first), ages in days
    [B, H] and which positions hold an event [B, H]."""

    def __init__(self, dim: int = EMBEDDING_DIM, width: int = 64, heads: int = 4, history: int = STATE_HISTORY) -> None:
        super().__init__()
        self.half_life = HALF_LIFE_DAYS  # attributes, not globals: TorchScript reads them
        self.age_buckets = AGE_BUCKETS
        self.project = nn.Linear(dim, width)
        self.age = nn.Embedding(AGE_BUCKETS, width)
        self.position = nn.Embedding(history, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.correction = nn.Linear(width, dim)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, vectors: torch.Tensor, ages: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        h = vectors.shape[1]
        weights = torch.where(present, torch.exp2(-ages / self.half_life), torch.zeros_like(ages))
        mean = (weights.unsqueeze(-1) * vectors).sum(1)
        buckets = torch.log2(1.0 + ages.clamp(min=0.0)).floor().clamp(0, self.age_buckets - 1).long()
        positions = torch.arange(h, device=vectors.device).clamp(max=self.position.num_embeddings - 1)
        x = self.project(vectors) + self.age(buckets) + self.position(positions).unsqueeze(0)
        any_event = present.any(1)
        # a row with no event would attend to nothing (NaN): let it see its first slot, zeroed below
        mask = present.clone()
        mask[:, 0] = mask[:, 0] | ~any_event
        newest = self.encoder(x, src_key_padding_mask=~mask)[:, 0]
        shopper = nn.functional.normalize(mean + self.correction(newest), dim=-1)
        return torch.where(any_event.unsqueeze(-1), shopper, torch.zeros_like(shopper))


class SequenceFusionRanker(FusionRanker):
    """The fusion ranker with its shopper tower trained beside it: a list's shopper vector is computed from
    its history (`RankingList.history`, rows of the item table) by `sequence`, not read from the list."""

    def __init__(self, signals: int = SIGNAL_COUNT, dim: int = EMBEDDING_DIM, projection: int = 32, hidden: int = 64) -> None:
        super().__init__(signals=signals, dim=dim, projection=projection, hidden=hidden)
        self.sequence = SequenceShopper(dim=dim)

    def parameter_groups(self, lr: float) -> list[dict]:
        tower = list(self.sequence.parameters())
        ids = {id(p) for p in tower}
        return [{"params": [p for p in self.parameters() if id(p) not in ids], "lr": lr},
                {"params": tower, "lr": lr * TOWER_LR_SCALE}]

    def list_user(self, r: RankingList, item_table: torch.Tensor | None) -> torch.Tensor:
        if r.history is None or item_table is None:
            raise ValueError("a sequence shopper tower needs each list's history and the item table")
        return self.shoppers(item_table, r.history[0][None, :], r.history[1][None, :])[0]

    def shoppers(self, item_table: torch.Tensor, index: np.ndarray, ages: np.ndarray) -> torch.Tensor:
        """Shopper vectors [B, D] from rows of `item_table` ([B, H] `index`, -1 pads) and their ages in days."""
        index_t = torch.from_numpy(np.asarray(index, dtype=np.int64))
        present = index_t >= 0
        vectors = item_table[index_t.clamp(min=0)] if item_table.shape[0] else torch.zeros(*index_t.shape, item_table.shape[1])
        return self.sequence(vectors, torch.from_numpy(np.asarray(ages, dtype=np.float32)), present)


def next_basket_loss(model: SequenceFusionRanker, table: torch.Tensor, index: np.ndarray, ages: np.ndarray,
                     targets: list[np.ndarray], temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE of each history's shopper vector against the whole item table: the items of the basket bought
    next are the positives (averaged), every other item a negative."""
    shoppers = model.shoppers(table, index, ages)
    log_p = torch.log_softmax(shoppers @ table.T / temperature, dim=-1)
    return torch.stack([-log_p[b, torch.from_numpy(t)].mean() for b, t in enumerate(targets)]).mean()


def pretrain_shopper_tower(model: SequenceFusionRanker, examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                           item_table: np.ndarray, *, epochs: int = 3, lr: float = 1e-3, batch: int = 64, seed: int = 0,
                           progress=None) -> list[float]:
    """Self-supervised next-basket training of `model.sequence` (SASRec-style: every basket of every shopper is a
    training example, many more than the ranker's labelled lists): each example is (history rows, ages,
    rows of the items bought next). The ranker's own weights are left alone. Returns each step's loss."""
    usable = [e for e in examples if len(e[0]) and len(e[2])]
    if not usable:
        return []
    table = torch.from_numpy(item_table)
    optimizer = torch.optim.Adam(model.sequence.parameters(), lr=lr, weight_decay=1e-5)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model.sequence.train()
    losses: list[float] = []
    steps = epochs * ((len(usable) + batch - 1) // batch)
    for _ in range(epochs):
        order = rng.permutation(len(usable))
        for start in range(0, len(order), batch):
            chunk = [usable[k] for k in order[start : start + batch]]
            width = max(len(e[0]) for e in chunk)
            index = np.full((len(chunk), width), -1, dtype=np.int64)
            ages = np.zeros((len(chunk), width), dtype=np.float32)
            for b, (rows, age, _) in enumerate(chunk):
                index[b, : len(rows)], ages[b, : len(rows)] = rows, age
            loss = next_basket_loss(model, table, index, ages, [e[2] for e in chunk])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if progress is not None and (len(losses) % 50 == 0 or len(losses) == steps):
                progress(len(losses), steps, losses[-1])
    model.sequence.eval()
    return losses
