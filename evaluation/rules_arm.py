"""Recommend's rules (core.rules, the scoring service's own code) on a harness recommender's ranking,
so the EVAL protocol can measure what "exclude purchased" and diversity cost or gain (issue 14)."""
from __future__ import annotations

from typing import Any

from core.domain import ItemText
from core.features import ItemFeatures
from core.rules import Rules, arrange
from evaluation.protocol import Case

DEPTH = 20  # the base ranking is read this many times deeper than asked, for the rules to skip into


def parse_rules(text: str) -> Rules:
    """`exclude-purchased,distinct-titles,max-per-category=2` as Rules."""
    fields: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name == "exclude-purchased":
            fields["exclude_purchased"] = True
        elif name == "distinct-titles":
            fields["distinct_titles"] = True
        elif name == "max-per-category":
            fields["max_per_category"] = int(value)
        else:
            raise SystemExit(f"error: unknown rule {name!r} (exclude-purchased, distinct-titles, max-per-category=N)")
    return Rules(**fields)


class WithRules:
    """`base`'s ranking, filtered and arranged by `rules` as the scoring service's Recommend does."""

    def __init__(self, base: Any, rules: Rules, catalogue: dict[int, ItemText], history: Any, ev: Any, label: str) -> None:
        self.base, self.rules, self.history, self.ev = base, rules, history, ev
        self.items = {i: ItemFeatures(text) for i, text in catalogue.items()}
        self.name = f"{base.name} + {label}"

    def ranked(self, case: Case, limit: int) -> list[int]:
        pool = self.base.ranked(case, limit * DEPTH)
        bought = [int(self.ev.item[p]) for p in self.history.before(case)]
        excluded = self.rules.shopper_exclusions(bought, [], float(case.ts))  # type: ignore[arg-type]  # item indices stand in for ids
        qualifying = [(i, 0.0) for i in pool if i in self.items and self.rules.allows(i, self.items[i], excluded)]
        return [int(s.item_id) for s in arrange(qualifying, self.items, self.rules, limit)]  # type: ignore[arg-type]
