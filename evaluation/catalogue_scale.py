"""`make bench-catalogue`: what the catalogue's size costs the serving path, at 5k, 50k and 500k items.

For each size, in a fresh data directory and a process of its own (memory is that process's growth):
- catalogue upsert into the event log and the Feast online store (what UpsertItems does), seconds;
- FeatureSync.refresh_all with a month of purchases over the catalogue (popularity, shop row);
- Feast reads of 100 random items through the scoring service's cache: cold and warm p50;
- the Triton model (triton_models/fusion_click/model.py, run in-process by devtools.python_backend) loading
  a version whose catalogue table has every item: load seconds and resident memory added, then a
  Rank-sized request (one shopper, 100 candidates from the table) p50;
- the text tower's rate on this machine, which is what publishing a version of a new catalogue costs
  (the worker embeds each item once; later versions reuse the parent's table): measured on 512 texts
  and multiplied out, reported as such.

Item vectors in the table are random (the encoder's output has the same shape; what is measured is
storage, lookup and load). Writes bench/results/catalogue-scale.{json,md}.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import PROJECT_ROOT
from evaluation.load_bench import rss_mb
from evaluation.results import results_dir

RESULTS = results_dir()
MODEL_PY = PROJECT_ROOT / "triton_models" / "fusion_click" / "model.py"
WORDS = ("red mug owl lantern floral teapot vintage cake stand paper chain kit heart wicker doormat glass "
         "candle holder retro spot jumbo bag lunch box union jack bunting pink polka set of 6 wooden star").split()


def catalogue(n: int, seed: int = 0) -> dict[str, Any]:
    from core.domain import ItemText

    rng = random.Random(seed)
    return {f"I{k:07d}": ItemText(" ".join(rng.choices(WORDS, k=rng.randint(3, 7))) + f" {k}", "", rng.choice(["home", "kitchen", "garden", "party"]),
                                  round(rng.uniform(0.5, 40), 2)) for k in range(n)}


def timed(fn) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one_size(n: int, root: Path) -> dict[str, Any]:
    import torch

    from core.domain import Event
    from core.feature_cache import CachedFeatures
    from core.feature_sync import FeatureSync
    from core.features import FeatureClient, apply
    from core.settings import Settings
    from core.store import EventLog
    from devtools.python_backend import load_model
    from rankers.fusion import model_inputs
    from shoptext.text import ITEM_TEXT_LENGTH, item_text
    from shoptext.tokenizer import encode_catalogue_texts

    settings = Settings(data_dir=root / "data", model_repository=root / "repo")
    apply(settings)
    log = EventLog.open(settings.eventlog)
    features = FeatureClient(settings)
    items = catalogue(n)
    ids = list(items)
    out: dict[str, Any] = {"items": n}
    base = rss_mb([_pid()])
    _, out["upsert_event_log_s"] = timed(lambda: log.catalogue.upsert(items))
    _, out["upsert_feast_s"] = timed(lambda: features.push_items(items))
    rng = random.Random(1)
    day, now = 86400.0, 1_700_000_000.0
    events = [Event(f"e{k}", f"U{rng.randrange(2000)}", rng.choice(ids), "purchase", now - rng.uniform(0, 30 * day)) for k in range(20_000)]
    log.events.append_batches([events])
    _, out["feature_sync_refresh_all_s"] = timed(lambda: FeatureSync(log, features).refresh_all())
    cache = CachedFeatures(features, ttl_s=3600)
    cold, warm = [], []
    for _ in range(20):
        batch = rng.sample(ids, 100)
        cold.append(timed(lambda b=batch: cache.get_items(b, popularity=True))[1])
        warm.append(timed(lambda b=batch: cache.get_items(b, popularity=True))[1])
    out["feast_100_items_cold_p50_ms"] = 1000 * statistics.median(cold)
    out["feast_100_items_warm_p50_ms"] = 1000 * statistics.median(warm)
    out["rss_after_stores_mb"] = rss_mb([_pid()]) - base  # the catalogue and the stores' clients in this process

    # the Triton model over a table of every item
    texts = [item_text(items[i]) for i in ids]
    (tokens, out["tokenise_catalogue_s"]) = timed(lambda: [encode_catalogue_texts(texts[k:k + 4096], ITEM_TEXT_LENGTH) for k in range(0, n, 4096)])
    keys = [row[mask.astype(bool)].tobytes() for chunk in tokens for row, mask in zip(chunk["input_ids"], chunk["attention_mask"])]
    folder = root / "repo" / "fusion_click" / "1"
    folder.mkdir(parents=True)
    _write_model(folder)
    torch.save({"keys": keys, "vectors": torch.from_numpy(np.random.default_rng(0).standard_normal((n, 384), dtype=np.float32))},
               folder / "item_embeddings.pt")
    out["table_file_mb"] = (folder / "item_embeddings.pt").stat().st_size / 2**20
    del tokens, keys
    gc.collect()
    before = rss_mb([_pid()])
    served, out["triton_model_load_s"] = timed(lambda: load_model(MODEL_PY, folder))
    out["triton_model_rss_mb"] = rss_mb([_pid()]) - before
    from rankers.fusion.signals import SIGNAL_COUNT

    requests = []
    for k in range(30):
        chosen = rng.sample(ids, 100)
        shopper = np.random.default_rng(k).normal(size=384).astype(np.float32)  # a stored shopper state
        arrays = model_inputs(shopper / np.linalg.norm(shopper), [item_text(items[i]) for i in chosen], np.zeros((100, SIGNAL_COUNT), np.float32))
        requests.append({name: torch.from_numpy(v) for name, v in arrays.items()})
    for r in requests:
        served.execute([r])
    out["items_encoded_at_request_time"] = len(served.extra)  # 0: every candidate came from the table
    latencies = [timed(lambda r=r: served.execute([r]))[1] for r in requests * 3]
    out["triton_model_rank_100_p50_ms"] = 1000 * statistics.median(latencies)
    served = None  # the table goes before the next size is built
    gc.collect()
    return out


def _write_model(folder: Path) -> None:
    import shutil

    from rankers.fusion.network import FusionRanker, build_text_encoder, save_fusion

    save_fusion(build_text_encoder(), FusionRanker(), folder / "model.pt")
    shutil.copy2(MODEL_PY, folder / "model.py")


def encoder_rate() -> float:
    """Item texts per second through the text tower on this machine (batch 64, as the worker embeds)."""
    from rankers.fusion.network import build_text_encoder, embed_texts
    from shoptext.text import ITEM_TEXT_LENGTH, item_text

    encoder = build_text_encoder()
    texts = [item_text(t) for t in catalogue(512, seed=3).values()]
    embed_texts(encoder, texts[:64], ITEM_TEXT_LENGTH)
    _, seconds = timed(lambda: embed_texts(encoder, texts, ITEM_TEXT_LENGTH))
    return len(texts) / seconds


def _pid() -> int:
    import os

    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,50000,500000")
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # a size, in a process of its own
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory(prefix=f"catalogue-{args.one}-") as tmp:
            print("RESULT " + json.dumps(one_size(args.one, Path(tmp))), flush=True)
        return
    import subprocess
    import sys

    results: dict[str, Any] = {"sizes": []}
    print("text tower rate ...", flush=True)
    results["encoder_items_per_s"] = encoder_rate()
    for n in [int(x) for x in args.sizes.split(",")]:
        print(f"{n} items (own process) ...", flush=True)
        run = subprocess.run([sys.executable, "-m", "evaluation.catalogue_scale", "--one", str(n)], capture_output=True, text=True,
                             cwd=PROJECT_ROOT, check=True)
        line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
        results["sizes"].append(json.loads(line[len("RESULT "):]))
        print(json.dumps(results["sizes"][-1]), flush=True)
    write(results)


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "catalogue-scale.json").write_text(json.dumps(results, indent=1))
    rate = results["encoder_items_per_s"]
    lines = ["# What the catalogue's size costs (`make bench-catalogue`)", "",
             "| items | upsert: event log s | upsert: Feast s | popularity refresh s | Feast 100 items cold / warm ms | "
             "stores' memory MB | table file MB | Triton model load s | Triton model memory MB | Rank 100 in model.py p50 ms | "
             "first publish: embedding the catalogue (at the measured rate) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["sizes"]:
        lines.append(f"| {r['items']:,} | {r['upsert_event_log_s']:.1f} | {r['upsert_feast_s']:.1f} | {r['feature_sync_refresh_all_s']:.2f} | "
                     f"{r['feast_100_items_cold_p50_ms']:.1f} / {r['feast_100_items_warm_p50_ms']:.2f} | {r['rss_after_stores_mb']:.0f} | "
                     f"{r['table_file_mb']:.0f} | {r['triton_model_load_s']:.1f} | {r['triton_model_rss_mb']:.0f} | "
                     f"{r['triton_model_rank_100_p50_ms']:.2f} | {r['items'] / rate / 60:.0f} min |")
    lines += ["", f"The text tower embeds {rate:.0f} item texts/s here (measured on 512); the last column multiplies that out "
              "(a later version reuses its parent's table and embeds only new or changed texts)."]
    (RESULTS / "catalogue-scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
