"""The two-tower + fusion click model: text read once, repeat evidence fused inside the model.

- `TextEncoder`: the MiniLM encoder, mean-pooled and L2-normalised: the item tower. It encodes each
  item's text once (cached; the encoder is the packaged pretrained one, so an item's embedding depends
  on its text only, not on the model version).
- `shopper_from_items`: the shopper tower, the recency-weighted mean of their items' embeddings
  (weights from rankers.fusion.shopper_state), computed when their events arrive, not per request.
- `FusionRanker`: a small network over (user embedding, item embedding, numeric signals of
  `rankers.fusion.signals`) giving a purchase probability per candidate. Signal normalisation is a buffer
  inside the module, so the TorchScript file is the whole artifact. Its cost per candidate is a few
  thousand multiply-adds, so ranking 100 candidates costs one text encoding plus microseconds.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from rankers.fusion.signals import SIGNAL_COUNT
from shoptext.text import ITEM_TEXT_LENGTH
from shoptext.tokenizer import encode_texts, pretrained_dir

EMBEDDING_DIM = 384


class TextEncoder(nn.Module):
    """Mean-pooled, L2-normalised MiniLM sentence embedding (what all-MiniLM-L6-v2 was trained for)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1)


def build_text_encoder() -> TextEncoder:
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    encoder = BertModel.from_pretrained(str(pretrained_dir()), add_pooling_layer=False, attn_implementation="eager")
    return TextEncoder(encoder).eval()


def embed_texts(encoder: nn.Module, texts: Sequence[str], max_length: int, batch: int = 64) -> np.ndarray:
    """Embeddings [len(texts), EMBEDDING_DIM] with an eager or TorchScript `TextEncoder`."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = encode_texts(texts[i : i + batch], max_length)
            out.append(encoder(torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"])).numpy())
    return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)


def shopper_from_items(item_vectors: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Shopper vectors [B, D]: per row of `index` ([B, H] rows of `item_vectors` [U, D], -1 pads), the
    `weights`-weighted sum of those items' embeddings, L2-normalised (no history: the zero vector)."""
    present = index >= 0
    w = torch.where(present, weights, torch.zeros_like(weights)).to(item_vectors.dtype)
    if item_vectors.shape[0] == 0:
        return torch.zeros(index.shape[0], 384, dtype=item_vectors.dtype, device=item_vectors.device)  # EMBEDDING_DIM (TorchScript: a literal)
    gathered = item_vectors[index.clamp(min=0)]
    return nn.functional.normalize((w.unsqueeze(-1) * gathered).sum(1), dim=-1)


