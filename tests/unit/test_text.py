from shoptext.text import HistoryEntry, ItemText, history_from_events, item_text, price_band, user_text


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


def test_torch_free_tokenizer_equals_transformers():
    """gRPC processes tokenise with `tokenizers` on the package's tokenizer.json; the ids, masks and
    token types must be exactly what transformers' tokenizer (what the models were trained with) gives."""
    import numpy as np
    from transformers import AutoTokenizer

    from shoptext.tokenizer import encode_pairs, encode_texts, pretrained_dir

    reference = AutoTokenizer.from_pretrained(str(pretrained_dir()))
    users = ["bought: red mug; blue teapot. viewed: owl lantern " * 6, "new shopper with no history", "a", "Ünïcode – café crème"]
    items = ["owl lantern. category home. price low", "x " * 120, "Ünïcode thing – é", "SET/6 RED SPOTTY PAPER CUPS"]
    for length in (8, 32, 64, 96):
        ours, theirs = encode_pairs(users, items, length), reference(users, items, truncation="longest_first", max_length=length,
                                                                       padding="longest", return_tensors="np")
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            assert np.array_equal(ours[key], theirs[key]), (length, key)
        ours, theirs = encode_texts(users + items, length), reference(users + items, truncation=True, max_length=length,
                                                                       padding="longest", return_tensors="np")
        for key in ("input_ids", "attention_mask"):
            assert np.array_equal(ours[key], theirs[key]), (length, key)
