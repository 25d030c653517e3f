"""Train a click model version and publish it to the Triton repository: shared by the fine-tune task
and the bootstrap of version 1. Torch is imported here lazily, only in processes that train."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from clickmodel.training import Event, Example, build_examples
from services.config import Settings
from services.eventlog import EventLog, ReplayBuffer
from services.model_repository import Lineage, ModelRepository
from services.triton_client import TritonClickClient

logger = logging.getLogger(__name__)

GATE_EXAMPLES = 256  # newest examples held out for the promotion gate, at most
VALIDATION_EXAMPLES = 96  # examples for early stopping, at most (checked every 10 steps)


def examples_since(log: EventLog, since: float, negatives: int, max_positives: int, seed: int) -> tuple[list[Example], float, float]:
    """Examples from positives newer than `since`; returns (examples, data_from, data_to)."""
    events: list[Event] = log.events()
    fresh = [e.timestamp for e in events if e.timestamp > since]
    if not fresh:
        return [], since, since
    examples = build_examples(
        events, log.catalogue(), since=since + 1e-6 if since > float("-inf") else since,
        negatives_per_positive=negatives, max_positives=max_positives, seed=seed,
    )
    return examples, min(fresh), max(fresh)


def train_and_publish(
    settings: Settings,
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
    load_in_triton: bool = True,
    replay: Sequence[Example] = (),
    replay_eval: Sequence[Example] = (),
    strategy: str | None = None,
) -> tuple[int, Lineage]:
    """Fine-tune `parent` (or the pretrained encoder when None) on the new examples plus `replay`
    (older examples, against forgetting), early-stopped on the newest tenth of the training part; gate
    it against the parent on the newest fifth (held out) and on `replay_eval`; publish it as the next
    version and, if the gate passed, pin it as the serving version and have Triton load it. A rejected
    candidate is published with its metrics and reason but never served. `strategy` (default: the
    settings') picks the continual-learning option; a first version always trains every weight."""
    from clickmodel.network import build_model, load_for_training, save_torchscript
    from clickmodel.training import fine_tune

    repo = ModelRepository(settings.model_repository)
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
    from clickmodel.continual import DEFAULT_LEARNING_RATE

    strategy = "full" if parent is None else (strategy or settings.fine_tune_strategy)
    learning_rate = learning_rate or DEFAULT_LEARNING_RATE.get(strategy, 3e-5)
    model = build_model(seed=seed) if parent is None else load_for_training(repo.model_path(parent))
    teacher = load_for_training(repo.model_path(parent)) if strategy == "distill" and parent is not None else None
    report = fine_tune(model, list(train) + list(replay), max_steps=max_steps, batch_size=batch_size, lr=learning_rate,
                       max_length=settings.max_length, seed=seed, progress=progress, validation=validation,
                       strategy=strategy, teacher=teacher, device=settings.device)
    stage("evaluating the candidate against the serving version")
    if validation and report.best_step == 0:
        gate = {"passed": False, "reason": f"fine-tuning never improved the validation loss ({len(validation)} examples): "
                "the candidate is the serving version's weights", "metrics": {"validation_loss": report.validation_loss}}
    else:
        gate = promotion_gate(settings, repo, parent, model, holdout, list(replay_eval))
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
               "device": settings.device},
        gate=gate,
    )
    stage("tracing and publishing the new version")
    version = repo.publish(lambda path: save_torchscript(model, path), lineage, tag=job_id)
    serve_if_passed(settings, repo, version, gate, load_in_triton, stage)
    return version, lineage


def serve_if_passed(settings: Settings, repo: ModelRepository, version: int, gate: dict, load_in_triton: bool,
                    stage: Callable[[str], None] = lambda _: None) -> None:
    """A published version that passed the gate becomes the pinned serving version and Triton loads
    it; if the load fails, the pin goes back to the version served before."""
    if not gate["passed"]:
        return
    previous = repo.pin(version)
    if load_in_triton:
        stage(f"loading version {version} in Triton")
        client = TritonClickClient(settings.triton_grpc_url, settings.triton_timeout_s, repo.model_name)
        try:
            client.load_and_wait(version)
        except Exception:
            if previous is not None:
                repo.pin(previous)  # Triton keeps serving the old version; so does the config
            raise
        finally:
            client.close()


