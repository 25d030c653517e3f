"""Shapley attributions over the fusion ranker's evidence groups (rankers.fusion.explain)."""
import itertools

import numpy as np

from rankers.base import Shopper
from rankers.fusion.explain import GROUPS, coalition_inputs, explain, shapley
from rankers.fusion.signals import SIGNAL_COUNT, SIGNAL_NAMES


def test_coalitions_zero_exactly_the_absent_groups():
    inputs = {"user_vector": np.ones((1, 384), np.float32), "item_input_ids": np.arange(6).reshape(3, 2),
              "item_attention_mask": np.ones((3, 2), np.int64), "signals": np.ones((3, SIGNAL_COUNT), np.float32)}
    out = coalition_inputs(inputs, [2, 0])
    assert out["signals"].shape == (32, SIGNAL_COUNT) and out["user_vector"].shape == (1, 384)
    assert (out["item_input_ids"][:16] == [4, 5]).all() and (out["item_input_ids"][16:] == [0, 1]).all()
    repeat = SIGNAL_NAMES.index("log_count")
    co = SIGNAL_NAMES.index("co_purchase")
    shopper_level = SIGNAL_NAMES.index("log_baskets")
    assert out["signals"][0, repeat] == 0 and out["signals"][1, repeat] == 1  # bit 0 is the repeat group
    assert out["signals"][7, co] == 0 and out["signals"][15, co] == 1  # bit 3 is co-purchase
    assert (out["signals"][:, shopper_level] == 1).all()  # shopper-level signals are never removed


def test_shapley_values_add_up_and_match_an_additive_model():
    weights = np.array([0.3, -0.1, 0.05, 0.2])
    values = [0.1 + sum(w for g, w in enumerate(weights) if (c >> g) & 1) for c in range(16)]
    phi, empty = shapley(np.asarray(values), 1)
    assert np.allclose(phi[0], weights) and np.isclose(empty[0], 0.1)
    rng = np.random.default_rng(0)
    values = rng.random(32)  # any game: efficiency holds
    phi, empty = shapley(values, 2)
    assert np.allclose(phi.sum(1) + empty, values.reshape(2, 16)[:, 15])


def test_reasons_come_largest_first_with_the_facts():
    shopper = Shopper("u", [], [("a", 1000.0), ("a", 1000.0 - 30 * 86400)], 1000.0 + 2 * 86400, [], purchased=["a"])
    values = np.concatenate([[0.2 + 0.5 * ((c >> 0) & 1) for c in range(16)], [0.1] * 16])
    reasons = explain(shopper, ["a", "b"], values, {}, {})
    assert reasons[0][0].kind == "repeat" and abs(reasons[0][0].attribution - 0.5) < 1e-6
    assert "you bought it (2 events" in reasons[0][0].text
    timing = next(r for r in reasons[0] if r.kind == "timing")
    assert timing.text == "last 2 days ago, usually every ~30 days"
    text = next(r for r in reasons[1] if r.kind == "text")
    assert np.isclose(text.attribution, -0.05)  # b's text-only score 0.1 against the mean 0.15
    assert {r.kind for r in reasons[1]} == set(GROUPS) | {"text"}
    for r, p in zip(reasons, [0.7, 0.1]):
        assert np.isclose(sum(x.attribution for x in r) + 0.15, p)  # additivity with the text mean
    assert list(itertools.chain(reasons[0])) == sorted(reasons[0], key=lambda x: -abs(x.attribution))