class FusionRanker(nn.Module):
    """Purchase probability of (user, item, signals): text affinity through learned projections of
    the two embeddings, and the repeat / recency / popularity signals, mixed by one MLP."""

    def __init__(self, signals: int = SIGNAL_COUNT, dim: int = EMBEDDING_DIM, projection: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.register_buffer("signal_mean", torch.zeros(signals))
        self.register_buffer("signal_std", torch.ones(signals))
        self.user_projection = nn.Linear(dim, projection)
        self.item_projection = nn.Linear(dim, projection)
        self.mlp = nn.Sequential(nn.Linear(signals + projection + 1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def set_normalisation(self, signals: np.ndarray) -> None:
        """Standardise each signal by its mean and spread over the training rows."""
        with torch.no_grad():
            self.signal_mean.copy_(torch.from_numpy(signals.mean(0)))
            self.signal_std.copy_(torch.from_numpy(signals.std(0) + 1e-6))

    def logits(self, user_embedding: torch.Tensor, item_embedding: torch.Tensor, signals: torch.Tensor) -> torch.Tensor:
        z = (signals - self.signal_mean) / self.signal_std
        affinity = self.user_projection(user_embedding) * self.item_projection(item_embedding)
        cosine = (user_embedding * item_embedding).sum(-1, keepdim=True)
        return self.mlp(torch.cat([z, affinity, cosine], dim=-1))

    def forward(self, user_embedding: torch.Tensor, item_embedding: torch.Tensor, signals: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(user_embedding, item_embedding, signals))

    def list_user(self, r: "RankingList", item_table: torch.Tensor | None) -> torch.Tensor:
        """A training list's shopper vector: precomputed (this tower has no weights to learn)."""
        return torch.from_numpy(r.user_embedding)

    def parameter_groups(self, lr: float) -> list[dict]:
        """The optimiser's parameter groups at base rate `lr` (a learned shopper tower may want its own)."""
        return [{"params": list(self.parameters()), "lr": lr}]


class FusionClick(nn.Module):
    """The served artifact: the item tower, the shopper tower and the ranker in one TorchScript file.
    `encode` embeds item texts (each once per loaded version: Triton's model caches them), `shopper`
    makes shopper vectors from item embeddings (the shopper-state writer, many shoppers per call);
    `forward` ranks candidates from embeddings and signals."""

    def __init__(self, encoder: nn.Module, ranker: FusionRanker) -> None:
        super().__init__()
        self.encoder = encoder
        self.ranker = ranker

    @torch.jit.export
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask)

    @torch.jit.export
    def shopper(self, item_vectors: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return shopper_from_items(item_vectors, index, weights)

    def forward(self, user_embedding: torch.Tensor, item_embedding: torch.Tensor, signals: torch.Tensor) -> torch.Tensor:
        return self.ranker(user_embedding, item_embedding, signals)


def clone_ranker(model: FusionRanker) -> FusionRanker:
    """An independent copy of a ranker (a fine-tune starts from it and leaves the original intact)."""
    clone = type(model)(signals=model.signal_mean.shape[0], projection=model.user_projection.out_features,
                        hidden=model.mlp[0].out_features)
    clone.load_state_dict(model.state_dict())
    return clone


def item_cache_key(text: str) -> bytes:
    """How Triton's fusion_click model keys its item-embedding cache: the item text's token ids (int64)."""
    return encode_texts([text], ITEM_TEXT_LENGTH)["input_ids"][0].tobytes()


def trace_text_encoder(encoder: TextEncoder) -> torch.jit.ScriptModule:
    """TorchScript of the text encoder (traced with padding in one row, so the mask path is data)."""
    encoder.eval()
    ids = torch.randint(1000, 29000, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(encoder, (ids * mask, mask), strict=False, check_trace=False)


def save_fusion(encoder: nn.Module, ranker: FusionRanker, path: Path) -> None:
    """Write the served artifact: `encoder` is a `TextEncoder` or its TorchScript (reused as is)."""
    if not isinstance(encoder, torch.jit.ScriptModule):
        encoder = trace_text_encoder(encoder)
    ranker.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(FusionClick(encoder, ranker)), str(path))


def load_fusion(path: Path) -> tuple[torch.jit.ScriptModule, FusionRanker]:
    """(the TorchScript text encoder, an eager copy of the ranker to fine-tune) from a version's file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(path), map_location="cpu")
    state = {k[len("ranker."):]: v for k, v in scripted.state_dict().items() if k.startswith("ranker.")}
    ranker = FusionRanker(signals=state["signal_mean"].shape[0], projection=state["user_projection.weight"].shape[0],
                          hidden=state["mlp.0.weight"].shape[0])
    ranker.load_state_dict(state)
    return scripted.encoder, ranker.eval()


def save_scripted(module: nn.Module, path: Path) -> None:
    """TorchScript of a lone ranker (offline checks)."""
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(path))


class RankingList:
    """One shopper's candidates at one moment, with which of them were bought (a training list). `history`,
    where given, is what a learned shopper tower reads: (rows of the item table, ages in days), newest first."""

    __slots__ = ("user_embedding", "item_embeddings", "signals", "labels", "history")

    def __init__(self, user_embedding: np.ndarray, item_embeddings: np.ndarray, signals: np.ndarray, labels: np.ndarray,
                 history: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.user_embedding = user_embedding
        self.item_embeddings = item_embeddings
        self.signals = signals
        self.labels = labels
        self.history = history


def train_ranker(
    lists: Sequence[RankingList],
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    model: FusionRanker | None = None,
    progress=None,
    losses: list[float] | None = None,
    teacher: nn.Module | None = None,
    distilled: Sequence[RankingList] = (),
    distill_weight: float = 0.0,
    item_table: np.ndarray | None = None,
    new_model: type[FusionRanker] = FusionRanker,
) -> FusionRanker:
    """Listwise training (softmax cross-entropy over each list, bought items as the targets): what
    NDCG rewards is the order within a shopper's list, not calibrated absolute scores. A new model takes
    its signal normalisation from these lists; a given `model` (a fine-tune) keeps its own. Each
    step's loss is appended to `losses` when given.

    Distillation (ADER-style replay): on each of `distilled` (lists among `lists`, the replayed ones), the
    loss also carries `distill_weight` x KL(teacher's softmax over the list || the model's), so a
    fine-tune learns the new baskets without forgetting how its parent (`teacher`) ordered older ones.

    A model with a learned shopper tower (`new_model` for a new one, e.g. rankers.fusion.sequence's) reads each
    list's `history` as rows of `item_table`."""
    usable = [r for r in lists if r.labels.sum() > 0 and len(r.labels) > 1]
    if not usable:
        raise ValueError("no training list has a bought item among its candidates")
    torch.manual_seed(seed)
    distilled_ids = {id(r) for r in distilled} if teacher is not None and distill_weight > 0 else set()
    table = torch.from_numpy(item_table) if item_table is not None else None
    targets = _teacher_distributions(teacher, [r for r in usable if id(r) in distilled_ids], table) if distilled_ids else {}
    if model is None:
        model = new_model(signals=usable[0].signals.shape[1])
        model.set_normalisation(np.concatenate([r.signals for r in usable]))
    model.train()
    optimizer = torch.optim.Adam(model.parameter_groups(lr), lr=lr, weight_decay=1e-5)
    rng = np.random.default_rng(seed)
    total = epochs * len(usable)
    step = 0
    for _ in range(epochs):
        for k in rng.permutation(len(usable)):
            r = usable[k]
            logits = _list_logits(model, r, table)
            labels = torch.from_numpy(r.labels)
            log_p = torch.log_softmax(logits, 0)
            loss = -(log_p * labels).sum() / labels.sum()
            target = targets.get(id(r))
            if target is not None:
                loss = loss + distill_weight * (target * (target.clamp(min=1e-12).log() - log_p)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if losses is not None:
                losses.append(loss.item())
            if progress is not None and (step % 100 == 0 or step == total):
                progress(step, total, float(loss))
    return model.eval()


def _list_logits(model: FusionRanker, r: RankingList, item_table: torch.Tensor | None = None) -> torch.Tensor:
    """The ranker's logit for each of a list's candidates (the shopper's vector repeated per candidate)."""
    n = len(r.labels)
    user = model.list_user(r, item_table).unsqueeze(0).expand(n, -1)
    return model.logits(user, torch.from_numpy(r.item_embeddings), torch.from_numpy(r.signals))[:, 0]


def _teacher_distributions(teacher: FusionRanker, lists: Sequence[RankingList], item_table: torch.Tensor | None) -> dict[int, torch.Tensor]:
    """The teacher's softmax over each list's candidates (fixed targets, computed once), by the list's id."""
    with torch.no_grad():  # not inference_mode: the targets enter the (autograd-tracked) loss
        return {id(r): torch.softmax(_list_logits(teacher, r, item_table), 0) for r in lists}


def score_list(model: nn.Module, user_embedding: np.ndarray, item_embeddings: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Probabilities [n] for one shopper's candidates (eager or TorchScript ranker)."""
    n = len(signals)
    user = torch.from_numpy(np.broadcast_to(user_embedding, (n, user_embedding.shape[-1])).copy())
    with torch.inference_mode():
        return model(user, torch.from_numpy(item_embeddings), torch.from_numpy(signals))[:, 0].numpy()