def promotion_gate(settings: Settings, repo: ModelRepository, parent: int | None, candidate, holdout: list[Example],  # type: ignore[no-untyped-def]
                   replay_eval: list[Example] | None = None) -> dict:
    """Candidate vs serving version on the newest held-out examples and on a replay sample (older
    behaviour): on each, log loss must not be worse by more than RECSYS_GATE_LOSS_TOLERANCE.
    (AUC is recorded too; it is undefined on one-class slices.)"""
    import math

    import torch

    from clickmodel.training import score_pairs
    from evaluation.metrics import auc

    if parent is None:
        return {"passed": True, "reason": "first version", "metrics": {}}
    if not holdout:
        return {"passed": True, "reason": "too few examples to hold any out; published ungated", "metrics": {}}
    parent_model = torch.jit.load(str(repo.model_path(parent)), map_location="cpu").eval()

    def metrics(model, examples: list[Example]) -> dict:  # type: ignore[no-untyped-def]
        labels = [e.label for e in examples]
        probs = score_pairs(model, [e.user_text for e in examples], [e.item_text for e in examples], settings.max_length)
        eps = 1e-6
        loss = -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps)) for p, y in zip(probs, labels)) / len(labels)
        pos = [p for p, y in zip(probs, labels) if y > 0.5]
        neg = [p for p, y in zip(probs, labels) if y <= 0.5]
        return {"log_loss": round(loss, 5), "auc": round(auc(pos, neg), 5) if pos and neg else None}

    candidate.eval()
    tolerance = float(os.environ.get("RECSYS_GATE_LOSS_TOLERANCE", "0.02"))
    results, reasons, passed = {}, [], True
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
    return {"passed": passed, "reason": reason, "metrics": results}


def bootstrap(
    settings: Settings, max_steps: int, batch_size: int = 16, seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> int:
    """Version 1 of the configured ranker, warm-started on the event log: the packaged MiniLM encoder
    plus a click head (cross-encoder), or the text towers plus a ranker trained on recent baskets (fusion)."""
    log = EventLog(settings.eventlog)
    repo = ModelRepository(settings.model_repository, settings.model_name)
    repo.ensure_layout()
    if repo.latest() is not None:
        logger.info("model repository already has version %s; bootstrap skipped", repo.latest())
        return repo.latest()  # type: ignore[return-value]
    if settings.ranker == "fusion":
        from workers.fusion_publishing import train_fusion_and_publish

        version, _ = train_fusion_and_publish(settings, parent=None, since=float("-inf"), job_id="bootstrap", seed=seed,
                                              load_in_triton=False, max_lists=max(200, max_steps * batch_size * 4),
                                              progress=progress, stage=lambda text: logger.info("bootstrap: %s", text))
        return version
    examples, lo, hi = examples_since(log, float("-inf"), negatives=2, max_positives=max_steps * batch_size, seed=seed)
    if not examples:
        raise RuntimeError("the event log has no labelled events to warm-start version 1 on")
    version, _ = train_and_publish(
        settings, parent=None, examples=examples, data_window=(lo, hi), max_steps=max_steps,
        batch_size=batch_size, job_id="bootstrap", seed=seed, progress=progress, load_in_triton=False,
    )
    ReplayBuffer(log, settings.replay_capacity).add(examples, seed=seed)
    return version


def main() -> None:
    import argparse

    from services.config import load

    parser = argparse.ArgumentParser(description="Export and warm-start version 1 of the click model.")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(bootstrap(load(), args.steps))


if __name__ == "__main__":
    main()
