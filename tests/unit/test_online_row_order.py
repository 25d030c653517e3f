"""Online rows keep the one read last: a push whose row was read from the log before the stored one's
does not replace it (two feedback processes refreshing one shopper at once), on Feast's SQLite store
(core.feast_sqlite) and on Redis (Feast's own store keeps the newer row)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.features import FeatureClient, StateRow, UserFeatures, apply
from core.settings import Settings
from devtools.local_servers import flush_redis_db, redis_available
from shoptext.text import ItemText

REDIS_DB = 12


def _client(tmp_path, backend: str) -> FeatureClient:
    url = ""
    if backend == "redis":
        if not redis_available():
            pytest.skip("no Redis answers on 127.0.0.1:6379")
        flush_redis_db(REDIS_DB)
        url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    settings = Settings(data_dir=tmp_path, feast_online_url=url)
    apply(settings)
    return FeatureClient(settings)


def _row(items: list[str], as_of: float) -> UserFeatures:
    return UserFeatures([(i, "click") for i in items], len(items), 0, 100.0, [(i, 100.0) for i in items], [], as_of=as_of)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_an_older_read_pushed_later_does_not_replace_a_newer_one(tmp_path, backend):
    features = _client(tmp_path, backend)
    t = time.time()
    features.push_users({"u": _row(["a", "b"], t + 1.0)})  # read after the second event
    features.push_users({"u": _row(["a"], t)})  # read before it, pushed last
    user = features.get_user("u")
    assert user is not None and [i for i, _ in user.interests] == ["a", "b"]
    features.push_users({"u": _row(["a", "b", "c"], t + 2.0)})  # a newer read replaces it
    assert [i for i, _ in features.get_user("u").interests] == ["a", "b", "c"]
    features.push_users({"v": _row(["x"], 0.0)})  # 0: the push time
    assert [i for i, _ in features.get_user("v").interests] == ["x"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_popularity_and_states_keep_the_newer_count_too(tmp_path, backend):
    features = _client(tmp_path, backend)
    features.push_items({"a": ItemText("a")})
    t = time.time()
    features.push_popularity({"a": 5}, {"a": 2}, as_of=t + 1.0)
    features.push_popularity({"a": 4}, {"a": 1}, as_of=t)
    features.push_shopper_states({"u": StateRow("new", {"k:1": np.ones(4, np.float32)}, t + 1.0)})
    features.push_shopper_states({"u": StateRow("old", {"k:1": np.zeros(4, np.float32)}, t)})
    assert features.get_items(["a"], popularity=True)["a"].popularity_30d == 5
    state = features.get_shopper_state("u", "k:1")
    assert state is not None and state.fingerprint == "new"
