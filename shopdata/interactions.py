"""The documented interaction format any shop's export can be replayed from:

- `items.csv`:  item_id,title[,description,category,price]   (only item_id and title are required)
- `events.csv`: event_id,user_id,item_id,event_type,timestamp[,basket_id,quantity]
  `timestamp` is ISO 8601 (a time zone is optional; none means UTC); `event_type` is impression,
  click, add_to_cart or purchase; a missing `basket_id` means one basket per user and timestamp.

Errors name the file and the row (1-based, counting the header as row 1).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoptext.text import EVENT_TYPES

ITEM_COLUMNS = ["item_id", "title", "description", "category", "price"]
ITEM_REQUIRED = ["item_id", "title"]
EVENT_COLUMNS = ["event_id", "user_id", "item_id", "event_type", "timestamp", "basket_id", "quantity"]
EVENT_REQUIRED = ["event_id", "user_id", "item_id", "event_type", "timestamp"]


class DatasetError(ValueError):
    """A file that does not match the documented format."""


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: empty file (expected a header with {', '.join(required)})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}")
    if df.empty:
        raise DatasetError(f"{path}: no rows after the header")
    for column in required:
        blank = df.index[df[column].str.strip() == ""]
        if len(blank):
            raise DatasetError(f"{path}: row {blank[0] + 2}: empty {column}")
    return df


def read_items(path: Path) -> pd.DataFrame:
    df = _read(path, ITEM_REQUIRED)
    for column in ("description", "category"):
        if column not in df:
            df[column] = ""
    price = pd.to_numeric(df.get("price", pd.Series("0", index=df.index)).replace("", "0"), errors="coerce")
    if price.isna().any():
        row = int(price.index[price.isna()][0])
        raise DatasetError(f"{path}: row {row + 2}: price {df['price'][row]!r} is not a number")
    df["price"] = price.astype(float)
    dup = df.index[df["item_id"].duplicated()]
    if len(dup):
        raise DatasetError(f"{path}: row {dup[0] + 2}: duplicate item_id {df['item_id'][dup[0]]!r}")
    return df[ITEM_COLUMNS]


def read_events(path: Path) -> pd.DataFrame:
    df = _read(path, EVENT_REQUIRED)
    ts = pd.to_datetime(df["timestamp"], errors="coerce", utc=True, format="ISO8601")
    if ts.isna().any():
        row = int(ts.index[ts.isna()][0])
        raise DatasetError(f"{path}: row {row + 2}: unparseable timestamp {df['timestamp'][row]!r} (ISO 8601 expected)")
    bad_type = df.index[~df["event_type"].isin(EVENT_TYPES)]
    if len(bad_type):
        row = int(bad_type[0])
        raise DatasetError(f"{path}: row {row + 2}: event_type {df['event_type'][row]!r} is not one of {', '.join(EVENT_TYPES)}")
    df["timestamp"] = ts.dt.tz_localize(None)
    if "basket_id" not in df or (df["basket_id"] == "").all():
        df["basket_id"] = df["user_id"] + "@" + df["timestamp"].astype(str)
    else:
        empty = df["basket_id"] == ""
        df.loc[empty, "basket_id"] = df.loc[empty, "user_id"] + "@" + df.loc[empty, "timestamp"].astype(str)
    quantity = pd.to_numeric(df.get("quantity", pd.Series("1", index=df.index)).replace("", "1"), errors="coerce")
    if quantity.isna().any():
        row = int(quantity.index[quantity.isna()][0])
        raise DatasetError(f"{path}: row {row + 2}: quantity {df['quantity'][row]!r} is not a number")
    df["quantity"] = quantity
    return df[EVENT_COLUMNS]


def read_dataset(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, events) from a folder holding items.csv and events.csv."""
    items = read_items(directory / "items.csv")
    events = read_events(directory / "events.csv")
    unknown = events.index[~events["item_id"].isin(set(items["item_id"]))]
    if len(unknown):
        row = int(unknown[0])
        raise DatasetError(f"{directory / 'events.csv'}: row {row + 2}: item_id {events['item_id'][row]!r} is not in items.csv")
    return items, events


def write_dataset(directory: Path, items: pd.DataFrame, events: pd.DataFrame) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    items[ITEM_COLUMNS].to_csv(directory / "items.csv", index=False)
    out = events.copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    out[EVENT_COLUMNS].to_csv(directory / "events.csv", index=False)
