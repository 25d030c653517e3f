"""One ranking pipeline, run by the scoring servicer and by the served benchmarks alike.

Steps, each a method: `shopper` (features of the shopper from the online store, for a version),
`candidates` (the ranker's retrieval, topped up by the shop's popular and filler items, plus the
rules' pinned and boosted items), `rank` (item features → rules filter → one Triton request → order →
arrange by the rules → explain), and for item-to-item the neighbour tables (`related_scores`) arranged
without a model (`arranged`). Results are domain values (`Ranking`); protobuf lives only at the edge.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from core.errors import FailedPrecondition, NotFound, Unavailable
from core.features import ItemFeatures, OnlineFeatures
from core.rules import Rules, arrange
from core.settings import Settings
from core.triton_client import InferenceUnavailable, TritonClickClient
from rankers.base import Ranker, Shopper

logger = logging.getLogger(__name__)

MAX_EXPLAINED = 100  # items explained per answer (16 coalition rows each in one Triton request)
RELATED_KINDS = ("similar", "co_purchase", "trending")


@dataclass
class RankedItem:
    """One item of an answer: its click probability (or table score), how it got its slot, and its
    reasons when explanations were asked for (the ranker's Reason values: kind, attribution, text)."""

    item_id: str
    probability: float
    placement: str = "ranked"  # ranked | boosted | pinned
    reasons: list[Any] = field(default_factory=list)
    score: float = 0.0  # item-to-item answers: the neighbour table's (or trending list's) score


@dataclass
class Ranking:
    """An answer, best first: the version that scored it ("" when none did), whether it is degraded
    (Triton could not answer: retrieval/request order), and the experiment arm that served it."""

    items: list[RankedItem]
    request_id: str
    model_version: str = ""
    degraded: bool = False
    experiment_id: str = ""
    arm: str = ""
    shopper_state: str = ""  # how the shopper's vector was obtained: stored | inline | cold_start ("": no state kept)

    @property
    def item_ids(self) -> list[str]:
        return [i.item_id for i in self.items]


Timer = Callable[[str], AbstractContextManager[Any]]


class RankingPipeline:
    """The configured ranker over the online store and Triton. `timed(dependency)` wraps each call to
    a dependency (the servicer passes its latency histogram); `on_degraded` counts degraded answers."""

    def __init__(self, settings: Settings, features: OnlineFeatures, triton: TritonClickClient, ranker: Ranker,
                 timed: Timer = lambda _: nullcontext(), on_degraded: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.features = features
        self.triton = triton
        self.ranker = ranker
        self.timed = timed
        self.on_degraded = on_degraded

    # --- features -------------------------------------------------------------------------------
    def shopper(self, user_key: str, version: str) -> Shopper:
        """What ranking reads of the shopper (by their online-store key) for `version`."""
        with self.timed("feast_shopper"):
            return self.ranker.shopper(self.features, user_key, version)

    def anonymous(self) -> Shopper:
        """A shopper without history: the shop's clock only (item-to-item without a user_id)."""
        return Shopper("", [], [], self.features.get_shop().clock, [], [])

    # --- retrieve -------------------------------------------------------------------------------
    def candidates(self, shopper: Shopper, size: int, rules: Rules | None = None) -> list[str]:
        """Recommend's candidates: the ranker's retrieval of `size`; when filters may empty much of it,
        the shop's popular and filler items stand behind it so k still come back when k qualify; the
        rules' pinned and boosted items first."""
        candidates = self.ranker.retrieve(shopper, size)
        reach = size * (2 if rules is not None and rules.filters else 1)
        if len(candidates) < reach:
            candidates = list(dict.fromkeys(candidates + shopper.popular + shopper.filler))[:reach]
        if rules is not None:
            candidates = list(dict.fromkeys(rules.extra_candidates() + candidates))
        if not candidates:
            raise FailedPrecondition("the catalogue is empty; upsert items first")
        return candidates

    # --- rules → infer → arrange → explain ------------------------------------------------------
    def rank(self, shopper: Shopper, candidates: Sequence[str], request_id: str, version: str, allow_unknown: bool = False,
             top: int | None = None, rules: Rules | None = None, explain: bool = False) -> Ranking:
        """Score `candidates` for the shopper with `version`; the best `top` (default: all). With `rules`
        only qualifying candidates are scored and core.rules.arrange fills the top; with `explain` each
        returned item carries its reasons. Unknown candidates raise NotFound unless `allow_unknown`."""
        with self.timed("feast_items"):
            context = self.ranker.context_items(shopper) + ([h.item_id for h in shopper.recent] if explain else [])  # reasons name them
            items = self.features.get_items(list(candidates) + context, popularity=self.ranker.reads_popularity)
        unknown = [c for c in candidates if c not in items]
        if unknown and not allow_unknown:
            raise NotFound(f"{len(unknown)} unknown or deleted item_ids: {', '.join(unknown[:5])}")
        if rules is not None:
            excluded = rules.shopper_exclusions(shopper.purchased, shopper.interests, shopper.clock)
            pinned = {i for i, _ in rules.pins}
            candidates = [c for c in candidates if rules.allows(c, items.get(c), excluded)
                          or (c in pinned and c in items and items[c].available)]
        candidates = [c for c in candidates if c in items]
        if not candidates:  # every candidate excluded by the rules: nothing to score
            return Ranking([], request_id, version, degraded=not version)
        try:
            if not version:
                raise InferenceUnavailable("no serving version")
            inputs = self.ranker.request_inputs(shopper, candidates, items, self.settings)
            with self.timed("triton_infer"):
                scores = self.triton.score(inputs, version, request_id=request_id)
        except InferenceUnavailable as exc:
            logger.warning("Triton unavailable, answering degraded: %s", exc)
            self.on_degraded()
            return Ranking(self._top([(c, 0.0) for c in candidates], items, rules, top), request_id, degraded=True)
        probabilities = np.asarray(scores.probabilities, dtype=np.float64)
        order = np.argsort(-probabilities, kind="stable")  # ties keep the request's order
        ranking = Ranking(self._top([(candidates[i], float(probabilities[i])) for i in order.tolist()], items, rules, top),
                          request_id, scores.model_version, shopper_state=self.ranker.state_source(shopper))
        if explain:
            self._explain(ranking, shopper, candidates, inputs, items)
        return ranking

    def _explain(self, ranking: Ranking, shopper: Shopper, candidates: list[str], inputs: dict[str, np.ndarray],
                 items: dict[str, ItemFeatures]) -> None:
        """Attach each returned item's reasons: one more Triton request (the ranker's coalitions of
        evidence for those items) and the ranker's attributions over its answers."""
        row_of = {c: r for r, c in enumerate(candidates)}
        shown = [i.item_id for i in ranking.items if i.item_id in row_of][:MAX_EXPLAINED]
        request = self.ranker.explanation_inputs(inputs, [row_of[i] for i in shown])
        if request is None:
            raise FailedPrecondition(f"the {self.ranker.name} ranker cannot explain its scores")
        try:
            with self.timed("triton_explain"):
                probabilities = np.asarray(self.triton.score(request, ranking.model_version, request_id=ranking.request_id).probabilities)
        except InferenceUnavailable as exc:  # the ranking stands; it just comes without its reasons
            logger.warning("explanations unavailable: %s", exc)
            return
        reasons = dict(zip(shown, self.ranker.explanations(shopper, shown, probabilities, items, self.features, ranking.model_version)))
        for item in ranking.items:
            item.reasons = list(reasons.get(item.item_id, []))

    @staticmethod
    def _top(ranked: list[tuple[str, float]], items: dict[str, ItemFeatures], rules: Rules | None, top: int | None) -> list[RankedItem]:
        """The best `top` of `ranked` (best first), placed by `rules` when given."""
        if rules is None:
            return [RankedItem(item_id, probability) for item_id, probability in ranked[:top]]
        return [RankedItem(s.item_id, s.probability, s.placement) for s in arrange(ranked, items, rules, top or len(ranked))]

    # --- item-to-item ---------------------------------------------------------------------------
    def related_scores(self, kind: str, seeds: list[str], version: str) -> list[tuple[str, float]]:
        """(item, score) best first: the shop's trending list, or the seeds' neighbours in the version's
        `kind` table summed over the seeds."""
        if kind == "trending":
            return self.features.get_shop().trending
        if kind not in self.ranker.related_kinds:
            raise FailedPrecondition(f"the {self.ranker.name} ranker publishes no {kind} table")
        known = self.features.get_items(seeds)
        if unknown := [s for s in seeds if s not in known]:
            raise NotFound(f"{len(unknown)} unknown or deleted item_ids: {', '.join(unknown[:5])}")
        if not version:
            raise Unavailable(f"no model version is served, so its {kind} table is unknown; retry shortly")
        total: dict[str, float] = {}
        for neighbours in self.ranker.related_items(self.features, version, kind, seeds).values():
            for item_id, score in neighbours:
                total[item_id] = total.get(item_id, 0.0) + score
        return sorted(total.items(), key=lambda x: -x[1])

    def arranged(self, shopper: Shopper, candidates: list[str], scores: dict[str, float], rules: Rules, k: int, request_id: str,
                 version: str) -> Ranking:
        """The candidates in their table order (no model), filtered and arranged by the rules."""
        items = self.features.get_items(candidates)
        excluded = rules.shopper_exclusions(shopper.purchased, shopper.interests, shopper.clock)
        pinned = {i for i, _ in rules.pins}
        ranked = [(c, 0.0) for c in candidates if rules.allows(c, items.get(c), excluded) or (c in pinned and c in items)]
        ranked.sort(key=lambda x: -scores.get(x[0], 0.0))  # stable: pinned and boosted items without a score go last
        return Ranking(self._top(ranked, items, rules, k), request_id, version)

    def related(self, kind: str, seeds: list[str], shopper: Shopper | None, rules: Rules, k: int, request_id: str, version: str,
                size: int) -> tuple[Ranking, list[str]]:
        """An item-to-item answer and the candidates it ranked: up to `size` of the `kind` table (the
        rules' extra items first, never a seed), ordered by the model for `shopper` when given, else by
        the table's own score; each item's score is the table's."""
        scored = self.related_scores(kind, seeds, version)
        candidates = list(dict.fromkeys(rules.extra_candidates() + [i for i, _ in scored if i not in seeds]))[:size]
        scores = dict(scored)
        if shopper is not None and candidates:
            ranking = self.rank(shopper, candidates, request_id, version, allow_unknown=True, top=k, rules=rules)
        else:
            ranking = self.arranged(shopper or self.anonymous(), candidates, scores, rules, k, request_id, version if kind != "trending" else "")
        for item in ranking.items:
            item.score = scores.get(item.item_id, 0.0)
        return ranking, candidates
