"""Settings shared by every process, read from the environment (one place, typed, with defaults).

The embedded default needs no servers: SQLite for the event log, Feast's online store and Celery's
broker and results, the wheel's tritonserver. Setting the URLs below switches each part to Redis or
PostgreSQL for the multi-machine deployment (compose.yaml).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(_env("RECSYS_DATA_DIR", str(PROJECT_ROOT / "var"))).resolve())
    model_repository: Path = field(
        default_factory=lambda: Path(_env("RECSYS_MODEL_REPOSITORY", str(PROJECT_ROOT / "triton_models"))).resolve()
    )
    triton_grpc_url: str = field(default_factory=lambda: _env("RECSYS_TRITON_GRPC_URL", "127.0.0.1:8001"))
    # Empty means SQLite under data_dir; e.g. postgresql+psycopg://... for a shared log.
    eventlog_url: str = field(default_factory=lambda: _env("RECSYS_EVENTLOG_URL", ""))
    # Empty means Feast's SQLite online store under data_dir; "redis://host:port/db" selects Redis.
    feast_online_url: str = field(default_factory=lambda: _env("RECSYS_FEAST_ONLINE_URL", ""))
    celery_broker_url: str = field(default_factory=lambda: _env("RECSYS_CELERY_BROKER_URL", ""))
    celery_result_url: str = field(default_factory=lambda: _env("RECSYS_CELERY_RESULT_URL", ""))
    max_candidates: int = field(default_factory=lambda: int(_env("RECSYS_MAX_CANDIDATES", "500")))
    max_batch_events: int = field(default_factory=lambda: int(_env("RECSYS_MAX_BATCH_EVENTS", "5000")))
    max_length: int = field(default_factory=lambda: int(_env("RECSYS_MAX_LENGTH", "64")))
    fine_tune_steps: int = field(default_factory=lambda: int(_env("RECSYS_FINE_TUNE_STEPS", "40")))
    fine_tune_batch: int = field(default_factory=lambda: int(_env("RECSYS_FINE_TUNE_BATCH", "16")))
    replay_capacity: int = field(default_factory=lambda: int(_env("RECSYS_REPLAY_CAPACITY", "5000")))
    # Fine-tune automatically once this many new positive events arrived since the serving version (0 = off).
    auto_fine_tune_events: int = field(default_factory=lambda: int(_env("RECSYS_AUTO_FINE_TUNE_EVENTS", "0")))
    # Celery beat checks for new events this often and fine-tunes if there are any (seconds).
    fine_tune_interval_s: float = field(default_factory=lambda: float(_env("RECSYS_FINE_TUNE_INTERVAL_S", "3600")))
    # Which click model ranks: "fusion" (two towers + repeat signals, clickmodel.fusion) or
    # "cross-encoder" (MiniLM over every (user text, item text) pair, clickmodel.network).
    ranker: str = field(default_factory=lambda: _env("RECSYS_RANKER", "fusion"))
    # How a fine-tune updates the serving version: full | distill | top-layers | lora (clickmodel.continual).
    fine_tune_strategy: str = field(default_factory=lambda: _env("RECSYS_FINE_TUNE_STRATEGY", "top-layers"))
    # Where training runs: auto (CUDA when the worker has a GPU, else CPU), cpu, cuda, cuda:1, ...
    train_device: str = field(default_factory=lambda: _env("RECSYS_TRAIN_DEVICE", "auto"))
    # A RUNNING job whose worker has not reported for this long is treated as abandoned (seconds).
    job_lease_s: float = field(default_factory=lambda: float(_env("RECSYS_JOB_LEASE_S", "600")))
    triton_timeout_s: float = field(default_factory=lambda: float(_env("RECSYS_TRITON_TIMEOUT_S", "10")))

    @property
    def eventlog(self) -> str:
        return self.eventlog_url or f"sqlite:///{self.data_dir / 'eventlog.db'}"

    @property
    def celery_broker(self) -> str:
        return self.celery_broker_url or f"sqla+sqlite:///{self.data_dir / 'celery-broker.db'}"

    @property
    def celery_results(self) -> str:
        return self.celery_result_url or f"db+sqlite:///{self.data_dir / 'celery-results.db'}"

    @property
    def model_name(self) -> str:
        """The Triton model of the configured ranker."""
        from services.triton_config import FUSION_MODEL_NAME, MODEL_NAME

        if self.ranker not in ("fusion", "cross-encoder"):
            raise ValueError(f"RECSYS_RANKER={self.ranker!r}: choose fusion or cross-encoder")
        return FUSION_MODEL_NAME if self.ranker == "fusion" else MODEL_NAME

    @property
    def device(self) -> str:
        """The torch device training uses (torch is imported only when asked, in training processes)."""
        if self.train_device != "auto":
            return self.train_device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"


def load() -> Settings:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
