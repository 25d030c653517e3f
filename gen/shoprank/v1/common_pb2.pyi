import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReasonKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_KIND_UNSPECIFIED: _ClassVar[ReasonKind]
    REASON_KIND_REPEAT: _ClassVar[ReasonKind]
    REASON_KIND_TIMING: _ClassVar[ReasonKind]
    REASON_KIND_POPULARITY: _ClassVar[ReasonKind]
    REASON_KIND_CO_PURCHASE: _ClassVar[ReasonKind]
    REASON_KIND_TEXT: _ClassVar[ReasonKind]

class Placement(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLACEMENT_UNSPECIFIED: _ClassVar[Placement]
    PLACEMENT_BOOSTED: _ClassVar[Placement]
    PLACEMENT_PINNED: _ClassVar[Placement]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_IMPRESSION: _ClassVar[EventType]
    EVENT_TYPE_CLICK: _ClassVar[EventType]
    EVENT_TYPE_ADD_TO_CART: _ClassVar[EventType]
    EVENT_TYPE_PURCHASE: _ClassVar[EventType]
REASON_KIND_UNSPECIFIED: ReasonKind
REASON_KIND_REPEAT: ReasonKind
REASON_KIND_TIMING: ReasonKind
REASON_KIND_POPULARITY: ReasonKind
REASON_KIND_CO_PURCHASE: ReasonKind
REASON_KIND_TEXT: ReasonKind
PLACEMENT_UNSPECIFIED: Placement
PLACEMENT_BOOSTED: Placement
PLACEMENT_PINNED: Placement
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_IMPRESSION: EventType
EVENT_TYPE_CLICK: EventType
EVENT_TYPE_ADD_TO_CART: EventType
EVENT_TYPE_PURCHASE: EventType

class Item(_message.Message):
    __slots__ = ("item_id", "title", "description", "category", "price", "out_of_stock")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_STOCK_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    description: str
    category: str
    price: float
    out_of_stock: bool
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., category: _Optional[str] = ..., price: _Optional[float] = ..., out_of_stock: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "user_id", "item_id", "event_type", "timestamp", "request_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    user_id: str
    item_id: str
    event_type: EventType
    timestamp: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, event_id: _Optional[str] = ..., user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., event_type: _Optional[_Union[EventType, str]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ScoredItem(_message.Message):
    __slots__ = ("item_id", "probability", "rank", "placement", "score", "reasons")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    probability: float
    rank: int
    placement: Placement
    score: float
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    def __init__(self, item_id: _Optional[str] = ..., probability: _Optional[float] = ..., rank: _Optional[int] = ..., placement: _Optional[_Union[Placement, str]] = ..., score: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("kind", "attribution", "text")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    kind: ReasonKind
    attribution: float
    text: str
    def __init__(self, kind: _Optional[_Union[ReasonKind, str]] = ..., attribution: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class Pin(_message.Message):
    __slots__ = ("item_id", "position")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    position: int
    def __init__(self, item_id: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class RecommendRules(_message.Message):
    __slots__ = ("exclude_purchased", "exclude_seen_days", "exclude_item_ids", "include_categories", "exclude_categories", "boosted_item_ids", "boost_share", "pins", "max_per_category", "distinct_titles")
    EXCLUDE_PURCHASED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SEEN_DAYS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BOOSTED_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    BOOST_SHARE_FIELD_NUMBER: _ClassVar[int]
    PINS_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_TITLES_FIELD_NUMBER: _ClassVar[int]
    exclude_purchased: bool
    exclude_seen_days: int
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    include_categories: _containers.RepeatedScalarFieldContainer[str]
    exclude_categories: _containers.RepeatedScalarFieldContainer[str]
    boosted_item_ids: _containers.RepeatedScalarFieldContainer[str]
    boost_share: float
    pins: _containers.RepeatedCompositeFieldContainer[Pin]
    max_per_category: int
    distinct_titles: bool
    def __init__(self, exclude_purchased: _Optional[bool] = ..., exclude_seen_days: _Optional[int] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ..., include_categories: _Optional[_Iterable[str]] = ..., exclude_categories: _Optional[_Iterable[str]] = ..., boosted_item_ids: _Optional[_Iterable[str]] = ..., boost_share: _Optional[float] = ..., pins: _Optional[_Iterable[_Union[Pin, _Mapping]]] = ..., max_per_category: _Optional[int] = ..., distinct_titles: _Optional[bool] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("index", "id", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    id: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ShopperSegment(_message.Message):
    __slots__ = ("segment_id", "name", "size")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    segment_id: int
    name: str
    size: int
    def __init__(self, segment_id: _Optional[int] = ..., name: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...
