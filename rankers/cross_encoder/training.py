"""Training half of the cross-encoder: labelled (shopper text, item text) examples from the event log,
fine-tuning with a continual-learning option (rankers.cross_encoder.continual) on the new examples plus a replay
sample from the persisted reservoir, early stopping, and a gate on log loss against the serving
version (the newest held-out examples and replayed older ones). Torch is imported here only."""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Sequence

import torch

from core.domain import Event, Example, GateDecision, Lineage
from core.model_repository import ModelRepository
from core.settings import Settings
from core.store import EventLog
from rankers.base import Candidate, NothingToLearn, Trainer, TrainingRun
from rankers.cross_encoder import CrossEncoderRanker
from rankers.cross_encoder.continual import DEFAULT_LEARNING_RATE
from rankers.cross_encoder.fine_tune import build_examples, fine_tune, score_pairs
from rankers.cross_encoder.network import build_model, load_for_training, save_torchscript
from rankers.metrics import auc

logger = logging.getLogger(__name__)


def training_device(setting: str) -> str:
    """The torch device of RECSYS_TRAIN_DEVICE (auto: CUDA when this process sees a GPU)."""
    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"

GATE_EXAMPLES = 256  # newest examples held out for the promotion gate, at most
VALIDATION_EXAMPLES = 96  # examples for early stopping, at most (checked every 10 steps)


def examples_since(log: EventLog, since: float, negatives: int, max_positives: int, seed: int,
                   until: float | None = None, is_new: Callable[[Event], bool] | None = None) -> tuple[list[Example], float, float, int]:
    """Examples from the new positives: stamped after `since`, or those `is_new` picks (arrival order);
    returns (examples, data_from, data_to, newest arrival number read)."""
    events: list[Event] = log.events.read(until=until)
    chosen = is_new or (lambda e: e.timestamp > since)
    fresh = [e.timestamp for e in events if chosen(e)]
    newest = max((e.seq for e in events), default=0)
    if not fresh:
        return [], since, since, newest
    examples = build_examples(events, log.catalogue.items(), include=chosen, negatives_per_positive=negatives,
                              max_positives=max_positives, seed=seed)
    return examples, min(fresh), max(fresh), newest


