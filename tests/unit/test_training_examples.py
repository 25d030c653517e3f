from rankers.cross_encoder.fine_tune import Event, build_examples
from shoptext.text import ItemText

CATALOGUE = {i: ItemText(f"Title {i}") for i in "abcdefghij"}


def test_examples_are_point_in_time_and_negatives_untouched():
    events = [
        Event("1", "u", "a", "purchase", 10.0),
        Event("2", "u", "b", "impression", 19.0, "r1"),
        Event("3", "u", "c", "click", 20.0, "r1"),
        Event("4", "u", "d", "purchase", 30.0),
    ]
    examples = build_examples(events, CATALOGUE, negatives_per_positive=2, seed=1)
    positives = [e for e in examples if e.label == 1.0]
    assert [p.item_text for p in positives] == ["Title a", "Title c", "Title d"]
    # history strictly before each positive: nothing for the first, 'a' for the second, 'a'+'c' for the third
    assert positives[0].user_text == "new shopper with no history"
    assert positives[1].user_text == "bought: Title a"
    assert positives[2].user_text == "bought: Title a. viewed: Title c"
    negatives = [e for e in examples if e.label == 0.0]
    assert len(negatives) == 6
    assert not {"Title a", "Title c", "Title d"} & {n.item_text for n in negatives}
    # the impression shown in the same ranking but not taken is used as a negative
    assert "Title b" in {n.item_text for n in negatives}


def test_since_and_max_positives_keep_the_newest():
    events = [Event(str(i), "u", "abcdefghij"[i], "purchase", float(i)) for i in range(10)]
    ex = build_examples(events, CATALOGUE, since=5.0, negatives_per_positive=0)
    assert [e.item_text for e in ex] == [f"Title {c}" for c in "fghij"]
    ex = build_examples(events, CATALOGUE, negatives_per_positive=0, max_positives=2)
    assert [e.item_text for e in ex] == ["Title i", "Title j"]
