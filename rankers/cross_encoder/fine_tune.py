"""Labelled examples from an event log and the fine-tuning loop, used by the worker and the bootstrap."""
from __future__ import annotations

import logging
import math
import random
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch

from core.domain import Event, Example
from rankers.cross_encoder.network import ClickModel
from shoptext.text import POSITIVE_EVENTS, ItemText, history_from_events, item_text, user_text
from shoptext.tokenizer import DEFAULT_MAX_LENGTH, encode_pairs

logger = logging.getLogger(__name__)


def build_examples(
    events: Sequence[Event],
    catalogue: Mapping[str, ItemText],
    *,
    since: float = float("-inf"),
    include: Callable[[Event], bool] | None = None,
    negatives_per_positive: int = 2,
    max_positives: int | None = None,
    seed: int = 0,
    sample: str = "newest",
) -> list[Example]:
    """Point-in-time examples: each positive event at or after `since` (or, when given, each one `include`
    accepts) becomes one positive example whose
    user text is built from that shopper's history strictly before it; negatives are impressions that
    led to no interest in the same ranking, topped up with catalogue items the shopper never touched.
    """
    rng = random.Random(seed)
    titles = {item_id: it.title for item_id, it in catalogue.items()}
    item_ids = sorted(catalogue)
    by_user: dict[str, list[Event]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
        by_user[e.user_id].append(e)

    interested = {(e.user_id, e.request_id, e.item_id) for e in events if e.event_type in POSITIVE_EVENTS}
    chosen = include or (lambda e: e.timestamp >= since)
    positives = [e for e in events if e.event_type in POSITIVE_EVENTS and chosen(e) and e.item_id in catalogue]
    positives.sort(key=lambda e: (e.timestamp, e.event_id))
    if max_positives is not None and len(positives) > max_positives:
        if sample == "uniform":  # a budgeted sample of all history (a full retrain on a budget)
            keep = sorted(random.Random(seed).sample(range(len(positives)), max_positives))
            positives = [positives[k] for k in keep]
        else:
            positives = positives[-max_positives:]  # the newest behaviour matters most

    examples: list[Example] = []
    for pos in positives:
        past = [(e.item_id, e.event_type, e.timestamp) for e in by_user[pos.user_id] if e.timestamp < pos.timestamp]
        utext = user_text(history_from_events(past), titles)
        examples.append(Example(utext, item_text(catalogue[pos.item_id]), 1.0, pos.user_id))
        touched = {e.item_id for e in by_user[pos.user_id]}
        shown_not_taken = [
            e.item_id
            for e in by_user[pos.user_id]
            if e.event_type == "impression"
            and e.request_id
            and (e.user_id, e.request_id, e.item_id) not in interested
            and e.item_id in catalogue
            and abs(e.timestamp - pos.timestamp) < 86400
        ]
        negs = rng.sample(shown_not_taken, min(len(shown_not_taken), negatives_per_positive // 2))
        tries = 0
        while len(negs) < negatives_per_positive and tries < 50 and item_ids:
            tries += 1
            cand = rng.choice(item_ids)
            if cand not in touched and cand not in negs:
                negs.append(cand)
        examples.extend(Example(utext, item_text(catalogue[n]), 0.0, pos.user_id) for n in negs)
    return examples


@dataclass
class TrainReport:
    steps: int
    best_step: int
    validation_loss: float
    examples_seen: int
    mean_loss: float
    final_loss: float
    seconds: float


def fine_tune(
    model: ClickModel,
    examples: Sequence[Example],
    *,
    max_steps: int,
    batch_size: int = 16,
    lr: float = 3e-5,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    validation: Sequence[Example] = (),
    eval_every: int = 10,
    patience: int = 3,
    strategy: str = "full",
    teacher: torch.nn.Module | None = None,
    distill_weight: float = 0.5,
    device: str = "cpu",
) -> TrainReport:
    """Binary cross-entropy fine-tuning for at most `max_steps` steps (cycling over the examples),
    with linear warmup over the first tenth of the steps. `progress(step, total, loss)` is called
    after every step. With a `validation` slice, its loss is checked every `eval_every` steps; training
    stops after `patience` checks without improvement and the best weights are kept.

    `strategy` is one of `rankers.cross_encoder.continual.STRATEGIES`; with `distill`, `teacher` (the previous
    version) adds `distill_weight` × BCE towards its probabilities. Training runs on `device`; the
    model comes back on the CPU, a plain `ClickModel` whatever the strategy."""
    from rankers.cross_encoder import continual

    if not examples:
        raise ValueError("no training examples")
    if strategy == "distill" and teacher is None:
        raise ValueError("the distill strategy needs the previous version as teacher")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    steps = max(1, min(max_steps, math.ceil(len(examples) / batch_size) * 3))
    params = continual.prepare(model, strategy)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # transformers 5 self-deprecation
    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    cursor = len(order)
    best: tuple[float, int, dict | None] = (float("inf"), 0, None)
    stale = 0
    if validation:
        best = (validation_loss(model, validation, max_length), 0, {k: v.detach().clone() for k, v in model.state_dict().items()})
        model.train()
    for step in range(steps):
        if cursor + batch_size > len(order):
            rng.shuffle(order)
            cursor = 0
        batch = [examples[i] for i in order[cursor : cursor + batch_size]]
        cursor += batch_size
        enc = encode_pairs([b.user_text for b in batch], [b.item_text for b in batch], max_length)
        tensors = {k: torch.from_numpy(v).to(device) for k, v in enc.items()}
        labels = torch.tensor([[b.label] for b in batch], device=device)
        logits = model.logits(**tensors)
        loss = loss_fn(logits, labels)
        if strategy == "distill":
            with torch.no_grad():
                soft = torch.sigmoid(teacher.logits(**tensors))
            loss = loss + distill_weight * loss_fn(logits, soft)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.item()))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
        if validation and ((step + 1) % eval_every == 0 or step + 1 == steps):
            val = validation_loss(model, validation, max_length)
            model.train()
            if val < best[0] - 1e-4:
                best = (val, step + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
                stale = 0
            else:
                stale += 1
                if stale >= patience:
                    logger.info("early stop at step %d: validation loss %.4f, best %.4f at step %d", step + 1, val, best[0], best[1])
                    break
    if best[2] is not None:
        model.load_state_dict(best[2])
    continual.finish(model)
    model.to("cpu").eval()
    tail = losses[-max(1, len(losses) // 5) :]
    return TrainReport(
        steps=len(losses),
        best_step=best[1] if best[2] is not None else len(losses),
        validation_loss=best[0] if best[2] is not None else float("nan"),
        examples_seen=len(losses) * batch_size,
        mean_loss=sum(losses) / len(losses),
        final_loss=sum(tail) / len(tail),
        seconds=time.perf_counter() - started,
    )


def validation_loss(model: torch.nn.Module, examples: Sequence[Example], max_length: int = DEFAULT_MAX_LENGTH) -> float:
    """Mean binary cross-entropy of the model on examples (eval mode, no gradients)."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(examples), 64):
            chunk = examples[i : i + 64]
            enc = encode_pairs([e.user_text for e in chunk], [e.item_text for e in chunk], max_length)
            logits = model.logits(*(torch.from_numpy(enc[k]).to(device) for k in ("input_ids", "attention_mask", "token_type_ids")))
            labels = torch.tensor([[e.label] for e in chunk], device=device)
            total += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum"))
    return total / len(examples)


def score_pairs(model: torch.nn.Module, user_texts: Iterable[str], item_texts: Iterable[str], max_length: int = DEFAULT_MAX_LENGTH) -> list[float]:
    """Probabilities from an eager or TorchScript click model (used for offline checks)."""
    enc = encode_pairs(list(user_texts), list(item_texts), max_length)
    with torch.inference_mode():
        out = model(*(torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")))
    return out[:, 0].tolist()
