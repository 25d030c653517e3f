"""Adapter from the UCI Online Retail II file layout onto the project's events/items (EVAL.md cleaning)."""
from __future__ import annotations

import logging
from pathlib import Path

from core.domain import Event
from core.settings import PROJECT_ROOT
from shopdata import Shop
from shoptext.text import ItemText

logger = logging.getLogger(__name__)

DEFAULT_PATH = PROJECT_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_ii_dedup.csv.gz"
REQUIRED = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID"]


def load_clean(path: Path = DEFAULT_PATH):
    """Cleaned purchase rows: one per (customer, invoice, stock code), as EVAL.md defines."""
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (the Online Retail II export)")
    try:
        df = pd.read_csv(path, dtype={"Invoice": str, "StockCode": str, "Customer ID": str, "Description": str})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    df = df[df["Customer ID"].notna() & (df["Quantity"] > 0) & (df["Price"] > 0)]
    df = df[~df["Invoice"].str.startswith("C") & df["StockCode"].str.match(r"^\d")]
    parsed = pd.to_datetime(df["InvoiceDate"], errors="coerce")
    if parsed.isna().any():
        row = parsed.index[parsed.isna()][0]
        raise ValueError(f"{path}: row {row + 2}: unparseable InvoiceDate {df['InvoiceDate'][row]!r}")
    df["InvoiceDate"] = parsed
    df["Customer ID"] = df["Customer ID"].str.replace(r"\.0$", "", regex=True)
    return df.drop_duplicates(["Customer ID", "Invoice", "StockCode"])


def to_interactions(df):
    """The cleaned file in the documented interaction format: (items, events) frames."""
    import pandas as pd

    events = pd.DataFrame(
        {
            "event_id": df["Invoice"] + "-" + df["StockCode"],
            "user_id": "C" + df["Customer ID"],
            "item_id": df["StockCode"],
            "event_type": "purchase",
            "timestamp": df["InvoiceDate"],
            "basket_id": df["Invoice"],
            "quantity": df["Quantity"],
        }
    ).reset_index(drop=True)
    grouped = df.groupby("StockCode", sort=False)
    titles = grouped["Description"].agg(lambda s: s.mode().iat[0] if not s.mode().empty else "").fillna("")
    items = pd.DataFrame({"item_id": titles.index, "title": titles.str.strip().str.title().to_numpy(), "description": "",
                          "category": "", "price": grouped["Price"].median().to_numpy()})
    items.loc[items["title"] == "", "title"] = "Item " + items["item_id"]
    return items, events


def load_interactions(path: Path = DEFAULT_PATH):
    """(items, events) of the whole cleaned file, EVAL.md's rule applied."""
    return to_interactions(load_clean(path))


def demo_slice(path: Path = DEFAULT_PATH, start: str = "2011-09-01", end: str = "2011-12-01", n_users: int = 60, max_items: int = 600) -> Shop:
    """A small real shop for the demo: the most active customers of a quarter, their purchases, and
    the items they bought (title = the product description)."""
    import pandas as pd

    df = load_clean(path)
    window = df[(df["InvoiceDate"] >= start) & (df["InvoiceDate"] < end)]
    top_users = window["Customer ID"].value_counts().index[n_users // 3 : n_users // 3 + n_users]  # skip the wholesalers at the top
    window = window[window["Customer ID"].isin(top_users)]
    top_items = window["StockCode"].value_counts().index[:max_items]
    window = window[window["StockCode"].isin(top_items)].rename(columns={"Customer ID": "customer"})
    prices = window.groupby("StockCode")["Price"].median()
    titles = window.groupby("StockCode")["Description"].agg(lambda s: s.mode().iat[0] if not s.mode().empty else "")
    items = {code: ItemText(str(titles[code]).strip().title(), "", "", float(prices[code])) for code in top_items if str(titles[code]).strip()}
    events = [
        Event(f"{r.Invoice}-{r.StockCode}", f"C{r.customer}", r.StockCode, "purchase", pd.Timestamp(r.InvoiceDate).tz_localize("UTC").timestamp())
        for r in window.itertuples() if r.StockCode in items
    ]
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    logger.info("online retail slice: %d users, %d items, %d purchases", len(top_users), len(items), len(events))
    return Shop("online_retail_ii", items, events)


def shop_slice(path: Path = DEFAULT_PATH, start: str = "2011-06-01", end: str = "2011-12-10", n_users: int = 3000, seed: int = 0) -> Shop:
    """A shop as a storefront sees it (the load benchmark's shop-like workload): the whole catalogue
    (every stock code of the file with a description), `n_users` customers drawn at random from those
    who bought in the window (all of them if fewer), and their purchases in the window."""
    import pandas as pd

    df = load_clean(path)
    titles = df.groupby("StockCode")["Description"].agg(lambda s: s.mode().iat[0] if not s.mode().empty else "")
    prices = df.groupby("StockCode")["Price"].median()
    items = {code: ItemText(str(title).strip().title(), "", "", float(prices[code])) for code, title in titles.items() if str(title).strip()}
    window = df[(df["InvoiceDate"] >= start) & (df["InvoiceDate"] < end) & df["StockCode"].isin(items)]
    customers = sorted(window["Customer ID"].unique())
    chosen = set(pd.Series(customers).sample(n=min(n_users, len(customers)), random_state=seed)) if customers else set()
    window = window[window["Customer ID"].isin(chosen)].rename(columns={"Customer ID": "customer"})
    events = [Event(f"{r.Invoice}-{r.StockCode}", f"C{r.customer}", r.StockCode, "purchase", pd.Timestamp(r.InvoiceDate).tz_localize("UTC").timestamp())
              for r in window.itertuples()]
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    logger.info("online retail shop: %d customers, %d items, %d purchases", len(chosen), len(items), len(events))
    return Shop("online_retail_ii (shop-like)", items, events)
