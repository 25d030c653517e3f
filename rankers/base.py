"""The `Ranker` interface: everything that differs between click models, behind one shape.

A ranker has two halves. The serving half (this module's `Ranker`, torch-free) names its Triton model
and builds its config, reads what it needs of a shopper from the online store, retrieves candidates,
turns a shopper and candidates into the model's request tensors, and materialises its per-version
online features. The training half (`Trainer`, imported lazily by `Ranker.trainer()` in processes that
train) builds examples from the event log, trains from a parent version or from scratch, gates the
candidate against the serving version and says which files make up the version. Scoring, the
fine-tune task, publishing, rollback and the benchmarks call only these methods.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np

from core.domain import Event, Lineage
from core.features import ItemFeatures, OnlineFeatures, version_key
from shoptext.text import HistoryEntry

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2 as mc

    from core.model_repository import ModelRepository
    from core.settings import Settings
    from core.store import EventLog


@dataclass(frozen=True)
class Shopper:
    """One shopper at request time, as the online store holds them (and the shop around them)."""

    user_id: str
    recent: list[HistoryEntry]  # newest interest events first (the model text)
    interests: list[tuple[str, float]]  # (item_id, ts) of interest events, newest first (the signals)
    clock: float  # the shop's newest event time: "now"
    popular: list[str]  # the shop's items by 30-day popularity
    filler: list[str] = field(default_factory=list)  # catalogue items that pad a short candidate list
    co_purchase: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # of recent items, this version
    purchased: list[str] = field(default_factory=list)  # distinct items they bought, newest first (Recommend's rules)
    state: Any = None  # the ranker's stored shopper state for this version, when current (None: none, or stale)
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # what a ranker derives once per request


class Ranker(ABC):
    name: ClassVar[str]  # the registry name (RECSYS_RANKER)
    model_name: ClassVar[str]  # the Triton model, and the model repository folder
    # Encodes shopper states when events arrive (ranking.shopper_states), or None: the ranker reads the
    # shopper's history per request. The fusion ranker's is rankers.fusion.shopper_state.StateEncoder.
    state_encoder: ClassVar[Any] = None
    reads_popularity: ClassVar[bool] = False  # whether request_inputs needs ItemFeatures.popularity_*

    # --- serving (torch-free) -------------------------------------------------------------------
    @abstractmethod
    def triton_config(self, instance_kind: str = "KIND_CPU", instances: int = 1) -> "mc.ModelConfig":
        """The model's config.pbtxt (python backend over the version's TorchScript file)."""

    def shopper(self, features: OnlineFeatures, user_id: str, version: str) -> Shopper:
        """What ranking reads of `user_id` from the online store, for the serving `version`."""
        user = features.get_user(user_id)
        shop = features.get_shop()
        if user is None:
            return Shopper(user_id, [], [], shop.clock, shop.popular, shop.filler)
        return Shopper(user_id, [HistoryEntry(i, t) for i, t in user.recent], user.interests, shop.clock, shop.popular, shop.filler,
                       purchased=user.purchased)

    def context_items(self, shopper: Shopper) -> list[str]:
        """Items besides the candidates whose features request_inputs reads (default: the recent history's)."""
        return [h.item_id for h in shopper.recent]

    def state_source(self, shopper: Shopper) -> str:
        """How the shopper's side of the request was obtained, for the answer ("" when the ranker keeps
        no shopper state; the fusion ranker: stored, inline or cold_start)."""
        return ""

    @abstractmethod
    def retrieve(self, shopper: Shopper, size: int) -> list[str]:
        """Candidates for Recommend, best first (at most `size`)."""

    @abstractmethod
    def request_inputs(self, shopper: Shopper, candidates: Sequence[str], items: dict[str, ItemFeatures],
                       settings: "Settings") -> dict[str, np.ndarray]:
        """The Triton request for `candidates` (all in `items`, as are the shopper's recent items)."""

    def materialise(self, version_dir: Path, features: OnlineFeatures, version: int) -> None:  # noqa: B027
        """Push the version's own online features (read from its folder); none by default."""

    def version_key(self, version: int | str) -> str:
        return version_key(self.model_name, version)

    # --- explanations (torch-free) ---------------------------------------------------------------
    def explanation_inputs(self, inputs: dict[str, np.ndarray], rows: Sequence[int]) -> dict[str, np.ndarray] | None:
        """A second Triton request that measures why the candidates at `rows` of `inputs` scored as
        they did (None: this ranker cannot explain)."""
        return None

    def explanations(self, shopper: Shopper, candidates: Sequence[str], probabilities: np.ndarray,
                     items: dict[str, ItemFeatures], features: OnlineFeatures, version: str) -> list[list[Any]]:
        """Each candidate's reasons (rankers.fusion.explain.Reason), from the explanation request's scores."""
        raise NotImplementedError

    # --- item-to-item (torch-free) --------------------------------------------------------------
    related_kinds: ClassVar[tuple[str, ...]] = ()  # the neighbour tables a version publishes: "co_purchase", "similar"

    def neighbour_key(self, version: int | str, kind: str) -> str:
        """The online store's key of one of a version's neighbour tables (co-purchase: the version key)."""
        key = self.version_key(version)
        return key if kind == "co_purchase" else f"{key}:{kind}"

    def related_items(self, features: OnlineFeatures, version: str, kind: str, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
        """The serving version's neighbours of `item_ids` in its `kind` table (none by default)."""
        return {}

    # --- training (imports torch) ---------------------------------------------------------------
    def first_version_budget(self, max_steps: int, batch_size: int) -> int:
        """TrainingRun.max_examples for version 1 (the bootstrap)."""
        return max_steps * batch_size

    def fine_tune_budget(self, max_positives: int) -> int:
        """TrainingRun.max_examples for a fine-tune asked to use `max_positives` new positives."""
        return max_positives

    @abstractmethod
    def trainer(self) -> "Trainer":
        """The training half (imported on call)."""


class NothingToLearn(Exception):
    """The log holds nothing new for this ranker since the parent version's window."""


@dataclass
class TrainingRun:
    """One training of a version: from `parent` (None: from the pretrained encoder) on what the log
    holds after `since` (and before `until`, when replaying history).

    `after_seq`, when set, decides what is new instead of `since`: the events that *arrived* after that
    arrival number (the parent's `Lineage.seq_to`), whatever their timestamps, so a late or early-stamped
    event is trained on exactly once. Replays of history, whose appends follow time, use `since`."""

    settings: "Settings"
    log: "EventLog"
    repo: "ModelRepository"
    parent: int | None
    since: float
    job_id: str
    max_steps: int = 40
    batch_size: int = 16
    max_examples: int = 2000  # positives (cross-encoder) or baskets (fusion) from the new data, at most
    negatives_per_positive: int = 2
    seed: int = 0
    learning_rate: float = 0.0  # 0: the ranker's default
    until: float | None = None
    strategy: str | None = None  # continual-learning option (cross-encoder); None: the settings'
    after_seq: int | None = None
    progress: Callable[[int, int, float], None] | None = None  # (step, steps, loss)
    stage: Callable[[str], None] = lambda _: None

    def is_new(self, event: Event) -> bool:
        """Whether the event belongs to this run's new data (arrival order when `after_seq` is set)."""
        if self.after_seq is not None:
            return event.seq > self.after_seq
        return event.timestamp > self.since


@dataclass
class Candidate:
    """A trained version before publishing: its lineage (gate decision included), how to write its
    folder, and what to do once it serves."""

    lineage: Lineage
    write: Callable[[Path], None]
    promoted: Callable[[], None] = lambda: None

    @property
    def passed(self) -> bool:
        return bool(self.lineage.gate.get("passed", True))


class Trainer(ABC):
    @abstractmethod
    def train(self, run: TrainingRun) -> Candidate:
        """Train and gate a candidate; raises NothingToLearn when the log has nothing new."""

    def serving_quality(self, settings: "Settings", log: "EventLog", repo: "ModelRepository", version: int,
                        since: float, until: float, max_lists: int) -> tuple[float, int] | None:
        """NDCG@10 of `version` on the newest (at most `max_lists`) baskets stamped in [since, until),
        and how many lists that was; None when the ranker has no list metric (the drift cadence then
        falls back to fine-tuning on new events)."""
        return None