def train_candidate(
    settings: Settings,
    repo: ModelRepository,
    *,
    parent: int | None,
    examples: list[Example],
    data_window: tuple[float, float],
    max_steps: int,
    batch_size: int,
    job_id: str,
    seed: int = 0,
    learning_rate: float = 0.0,
    progress: Callable[[int, int, float], None] | None = None,
    stage: Callable[[str], None] = lambda _: None,
    replay: Sequence[Example] = (),
    replay_eval: Sequence[Example] = (),
    strategy: str | None = None,
) -> Candidate:
    """Fine-tune `parent` (or the pretrained encoder when None) on the new examples plus `replay`
    (older examples, against forgetting), early-stopped on the newest tenth of the training part; gate
    it against the parent on the newest fifth (held out) and on `replay_eval`. `strategy` (default: the
    settings') picks the continual-learning option; a first version always trains every weight."""
    holdout: list[Example] = []
    train = examples
    if parent is not None and len(examples) >= 10:
        # examples are in time order: the tail is newest; capped so gating costs seconds, not minutes
        cut = len(examples) - min(GATE_EXAMPLES, max(2, len(examples) // 5))
        train, holdout = examples[:cut], examples[cut:]
    validation: list[Example] = []
    if parent is not None and len(train) >= 20:
        cut = len(train) - min(VALIDATION_EXAMPLES, max(4, len(train) // 10))
        train, validation = train[:cut], train[cut:]
    strategy = "full" if parent is None else (strategy or settings.fine_tune_strategy)
    learning_rate = learning_rate or DEFAULT_LEARNING_RATE.get(strategy, 3e-5)
    model = build_model(seed=seed) if parent is None else load_for_training(repo.model_path(parent))
    teacher = load_for_training(repo.model_path(parent)) if strategy == "distill" and parent is not None else None
    report = fine_tune(model, list(train) + list(replay), max_steps=max_steps, batch_size=batch_size, lr=learning_rate,
                       max_length=settings.max_length, seed=seed, progress=progress, validation=validation,
                       strategy=strategy, teacher=teacher, device=training_device(settings.train_device))
    stage("evaluating the candidate against the serving version")
    if validation and report.best_step == 0:
        gate = {"passed": False, "reason": f"fine-tuning never improved the validation loss ({len(validation)} examples): "
                "the candidate is the serving version's weights", "metrics": {"validation_loss": report.validation_loss}}
    else:
        gate = promotion_gate(settings, repo, parent, model, holdout, list(replay_eval)).to_json()
    lineage = Lineage(
        version="",
        parent_version="" if parent is None else str(parent),
        created=time.time(),
        data_from=data_window[0],
        data_to=data_window[1],
        example_count=len(examples),
        final_loss=report.final_loss,
        job_id=job_id,
        train_seconds=report.seconds,
        notes={"steps": report.steps, "best_step": report.best_step, "mean_loss": report.mean_loss,
               "examples_seen": report.examples_seen, "learning_rate": learning_rate, "holdout_examples": len(holdout),
               "validation_examples": len(validation), "replay_examples": len(replay), "strategy": strategy,
               "device": training_device(settings.train_device)},
        gate=gate,
    )
    return Candidate(lineage, lambda folder: save_torchscript(model, folder / "model.pt"))


def promotion_gate(settings: Settings, repo: ModelRepository, parent: int | None, candidate: torch.nn.Module,
                   holdout: list[Example], replay_eval: list[Example] | None = None) -> GateDecision:
    """Candidate vs serving version on the newest held-out examples and on a replay sample (older
    behaviour): on each, log loss must not be worse by more than RECSYS_GATE_LOSS_TOLERANCE.
    (AUC is recorded too; it is undefined on one-class slices.)"""
    if parent is None:
        return GateDecision(True, "first version")
    if not holdout:
        return GateDecision(True, "too few examples to hold any out; published ungated")
    parent_model = torch.jit.load(str(repo.model_path(parent)), map_location="cpu").eval()

    def metrics(model: torch.nn.Module, examples: list[Example]) -> dict[str, Any]:
        labels = [e.label for e in examples]
        probs = score_pairs(model, [e.user_text for e in examples], [e.item_text for e in examples], settings.max_length)
        eps = 1e-6
        loss = -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps)) for p, y in zip(probs, labels)) / len(labels)
        pos = [p for p, y in zip(probs, labels) if y > 0.5]
        neg = [p for p, y in zip(probs, labels) if y <= 0.5]
        return {"log_loss": round(loss, 5), "auc": round(auc(pos, neg), 5) if pos and neg else None}

    candidate.eval()
    tolerance = settings.gate_loss_tolerance
    results: dict[str, Any] = {}
    reasons, passed = [], True
    for name, examples in (("newest", holdout), ("replay", replay_eval or [])):
        if not examples:
            continue
        ours, theirs = metrics(candidate, examples), metrics(parent_model, examples)
        ok = ours["log_loss"] <= theirs["log_loss"] + tolerance
        passed &= ok
        results[name] = {"candidate": ours, "serving": theirs, "examples": len(examples), "passed": ok}
        reasons.append(f"{name}: log loss {ours['log_loss']:.4f} {'not worse than' if ok else 'worse than'} "
                       f"version {parent}'s {theirs['log_loss']:.4f} on {len(examples)} examples")
    reason = "; ".join(reasons) + f" (tolerance {tolerance})"
    return GateDecision(passed, reason, results)


class CrossEncoderTrainer(Trainer):
    def __init__(self, ranker: CrossEncoderRanker) -> None:
        self.ranker = ranker

    def train(self, run: TrainingRun) -> Candidate:
        run.stage("building examples")
        examples, lo, hi, newest = examples_since(run.log, run.since, run.negatives_per_positive, run.max_examples, run.seed,
                                                  run.until, run.is_new)
        if not examples:
            raise NothingToLearn(f"no new labelled events since version {run.parent}" if run.parent else
                                 "the event log has no labelled events to warm-start version 1 on")
        buffer = run.log.replay(run.settings.replay_capacity)
        replay_eval: list[Example] = []
        replay: list[Example] = []
        if run.parent is not None:
            replay_all = buffer.sample(min(len(examples), 256) + 64, seed=run.seed)
            replay_eval, replay = replay_all[:64], replay_all[64:]
        candidate = train_candidate(
            run.settings, run.repo, parent=run.parent, examples=examples, data_window=(lo, hi), max_steps=run.max_steps,
            batch_size=run.batch_size, job_id=run.job_id, seed=run.seed, progress=run.progress, stage=run.stage,
            learning_rate=run.learning_rate, replay=replay, replay_eval=replay_eval, strategy=run.strategy,
        )
        candidate.lineage.seq_to = newest
        # what this version learned joins the replay reservoir once it serves
        candidate.promoted = lambda: buffer.add(examples, seed=run.seed)
        return candidate
