"""Typed payloads of the worker's tasks (sent as JSON)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FineTuneRequest:
    job_id: str
    max_steps: int
    batch_size: int = 16
    negatives_per_positive: int = 2
    max_positives: int = 2000
    seed: int = 0
    learning_rate: float = 0.0  # 0: the fine-tune strategy's default

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FineTuneRequest":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class FineTuneResult:
    job_id: str
    state: str
    parent_version: str
    new_version: str
    examples: int
    final_loss: float
    train_seconds: float

    def to_json(self) -> dict:
        return asdict(self)
