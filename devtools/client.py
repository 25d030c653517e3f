"""Dev tooling: a small Python client of the suite (stubs on one channel each), used by the demo and the tests."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from core.domain import Event
from shoprank.v1 import common_pb2, feedback_pb2, feedback_pb2_grpc, model_admin_pb2, model_admin_pb2_grpc, profile_pb2_grpc, scoring_pb2, scoring_pb2_grpc
from shoprank_client.channel import open_channel as shoprank_channel
from shoprank_client.enums import event_type_enum
from shoptext.text import ItemText

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass(frozen=True)
class Credentials:
    """How a client reaches a deployment: the CA it trusts (None: plaintext), its API key (None: none
    sent) and, for mutual TLS, its certificate chain (private key, certificate)."""

    ca: bytes | None = None
    key: str | None = None
    certificate: tuple[bytes, bytes] | None = None

    @classmethod
    def of(cls, settings: "Settings", role: str = "admin") -> "Credentials":
        """The generated credentials of a deployment (core.security) for the client named after `role`."""
        folder = settings.secrets_path
        key_file = folder / f"{role}.key"
        key = key_file.read_text().strip() if settings.auth and key_file.exists() else None
        certificate = None
        if settings.tls and settings.tls_client_auth == "require":
            certificate = ((folder / "client-key.pem").read_bytes(), (folder / "client.pem").read_bytes())
        return cls(settings.ca_cert.read_bytes() if settings.tls else None, key, certificate)

    def without_key(self) -> "Credentials":
        return Credentials(self.ca, None, self.certificate)

    def with_key(self, key: str | None) -> "Credentials":
        return Credentials(self.ca, key, self.certificate)


def open_channel(address: str, credentials: Credentials | None = None, own_connection: bool = False) -> grpc.Channel:
    """A channel to one of the suite's servers (shoprank_client.channel: TLS when `credentials` has a CA,
    the key as call metadata). `own_connection`: a TCP connection of its own (gRPC otherwise shares one
    between a process's channels to the same address), as separate storefront processes would have; a
    service that runs several processes on one port spreads connections, not calls. No retries: the
    tests and benchmarks want to see every failure."""
    credentials = credentials or Credentials()
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    # the suite's own tools connect in plaintext exactly when they were given no CA (RECSYS_TLS=false suites)
    return shoprank_channel(address, credentials.ca, credentials.key, credentials.certificate, options=options,
                            plaintext=credentials.ca is None)


def event_message(e: Event) -> common_pb2.Event:
    ts = Timestamp()
    ts.FromNanoseconds(int(round(e.timestamp * 1e9)))
    return common_pb2.Event(event_id=e.event_id, user_id=e.user_id, item_id=e.item_id, event_type=event_type_enum(e.event_type), timestamp=ts, request_id=e.request_id)


def item_message(item_id: str, item: ItemText) -> common_pb2.Item:
    return common_pb2.Item(item_id=item_id, title=item.title, description=item.description, category=item.category, price=item.price)


class SuiteClient:
    def __init__(self, feedback: str, scoring: str | None = None, profile: str | None = None,
                 credentials: Credentials | None = None) -> None:
        self._channels = [open_channel(feedback, credentials)]
        self.feedback = feedback_pb2_grpc.FeedbackServiceStub(self._channels[0])
        self.admin = model_admin_pb2_grpc.ModelAdminServiceStub(self._channels[0])
        self.scoring = self.profile = None
        if scoring:
            self._channels.append(open_channel(scoring, credentials))
            self.scoring = scoring_pb2_grpc.ScoringServiceStub(self._channels[-1])
        if profile:
            self._channels.append(open_channel(profile, credentials))
            self.profile = profile_pb2_grpc.ProfileServiceStub(self._channels[-1])

    def upsert_items(self, items: dict[str, ItemText], batch: int = 500) -> int:
        ids = list(items)
        done = 0
        for i in range(0, len(ids), batch):
            reply = self.feedback.UpsertItems(feedback_pb2.UpsertItemsRequest(items=[item_message(k, items[k]) for k in ids[i : i + batch]]), timeout=60)
            done += reply.upserted
        return done

    def record_events(self, events: Sequence[Event], batch: int = 1000) -> tuple[int, int, int]:
        accepted = duplicates = rejected = 0
        for i in range(0, len(events), batch):
            reply = self.feedback.RecordEvents(feedback_pb2.RecordEventsRequest(events=[event_message(e) for e in events[i : i + batch]]), timeout=120)
            accepted, duplicates, rejected = accepted + reply.accepted, duplicates + reply.duplicates, rejected + len(reply.rejected)
        return accepted, duplicates, rejected

    def rank(self, user_id: str, item_ids: Iterable[str], request_id: str = "") -> scoring_pb2.RankResponse:
        assert self.scoring is not None
        return self.scoring.Rank(scoring_pb2.RankRequest(user_id=user_id, item_ids=list(item_ids), request_id=request_id), timeout=60)

    def recommend(self, user_id: str, k: int = 10, request_id: str = "") -> scoring_pb2.RankResponse:
        assert self.scoring is not None
        return self.scoring.Recommend(scoring_pb2.RecommendRequest(user_id=user_id, k=k, request_id=request_id), timeout=60)

    def trigger(self, job_id: str = "", max_steps: int = 0, learning_rate: float = 0.0) -> model_admin_pb2.TriggerFineTuneResponse:
        request = model_admin_pb2.TriggerFineTuneRequest(job_id=job_id, max_steps=max_steps, learning_rate=learning_rate)
        return self.admin.TriggerFineTune(request, timeout=30)

    def job(self, job_id: str) -> model_admin_pb2.GetJobResponse:
        return self.admin.GetJob(model_admin_pb2.GetJobRequest(job_id=job_id), timeout=30)

    def wait_job(self, job_id: str, timeout_s: float = 1800.0, poll_s: float = 0.5) -> model_admin_pb2.GetJobResponse:
        """The job once it is no longer pending or running (SUCCEEDED, REJECTED or FAILED)."""
        deadline = time.monotonic() + timeout_s
        while (job := self.job(job_id)).state in (model_admin_pb2.JOB_STATE_PENDING, model_admin_pb2.JOB_STATE_RUNNING):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still running after {timeout_s:.0f} s: {job.message}")
            time.sleep(poll_s)
        return job

    def close(self) -> None:
        for c in self._channels:
            c.close()
