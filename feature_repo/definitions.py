"""Feast feature definitions: shoppers, products and the features the click model reads."""
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource
from feast.types import Array, Float64, Int64, String

# Pushes write to the online store only: the event log (services/eventlog.py) is the system of
# record and the online features are rebuilt from it. The batch sources are the schema-only parquet
# files in data/ (Feast wants a batch source behind every push source).

# A shopper, identified by the storefront's user id.
user = Entity(name="user", join_keys=["user_id"], description="A shopper")

# A catalogue product, identified by the storefront's item id.
item = Entity(name="item", join_keys=["item_id"], description="A catalogue product")

# Offline home of catalogue rows pushed by the feedback service.
item_batch_source = FileSource(name="item_batch", path="data/items.parquet", timestamp_field="updated_at")

# Catalogue upserts arrive here from the feedback service.
item_push = PushSource(name="item_push", batch_source=item_batch_source)

# Offline home of user history rows.
user_history_batch_source = FileSource(name="user_history_batch", path="data/user_history.parquet", timestamp_field="event_time")

# Every accepted event batch pushes the refreshed history of its shoppers here.
user_history_push = PushSource(name="user_history_push", batch_source=user_history_batch_source)

# Product text and attributes the model reads (see clickmodel.text.item_text).
item_text = FeatureView(
    name="item_text",
    entities=[item],
    ttl=timedelta(days=0),
    schema=[
        Field(name="title", dtype=String),
        Field(name="description", dtype=String),
        Field(name="category", dtype=String),
        Field(name="price", dtype=Float64),
    ],
    source=item_push,
    online=True,
)

# A shopper's recent interest events (most recent first) and activity counts.
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
    ],
    source=user_history_push,
    online=True,
)
