import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoprank.v1 import common_pb2 as _common_pb2
from shoprank.v1 import experiments_pb2 as _experiments_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_REJECTED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_REJECTED: JobState
JOB_STATE_FAILED: JobState

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment_id", "arms", "control_arm", "canary", "policy")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_ARM_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    arms: _containers.RepeatedCompositeFieldContainer[_experiments_pb2.ExperimentArm]
    control_arm: str
    canary: bool
    policy: _experiments_pb2.ExperimentPolicy
    def __init__(self, experiment_id: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[_experiments_pb2.ExperimentArm, _Mapping]]] = ..., control_arm: _Optional[str] = ..., canary: _Optional[bool] = ..., policy: _Optional[_Union[_experiments_pb2.ExperimentPolicy, _Mapping]] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiments_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_experiments_pb2.Experiment, _Mapping]] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class GetExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiments_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_experiments_pb2.Experiment, _Mapping]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[_experiments_pb2.Experiment]
    def __init__(self, experiments: _Optional[_Iterable[_Union[_experiments_pb2.Experiment, _Mapping]]] = ...) -> None: ...

class EndExperimentRequest(_message.Message):
    __slots__ = ("experiment_id", "promote_arm")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_ARM_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    promote_arm: str
    def __init__(self, experiment_id: _Optional[str] = ..., promote_arm: _Optional[str] = ...) -> None: ...

class EndExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiments_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_experiments_pb2.Experiment, _Mapping]] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ForgetUserResponse(_message.Message):
    __slots__ = ("receipt_id", "user_key", "requested_by", "at", "removed", "trained_versions", "running_jobs")
    class RemovedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TRAINED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    receipt_id: str
    user_key: str
    requested_by: str
    at: _timestamp_pb2.Timestamp
    removed: _containers.ScalarMap[str, int]
    trained_versions: _containers.RepeatedScalarFieldContainer[str]
    running_jobs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, receipt_id: _Optional[str] = ..., user_key: _Optional[str] = ..., requested_by: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., removed: _Optional[_Mapping[str, int]] = ..., trained_versions: _Optional[_Iterable[str]] = ..., running_jobs: _Optional[_Iterable[str]] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("at", "client", "role", "method", "request", "outcome", "detail", "caller", "peer", "chain")
    AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    client: str
    role: str
    method: str
    request: str
    outcome: str
    detail: str
    caller: str
    peer: str
    chain: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client: _Optional[str] = ..., role: _Optional[str] = ..., method: _Optional[str] = ..., request: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., caller: _Optional[str] = ..., peer: _Optional[str] = ..., chain: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("entries", "chain_ok", "chain_problem", "chained_entries", "legacy_entries")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_OK_FIELD_NUMBER: _ClassVar[int]
    CHAIN_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    CHAINED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LEGACY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    chain_ok: bool
    chain_problem: str
    chained_entries: int
    legacy_entries: int
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., chain_ok: _Optional[bool] = ..., chain_problem: _Optional[str] = ..., chained_entries: _Optional[int] = ..., legacy_entries: _Optional[int] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "parent_version", "created", "data_from", "data_to", "example_count", "final_loss", "job_id", "serving", "gate")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DATA_FROM_FIELD_NUMBER: _ClassVar[int]
    DATA_TO_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    version: str
    parent_version: str
    created: _timestamp_pb2.Timestamp
    data_from: _timestamp_pb2.Timestamp
    data_to: _timestamp_pb2.Timestamp
    example_count: int
    final_loss: float
    job_id: str
    serving: bool
    gate: str
    def __init__(self, version: _Optional[str] = ..., parent_version: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., example_count: _Optional[int] = ..., final_loss: _Optional[float] = ..., job_id: _Optional[str] = ..., serving: _Optional[bool] = ..., gate: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class TriggerFineTuneRequest(_message.Message):
    __slots__ = ("job_id", "max_steps", "learning_rate")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    max_steps: int
    learning_rate: float
    def __init__(self, job_id: _Optional[str] = ..., max_steps: _Optional[int] = ..., learning_rate: _Optional[float] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class TriggerFineTuneResponse(_message.Message):
    __slots__ = ("job_id", "state", "progress", "message", "parent_version", "new_version", "created", "updated")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    progress: float
    message: str
    parent_version: str
    new_version: str
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., parent_version: _Optional[str] = ..., new_version: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job_id", "state", "progress", "message", "parent_version", "new_version", "created", "updated")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    progress: float
    message: str
    parent_version: str
    new_version: str
    created: _timestamp_pb2.Timestamp
    updated: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., parent_version: _Optional[str] = ..., new_version: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "segmented_at")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTED_AT_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[_common_pb2.ShopperSegment]
    segmented_at: _timestamp_pb2.Timestamp
    def __init__(self, segments: _Optional[_Iterable[_Union[_common_pb2.ShopperSegment, _Mapping]]] = ..., segmented_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("version", "parent_version", "created", "data_from", "data_to", "example_count", "final_loss", "job_id", "serving", "gate")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DATA_FROM_FIELD_NUMBER: _ClassVar[int]
    DATA_TO_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FINAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    version: str
    parent_version: str
    created: _timestamp_pb2.Timestamp
    data_from: _timestamp_pb2.Timestamp
    data_to: _timestamp_pb2.Timestamp
    example_count: int
    final_loss: float
    job_id: str
    serving: bool
    gate: str
    def __init__(self, version: _Optional[str] = ..., parent_version: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., example_count: _Optional[int] = ..., final_loss: _Optional[float] = ..., job_id: _Optional[str] = ..., serving: _Optional[bool] = ..., gate: _Optional[str] = ...) -> None: ...
