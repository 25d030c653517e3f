"""`make up`: the suite on fixed ports for grpcurl, until Ctrl-C.

Uses the default deployment (var/ for data, var/triton_models/ for versions; the committed triton_models/
holds only templates). On first start it loads the synthetic shop (or the Online Retail slice when ../shared/data is present) and exports version 1.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading

from core.settings import load
from devtools.suite import Suite

logger = logging.getLogger(__name__)

GRPCURL_EXAMPLES = """
The suite is up, TLS and API keys on every port. Try (from the repository root; grpcurl is in .venv/bin):

  CA={ca}; SF="authorization: Bearer $(cat {storefront_key})"; ADMIN="authorization: Bearer $(cat {admin_key})"
  .venv/bin/grpcurl -cacert $CA -H "$SF" 127.0.0.1:{scoring} list
  .venv/bin/grpcurl -cacert $CA -H "$SF" -d '{{"user_id": "{user}", "item_ids": [{items}]}}' 127.0.0.1:{scoring} shoprank.v1.ScoringService/Rank
  .venv/bin/grpcurl -cacert $CA -H "$SF" -d '{{"user_id": "{user}", "k": 5}}' 127.0.0.1:{scoring} shoprank.v1.ScoringService/Recommend
  .venv/bin/grpcurl -cacert $CA -H "$SF" -d '{{"user_id": "{user}"}}' 127.0.0.1:{profile} shoprank.v1.ProfileService/GetProfile
  .venv/bin/grpcurl -cacert $CA -H "$SF" -d '{{"events": [{{"event_id": "e-manual-1", "user_id": "{user}", "item_id": {first}, "event_type": "EVENT_TYPE_PURCHASE", "timestamp": "2026-11-01T10:00:00Z"}}]}}' 127.0.0.1:{feedback} shoprank.v1.FeedbackService/RecordEvents
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"max_steps": 10}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/TriggerFineTune
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"job_id": "JOB_ID_FROM_ABOVE"}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/GetJob
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/ListVersions
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"version": "1"}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/Rollback
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"experiment_id": "ab-1", "arms": [{{"name": "control", "version": "1", "share": 0.5}}, {{"name": "candidate", "version": "2", "share": 0.5}}]}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/CreateExperiment
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"experiment_id": "ab-1"}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/GetExperiment
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"experiment_id": "ab-1", "promote_arm": "candidate"}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/EndExperiment
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"user_id": "{user}"}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/ForgetUser
  .venv/bin/grpcurl -cacert $CA -H "$ADMIN" -d '{{"limit": 5}}' 127.0.0.1:{feedback} shoprank.v1.ModelAdminService/ListAudit
  .venv/bin/grpcurl -cacert $CA -H "$SF" -d '{{"service": "shoprank.v1.ScoringService"}}' 127.0.0.1:{scoring} grpc.health.v1.Health/Check
  curl -s {metrics_scoring} | grep shoprank_rpc     # Prometheus: also {metrics_feedback}, {metrics_profile}, Triton {metrics_triton}

Storefront ids are stored only as keyed hashes: the log cannot tell us one to show, so USER_ID stands for
one of your shoppers' ids where the shop was loaded before this start. Logs: {logs}.  Ctrl-C stops every process.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feedback-port", type=int, default=50051)
    parser.add_argument("--scoring-port", type=int, default=50052)
    parser.add_argument("--profile-port", type=int, default=50053)
    parser.add_argument("--triton-grpc-port", type=int, default=8001)
    parser.add_argument("--triton-http-port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load()
    ports = {"feedback": args.feedback_port, "scoring": args.scoring_port, "profile": args.profile_port,
             "triton_grpc": args.triton_grpc_port, "triton_http": args.triton_http_port,
             # Prometheus /metrics of each service (tritonserver's metrics port is picked free at start)
             "feedback_metrics": 9101, "scoring_metrics": 9102, "profile_metrics": 9103}
    with Suite(settings.data_dir, settings.model_repository, ports=ports) as suite:
        suite.apply_env()
        suite.prepare()
        suite.start_services(("feedback", "profile"))
        from core.store import EventLog

        log = EventLog.open(settings.eventlog)
        user = "USER_ID"
        if not log.catalogue.items():
            from devtools.demo import load_shop

            shop = load_shop("auto")
            logger.info("first start: loading %s (%d items, %d events)", shop.name, len(shop.items), len(shop.events))
            client = suite.client("feedback")
            client.upsert_items(shop.items)
            client.record_events(shop.events)
            client.close()
            user = shop.events[-1].user_id
        from workers.publishing import bootstrap

        bootstrap(load(), max_steps=30)
        suite.start_triton()
        suite.start_services(("scoring",))
        suite.start_worker()
        catalogue = sorted(log.catalogue.items())[:3]
        secrets = settings.secrets_path
        print(GRPCURL_EXAMPLES.format(
            ca=settings.ca_cert, storefront_key=secrets / "storefront.key", admin_key=secrets / "admin.key",
            scoring=suite.ports["scoring"], profile=suite.ports["profile"], feedback=suite.ports["feedback"], user=user,
            items=", ".join(f'"{i}"' for i in catalogue), first=f'"{catalogue[0]}"', logs=suite.log_dir,
            **{f"metrics_{n}": suite.metrics_url(n) for n in ("scoring", "feedback", "profile", "triton")}), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(2.0):  # a killed service, worker or tritonserver is started again
            for name in suite.restart_dead():
                print(f"{name} had stopped; restarted", flush=True)
        print("stopping...")


if __name__ == "__main__":
    main()
