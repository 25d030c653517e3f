from shoprank.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RankRequest(_message.Message):
    __slots__ = ("user_id", "item_ids", "request_id", "explain")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    explain: bool
    def __init__(self, user_id: _Optional[str] = ..., item_ids: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "k", "request_id", "rules", "explain")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    k: int
    request_id: str
    rules: _common_pb2.RecommendRules
    explain: bool
    def __init__(self, user_id: _Optional[str] = ..., k: _Optional[int] = ..., request_id: _Optional[str] = ..., rules: _Optional[_Union[_common_pb2.RecommendRules, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "k", "user_id", "rules", "request_id")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    k: int
    user_id: str
    rules: _common_pb2.RecommendRules
    request_id: str
    def __init__(self, item_id: _Optional[str] = ..., k: _Optional[int] = ..., user_id: _Optional[str] = ..., rules: _Optional[_Union[_common_pb2.RecommendRules, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class FrequentlyBoughtTogetherRequest(_message.Message):
    __slots__ = ("item_ids", "k", "user_id", "rules", "request_id")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    k: int
    user_id: str
    rules: _common_pb2.RecommendRules
    request_id: str
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., user_id: _Optional[str] = ..., rules: _Optional[_Union[_common_pb2.RecommendRules, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class TrendingRequest(_message.Message):
    __slots__ = ("k", "user_id", "rules", "request_id")
    K_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    k: int
    user_id: str
    rules: _common_pb2.RecommendRules
    request_id: str
    def __init__(self, k: _Optional[int] = ..., user_id: _Optional[str] = ..., rules: _Optional[_Union[_common_pb2.RecommendRules, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "degraded", "experiment_id", "arm", "shopper_state")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SHOPPER_STATE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    model_version: str
    request_id: str
    degraded: bool
    experiment_id: str
    arm: str
    shopper_state: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ..., shopper_state: _Optional[str] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "degraded", "experiment_id", "arm", "shopper_state")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SHOPPER_STATE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    model_version: str
    request_id: str
    degraded: bool
    experiment_id: str
    arm: str
    shopper_state: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ..., shopper_state: _Optional[str] = ...) -> None: ...

class SimilarItemsResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "degraded", "experiment_id", "arm", "shopper_state")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SHOPPER_STATE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    model_version: str
    request_id: str
    degraded: bool
    experiment_id: str
    arm: str
    shopper_state: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ..., shopper_state: _Optional[str] = ...) -> None: ...

class FrequentlyBoughtTogetherResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "degraded", "experiment_id", "arm", "shopper_state")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SHOPPER_STATE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    model_version: str
    request_id: str
    degraded: bool
    experiment_id: str
    arm: str
    shopper_state: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ..., shopper_state: _Optional[str] = ...) -> None: ...

class TrendingResponse(_message.Message):
    __slots__ = ("items", "model_version", "request_id", "degraded", "experiment_id", "arm", "shopper_state")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    SHOPPER_STATE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    model_version: str
    request_id: str
    degraded: bool
    experiment_id: str
    arm: str
    shopper_state: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., arm: _Optional[str] = ..., shopper_state: _Optional[str] = ...) -> None: ...
