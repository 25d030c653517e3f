"""Shopper states through the real suite (feedback + its state writer, Feast, tritonserver, scoring):
written when events arrive, read by Rank instead of any shopper-side computation, a defined fallback
while none is current, and gone after ForgetUser."""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.domain import Event
from core.features import FeatureClient
from core.privacy import Pseudonyms
from devtools.ports import eventually
from shoprank.v1 import model_admin_pb2

pytestmark = pytest.mark.integration

CANDIDATES = ["SKU0001", "SKU1001", "SKU2001", "SKU3001", "SKU0002"]


def test_a_new_shopper_is_ranked_from_the_cold_start_vector(client):
    answer = client.rank("states-never-seen", CANDIDATES)
    assert not answer.degraded and answer.shopper_state == "cold_start"


def test_rank_reads_the_stored_state_and_falls_back_inline_until_it_is_written(serving_suite, client):
    settings = serving_suite.settings()
    shopper = "states-live"
    now = time.time()
    client.record_events([Event("states-e1", shopper, "SKU1001", "purchase", now - 5)])
    assert eventually(lambda: client.rank(shopper, CANDIDATES).shopper_state == "stored", timeout=30), "the writer stores the state"
    stored = client.rank(shopper, CANDIDATES)
    features = FeatureClient(settings)
    key = Pseudonyms.of(settings)(shopper)
    state = features.get_shopper_state(key, f"fusion_click:{stored.model_version}")
    assert state is not None and state.vector.shape == (384,) and np.isclose(np.linalg.norm(state.vector), 1.0, atol=1e-4)

    # a new event changes the history: until the writer has caught up, Rank computes the vector in its own
    # Triton request (never the outdated state); once it has, the stored one scores exactly the same
    client.record_events([Event("states-e2", shopper, "SKU2001", "purchase", now)])
    first = client.rank(shopper, CANDIDATES)
    assert first.shopper_state in ("inline", "stored")
    assert eventually(lambda: client.rank(shopper, CANDIDATES).shopper_state == "stored", timeout=30)
    after = client.rank(shopper, CANDIDATES)
    assert [(i.item_id, round(i.probability, 5)) for i in after.items] == [(i.item_id, round(i.probability, 5)) for i in first.items]
    assert features.get_shopper_state(key, f"fusion_click:{stored.model_version}").fingerprint != state.fingerprint


def test_forget_user_removes_every_stored_state(serving_suite, client):
    settings = serving_suite.settings()
    shopper = "states-forget-me"
    client.record_events([Event("states-f1", shopper, "SKU0001", "purchase", time.time())])
    assert eventually(lambda: client.rank(shopper, CANDIDATES).shopper_state == "stored", timeout=30)
    key = Pseudonyms.of(settings)(shopper)
    features = FeatureClient(settings)
    admin = serving_suite.client(role="admin")
    admin.admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=shopper), timeout=60)
    version = client.rank("states-never-seen", CANDIDATES).model_version
    assert features.get_shopper_state(key, f"fusion_click:{version}") is None and not features.has_user(key)
    assert client.rank(shopper, CANDIDATES).shopper_state == "cold_start"
    admin.close()
