"""Model administration: versions with lineage, fine-tune jobs (hosted in the feedback server)."""
from __future__ import annotations

import logging
import uuid
from typing import TypeVar

import grpc

from core.domain import Job
from core.errors import InvalidArgument, NotFound
from core.experiments.control import ExperimentControl
from core.feature_sync import FeatureSync
from core.features import FeatureClient
from core.ids import check_id, check_job_id, parse_version, shown
from core.model_repository import ModelRepository
from core.model_serving import model_serving
from core.privacy import Pseudonyms, forget
from core.settings import Settings
from core.store import EventLog
from core.tasks import TaskSender
from core.triggers import enqueue_fine_tune
from core.triton_client import InferenceUnavailable, triton_client
from rankers import get_ranker
from services.auth import current_client
from services.experiments_admin import ExperimentAdmin
from services.messages import ts
from shoprank.v1 import common_pb2, model_admin_pb2, model_admin_pb2_grpc
from shoprank_client.enums import job_state_enum

logger = logging.getLogger(__name__)

MAX_STEPS = 10000


JobMessage = TypeVar("JobMessage", model_admin_pb2.TriggerFineTuneResponse, model_admin_pb2.GetJobResponse)


def job_message(job: Job, kind: type[JobMessage]) -> JobMessage:
    """A job as TriggerFineTune's or GetJob's response (the same fields)."""
    return kind(
        job_id=job.job_id, state=job_state_enum(job.state), progress=job.progress, message=job.message,
        parent_version=job.parent_version, new_version=job.new_version, created=ts(job.created), updated=ts(job.updated),
    )


