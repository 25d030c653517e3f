import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shoprank.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActivityLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_LEVEL_UNSPECIFIED: _ClassVar[ActivityLevel]
    ACTIVITY_LEVEL_NEW: _ClassVar[ActivityLevel]
    ACTIVITY_LEVEL_DORMANT: _ClassVar[ActivityLevel]
    ACTIVITY_LEVEL_OCCASIONAL: _ClassVar[ActivityLevel]
    ACTIVITY_LEVEL_REGULAR: _ClassVar[ActivityLevel]
    ACTIVITY_LEVEL_FREQUENT: _ClassVar[ActivityLevel]
ACTIVITY_LEVEL_UNSPECIFIED: ActivityLevel
ACTIVITY_LEVEL_NEW: ActivityLevel
ACTIVITY_LEVEL_DORMANT: ActivityLevel
ACTIVITY_LEVEL_OCCASIONAL: ActivityLevel
ACTIVITY_LEVEL_REGULAR: ActivityLevel
ACTIVITY_LEVEL_FREQUENT: ActivityLevel

class GetProfileRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class RecentItem(_message.Message):
    __slots__ = ("item_id", "title", "event_type")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    event_type: _common_pb2.EventType
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., event_type: _Optional[_Union[_common_pb2.EventType, str]] = ...) -> None: ...

class CategoryShare(_message.Message):
    __slots__ = ("category", "share")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    category: str
    share: float
    def __init__(self, category: _Optional[str] = ..., share: _Optional[float] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("user_id", "recent_items", "event_count", "purchase_count", "last_event_time", "top_categories", "short_term", "long_term", "drift", "activity", "segment")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RECENT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    TOP_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    SHORT_TERM_FIELD_NUMBER: _ClassVar[int]
    LONG_TERM_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    recent_items: _containers.RepeatedCompositeFieldContainer[RecentItem]
    event_count: int
    purchase_count: int
    last_event_time: _timestamp_pb2.Timestamp
    top_categories: _containers.RepeatedCompositeFieldContainer[CategoryShare]
    short_term: Interests
    long_term: Interests
    drift: float
    activity: ActivityLevel
    segment: _common_pb2.ShopperSegment
    def __init__(self, user_id: _Optional[str] = ..., recent_items: _Optional[_Iterable[_Union[RecentItem, _Mapping]]] = ..., event_count: _Optional[int] = ..., purchase_count: _Optional[int] = ..., last_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top_categories: _Optional[_Iterable[_Union[CategoryShare, _Mapping]]] = ..., short_term: _Optional[_Union[Interests, _Mapping]] = ..., long_term: _Optional[_Union[Interests, _Mapping]] = ..., drift: _Optional[float] = ..., activity: _Optional[_Union[ActivityLevel, str]] = ..., segment: _Optional[_Union[_common_pb2.ShopperSegment, _Mapping]] = ...) -> None: ...

class Interests(_message.Message):
    __slots__ = ("events", "categories", "median_price", "price_band", "representative_items")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_BAND_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    events: int
    categories: _containers.RepeatedCompositeFieldContainer[CategoryShare]
    median_price: float
    price_band: str
    representative_items: _containers.RepeatedCompositeFieldContainer[RecentItem]
    def __init__(self, events: _Optional[int] = ..., categories: _Optional[_Iterable[_Union[CategoryShare, _Mapping]]] = ..., median_price: _Optional[float] = ..., price_band: _Optional[str] = ..., representative_items: _Optional[_Iterable[_Union[RecentItem, _Mapping]]] = ...) -> None: ...
