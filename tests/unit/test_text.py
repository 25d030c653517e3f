from clickmodel.text import HistoryEntry, ItemText, history_from_events, item_text, price_band, user_text


def test_item_text_puts_title_first_and_bands_price():
    text = item_text(ItemText("Red Spotty Mug", "A mug.", "kitchen", 3.2))
    assert text.startswith("Red Spotty Mug")
    assert "category kitchen" in text and "price low" in text and "A mug." in text


def test_item_text_skips_empty_fields_and_repeated_description():
    assert item_text(ItemText("Lantern", "lantern")) == "Lantern"


def test_price_band_edges():
    assert [price_band(p) for p in (1.99, 2, 14.99, 15, 49.99, 50)] == ["very low", "low", "medium", "high", "high", "very high"]


def test_user_text_separates_purchases_from_views_most_recent_first():
    titles = {"a": "Teapot", "b": "Mug", "c": "Lantern"}
    history = [HistoryEntry("a", "purchase"), HistoryEntry("b", "click"), HistoryEntry("c", "purchase")]
    assert user_text(history, titles) == "bought: Teapot; Lantern. viewed: Mug"


def test_user_text_for_a_new_shopper_and_unknown_items():
    assert user_text([], {}) == "new shopper with no history"
    assert user_text([HistoryEntry("gone", "purchase")], {}) == "new shopper with no history"


def test_history_from_events_drops_impressions_and_orders_newest_first():
    events = [("a", "purchase", 1.0), ("b", "impression", 5.0), ("c", "click", 3.0), ("d", "add_to_cart", 2.0)]
    assert [h.item_id for h in history_from_events(events)] == ["c", "d", "a"]
    assert len(history_from_events([("x", "click", float(i)) for i in range(50)], limit=20)) == 20
