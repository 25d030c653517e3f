"""Settings shared by every process, read from `RECSYS_*` environment variables and validated at start.

The embedded default needs no servers: SQLite for the event log, Feast's online store and Celery's
broker and results, the wheel's tritonserver. Setting the URLs below switches each part to Redis or
PostgreSQL for the multi-machine deployment (compose.yaml). A wrong value fails at start with an
error that names the variable and what it allows (`SettingsError`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.ranker_names import RANKERS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "RECSYS_"

logger = logging.getLogger(__name__)


class SettingsError(ValueError):
    """One or more RECSYS_* variables have values the suite cannot run with."""


# Any setting may also come from a file named after its variable in lower case (recsys_eventlog_url): how
# Docker/compose secrets reach a process (/run/secrets). An environment variable of the same name wins.
SETTINGS_FILES_DIR = Path(os.environ.get("RECSYS_SETTINGS_FILES_DIR", "/run/secrets"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True,
                                      secrets_dir=SETTINGS_FILES_DIR if SETTINGS_FILES_DIR.is_dir() else None)

    data_dir: Path = PROJECT_ROOT / "var"
    # The Triton model repository: runtime state (versions, the serving config), seeded from the committed
    # templates in triton_models/, never the templates folder itself. Default <data_dir>/triton_models.
    model_repository: Path = Field(default_factory=lambda data: Path(data["data_dir"]) / "triton_models")
    triton_grpc_url: str = "127.0.0.1:8001"
    # Every Triton that serves the model from this repository, comma-separated: putting a version into
    # service (core/model_serving.py) loads it on each. Empty: the one at triton_grpc_url.
    triton_load_urls: str = ""
    # Empty means SQLite under data_dir; e.g. postgresql+psycopg://... for a shared log.
    eventlog_url: str = ""
    # Empty means Feast's SQLite online store under data_dir; "redis://host:port/db" selects Redis.
    feast_online_url: str = ""
    # Empty means Feast's registry file under data_dir; a database URL (postgresql+psycopg://...) selects
    # Feast's SQL registry, shared by every machine.
    feast_registry_url: str = ""
    celery_broker_url: str = ""
    celery_result_url: str = ""
    max_candidates: int = Field(500, ge=1, le=10_000)
    max_batch_events: int = Field(5000, ge=1)
    # Tokens of a (user text, item text) pair for the cross-encoder.
    max_length: int = Field(64, ge=8, le=512)
    fine_tune_steps: int = Field(40, ge=1)
    fine_tune_batch: int = Field(16, ge=1)
    replay_capacity: int = Field(5000, ge=0)
    # Fine-tune automatically once this many new positive events arrived since the serving version (0 = off).
    auto_fine_tune_events: int = Field(0, ge=0)
    # Celery beat checks for new events this often and fine-tunes if there are any (seconds).
    fine_tune_interval_s: float = Field(3600.0, gt=0)
    # What the beat check fine-tunes on: `events` (any new positive events) or `drift` (the serving
    # version's NDCG@10 on the behaviour since its last check fell more than drift_ndcg_drop below its
    # own record; bench/results/drift-synthetic.md measured it: one fine-tune instead of fourteen).
    fine_tune_cadence: Literal["events", "drift"] = "events"
    drift_ndcg_drop: float = Field(0.03, ge=0)
    drift_check_lists: int = Field(400, ge=1)  # newest baskets a drift check scores, at most
    drift_min_lists: int = Field(50, ge=1)  # fewer new baskets than this: too little to judge, wait
    # Which click model ranks: a name in the ranker registry (core.ranker_names.RANKERS).
    ranker: str = "fusion"
    # How a cross-encoder fine-tune updates the serving version (rankers.cross_encoder.continual).
    fine_tune_strategy: Literal["full", "distill", "top-layers", "lora"] = "top-layers"
    # The fusion ranker's item tower: frozen (the packaged MiniLM in every version) or top_layer (its last
    # transformer layer fine-tuned on the shop's baskets at every training run, rankers.fusion.text_tower).
    text_tower: Literal["frozen", "top_layer"] = "frozen"
    text_tower_steps: int = Field(100, ge=0)
    # A fusion fine-tune's distillation from its parent on the replayed lists (0: none): the weight of
    # KL(parent's list softmax || candidate's) beside the bought items' cross-entropy.
    distill_weight: float = Field(0.0, ge=0)
    # Older baskets a fusion fine-tune replays from the log per new basket (sampled across all history).
    replay_ratio: float = Field(1.0, ge=0)
    # A fusion fine-tune also learns from the lists it served: each shown list that drew a click (tied to it by
    # the events' request ids) becomes a training list of the shown items, the clicked ones weighted by the
    # inverse of their position's examination probability, the others negatives (issue 27, item 4).
    impression_lists: bool = False
    # Where training runs: auto (CUDA when the worker has a GPU, else CPU), cpu, cuda, cuda:1, ...
    train_device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    # Torch threads of a training process (0: torch's default).
    train_threads: int = Field(0, ge=0)
    # A RUNNING job whose worker has not reported for this long is treated as abandoned (seconds).
    job_lease_s: float = Field(600.0, gt=0)
    # A fine-tune that runs longer than this is stopped and its job marked FAILED (the next one starts fresh).
    fine_tune_time_limit_s: float = Field(3600.0, ge=1)
    triton_timeout_s: float = Field(10.0, gt=0)
    # The promotion gates: how much worse than the serving version a candidate may be.
    gate_loss_tolerance: float = Field(0.02, ge=0)  # log loss (cross-encoder)
    gate_ndcg_tolerance: float = Field(0.01, ge=0)  # listwise NDCG@10 (fusion)
    # The fusion gate rejects a drop beyond the tolerance only when it is also worse at this one-sided
    # confidence over the held-out lists (0: any drop beyond the tolerance rejects).
    gate_confidence: float = Field(0.0, ge=0, lt=1)
    # How often the feedback service refreshes shop-wide popularity in the online store (seconds).
    popularity_refresh_s: float = Field(30.0, ge=0)
    segments: int = Field(8, ge=1, le=100)  # shopper segments the clustering finds (fewer for a small shop)
    segment_refresh_s: float = Field(86400.0, ge=60)  # beat re-clusters the shoppers this often
    # How long the scoring service trusts its copy of item, shop and co-purchase features (seconds; 0: no
    # cache). The shopper's own row is read on every request (core/feature_cache.py).
    feature_cache_s: float = Field(5.0, ge=0)
    # How long it serves an item's popularity before reading the item again (at least feature_cache_s);
    # item text and statuses are re-read as soon as the catalogue stamp moves (core/feature_cache.py).
    item_cache_s: float = Field(300.0, ge=0)
    # gRPC worker threads of each scoring process, and how many processes share its port (SO_REUSEPORT).
    scoring_threads: int = Field(8, ge=1, le=256)
    scoring_processes: int = Field(1, ge=1, le=64)
    # Feedback processes sharing its port the same way: RecordEvents is CPU-bound in one process (the GIL)
    # while the shopper rows it refreshes are written; each process is a replica (the event log
    # orders appends, the online store keeps the newest row, core.feature_sync).
    feedback_processes: int = Field(1, ge=1, le=64)
    # Nice level of each service's background threads (refresher, state writer, popularity refresh,
    # attributor, served-list recorder, item-cache revalidation; core/background.py): higher lets the
    # request path win the cores when both want them, 0 shares them evenly (10: +6% Rank/s, shop-like lab).
    background_nice: int = Field(10, ge=0, le=19)
    # Every this many seconds each service process collects its young objects and freezes the survivors
    # (core/gc_freeze.py), so CPython's full collection no longer walks the caches: without it each scoring
    # process paused 300-500 ms about every 30 s under the shop-like load. 0: CPython's own collection only.
    gc_freeze_s: float = Field(60.0, ge=0)
    # RecordEvents answers once its events are durable, and waits for the refresh of the shopper rows
    # they change when the refresher (core/feature_refresher.py) expects to reach them within this many ms
    # (read-your-writes); further behind, it answers at once with features_pending. 0: never waits.
    refresh_wait_ms: float = Field(250.0, ge=0, le=10_000)
    # Triton instances of the model a fresh deployment's config gets: KIND_GPU on a GPU machine (its model
    # then runs in RECSYS_INFERENCE_DTYPE, float16 by default there), and how many per device.
    triton_instance_kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"
    triton_instances: int = Field(1, ge=1, le=16)
    inference_dtype: Literal["", "float32", "float16", "bfloat16"] = ""  # read by model.py in tritonserver's environment
    # OpenTelemetry spans (core/tracing.py): none, console (stderr), file (JSON lines at otel_file) or otlp
    # (an OTLP/gRPC collector at otel_endpoint, e.g. Jaeger or the OpenTelemetry Collector).
    otel_exporter: Literal["none", "console", "file", "otlp"] = "none"
    otel_endpoint: str = "http://127.0.0.1:4317"
    otel_file: Path | None = None
    # Log lines as text or JSON (each with the request id / fine-tune job id in context; core/log_format.py).
    log_format: Literal["text", "json"] = "text"
    # Shopper states (ranking/shopper_states.py): the feedback service encodes each changed shopper's vector
    # for every serving version when their events arrive (off: every Rank computes it inline). A newly
    # serving version gets the states of shoppers active in the last state_backfill_days.
    shopper_states: bool = True
    state_backfill_days: float = Field(90.0, gt=0)

    # --- online experiments (core/experiments) ---
    # The scoring service records every answer for a shopper (request id, arm, version, items) for attribution.
    record_served: bool = True
    # An event is attributed once it is this old (its served list has then arrived), and without a
    # request id to the newest list with its item shown to the shopper at most attribution_window_s before.
    attribution_grace_s: float = Field(2.0, ge=0)
    attribution_window_s: float = Field(1800.0, gt=0)
    # How often the feedback service takes a look at a running canary (seconds).
    experiment_check_s: float = Field(10.0, gt=0)
    # A newly gated version starts as a canary with this share of shoppers (0: it serves everyone at once),
    # promoted or rolled back automatically by its online metric against the serving version.
    canary_share: float = Field(0.0, ge=0, lt=1)
    canary_metric: Literal["ctr", "conversion", "revenue_per_impression", "ndcg"] = "ctr"
    canary_confidence: float = Field(0.95, ge=0.5, le=0.999)
    canary_margin: float = Field(0.1, ge=0, lt=1)  # relative: "not worse" allows this much below the control
    canary_min_impressions: int = Field(500, ge=1)
    canary_max_impressions: int = Field(20000, ge=1)

    # --- trust (core/security.py) ---
    # TLS on every gRPC port; certificates default to <secrets dir>/server.pem, generated at first start.
    tls: bool = True
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None  # what clients (and, with client auth, the server) trust
    # Client certificates: none (API keys only) or require (mutual TLS: only clients with a certificate
    # signed by the CA connect, and they still need an API key for a role).
    tls_client_auth: Literal["none", "require"] = "none"
    # Extra DNS names in the generated server certificate (compose service names), comma-separated.
    tls_hostnames: str = "feedback,scoring,profile"
    # API keys with roles in metadata ("authorization: Bearer <key>" or "x-api-key"); off only for debugging.
    auth: bool = True
    api_keys_file: Path | None = None  # default <secrets dir>/api_keys.json
    secrets_dir: Path | None = None  # default <data dir>/secrets
    # HMAC key for shopper ids at rest (default: <secrets dir>/pseudonym.key, generated). Changing it
    # orphans every stored shopper: their history is no longer found under their id.
    pseudonym_key: SecretStr | None = None
    # the header value Triton's model control (load, unload, repository index), shared memory, trace and
    # logging APIs require (--grpc-restricted-protocol); empty: the generated <secrets>/triton_control.key
    triton_control_key: SecretStr | None = None
    # Events older than this are deleted by the retention task (days; 0 = keep forever).
    retention_days: float = Field(0.0, ge=0)

    @field_validator("ranker")
    @classmethod
    def _known_ranker(cls, value: str) -> str:
        if value not in RANKERS:
            raise ValueError(f"unknown ranker {value!r}; choose one of: {', '.join(RANKERS)}")
        return value

    @field_validator("data_dir", "model_repository")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @property
    def triton_load_url_list(self) -> list[str]:
        return [u.strip() for u in (self.triton_load_urls or self.triton_grpc_url).split(",") if u.strip()]

    @property
    def eventlog(self) -> str:
        return self.eventlog_url or f"sqlite:///{self.data_dir / 'eventlog.db'}"

    @property
    def audit_log(self) -> str:
        """The audit log's database: PostgreSQL's event log itself (row locks), but a SQLite file of its
        own beside a SQLite event log, so an audit write never takes the lock ingest commits under."""
        if not self.eventlog.startswith("sqlite"):
            return self.eventlog
        path = self.eventlog.split(":///", 1)[1] if ":///" in self.eventlog else str(self.data_dir / "eventlog.db")
        return f"sqlite:///{Path(path).with_name(Path(path).stem + '-audit.db')}"

    @property
    def celery_broker(self) -> str:
        return self.celery_broker_url or f"sqla+sqlite:///{self.data_dir / 'celery-broker.db'}"

    @property
    def celery_results(self) -> str:
        return self.celery_result_url or f"db+sqlite:///{self.data_dir / 'celery-results.db'}"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def secrets_path(self) -> Path:
        return (self.secrets_dir or self.data_dir / "secrets").resolve()

    @property
    def server_cert(self) -> Path:
        return self.tls_cert_file or self.secrets_path / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.tls_key_file or self.secrets_path / "server-key.pem"

    @property
    def ca_cert(self) -> Path:
        return self.tls_ca_file or self.secrets_path / "ca.pem"

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.secrets_path / "api_keys.json"


def _explain(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        name = ENV_PREFIX + "_".join(str(p) for p in problem["loc"]).upper()
        given = problem.get("input")
        lines.append(f"{name}={given!r}: {problem['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load(**overrides: object) -> Settings:
    """The settings of this process (environment, then `overrides`); the data dir exists afterwards.
    Raises SettingsError naming each bad variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
