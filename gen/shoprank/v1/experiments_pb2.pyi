import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_METRIC_UNSPECIFIED: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_CTR: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_CONVERSION: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_REVENUE_PER_IMPRESSION: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_NDCG: _ClassVar[ExperimentMetric]

class ExperimentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATE_UNSPECIFIED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_RUNNING: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_PROMOTED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_KEPT_CONTROL: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_ROLLED_BACK: _ClassVar[ExperimentState]
EXPERIMENT_METRIC_UNSPECIFIED: ExperimentMetric
EXPERIMENT_METRIC_CTR: ExperimentMetric
EXPERIMENT_METRIC_CONVERSION: ExperimentMetric
EXPERIMENT_METRIC_REVENUE_PER_IMPRESSION: ExperimentMetric
EXPERIMENT_METRIC_NDCG: ExperimentMetric
EXPERIMENT_STATE_UNSPECIFIED: ExperimentState
EXPERIMENT_STATE_RUNNING: ExperimentState
EXPERIMENT_STATE_PROMOTED: ExperimentState
EXPERIMENT_STATE_KEPT_CONTROL: ExperimentState
EXPERIMENT_STATE_ROLLED_BACK: ExperimentState

class ExperimentArm(_message.Message):
    __slots__ = ("name", "version", "share", "shadow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    share: float
    shadow: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., share: _Optional[float] = ..., shadow: _Optional[bool] = ...) -> None: ...

class ExperimentPolicy(_message.Message):
    __slots__ = ("metric", "confidence", "margin", "min_impressions", "max_impressions", "k")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    metric: ExperimentMetric
    confidence: float
    margin: float
    min_impressions: int
    max_impressions: int
    k: int
    def __init__(self, metric: _Optional[_Union[ExperimentMetric, str]] = ..., confidence: _Optional[float] = ..., margin: _Optional[float] = ..., min_impressions: _Optional[int] = ..., max_impressions: _Optional[int] = ..., k: _Optional[int] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("value", "low", "high")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    value: float
    low: float
    high: float
    def __init__(self, value: _Optional[float] = ..., low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class ArmMetrics(_message.Message):
    __slots__ = ("arm", "version", "shadow", "shoppers", "requests", "impressions", "clicks", "add_to_carts", "purchases", "revenue", "ctr_at_k", "conversion", "revenue_per_impression", "debiased_ctr", "ndcg", "versus_control")
    ARM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SHOPPERS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    ADD_TO_CARTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    CTR_AT_K_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PER_IMPRESSION_FIELD_NUMBER: _ClassVar[int]
    DEBIASED_CTR_FIELD_NUMBER: _ClassVar[int]
    NDCG_FIELD_NUMBER: _ClassVar[int]
    VERSUS_CONTROL_FIELD_NUMBER: _ClassVar[int]
    arm: str
    version: str
    shadow: bool
    shoppers: int
    requests: int
    impressions: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float
    ctr_at_k: Estimate
    conversion: Estimate
    revenue_per_impression: Estimate
    debiased_ctr: Estimate
    ndcg: Estimate
    versus_control: ArmComparison
    def __init__(self, arm: _Optional[str] = ..., version: _Optional[str] = ..., shadow: _Optional[bool] = ..., shoppers: _Optional[int] = ..., requests: _Optional[int] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., add_to_carts: _Optional[int] = ..., purchases: _Optional[int] = ..., revenue: _Optional[float] = ..., ctr_at_k: _Optional[_Union[Estimate, _Mapping]] = ..., conversion: _Optional[_Union[Estimate, _Mapping]] = ..., revenue_per_impression: _Optional[_Union[Estimate, _Mapping]] = ..., debiased_ctr: _Optional[_Union[Estimate, _Mapping]] = ..., ndcg: _Optional[_Union[Estimate, _Mapping]] = ..., versus_control: _Optional[_Union[ArmComparison, _Mapping]] = ...) -> None: ...

class ArmComparison(_message.Message):
    __slots__ = ("difference", "always_valid_p", "non_inferiority_p", "verdict")
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    ALWAYS_VALID_P_FIELD_NUMBER: _ClassVar[int]
    NON_INFERIORITY_P_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    difference: Estimate
    always_valid_p: float
    non_inferiority_p: float
    verdict: str
    def __init__(self, difference: _Optional[_Union[Estimate, _Mapping]] = ..., always_valid_p: _Optional[float] = ..., non_inferiority_p: _Optional[float] = ..., verdict: _Optional[str] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("experiment_id", "state", "arms", "control_arm", "canary", "policy", "created", "ended", "decision", "winner_arm", "metrics")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_ARM_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    WINNER_ARM_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    state: ExperimentState
    arms: _containers.RepeatedCompositeFieldContainer[ExperimentArm]
    control_arm: str
    canary: bool
    policy: ExperimentPolicy
    created: _timestamp_pb2.Timestamp
    ended: _timestamp_pb2.Timestamp
    decision: str
    winner_arm: str
    metrics: _containers.RepeatedCompositeFieldContainer[ArmMetrics]
    def __init__(self, experiment_id: _Optional[str] = ..., state: _Optional[_Union[ExperimentState, str]] = ..., arms: _Optional[_Iterable[_Union[ExperimentArm, _Mapping]]] = ..., control_arm: _Optional[str] = ..., canary: _Optional[bool] = ..., policy: _Optional[_Union[ExperimentPolicy, _Mapping]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision: _Optional[str] = ..., winner_arm: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[ArmMetrics, _Mapping]]] = ...) -> None: ...
