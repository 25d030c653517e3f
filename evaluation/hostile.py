"""The hostile section of `make bench-reliability`: what a storefront sees while an attacker works on a
running suite (TLS and keys on). A steady storefront (Rank and RecordEvents clients) runs through a
quiet baseline and then through each attack, one at a time:

  - oversized messages without a key: threads sending 15 MB CreateExperiment bodies to the feedback port;
  - idle reflection streams: 40 opened and left waiting on the scoring port, without a key and then with a
    storefront key;
  - an audit flood: threads calling admin RPCs without a key, and with a storefront key (refused);
  - erase under load: shoppers recorded, then forgotten by ForgetUser while the storefront runs, and
    profiles asked for ids never seen.

Each attack runs in a process of its own (`python -m evaluation.hostile --attack NAME ...`), as an
attacker's machine would, so its threads do not share the storefront clients' interpreter. For each:
storefront Rank and RecordEvents p50/p99 and failed calls next to the quiet baseline, what the attack got
(statuses), the feedback process's resident memory, audit rows written; at the end every file under the
data directory (model weights aside) is searched for the raw shopper ids the attacks used.
Goal (issue 25): p99 within 1.5x of quiet, 0 failed storefront calls, 0 raw ids at rest.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from core.domain import Event
from core.settings import Settings, load
from core.store import EventLog
from devtools.client import Credentials, SuiteClient, open_channel
from devtools.load import ingest, rank_load
from devtools.suite import Suite
from shoprank.v1 import model_admin_pb2, profile_pb2

ERASED_PREFIX, UNKNOWN_PREFIX = "hostile-shopper-", "hostile-unknown-"
WEIGHTS = (".pt", ".onnx", ".safetensors", ".bin")

Attack = Callable[[threading.Event], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """What an attack process knows of the suite: its addresses, and its settings from the environment
    (the suite's own RECSYS_* variables), for the CA and the keys an attacker with a key would hold."""

    addresses: dict[str, str]

    def address(self, name: str) -> str:
        return self.addresses[name]

    def settings(self) -> Settings:
        return load()

    def credentials(self, role: str = "admin") -> Credentials:
        return Credentials.of(self.settings(), role)

    def client(self, role: str = "admin") -> SuiteClient:
        return SuiteClient(self.addresses["feedback"], self.addresses["scoring"], self.addresses["profile"], credentials=self.credentials(role))


ATTACKS: dict[str, Callable[[Target, list[str]], Attack]] = {}  # filled below: name -> (target, items) -> attack


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def storefront_during(suite: Suite, users: list[str], items: list[str], seconds: float, attack: str | None) -> dict[str, Any]:
    """Two Rank clients and two RecordEvents clients for `seconds` while the named attack runs in its own
    process (until it is sent SIGTERM)."""
    stop = threading.Event()
    credentials = suite.credentials("storefront")
    reports: dict[str, Any] = {}
    feedback_pid = suite.processes["feedback"].pid
    peak = [rss_mb(feedback_pid)]
    attack_result: dict[str, Any] = {}

    def ranks() -> None:
        reports["rank"] = rank_load(suite.address("scoring"), credentials, users, items, stop, clients=2, candidates=50)

    def events() -> None:
        reports["ingest"] = ingest(suite.address("feedback"), credentials, users, items, clients=2, batches=10**6, batch_size=20,
                                   prefix=f"hostile-{time.monotonic_ns()}", stop=stop, give_up_s=0)

    def attacker() -> None:
        if attack is None:
            return
        addresses = {name: suite.address(name) for name in ("feedback", "scoring", "profile")}
        proc = subprocess.Popen([sys.executable, "-m", "evaluation.hostile", "--attack", attack, "--addresses", json.dumps(addresses),
                                 "--items", ",".join(items[:20]), "--max-seconds", str(int(seconds) + 60)],
                                env=suite.env(), stdout=subprocess.PIPE, text=True)
        stop.wait()
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # an attacker that does not stop is killed, never left spinning
            proc.kill()
            out, _ = proc.communicate()
        lines = out.strip().splitlines()
        attack_result.update(json.loads(lines[-1]) if proc.returncode == 0 and lines else {"error": f"exit {proc.returncode}"})

    from evaluation.load_bench import cpu_seconds, process_groups

    # CPU per process group: the attacker shares this machine's cores with the storefront's clients and
    # the suite, so what it spends itself is part of what the storefront feels
    groups = {k: v for k, v in process_groups(suite).items() if k in ("feedback", "scoring", "profile", "triton")}
    cpu_before, started = {k: cpu_seconds(v) for k, v in groups.items()}, time.monotonic()
    threads = [threading.Thread(target=f, name=f"hostile-{f.__name__}") for f in (ranks, events, attacker)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        peak.append(rss_mb(feedback_pid))
    cpu_cores = {k: round((cpu_seconds(v) - cpu_before[k]) / (time.monotonic() - started), 2) for k, v in groups.items()}
    stop.set()
    for t in threads:
        t.join(120)
    rank, ing = reports["rank"], reports["ingest"]
    return {"rank": {"calls": rank.calls, "failed": rank.failed_calls, "p50_ms": percentile(rank.latencies_ms, 0.5),
                     "p99_ms": percentile(rank.latencies_ms, 0.99), "statuses": dict(rank.statuses)},
            "record_events": {"calls": ing.calls, "failed": ing.failed_calls + ing.retried_calls, "p50_ms": percentile(ing.latencies_ms, 0.5),
                              "p99_ms": percentile(ing.latencies_ms, 0.99), "statuses": dict(ing.statuses)},
            "feedback_rss_mb": {"start": peak[0], "peak": max(peak)}, "cpu_cores": cpu_cores, "attack": attack_result}


def _repeat(threads: int, stop: threading.Event, one: Callable[[Counter], None]) -> Counter:
    statuses: Counter = Counter()
    lock = threading.Lock()

    def loop() -> None:
        mine: Counter = Counter()
        while not stop.is_set():
            unavailable = mine["UNAVAILABLE"]
            one(mine)
            if mine["UNAVAILABLE"] > unavailable:  # the target is gone: retry at a human pace, not in a spin
                stop.wait(0.2)
        with lock:
            statuses.update(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statuses


def oversized_unauthenticated(suite: Target, megabytes: int = 15, threads: int = 4) -> Attack:
    body = b"\x0a" + b"A" * (megabytes * 1024 * 1024)  # a CreateExperiment-shaped blob

    def attack(stop: threading.Event) -> dict[str, Any]:
        nobody = suite.credentials("storefront").without_key()

        def one(statuses: Counter) -> None:
            with open_channel(suite.address("feedback"), nobody, own_connection=True) as channel:
                try:
                    channel.unary_unary("/shoprank.v1.ModelAdminService/CreateExperiment")(body, timeout=10)
                    statuses["OK"] += 1
                except grpc.RpcError as exc:
                    statuses[exc.code().name] += 1

        return {"threads": threads, "message_mb": megabytes, "statuses": dict(_repeat(threads, stop, one))}

    return attack


def idle_reflection_streams(suite: Target, role: str | None, streams: int = 40) -> Attack:
    def attack(stop: threading.Event) -> dict[str, Any]:
        credentials = suite.credentials(role or "storefront")
        credentials = credentials if role else credentials.without_key()
        statuses: Counter = Counter()
        channels, feeds, calls = [], [], []
        for _ in range(streams):
            channel = open_channel(suite.address("scoring"), credentials, own_connection=True)
            feed: queue.Queue = queue.Queue()
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter(feed.get, None))
            feed.put(reflection_pb2.ServerReflectionRequest(list_services=""))
            channels.append(channel)
            feeds.append(feed)
            calls.append(call)
        for call in calls:  # the first answer (or refusal) of each, then left idle with the stream open
            try:
                next(call)
                statuses["open"] += 1
            except grpc.RpcError as exc:
                statuses[exc.code().name] += 1
        stop.wait()
        for feed in feeds:
            feed.put(None)
        for channel in channels:
            channel.close()
        return {"streams": streams, "key": role or "none", "statuses": dict(statuses)}

    return attack


def audit_flood(suite: Target, threads: int = 6) -> Attack:
    def attack(stop: threading.Event) -> dict[str, Any]:
        audit = EventLog.open(suite.settings().eventlog, suite.settings().audit_log).audit
        before = len(audit.recent(1_000_000))
        keys = [suite.credentials("storefront").without_key(), suite.credentials("storefront").with_key("sr_guessed"),
                suite.credentials("storefront")]
        channels = [open_channel(suite.address("feedback"), k, own_connection=True) for k in keys]

        def one(statuses: Counter) -> None:
            channel = channels[sum(statuses.values()) % len(channels)]
            try:
                channel.unary_unary("/shoprank.v1.ModelAdminService/ListVersions")(
                    model_admin_pb2.ListVersionsRequest().SerializeToString(), timeout=10)
                statuses["OK"] += 1
            except grpc.RpcError as exc:
                statuses[exc.code().name] += 1

        statuses = _repeat(threads, stop, one)
        for channel in channels:
            channel.close()
        return {"threads": threads, "refused_calls": sum(v for k, v in statuses.items() if k != "OK"), "statuses": dict(statuses),
                "audit_rows_written": len(audit.recent(1_000_000)) - before, "audit_chain_ok": audit.verify().ok}

    return attack


def erase_under_load(suite: Target, items: list[str], shoppers: int = 10) -> Attack:
    def attack(stop: threading.Event) -> dict[str, Any]:
        storefront = suite.client(role="storefront")
        admin = suite.client(role="admin")
        assert storefront.profile is not None, "the hostile phase needs the profile service"
        now = time.time()
        erased, statuses = 0, Counter[str]()
        try:
            for n in range(shoppers):
                if stop.is_set():
                    break
                shopper = f"{ERASED_PREFIX}{n}"
                storefront.record_events([Event(f"hostile-ev-{n}-{k}", shopper, items[k % len(items)], "purchase", now - 60 + k)
                                          for k in range(3)])
                admin.admin.ForgetUser(model_admin_pb2.ForgetUserRequest(user_id=shopper), timeout=60)
                erased += 1
                try:
                    storefront.profile.GetProfile(profile_pb2.GetProfileRequest(user_id=f"{UNKNOWN_PREFIX}{n}"), timeout=10)
                    statuses["OK"] += 1
                except grpc.RpcError as exc:
                    statuses[exc.code().name] += 1
            stop.wait()
        finally:
            storefront.close()
            admin.close()
        return {"shoppers_erased": erased, "unknown_profile_statuses": dict(statuses)}

    return attack


def raw_ids_at_rest(data_dir: Path, prefixes: tuple[str, ...] = (ERASED_PREFIX, UNKNOWN_PREFIX)) -> list[str]:
    """Files under the data directory (weights aside) holding any raw id the attacks used."""
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix not in WEIGHTS:
            data = path.read_bytes()
            if any(p.encode() in data for p in prefixes):
                found.append(str(path.relative_to(data_dir)))
    return found


ATTACKS.update({
    "oversized_unauthenticated": lambda target, items: oversized_unauthenticated(target),
    "idle_reflection_no_key": lambda target, items: idle_reflection_streams(target, None),
    "idle_reflection_storefront_key": lambda target, items: idle_reflection_streams(target, "storefront"),
    "audit_flood": lambda target, items: audit_flood(target),
    "erase_under_load": lambda target, items: erase_under_load(target, items),
})


def hostile_phase(suite: Suite, users: list[str], items: list[str], seconds: float) -> dict[str, Any]:
    """Each attack right after a quiet window of the same length: the storefront's figures are compared
    with the quiet window next to them (the log grows as the phase runs, so one baseline at the start
    would flatter the first attacks and blame the last)."""
    time.sleep(1)
    rows: dict[str, Any] = {}
    for name in ATTACKS:
        print(f"  hostile: quiet, then {name}, {seconds:.0f} s each ...", flush=True)
        quiet = storefront_during(suite, users, items, seconds, None)
        row = storefront_during(suite, users, items, seconds, name)
        for rpc in ("rank", "record_events"):
            q, r = quiet[rpc]["p99_ms"], row[rpc]["p99_ms"]
            row[rpc]["quiet_p99_ms"] = q
            row[rpc]["p99_vs_quiet"] = round(r / q, 2) if q and r else None
        row["quiet"] = {rpc: {k: quiet[rpc][k] for k in ("calls", "failed", "p50_ms", "p99_ms")} for rpc in ("rank", "record_events")}
        row["quiet"]["cpu_cores"] = quiet["cpu_cores"]
        rows[name] = row
    time.sleep(1)
    found = raw_ids_at_rest(suite.data_dir)
    return {"seconds": seconds, "rows": rows, "raw_ids_at_rest": found,
            "goal_met": all(r["rank"]["failed"] == 0 and r["record_events"]["failed"] == 0 and r["quiet"]["rank"]["failed"] == 0
                            and (r["rank"]["p99_vs_quiet"] or 0) <= 1.5 and (r["record_events"]["p99_vs_quiet"] or 0) <= 1.5
                            for r in rows.values()) and not found}


def hostile_lines(h: dict[str, Any]) -> list[str]:
    lines = ["", f"## Hostile: the storefront during each attack, next to a quiet window just before it ({h['seconds']:.0f} s each; "
             "goal p99 within 1.5x of quiet, 0 failed storefront calls, 0 raw ids at rest)", "",
             "| attack | Rank p99 ms quiet → attack (x) | Rank failed | RecordEvents p99 ms quiet → attack (x) | RecordEvents failed | "
             "feedback RSS MB start → peak | CPU cores: attacker; feedback, scoring quiet → attack | what the attack got |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in h["rows"].items():
        rk, ev, mem = r["rank"], r["record_events"], r["feedback_rss_mb"]
        got = ", ".join(f"{k}={v}" for k, v in r["attack"].items() if k not in ("threads", "cpu_cores")) or "-"
        quiet_cpu, cpu = r["quiet"].get("cpu_cores", {}), r.get("cpu_cores", {})
        cores = f"{r['attack'].get('cpu_cores', '-')}; " + ", ".join(f"{quiet_cpu.get(k, '-')} → {cpu.get(k, '-')}" for k in ("feedback", "scoring"))
        lines.append(f"| {name} | {rk['quiet_p99_ms']} → {rk['p99_ms']} ({rk['p99_vs_quiet']}) | {rk['failed']} | {ev['quiet_p99_ms']} → "
                     f"{ev['p99_ms']} ({ev['p99_vs_quiet']}) | {ev['failed']} | {mem['start']} → {mem['peak']} | {cores} | {got} |")
    lines += ["", f"- the attacker runs on the same {os.cpu_count()} cores as the storefront's clients and the suite: its own CPU "
              "(first figure) is taken from everything else, as a second machine's attack would not be",
              f"- raw shopper ids found at rest after the attacks: {len(h['raw_ids_at_rest'])} files "
              f"{h['raw_ids_at_rest'] or ''}; goal met: {h['goal_met']}"]
    return lines


def main() -> None:
    """One attack against a running suite until SIGTERM; prints what it got as one JSON line."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--attack", required=True, choices=sorted(ATTACKS))
    parser.add_argument("--addresses", required=True, help='JSON: {"feedback": host:port, "scoring": ..., "profile": ...}')
    parser.add_argument("--items", default="", help="item ids the erasure attack records events for")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop by itself after this long, whatever happens")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if sys.platform == "linux":  # die with the benchmark that started it (PR_SET_PDEATHSIG), never orphaned
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    deadline = threading.Timer(args.max_seconds, stop.set)
    deadline.daemon = True
    deadline.start()
    attack = ATTACKS[args.attack](Target(json.loads(args.addresses)), [i for i in args.items.split(",") if i])
    started, cpu = time.monotonic(), time.process_time()
    result = attack(stop)
    result["cpu_cores"] = round((time.process_time() - cpu) / (time.monotonic() - started), 2)  # the attacker's own
    print(json.dumps(result), flush=True)
    os._exit(0)  # gRPC threads of abandoned calls must not keep an attacker alive


if __name__ == "__main__":
    main()
