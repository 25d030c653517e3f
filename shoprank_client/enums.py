"""The API's enums as the plain words the suite's domain uses ("click", "SUCCEEDED"): one formula, used
by the services on the way in and out and by the clients."""
from __future__ import annotations

from shoprank.v1 import common_pb2, model_admin_pb2

_EVENT = "EVENT_TYPE_"
_JOB = "JOB_STATE_"


def event_type_of(value: int) -> str | None:
    """"click" for EVENT_TYPE_CLICK; None for EVENT_TYPE_UNSPECIFIED or a number this version does not know."""
    if value == common_pb2.EVENT_TYPE_UNSPECIFIED or value not in common_pb2.EventType.values():
        return None
    return common_pb2.EventType.Name(value)[len(_EVENT):].lower()


def event_type_enum(name: str) -> int:
    """EVENT_TYPE_CLICK for "click" (ValueError for a word that is no event type)."""
    return common_pb2.EventType.Value(_EVENT + name.upper())


def job_state_of(value: int) -> str:
    """"SUCCEEDED" for JOB_STATE_SUCCEEDED."""
    return model_admin_pb2.JobState.Name(value)[len(_JOB):]


def job_state_enum(name: str) -> int:
    return model_admin_pb2.JobState.Value(_JOB + name)


_METRIC = "EXPERIMENT_METRIC_"
_EXPERIMENT_STATE = "EXPERIMENT_STATE_"


def experiment_metric_of(value: int) -> str | None:
    """"ctr" for EXPERIMENT_METRIC_CTR (and for UNSPECIFIED, the default); None for an unknown number."""
    from shoprank.v1 import experiments_pb2

    if value == experiments_pb2.EXPERIMENT_METRIC_UNSPECIFIED:
        return "ctr"
    if value not in experiments_pb2.ExperimentMetric.values():
        return None
    return experiments_pb2.ExperimentMetric.Name(value)[len(_METRIC):].lower()


def experiment_metric_enum(name: str) -> int:
    from shoprank.v1 import experiments_pb2

    return experiments_pb2.ExperimentMetric.Value(_METRIC + name.upper())


def experiment_state_of(value: int) -> str:
    """"rolled_back" for EXPERIMENT_STATE_ROLLED_BACK."""
    from shoprank.v1 import experiments_pb2

    return experiments_pb2.ExperimentState.Name(value)[len(_EXPERIMENT_STATE):].lower()


def experiment_state_enum(name: str) -> int:
    from shoprank.v1 import experiments_pb2

    return experiments_pb2.ExperimentState.Value(_EXPERIMENT_STATE + name.upper())
