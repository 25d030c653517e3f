"""Recommend's rules (core.rules) and their validation (services.validation.validate_rules)."""
import pytest

from core.domain import ItemText
from core.errors import InvalidArgument
from core.features import ItemFeatures
from core.rules import Rules, arrange, near_duplicate, title_words
from services.validation import validate_rules
from shoprank.v1 import common_pb2

ITEMS = {
    "a": ItemFeatures(ItemText("RED RETROSPOT CAKE STAND", category="kitchen")),
    "b": ItemFeatures(ItemText("PINK RETROSPOT CAKE STAND", category="kitchen")),
    "c": ItemFeatures(ItemText("JUMBO BAG PINK POLKADOT", category="bags")),
    "d": ItemFeatures(ItemText("WHITE HANGING HEART T-LIGHT HOLDER", category="decor")),
    "e": ItemFeatures(ItemText("REGENCY TEACUP", category="kitchen")),
    "f": ItemFeatures(ItemText("LUNCH BAG BLACK SKULL", category="bags")),
    "x": ItemFeatures(ItemText("SOLD OUT LAMP", category="decor"), available=False),
}
RANKED = [("a", 0.9), ("b", 0.8), ("e", 0.7), ("c", 0.6), ("d", 0.5), ("f", 0.4)]


def ids(slots):
    return [s.item_id for s in slots]


def test_without_rules_the_top_k_is_the_model_order():
    assert ids(arrange(RANKED, ITEMS, Rules(), 3)) == ["a", "b", "e"]


def test_shopper_exclusions_cover_purchases_recent_interest_and_explicit_ids():
    rules = Rules(exclude_purchased=True, exclude_seen_days=7, exclude_item_ids=frozenset({"f"}))
    clock = 100 * 86400.0
    excluded = rules.shopper_exclusions(["a"], [("b", clock - 3 * 86400), ("c", clock - 30 * 86400)], clock)
    assert excluded == {"a", "b", "f"}  # c was seen 30 days ago: outside the window


def test_availability_and_categories_decide_what_may_fill_a_slot():
    rules = Rules(include_categories=frozenset({"kitchen", "decor"}), exclude_categories=frozenset({"decor"}))
    allowed = [i for i in ITEMS if rules.allows(i, ITEMS[i], set())]
    assert allowed == ["a", "b", "e"]
    assert not Rules().allows("x", ITEMS["x"], set())  # out of stock never qualifies
    assert not Rules().allows("gone", None, set())  # deleted: the online store does not return it


def test_max_per_category_skips_to_the_next_qualifying_item_so_k_still_come_back():
    slots = arrange(RANKED, ITEMS, Rules(max_per_category=1), 3)
    assert ids(slots) == ["a", "c", "d"]


def test_distinct_titles_keeps_one_variant_of_a_product():
    assert near_duplicate(title_words("RED RETROSPOT CAKE STAND"), title_words("PINK RETROSPOT CAKE STAND"))
    assert near_duplicate(title_words("Red Mug"), title_words("Blue Mug"))
    assert not near_duplicate(title_words("Red Mug"), title_words("Red Lamp"))
    assert not near_duplicate(title_words("JUMBO BAG PINK POLKADOT"), title_words("LUNCH BAG BLACK SKULL"))
    assert ids(arrange(RANKED, ITEMS, Rules(distinct_titles=True), 3)) == ["a", "e", "c"]


def test_boosted_items_get_their_share_of_slots_in_the_model_order():
    slots = arrange(RANKED, ITEMS, Rules(boosted=("f", "d"), boost_share=0.5), 4)
    assert ids(slots) == ["a", "b", "d", "f"]  # two of four slots, best boosted first, ordered by score
    assert [s.placement for s in slots] == ["ranked", "ranked", "boosted", "boosted"]


def test_pins_take_their_positions_and_the_rest_is_ranked_around_them():
    slots = arrange(RANKED, ITEMS, Rules(pins=(("f", 1), ("c", 3))), 4)
    assert ids(slots) == ["f", "a", "c", "b"]
    assert slots[0].placement == "pinned" and slots[2].placement == "pinned"


def test_an_unavailable_pin_leaves_its_slot_to_the_ranking():
    assert ids(arrange(RANKED, ITEMS, Rules(pins=(("x", 1),)), 2)) == ["a", "b"]


def test_fewer_than_k_come_back_only_when_fewer_qualify():
    assert ids(arrange(RANKED[:2], ITEMS, Rules(), 5)) == ["a", "b"]


def rules_message(**kwargs):
    return common_pb2.RecommendRules(**kwargs)


def test_validation_turns_the_message_into_rules():
    rules = validate_rules(rules_message(exclude_purchased=True, exclude_seen_days=14, include_categories=["kitchen"],
                                         boosted_item_ids=["b", "b"], boost_share=0.2,
                                         pins=[common_pb2.Pin(item_id="c", position=2)], max_per_category=2), 10)
    assert rules.exclude_purchased and rules.exclude_seen_days == 14 and rules.boosted == ("b",)
    assert rules.pins == (("c", 2),) and rules.filters
    assert not validate_rules(rules_message(), 10).filters


@pytest.mark.parametrize("kwargs, words", [
    ({"exclude_seen_days": -1}, "exclude_seen_days"),
    ({"boost_share": 1.5, "boosted_item_ids": ["a"]}, "boost_share"),
    ({"boost_share": float("nan"), "boosted_item_ids": ["a"]}, "boost_share"),
    ({"boost_share": 0.3}, "boosted_item_ids is empty"),
    ({"max_per_category": -2}, "max_per_category"),
    ({"pins": [common_pb2.Pin(item_id="a", position=11)]}, "outside 1..k"),
    ({"pins": [common_pb2.Pin(item_id="a", position=1), common_pb2.Pin(item_id="b", position=1)]}, "pinned twice"),
    ({"pins": [common_pb2.Pin(item_id="a", position=1)], "exclude_item_ids": ["a"]}, "pinned and excluded"),
    ({"exclude_item_ids": ["bad id with spaces"]}, "exclude_item_ids"),
    ({"include_categories": ["\x1b[31m"]}, "not a category"),
])
def test_bad_rules_are_invalid_arguments_naming_the_field(kwargs, words):
    with pytest.raises(InvalidArgument, match="rules") as raised:
        validate_rules(rules_message(**kwargs), 10)
    assert words in str(raised.value)
