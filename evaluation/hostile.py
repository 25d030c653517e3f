"""The hostile section of `make bench-reliability`: what a storefront sees while an attacker works on a
running suite (TLS and keys on). A steady storefront (Rank and RecordEvents clients at a fixed rate, about
a third of what the suite takes on 2 cores) runs through a quiet baseline and then through each attack, one at a time:

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

An attacker on this machine spends cores the storefront's clients and the suite share; one on another
machine would not. So each flood (an attack that calls in a loop) is first run for a few seconds to
measure the cores it burns under the storefront's load, then gets a control window: quiet traffic next
to a neighbour process that only burns those cores (`--burn CORES`, a duty cycle) and copies as many
bytes a second as the attacker's client library copies of its messages (`--copy-mb-s`; a 15 MB body is
copied once per call, memory traffic that slows the suite as much as the cores do), right before the
attack's own window. The attack is judged against the control: what is left is the work the attack makes
the suite do, which is what a remote attacker could cause. (The log grows as the phase runs, so the
control goes before the attack: any drift counts against the attack.)
Goal (issue 25): p99 within 1.5x of quiet (of the control, where there is one), 0 failed storefront
calls, 0 raw ids at rest.
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


VISITORS = [f"hostile-visitor-{n}" for n in range(5000)]  # RecordEvents' shoppers: a shop's many, with short histories
SERVICES = ("feedback", "scoring", "profile", "tritonserver")  # the suite's process groups (load_bench.process_groups)
FLOODS = ("oversized_unauthenticated", "audit_flood")  # call in a loop, so burn CPU of their own: a control window each
CALIBRATION_S = 5.0
# The storefront's offered load, per client (two of each): a shop's traffic comes at a rate, below what
# the suite can take, not as fast as answers come back. About a third of what two clients calling back
# to back get on 2 cores (~240 Rank/s, ~400 events/s): a saturated closed loop
# would show any extra CPU at all as latency, which measures the machine, not the attack.
RANK_RATE = 40.0
EVENTS_RATE = 15.0
# Events come as a storefront sends them, a few at a time: 15 batches of 4 a second per client gives each
# 20 s window 600 RecordEvents calls (with 3 batches of 20, 120 calls: its p99 was the second-slowest
# call, and quiet windows alone differed 2.5x)
EVENTS_BATCH = 4


def storefront_during(suite: Suite, users: list[str], items: list[str], seconds: float, attack: str | None,
                      burn_cores: float = 0.0, copy_mb_s: float = 0.0) -> dict[str, Any]:
    """Two Rank clients (for the shoppers with histories, RANK_RATE calls a second each) and two
    RecordEvents clients (for many visitors, so a call's cost does not grow as the phase runs;
    EVENTS_RATE batches a second each) for `seconds`, while the named attack
    runs in its own process (until it is sent SIGTERM), or a neighbour burns `burn_cores` of CPU (copying
    `copy_mb_s` of memory within them)."""
    stop = threading.Event()
    credentials = suite.credentials("storefront")
    reports: dict[str, Any] = {}
    feedback_pid = suite.processes["feedback"].pid
    peak = [rss_mb(feedback_pid)]
    attack_result: dict[str, Any] = {}

    def ranks() -> None:
        reports["rank"] = rank_load(suite.address("scoring"), credentials, users, items, stop, clients=2, candidates=50,
                                    rate_per_s=RANK_RATE)

    def events() -> None:
        reports["ingest"] = ingest(suite.address("feedback"), credentials, VISITORS, items, clients=2, batches=10**6, batch_size=EVENTS_BATCH,
                                   prefix=f"hostile-{time.monotonic_ns()}", stop=stop, give_up_s=0,
                                   rate_per_s=EVENTS_RATE)

    def attacker() -> None:
        if attack is None and burn_cores <= 0:
            return
        addresses = {name: suite.address(name) for name in ("feedback", "scoring", "profile")}
        what = ["--attack", attack] if attack else ["--burn", str(burn_cores), "--copy-mb-s", str(copy_mb_s)]
        proc = subprocess.Popen([sys.executable, "-m", "evaluation.hostile", *what, "--addresses", json.dumps(addresses),
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
    groups = {k: v for k, v in process_groups(suite).items() if k in SERVICES}
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

        started = time.monotonic()
        statuses = _repeat(threads, stop, one)
        # each call hands gRPC the whole body (a copy of it, on this machine): the neighbour's share of memory traffic
        copied = sum(statuses.values()) * megabytes / max(time.monotonic() - started, 1e-3)
        return {"threads": threads, "message_mb": megabytes, "statuses": dict(statuses), "copied_mb_s": round(copied, 1)}

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
    """Admin calls without a key, with a guessed key and with a storefront key (all refused), from
    `threads` threads as fast as the answers come. The rows it got into the audit log are counted by
    the benchmark (the attacker, like a remote one, has no access to the log)."""

    def attack(stop: threading.Event) -> dict[str, Any]:
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
        return {"threads": threads, "refused_calls": sum(v for k, v in statuses.items() if k != "OK"), "statuses": dict(statuses)}

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


def burner(cores: float, copy_mb_s: float = 0.0, period_s: float = 0.01) -> Attack:
    """The control's neighbour: no call to the suite, only `cores` of CPU burned in a duty cycle (one
    process per whole core, since a Python process burns at most one), of which the first copies
    `copy_mb_s` MB a second between two buffers (what an attacker's client library copies of its
    messages: memory traffic a spinning loop would not cause)."""

    def one(share: float, copy_mb: float, stop: threading.Event) -> None:
        chunk = 1 << 20
        source, target = bytearray(16 * chunk), bytearray(16 * chunk)
        src, dst, offset, owed = memoryview(source), memoryview(target), 0, 0.0
        while not stop.is_set():
            start = time.monotonic()
            owed += copy_mb * period_s
            while owed >= 1.0 and time.monotonic() - start < period_s:
                dst[offset : offset + chunk] = src[offset : offset + chunk]
                offset, owed = (offset + chunk) % len(source), owed - 1.0
            while time.monotonic() - start < share * period_s:
                pass
            time.sleep(max(0.0, period_s - (time.monotonic() - start)))

    def attack(stop: threading.Event) -> dict[str, Any]:
        import multiprocessing

        shares = [1.0] * int(cores) + ([cores - int(cores)] if cores - int(cores) > 0.01 else [])
        context = multiprocessing.get_context("fork")
        children_stop = context.Event()
        children = [context.Process(target=one, args=(share, 0.0, children_stop), daemon=True) for share in shares[1:]]
        for child in children:
            child.start()
        busy = threading.Thread(target=one, args=(shares[0] if shares else 0.0, copy_mb_s, stop), daemon=True)
        busy.start()
        stop.wait()
        children_stop.set()
        for child in children:
            child.join(5)
        return {"burned_cores_asked": cores, "copy_mb_s_asked": copy_mb_s, "processes": len(shares)}

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
    audit = EventLog.open(suite.settings().eventlog, suite.settings().audit_log).audit
    for name in ATTACKS:
        print(f"  hostile: quiet, then {name}, {seconds:.0f} s each ...", flush=True)
        quiet = storefront_during(suite, users, items, seconds, None)
        control = None
        if name in FLOODS:
            calibration = storefront_during(suite, users, items, min(CALIBRATION_S, seconds), name)
            cores = calibration["attack"].get("cpu_cores") or 0.0
            copied = calibration["attack"].get("copied_mb_s") or 0.0
            print(f"  hostile: control for {name}: quiet traffic next to a neighbour burning {cores} cores "
                  f"(copying {copied} MB/s) ...", flush=True)
            control = storefront_during(suite, users, items, seconds, None, burn_cores=cores, copy_mb_s=copied)
        rows_before = len(audit.recent(1_000_000))
        row = storefront_during(suite, users, items, seconds, name)
        row["audit"] = {"rows_written": len(audit.recent(1_000_000)) - rows_before, "chain_ok": audit.verify().ok}
        row["quiet"] = window_summary(quiet)
        if control is not None:
            row["control"] = window_summary(control)
            row["control"]["burner"] = control["attack"]
        baseline = row.get("control", row["quiet"])
        for rpc in ("rank", "record_events"):
            q, b, r = row["quiet"][rpc]["p99_ms"], baseline[rpc]["p99_ms"], row[rpc]["p99_ms"]
            row[rpc]["quiet_p99_ms"] = q
            row[rpc]["p99_vs_quiet"] = round(r / q, 2) if q and r else None
            row[rpc]["baseline_p99_ms"] = b
            row[rpc]["p99_vs_baseline"] = round(r / b, 2) if b and r else None
        refused = sum(n for status, n in (row["attack"].get("statuses") or {}).items() if status not in ("OK", "open"))
        if refused >= 100:  # what one refusal costs the suite: its services' extra CPU over the baseline's
            extra = sum(row["cpu_cores"].get(k, 0.0) - baseline["cpu_cores"].get(k, 0.0) for k in SERVICES)
            row["suite_cpu_ms_per_refused_call"] = round(max(extra, 0.0) * seconds * 1000 / refused, 3)
            row["refused_per_s"] = round(refused / seconds, 1)
        rows[name] = row
    time.sleep(1)
    found = raw_ids_at_rest(suite.data_dir)
    return {"seconds": seconds, "rows": rows, "raw_ids_at_rest": found,
            "goal_met": all(r["rank"]["failed"] == 0 and r["record_events"]["failed"] == 0 and r["quiet"]["rank"]["failed"] == 0
                            and (r["rank"]["p99_vs_baseline"] or 0) <= 1.5 and (r["record_events"]["p99_vs_baseline"] or 0) <= 1.5
                            for r in rows.values()) and not found}


def window_summary(window: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {rpc: {k: window[rpc][k] for k in ("calls", "failed", "p50_ms", "p99_ms")} for rpc in ("rank", "record_events")}
    summary["cpu_cores"] = window["cpu_cores"]
    return summary


def quiet_spread(h: dict[str, Any]) -> str:
    """How far apart the quiet windows' p99 lie (the largest over the smallest): a ratio to the
    baseline within that spread is not told apart from no attack at all."""
    parts = []
    for rpc, label in (("rank", "Rank"), ("record_events", "RecordEvents")):
        values = [r["quiet"][rpc]["p99_ms"] for r in h["rows"].values() if r["quiet"][rpc].get("p99_ms")]
        if values:
            n = min(r["quiet"][rpc]["calls"] for r in h["rows"].values())
            parts.append(f"{label} p99 {min(values)}-{max(values)} ms (x{max(values) / min(values):.2f}; at least {n} calls per window)")
    return "; ".join(parts) or "-"


def hostile_lines(h: dict[str, Any]) -> list[str]:
    lines = ["", f"## Hostile: the storefront during each attack ({h['seconds']:.0f} s windows; goal p99 within 1.5x of the baseline, "
             "0 failed storefront calls, 0 raw ids at rest)", "",
             f"The storefront: 2 Rank clients at {RANK_RATE:.0f} calls/s each (50 candidates) and 2 RecordEvents clients at "
             f"{EVENTS_RATE:.0f} batches/s each ({EVENTS_BATCH} events), a fixed rate below the suite's capacity, as a shop's traffic arrives.", "",
             "The baseline is the quiet window just before the attack or, for an attacker that burns CPU of its own, the control: "
             "quiet traffic next to a neighbour burning the attacker's measured cores and copying the bytes its client copies (an attacker on another machine would not "
             "take them from this one).", "",
             "| attack | Rank p99 ms quiet; control → attack (x baseline) | Rank failed | RecordEvents p99 ms quiet; control → attack "
             "(x baseline) | RecordEvents failed | feedback RSS MB start → peak | CPU cores: attacker; feedback, scoring quiet → attack | "
             "what the attack got |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def p99(r: dict[str, Any], rpc: str) -> str:
        control = r.get("control", {}).get(rpc, {}).get("p99_ms", "-")
        return f"{r['quiet'][rpc]['p99_ms']}; {control} → {r[rpc]['p99_ms']} ({r[rpc]['p99_vs_baseline']})"

    for name, r in h["rows"].items():
        rk, ev, mem = r["rank"], r["record_events"], r["feedback_rss_mb"]
        got = ", ".join(f"{k}={v}" for k, v in r["attack"].items() if k not in ("threads", "cpu_cores")) or "-"
        got += f"; audit rows +{r['audit']['rows_written']}, chain ok {r['audit']['chain_ok']}"
        quiet_cpu, cpu = r["quiet"].get("cpu_cores", {}), r.get("cpu_cores", {})
        cores = f"{r['attack'].get('cpu_cores', '-')}; " + ", ".join(f"{quiet_cpu.get(k, '-')} → {cpu.get(k, '-')}" for k in ("feedback", "scoring"))
        lines.append(f"| {name} | {p99(r, 'rank')} | {rk['failed']} | {p99(r, 'record_events')} | {ev['failed']} | "
                     f"{mem['start']} → {mem['peak']} | {cores} | {got} |")
    costs = {n: (r["refused_per_s"], r["suite_cpu_ms_per_refused_call"]) for n, r in h["rows"].items() if "refused_per_s" in r}
    lines += ["", "- what a refusal costs the suite (its services' CPU over the baseline's, per refused call): "
              + ("; ".join(f"{n}: {rate} refused/s, {ms} ms each" for n, (rate, ms) in costs.items()) or "-")
              + ". A flood from another machine costs about that many cores per 1,000 refused calls a second (a refused "
              "call's body is never read, whatever its size); the compose gateway passes at most 20 keyless calls a second per address (deploy/gateway/nginx.conf)"]
    against_quiet = {n: (r["rank"]["p99_vs_quiet"], r["record_events"]["p99_vs_quiet"]) for n, r in h["rows"].items() if "control" in r}
    lines += ["- against the quiet window alone (the attacker's own CPU included), Rank and RecordEvents p99 were "
              + ("; ".join(f"{n} x{a} and x{b}" for n, (a, b) in against_quiet.items()) or "-")
              + f"; all on {os.cpu_count()} cores shared by the attacker, the storefront's clients and the suite",
              "- the noise floor, from the quiet windows alone (no attack in any of them): " + quiet_spread(h),
              f"- raw shopper ids found at rest after the attacks: {len(h['raw_ids_at_rest'])} files "
              f"{h['raw_ids_at_rest'] or ''}; goal met: {h['goal_met']}"]
    return lines


def main() -> None:
    """One attack against a running suite until SIGTERM; prints what it got as one JSON line."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--attack", choices=sorted(ATTACKS))
    what.add_argument("--burn", type=float, help="the control's neighbour: burn this many cores, call nothing")
    parser.add_argument("--copy-mb-s", type=float, default=0.0, help="with --burn: copy this many MB a second within those cores")
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
    target = Target(json.loads(args.addresses))
    attack = ATTACKS[args.attack](target, [i for i in args.items.split(",") if i]) if args.attack else burner(args.burn, args.copy_mb_s)
    started, cpu = time.monotonic(), time.process_time()
    result = attack(stop)
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # a burner's processes, joined by now
    own = time.process_time() - cpu + children.ru_utime + children.ru_stime
    result["cpu_cores"] = round(own / (time.monotonic() - started), 2)  # the attacker's own
    print(json.dumps(result), flush=True)
    os._exit(0)  # gRPC threads of abandoned calls must not keep an attacker alive


if __name__ == "__main__":
    main()
