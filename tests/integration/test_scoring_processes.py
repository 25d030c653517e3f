"""RECSYS_SCORING_PROCESSES: one scoring address served by several processes (SO_REUSEPORT) under a
supervising parent. Clients on separate connections reach more than one of them, every process answers
what the suite's own scoring service answers, their metrics are served together by the parent, SIGTERM
drains them all, and a child outlives a SIGKILLed parent by moments."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from devtools.client import open_channel
from devtools.ports import free_port, wait_until
from devtools.suite import grpc_serving
from shoprank.v1 import scoring_pb2, scoring_pb2_grpc
from tests.integration.test_metrics import scrape

pytestmark = pytest.mark.integration

CANDIDATES = ["SKU0001", "SKU1001", "SKU2001", "SKU3001"]


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, IndexError):
                continue
            # serving children run spawn_main (the resource tracker does not; a child still between
            # fork and exec shows its parent's command line, so it is not counted yet)
            if int(stat[1]) == pid and "spawn_main" in Path(f"/proc/{d}/cmdline").read_bytes().decode(errors="replace"):
                out.append(int(d))
    return out


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _start(serving_suite, tmp_path: Path, processes: int, metrics_port: int = 0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**serving_suite.env(), "RECSYS_SCORING_PROCESSES": str(processes)}
    log = tmp_path / f"scoring-{processes}.log"
    metrics = ["--metrics-address", f"127.0.0.1:{metrics_port}"] if metrics_port else []
    proc = subprocess.Popen([sys.executable, "-m", "services.scoring_service", "--address", f"127.0.0.1:{port}", *metrics], env=env,
                            cwd=PROJECT_ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    wait_until(lambda: grpc_serving(address, "shoprank.v1.ScoringService", serving_suite.credentials()), proc, 120, "scoring", log)
    wait_until(lambda: len(_children(proc.pid)) == processes, proc, 60, "scoring children", log)
    return proc, address


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{p}").exists() and "(Z)" not in _state(p) for p in pids)


def _state(pid: int) -> str:
    try:
        return "(" + Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] + ")"
    except FileNotFoundError:
        return "(gone)"


def stop_supervisor(proc: subprocess.Popen, children: list[int], service: str) -> None:
    """SIGTERM to a serve_processes parent, then assert its serving children are gone within 30 s."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    deadline = time.monotonic() + 30
    while not _gone(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(children), f"SIGTERM to the {service} parent left serving children behind"


def test_processes_share_the_port_answer_alike_and_stop_together(serving_suite, tmp_path):
    metrics_port = free_port()
    proc, address = _start(serving_suite, tmp_path, processes=3, metrics_port=metrics_port)
    children = _children(proc.pid)
    try:
        expected = serving_suite.client("feedback", "scoring").rank("U0001", CANDIDATES)
        before = {p: _cpu_ticks(p) for p in children}
        answers: list[list[tuple[str, float]]] = []
        lock = threading.Lock()

        def client() -> None:
            channel = open_channel(address, serving_suite.credentials("storefront"), own_connection=True)
            stub = scoring_pb2_grpc.ScoringServiceStub(channel)
            for _ in range(15):
                reply = stub.Rank(scoring_pb2.RankRequest(user_id="U0001", item_ids=CANDIDATES), timeout=30)
                with lock:
                    answers.append([(i.item_id, round(i.probability, 6)) for i in reply.items])
            channel.close()

        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 180
        assert all(a == [(i.item_id, round(i.probability, 6)) for i in expected.items] for a in answers)
        busy = [p for p, ticks in before.items() if _cpu_ticks(p) - ticks >= 5]
        assert len(busy) >= 2, f"only {busy} of {list(before)} served: connections were not spread"
        ranks = scrape(f"http://127.0.0.1:{metrics_port}/metrics", "shoprank_rpc_requests_total",
                       method="/shoprank.v1.ScoringService/Rank", code="OK")
        assert ranks == 180  # every process's calls, counted once, by the parent
    finally:
        stop_supervisor(proc, children, "scoring")


def test_a_child_does_not_outlive_a_killed_parent(serving_suite, tmp_path):
    proc, _ = _start(serving_suite, tmp_path, processes=2)
    children = _children(proc.pid)
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 30
    while not _gone(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(children), "a scoring child kept serving after its parent was killed"
