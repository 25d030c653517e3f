"""Feast feature definitions: shoppers, products, the shop, model versions, and the features the
ranking path reads. Rank and Recommend read only these (and Triton); the event log is the system of
record they are derived from, never queried per request."""
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Float64, Int64, String

# Pushes write to the online store only: the online features are rebuilt from the event log or from a
# model version's folder. The batch sources are schema-only parquet files in data/ (Feast wants a
# batch source behind every push source).

# A shopper, identified by the storefront's user id.
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="A shopper")

# A catalogue product, identified by the storefront's item id.
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="A catalogue product")

# The whole shop (one row, shop_id "shop"): its clock and what sells now.
shop = Entity(name="shop", join_keys=["shop_id"], value_type=ValueType.STRING, description="The shop as a whole")

# A published model version, "<triton model>:<version>": per-version features switch with the version.
model_version = Entity(name="model_version", join_keys=["model_version"], value_type=ValueType.STRING,
                       description="A published model version")

# Offline home of catalogue rows pushed by the feedback service.
item_batch_source = FileSource(name="item_batch", path="data/items.parquet", timestamp_field="updated_at")

# Catalogue upserts arrive here from the feedback service.
item_push = PushSource(name="item_push", batch_source=item_batch_source)

# Offline home of user history rows.
user_history_batch_source = FileSource(name="user_history_batch", path="data/user_history.parquet", timestamp_field="event_time")

# Every accepted event batch pushes the refreshed history of its shoppers here.
user_history_push = PushSource(name="user_history_push", batch_source=user_history_batch_source)

# Offline home of item popularity rows.
item_popularity_batch_source = FileSource(name="item_popularity_batch", path="data/item_popularity.parquet",
                                          timestamp_field="event_time")

# Popularity of the batch's items (every batch) and of every item (periodically) arrives here.
item_popularity_push = PushSource(name="item_popularity_push", batch_source=item_popularity_batch_source)

# Offline home of the shop row.
shop_batch_source = FileSource(name="shop_batch", path="data/shop_activity.parquet", timestamp_field="event_time")

# The shop's clock and popular items arrive here from the feedback service.
shop_push = PushSource(name="shop_push", batch_source=shop_batch_source)

# Offline home of the catalogue stamp.
catalogue_stamp_batch_source = FileSource(name="catalogue_stamp_batch", path="data/catalogue_stamp.parquet", timestamp_field="event_time")

# Every push of item rows (upserts, stock changes, deletes) stamps the catalogue here after the rows.
catalogue_stamp_push = PushSource(name="catalogue_stamp_push", batch_source=catalogue_stamp_batch_source)

# Offline home of per-version co-purchase rows.
co_purchase_batch_source = FileSource(name="co_purchase_batch", path="data/co_purchase.parquet", timestamp_field="event_time")

# Each published version's co-purchase table arrives here from the worker that wrote it (or a rollback).
co_purchase_push = PushSource(name="co_purchase_push", batch_source=co_purchase_batch_source)

# Offline home of shopper-state rows.
shopper_state_batch_source = FileSource(name="shopper_state_batch", path="data/shopper_state.parquet", timestamp_field="event_time")

# The shopper-state writer (ranking/shopper_states.py) pushes each changed shopper's vectors here.
shopper_state_push = PushSource(name="shopper_state_push", batch_source=shopper_state_batch_source)

# Offline homes of the segmentation's rows.
user_segment_batch_source = FileSource(name="user_segment_batch", path="data/user_segment.parquet", timestamp_field="event_time")
shop_segments_batch_source = FileSource(name="shop_segments_batch", path="data/shop_segments.parquet", timestamp_field="event_time")

# The segmentation task (workers/segments.py) pushes each shopper's segment and the segment list here.
user_segment_push = PushSource(name="user_segment_push", batch_source=user_segment_batch_source)
shop_segments_push = PushSource(name="shop_segments_push", batch_source=shop_segments_batch_source)

# Product text and attributes the model reads (see shoptext.text.item_text), and whether it may be
# shown (core.domain.ItemStatus: 0 available, 1 out of stock, 2 deleted).
item_text = FeatureView(
    name="item_text",
    entities=[item],
    ttl=timedelta(days=0),
    schema=[
        Field(name="title", dtype=String),
        Field(name="description", dtype=String),
        Field(name="category", dtype=String),
        Field(name="price", dtype=Float64),
        Field(name="status", dtype=Int64),
    ],
    source=item_push,
    online=True,
)

