"""The request path reads only Feast and Triton: a second scoring service whose event-log URL points
at a database that cannot be opened answers Rank and Recommend exactly like the suite's own (its
served-list recorder, which writes off the request path, just keeps retrying)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import PROJECT_ROOT
from devtools.client import SuiteClient
from devtools.ports import free_port, wait_until
from devtools.suite import grpc_serving

pytestmark = pytest.mark.integration


def test_rank_and_recommend_make_no_event_log_query(serving_suite, tmp_path):
    port = free_port()
    env = serving_suite.env()
    # any attempt to open this log fails (no such directory); SQLAlchemy would raise on first use
    env["RECSYS_EVENTLOG_URL"] = f"sqlite:///{tmp_path}/missing-dir/never.db"
    log = tmp_path / "scoring-without-log.log"
    proc = subprocess.Popen([sys.executable, "-m", "services.scoring_service", "--address", f"127.0.0.1:{port}"], env=env,
                            cwd=PROJECT_ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: grpc_serving(f"127.0.0.1:{port}", "shoprank.v1.ScoringService", serving_suite.credentials()), proc, 120, "scoring without a log", log)
        ours = SuiteClient(serving_suite.address("feedback"), f"127.0.0.1:{port}", credentials=serving_suite.credentials())
        theirs = serving_suite.client("feedback", "scoring")
        candidates = ["SKU0001", "SKU1001", "SKU2001", "SKU3001"]
        a, b = ours.rank("U0001", candidates), theirs.rank("U0001", candidates)
        assert not a.degraded and a.model_version == b.model_version
        assert [(i.item_id, round(i.probability, 6)) for i in a.items] == [(i.item_id, round(i.probability, 6)) for i in b.items]
        rec_a, rec_b = ours.recommend("U0001", 5), theirs.recommend("U0001", 5)
        assert [i.item_id for i in rec_a.items] == [i.item_id for i in rec_b.items] and len(rec_a.items) == 5
        assert not (tmp_path / "missing-dir").exists()
        ours.close()
        theirs.close()
    finally:
        proc.terminate()
        proc.wait(30)