class ModelAdminServicer(model_admin_pb2_grpc.ModelAdminServiceServicer):
    def __init__(self, settings: Settings, log: EventLog, features: FeatureClient, sender: TaskSender, pseudonyms: Pseudonyms,
                 sync: FeatureSync | None = None) -> None:
        self.settings = settings
        self.log = log
        self.features = features
        self.pseudonyms = pseudonyms
        self.sync = sync  # rebuilds shop-wide popularity after an erasure
        self.ranker = get_ranker(settings.ranker)
        self.repo = ModelRepository(settings.model_repository, self.ranker.model_name)
        self.sender = sender
        self.serving = model_serving(settings, self.repo)
        self.experiments = ExperimentAdmin(ExperimentControl(
            log, self.repo, lambda v: self.ranker.materialise(self.repo.version_dir(v), features, v), self.serving))

    def ListVersions(self, request, context: grpc.ServicerContext) -> model_admin_pb2.ListVersionsResponse:
        serving: set[str] = set()
        client = triton_client(self.settings, self.ranker.model_name, timeout_s=2.0)
        try:
            serving = client.serving_versions()
        except InferenceUnavailable:
            logger.warning("Triton unreachable; versions listed without serving state")
        finally:
            client.close()
        out = []
        for v in reversed(self.repo.versions()):
            lin = self.repo.lineage(v)
            msg = model_admin_pb2.ModelVersion(version=str(v), serving=str(v) in serving)
            if lin:
                msg.parent_version = lin.parent_version
                msg.created.CopyFrom(ts(lin.created))
                msg.data_from.CopyFrom(ts(lin.data_from))
                msg.data_to.CopyFrom(ts(lin.data_to))
                msg.example_count = lin.example_count
                msg.final_loss = lin.final_loss
                msg.job_id = lin.job_id
                if lin.gate:
                    msg.gate = ("passed: " if lin.gate.get("passed") else "rejected: ") + lin.gate.get("reason", "")
            out.append(msg)
        return model_admin_pb2.ListVersionsResponse(versions=out)

    def TriggerFineTune(self, request, context: grpc.ServicerContext) -> model_admin_pb2.TriggerFineTuneResponse:
        job_id = request.job_id or f"ft-{uuid.uuid4().hex[:12]}"
        if reason := check_job_id(job_id):
            raise InvalidArgument(reason)
        if not 0 <= request.max_steps <= MAX_STEPS:
            raise InvalidArgument(f"max_steps {request.max_steps} outside 0..{MAX_STEPS} (0 = default)")
        if not 0 <= request.learning_rate <= 1:
            raise InvalidArgument(f"learning_rate {request.learning_rate} outside 0..1 (0 = default)")
        parent = self.repo.serving_version()  # None: a fresh deployment, and this job trains version 1
        steps = request.max_steps or self.settings.fine_tune_steps
        job, _ = enqueue_fine_tune(self.settings, self.log, self.sender, job_id, parent, steps, request.learning_rate)
        return job_message(job, model_admin_pb2.TriggerFineTuneResponse)

    def Rollback(self, request, context: grpc.ServicerContext) -> model_admin_pb2.RollbackResponse:
        version = parse_version(request.version)
        if version not in self.repo.versions():
            raise NotFound(f"no version {version}; versions: {', '.join(map(str, self.repo.versions()))}")
        # the version's own online features first (they are keyed by version, so this is idempotent and
        # never disturbs the version serving now), then the pin and Triton: all of it switches together
        self.ranker.materialise(self.repo.version_dir(version), self.features, version)
        before = self.serving.serve([version])  # ServingFailed (UNAVAILABLE): what served before, experiment included, still serves
        logger.warning("rolled back: version %d serves (was %s)", version, before.describe())
        for experiment in self.log.experiments.running():  # the pin replaced its versions: it has ended
            self.experiments.control.abandon(experiment, f"ended by Rollback to version {version} ({current_client.get().name})")
        lin = self.repo.lineage(version)
        msg = model_admin_pb2.RollbackResponse(version=str(version), serving=True)
        if lin:
            msg.parent_version, msg.job_id, msg.example_count = lin.parent_version, lin.job_id, lin.example_count
        return msg

    def ForgetUser(self, request, context: grpc.ServicerContext) -> model_admin_pb2.ForgetUserResponse:
        if reason := check_id(request.user_id, "user_id"):
            raise InvalidArgument(reason)
        user_key = self.pseudonyms(request.user_id)
        receipt = forget(user_key, current_client.get().name, self.settings, self.log, self.features, self.repo, self.sync)
        return model_admin_pb2.ForgetUserResponse(receipt_id=receipt.receipt_id, user_key=receipt.user_key, requested_by=receipt.requested_by,
                                                  at=ts(receipt.at), removed=receipt.removed, trained_versions=receipt.trained_versions,
                                                  running_jobs=receipt.running_jobs)

    def ListAudit(self, request, context: grpc.ServicerContext) -> model_admin_pb2.ListAuditResponse:
        limit = request.limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit {limit} outside 1..1000 (0 = 100)")
        check = self.log.audit.verify()
        return model_admin_pb2.ListAuditResponse(
            entries=[model_admin_pb2.AuditEntry(at=ts(e.at), client=e.client, role=e.role, method=e.method, request=e.request,
                                                outcome=e.outcome, detail=e.detail, caller=e.caller, peer=e.peer, chain=e.chain)
                     for e in self.log.audit.recent(limit)],
            chain_ok=check.ok, chain_problem=check.problem, chained_entries=check.chained_rows, legacy_entries=check.legacy_rows)

    def ListSegments(self, request, context: grpc.ServicerContext) -> model_admin_pb2.ListSegmentsResponse:
        segments, at = self.features.get_segments()
        return model_admin_pb2.ListSegmentsResponse(
            segments=[common_pb2.ShopperSegment(segment_id=s.segment_id, name=s.name, size=s.size) for s in segments],
            segmented_at=ts(at))

    def CreateExperiment(self, request, context: grpc.ServicerContext) -> model_admin_pb2.CreateExperimentResponse:
        return self.experiments.create(request)

    def GetExperiment(self, request, context: grpc.ServicerContext) -> model_admin_pb2.GetExperimentResponse:
        return self.experiments.get(request)

    def ListExperiments(self, request, context: grpc.ServicerContext) -> model_admin_pb2.ListExperimentsResponse:
        return self.experiments.list(request)

    def EndExperiment(self, request, context: grpc.ServicerContext) -> model_admin_pb2.EndExperimentResponse:
        return self.experiments.end(request, decided_by=current_client.get().name)

    def GetJob(self, request, context: grpc.ServicerContext) -> model_admin_pb2.GetJobResponse:
        if not request.job_id:
            raise InvalidArgument("missing job_id")
        job = self.log.jobs.get(request.job_id)
        if job is None:
            raise NotFound(f"no job {shown(request.job_id)}")
        return job_message(job, model_admin_pb2.GetJobResponse)