# Interest events of the item (clicks, carts, purchases) in the 31 and 8 days before the shop's clock.
item_popularity = FeatureView(
    name="item_popularity",
    entities=[item],
    ttl=timedelta(days=0),
    schema=[Field(name="popularity_30d", dtype=Int64), Field(name="popularity_7d", dtype=Int64)],
    source=item_popularity_push,
    online=True,
)

# A shopper's recent interest events (most recent first), activity counts, and their interest events
# with times (newest first) from which the repeat / recency signals are computed, and the items they
# bought among those (newest first: Recommend's exclude_purchased).
user_history = FeatureView(
    name="user_history",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[
        Field(name="recent_item_ids", dtype=Array(String)),
        Field(name="recent_event_types", dtype=Array(String)),
        Field(name="event_count", dtype=Int64),
        Field(name="purchase_count", dtype=Int64),
        Field(name="last_event_ts", dtype=Float64),
        Field(name="interest_item_ids", dtype=Array(String)),
        Field(name="interest_timestamps", dtype=Array(Float64)),
        Field(name="purchased_item_ids", dtype=Array(String)),
    ],
    source=user_history_push,
    online=True,
)

# The shop's clock (its newest event time), its items by 30-day popularity, catalogue items that pad
# short candidate lists (a new shop has few popular items), and its trending items with their trend
# ratios (last-7-day interest against the 30-day rate; core.feature_sync.trending).
shop_activity = FeatureView(
    name="shop_activity",
    entities=[shop],
    ttl=timedelta(days=0),
    schema=[Field(name="clock", dtype=Float64), Field(name="popular_item_ids", dtype=Array(String)),
            Field(name="filler_item_ids", dtype=Array(String)), Field(name="trending_item_ids", dtype=Array(String)),
            Field(name="trending_scores", dtype=Array(Float64))],
    source=shop_push,
    online=True,
)

# When the catalogue's text or statuses last changed (a value that changes with every item push): the
# scoring service reads it with the shop row and re-reads the items it keeps only when it moved
# (core/feature_cache.py), instead of every item every few seconds.
catalogue_stamp = FeatureView(
    name="catalogue_stamp",
    entities=[shop],
    ttl=timedelta(days=0),
    schema=[Field(name="changed_at", dtype=Float64)],
    source=catalogue_stamp_push,
    online=True,
)

# An item's co-purchase neighbours and scores in one model version's table.
co_purchase = FeatureView(
    name="co_purchase",
    entities=[model_version, item],
    ttl=timedelta(days=0),
    schema=[Field(name="neighbour_ids", dtype=Array(String)), Field(name="neighbour_scores", dtype=Array(Float64))],
    source=co_purchase_push,
    online=True,
)

# A shopper's state: their vector for each serving version ("<triton model>:<version>" keys, vectors
# concatenated in that order), computed from their history when their events arrive, and the
# fingerprint of that history (rankers.fusion.shopper_state) so Rank can tell a current state from an
# older one. One row per shopper: forgetting them deletes it with their other rows.
shopper_state = FeatureView(
    name="shopper_state",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[Field(name="version_keys", dtype=Array(String)), Field(name="vectors", dtype=Array(Float32)),
            Field(name="fingerprint", dtype=String)],
    source=shopper_state_push,
    online=True,
)

ENTITIES = [user, item, shop, model_version]
# The shopper's segment from the latest clustering (core.portrait), and when it was computed.
user_segment = FeatureView(
    name="user_segment",
    entities=[user],
    ttl=timedelta(days=0),
    schema=[Field(name="segment_id", dtype=Int64), Field(name="segmented_at", dtype=Float64)],
    source=user_segment_push,
    online=True,
)

# The latest clustering's segments: ids, names (what each centre looks like) and sizes.
shop_segments = FeatureView(
    name="shop_segments",
    entities=[shop],
    ttl=timedelta(days=0),
    schema=[Field(name="segment_ids", dtype=Array(Int64)), Field(name="segment_names", dtype=Array(String)),
            Field(name="segment_sizes", dtype=Array(Int64)), Field(name="segmented_at", dtype=Float64)],
    source=shop_segments_push,
    online=True,
)

PUSH_SOURCES = [item_push, user_history_push, item_popularity_push, shop_push, catalogue_stamp_push, co_purchase_push, shopper_state_push,
                user_segment_push, shop_segments_push]
FEATURE_VIEWS = [item_text, item_popularity, user_history, shop_activity, catalogue_stamp, co_purchase, shopper_state, user_segment,
                 shop_segments]
