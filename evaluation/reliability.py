"""`make bench-reliability`: the suite under concurrent load, faults and fuzzing, from one run.

On the embedded default (SQLite log, Feast SQLite online store, tritonserver, a Celery worker, TLS and
API keys on):
  1. ingest: 16 storefront clients send batches of 50 new events; events/s acknowledged, failed calls;
  2. the feedback service is SIGKILLed under that load and restarted by the suite's supervisor; clients
     retry their batch with the same event ids; acknowledged vs persisted, time to recover;
  3. the worker is SIGKILLed during a fine-tune and restarted: the job is failed as interrupted, a new
     fine-tune succeeds; time to recover;
  4. tritonserver is SIGKILLed under Rank load and restarted: Rank keeps answering (degraded), time until
     answers are scored again;
  5. the fuzzer (devtools/fuzz.py): cases and their status codes;
  6. hostile (evaluation/hostile.py): the storefront's Rank and RecordEvents p99 during oversized
     unauthenticated messages, idle reflection streams, an audit flood and erasures under load, next to a
     quiet baseline, and a search of every file for the raw shopper ids the attacks used;
then the same ingest against PostgreSQL + Redis (skipped, and said so, where those servers are absent).
Prints a table and writes bench/results/reliability.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core.store import EventLog
from devtools.fuzz import Fuzzer
from devtools.load import ingest, rank_load
from devtools.local_servers import drop_postgres_database, flush_redis_db, fresh_postgres_database, postgres_available, redis_available
from devtools.suite import Suite, deploy
from evaluation.hostile import hostile_lines, hostile_phase
from evaluation.results import results_dir
from shopdata.synthetic import generate
from shoprank_client.enums import job_state_of

logger = logging.getLogger(__name__)
RESULTS = results_dir()
REDIS_DB = 11
ENV = {"RECSYS_MAX_CANDIDATES": "50", "RECSYS_FINE_TUNE_BATCH": "8", "RECSYS_FINE_TUNE_STEPS": "3"}


def lost(suite: Suite, acked: set[str]) -> tuple[int, int]:
    persisted = {e.event_id for e in EventLog.open(suite.settings().eventlog).events.read()}
    return len(acked & persisted), len(acked - persisted)


def supervise_until(suite: Suite, names: set[str], timeout: float = 300.0) -> float:
    """Run the supervisor (as `make up` does) until everything in `names` was restarted; seconds taken."""
    started = time.monotonic()
    restarted: set[str] = set()
    while not names <= restarted:
        restarted.update(suite.restart_dead())
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{names - restarted} not restarted within {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - started


PHASES = ("ingest_embedded", "kill_feedback", "kill_worker", "kill_triton", "fuzz", "hostile", "ingest_postgresql_redis")


def ingest_phase(suite: Suite, users: list[str], items: list[str], clients: int, batches: int, prefix: str) -> dict[str, Any]:
    report = ingest(suite.address("feedback"), suite.credentials("storefront"), users, items, clients=clients, batches=batches,
                    batch_size=50, prefix=prefix)
    persisted, missing = lost(suite, report.acked)
    lat = sorted(report.latencies_ms)
    return {"clients": clients, "batch": 50, "calls": report.calls, "failed_calls": report.failed_calls, "retried_calls": report.retried_calls,
            "acked": len(report.acked), "persisted": persisted, "lost": missing, "seconds": round(report.seconds, 2),
            "events_per_s": round(report.events_per_s, 1), "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)], 1) if lat else None, "statuses": dict(report.statuses)}


def feedback_kill_phase(suite: Suite, users: list[str], items: list[str], clients: int, batches: int) -> dict[str, Any]:
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.update(report=ingest(
        suite.address("feedback"), suite.credentials("storefront"), users, items, clients=clients, batches=batches, batch_size=50,
        prefix="kill-feedback")))
    worker.start()
    time.sleep(3.0)
    killed = time.monotonic()
    suite.kill_process_keep("feedback")
    recovery = supervise_until(suite, {"feedback"})
    worker.join()
    report = box["report"]
    persisted, missing = lost(suite, report.acked)
    return {"killed_after_s": 3.0, "recovery_s": round(recovery, 2), "acked": len(report.acked), "persisted": persisted, "lost": missing,
            "failed_calls": report.failed_calls, "retried_calls": report.retried_calls, "statuses": dict(report.statuses),
            "seconds": round(time.monotonic() - killed + 3.0, 1)}


def wait_job(client: Any, job_id: str, states: tuple[str, ...], timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job_state_of(job.state) in states:
            return job
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} did not reach {states}")


def worker_kill_phase(suite: Suite) -> dict[str, Any]:
    admin = suite.client("feedback", role="admin")
    job = admin.trigger(job_id=f"rel-kill-{int(time.time())}", max_steps=200)
    wait_job(admin, job.job_id, ("RUNNING",))
    time.sleep(1.0)
    killed = time.monotonic()
    suite.kill_process_keep("worker")
    recovery = supervise_until(suite, {"worker"})
    interrupted = wait_job(admin, job.job_id, ("FAILED", "SUCCEEDED", "REJECTED"), timeout=120)
    retry = admin.trigger(job_id=f"rel-retry-{int(time.time())}", max_steps=3)
    done = wait_job(admin, retry.job_id, ("FAILED", "SUCCEEDED", "REJECTED"))
    admin.close()
    return {"recovery_s": round(recovery, 2), "interrupted_job": job_state_of(interrupted.state), "interrupted_message": interrupted.message[:120],
            "next_fine_tune": job_state_of(done.state), "next_fine_tune_message": done.message[:160],
            "kill_to_next_version_s": round(time.monotonic() - killed, 1)}


def triton_kill_phase(suite: Suite, users: list[str], items: list[str]) -> dict[str, Any]:
    stop = threading.Event()
    box: dict[str, Any] = {}
    load = threading.Thread(target=lambda: box.update(report=rank_load(suite.address("scoring"), suite.credentials("storefront"),
                                                                          users, items, stop, clients=4)))
    load.start()
    time.sleep(3.0)
    assert suite.triton is not None
    killed = time.monotonic()
    suite.triton.process.kill()
    supervise_until(suite, {"triton"})
    time.sleep(6.0)  # the scoring service re-checks Triton every 2 s; answers are scored again within that
    stop.set()
    load.join()
    report = box["report"]
    back = next((t for t, degraded in report.answered if t > killed and not degraded
                 and any(d for u, d in report.answered if killed < u < t)), None)
    return {"rank_calls": report.calls, "failed_calls": report.failed_calls, "degraded_answers": report.degraded,
            "recovery_s": round(back - killed, 2) if back else None, "statuses": dict(report.statuses)}


def fuzz_phase(suite: Suite, cases: int, items: list[str]) -> dict[str, Any]:
    fuzzer = Fuzzer({n: suite.address(n) for n in ("feedback", "scoring", "profile")},
                    {"admin": suite.credentials("admin"), "storefront": suite.credentials("storefront")}, seed=77, catalogue=items[:40])
    report = fuzzer.run(cases, threads=8)
    tracebacks = {}
    for name in ("feedback", "scoring", "profile", "worker"):
        tracebacks[name] = (suite.log_dir / f"{name}.log").read_text(errors="replace").count("Traceback")
    return {**report.to_json(), "tracebacks_in_logs": tracebacks}


def postgres_redis_phase(root: Path, shop: Any, users: list[str], items: list[str], clients: int, batches: int) -> dict[str, Any]:
    """The ingest phase against a PostgreSQL event log and a Redis online store (the feedback service only)."""
    if not (redis_available() and postgres_available()):
        return {"skipped": "PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are needed"}
    flush_redis_db(REDIS_DB)
    url = fresh_postgres_database("shoprank_bench")
    suite = Suite(data_dir=root / "data", model_repository=root / "models",
                  extra_env={**ENV, "RECSYS_EVENTLOG_URL": url, "RECSYS_FEAST_ONLINE_URL": f"redis://127.0.0.1:6379/{REDIS_DB}"})
    try:
        suite.start_ingest(shop.items)
        return ingest_phase(suite, users, items, clients, batches, "ingest-pg")
    finally:
        suite.stop()
        flush_redis_db(REDIS_DB)
        drop_postgres_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batches", type=int, default=30, help="batches of 50 per client in the ingest phases")
    parser.add_argument("--fuzz", type=int, default=10_000)
    parser.add_argument("--hostile-seconds", type=float, default=20.0, help="storefront load per attack in the hostile phase")
    parser.add_argument("--tag", default="reliability")
    parser.add_argument("--only", default="", help="comma-separated phases to run (default: all): " + ", ".join(PHASES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    shop = generate(n_users=40, n_days=60, seed=3)
    users = sorted({e.user_id for e in shop.events})
    items = sorted(shop.items)
    chosen = {p for p in args.only.split(",") if p}
    if unknown := chosen - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")

    def wanted(phase: str) -> bool:
        return not chosen or phase in chosen

    results: dict[str, Any] = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        suite = deploy(Path(tmp) / "embedded", shop, ENV)
        try:
            if wanted("ingest_embedded"):
                print("1/7 ingest, 16 clients ...", flush=True)
                results["ingest_embedded"] = ingest_phase(suite, users, items, args.clients, args.batches, "ingest")
            if wanted("kill_feedback"):
                print("2/7 feedback killed under load ...", flush=True)
                results["kill_feedback"] = feedback_kill_phase(suite, users, items, args.clients, args.batches)
            if wanted("kill_worker"):
                print("3/7 worker killed during a fine-tune ...", flush=True)
                results["kill_worker"] = worker_kill_phase(suite)
            if wanted("kill_triton"):
                print("4/7 tritonserver killed under Rank load ...", flush=True)
                results["kill_triton"] = triton_kill_phase(suite, users, items)
            if wanted("fuzz"):
                print(f"5/7 fuzz, {args.fuzz} cases ...", flush=True)
                results["fuzz"] = fuzz_phase(suite, args.fuzz, items)
            if wanted("hostile"):
                print("6/7 hostile: the storefront during each attack ...", flush=True)
                results["hostile"] = hostile_phase(suite, users, items, args.hostile_seconds)
        finally:
            suite.stop()
        if wanted("ingest_postgresql_redis"):
            print("7/7 ingest on PostgreSQL + Redis ...", flush=True)
            results["ingest_postgresql_redis"] = postgres_redis_phase(Path(tmp) / "pg", shop, users, items, args.clients, args.batches)
    write(results, args.tag)


def write(results: dict[str, Any], tag: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(results, indent=1))
    lines = [f"# Reliability (`make bench-reliability`), {time.strftime('%Y-%m-%d')}, {results['machine']['cpus']} CPUs", ""]
    lines += ["| phase | acked | persisted | lost | failed calls | retried calls | events/s | recovery s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("ingest_embedded", "kill_feedback", "ingest_postgresql_redis"):
        if name not in results:
            continue
        r = results[name]
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | | | | | | |")
            continue
        lines.append(f"| {name} | {r.get('acked')} | {r.get('persisted')} | {r.get('lost')} | {r.get('failed_calls')} | {r.get('retried_calls')} | "
                     f"{r.get('events_per_s', '')} | {r.get('recovery_s', '')} |")
    lines.append("")
    if w := results.get("kill_worker"):
        lines.append(f"- worker killed mid-fine-tune: restarted in {w['recovery_s']} s; the job ended {w['interrupted_job']} "
                     f"({w['interrupted_message']}); the next fine-tune {w['next_fine_tune']} ({w['kill_to_next_version_s']} s after the kill)")
    if t := results.get("kill_triton"):
        lines.append(f"- tritonserver killed under Rank load: {t['rank_calls']} Rank calls, {t['failed_calls']} failed, {t['degraded_answers']} degraded; "
                     f"scored answers again {t['recovery_s']} s after the kill")
    if f := results.get("fuzz"):
        lines.append(f"- fuzz: {f['cases']} cases in {f['seconds']} s, statuses {f['by_status']}; forbidden (UNKNOWN/INTERNAL/timeout): "
                     f"{len(f['forbidden'])}; fine-tunes queued by garbage: {f['ok_fine_tunes']}; tracebacks in logs: {f['tracebacks_in_logs']}")
    if "hostile" in results:
        lines += hostile_lines(results["hostile"])
    (RESULTS / f"{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
