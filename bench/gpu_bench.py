"""The served fusion model on one device: Triton vs bare TorchScript, in candidates per second.

Meant for a GPU machine reached with nothing but this repository and a few wheels (see bench/gpu_run.sh
and ../shared/GPU.md); it runs the same way on CPU (`--device cpu`), which is how it is checked here.
Weights need not travel: the text tower is MiniLM-L6's architecture (hidden 384, 6 layers, 12 heads)
with random weights unless `--pretrained`, which costs the same compute.

Arms, all on the same requests (one shopper's stored vector and C candidates, every item in the
published catalogue table, as in steady serving):
- bare TorchScript: the version's `model.pt` alone: gather C rows of the item table, the fusion MLP;
- bare model.py: triton_models/fusion_click/model.py's execute() in this process (devtools.python_backend),
  i.e. the served code without Triton's transport;
- Triton: tritonserver with that model.py (KIND_GPU instances from the ranker's config builder,
  RECSYS_INFERENCE_DTYPE), a gRPC client with `--clients` threads;
- shopper states: the state writer's request (256 shoppers x 50 history items from the table), through
  bare model.py and Triton, in shoppers per second (the request shape batching suits best);
- encoder: the text tower's sequences/s at batch 256 (what a cache miss costs: new items).

Prints a table last and writes gpu-bench-<device>.json under `--out`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "gen"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

MODEL_PY = ROOT / "triton_models" / "fusion_click" / "model.py"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_version(folder: Path, device: str, pretrained: bool, items: int, seed: int = 0) -> dict:
    """model.pt, model.py and item_embeddings.pt (random item token ids) in `folder`; returns the item rows."""
    from rankers.fusion.network import FusionRanker, TextEncoder, save_fusion

    torch.manual_seed(seed)
    if pretrained:
        from rankers.fusion.network import build_text_encoder

        encoder = build_text_encoder()
    else:
        from transformers import BertConfig, BertModel

        config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
        encoder = TextEncoder(BertModel(config, add_pooling_layer=False)).eval()
    folder.mkdir(parents=True)
    save_fusion(encoder, FusionRanker(), folder / "model.pt")
    shutil.copy2(MODEL_PY, folder / "model.py")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 25, size=items)
    rows = [np.concatenate([[101], rng.integers(1000, 30000, size=n - 2), [102]]).astype(np.int64) for n in lengths]
    scripted = torch.jit.load(str(folder / "model.pt"), map_location=device).eval()
    vectors = []
    with torch.inference_mode():
        for i in range(0, items, 512):
            batch = rows[i : i + 512]
            width = max(len(r) for r in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for k, r in enumerate(batch):
                ids[k, : len(r)] = torch.from_numpy(r)
                mask[k, : len(r)] = 1
            vectors.append(scripted.encode(ids.to(device), mask.to(device)).float().cpu())
    torch.save({"keys": [r.tobytes() for r in rows], "vectors": torch.cat(vectors)}, folder / "item_embeddings.pt")
    return {"rows": rows}


def padded(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for k, r in enumerate(rows):
        ids[k, : len(r)] = r
        mask[k, : len(r)] = 1
    return ids, mask


def make_requests(rows: list[np.ndarray], candidates: int, count: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    from rankers.fusion.signals import SIGNAL_COUNT

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        ids, mask = padded([rows[i] for i in rng.choice(len(rows), size=candidates, replace=False)])
        user = rng.normal(size=(1, 384)).astype(np.float32)
        out.append({"user_vector": user / np.linalg.norm(user), "item_input_ids": ids, "item_attention_mask": mask,
                    "signals": rng.random((candidates, SIGNAL_COUNT), dtype=np.float32)})
    return out


def make_state_requests(rows: list[np.ndarray], shoppers: int, history: int, count: int, seed: int = 2) -> list[dict[str, np.ndarray]]:
    """The state writer's requests: `shoppers` histories of `history` items each (rankers.fusion.shopper_state's shape)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        picked = rng.choice(len(rows), size=(shoppers, history))
        distinct, index = np.unique(picked, return_inverse=True)
        ids, mask = padded([rows[i] for i in distinct])
        out.append({"history_input_ids": ids, "history_attention_mask": mask, "history_index": index.reshape(shoppers, history).astype(np.int64),
                    "history_weights": rng.random((shoppers, history), dtype=np.float32)})
    return out


def units(request: dict[str, np.ndarray]) -> int:
    """Candidates of a ranking request, shoppers of a state request."""
    return request["signals"].shape[0] if "signals" in request else request["history_index"].shape[0]


def timed(fn, seconds: float) -> tuple[int, float]:
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(calls)
        calls += 1
    return calls, time.perf_counter() - start


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_torchscript(folder: Path, device: str, dtype: torch.dtype, candidates: int, seconds: float) -> float:
    from rankers.fusion.signals import SIGNAL_COUNT

    model = torch.jit.load(str(folder / "model.pt"), map_location=device).eval().to(dtype)
    table = torch.load(folder / "item_embeddings.pt")["vectors"].to(device, dtype)
    user = table[:1].clone()
    signals = torch.rand(candidates, SIGNAL_COUNT, device=device, dtype=dtype)
    index = torch.randint(0, table.shape[0], (64, candidates), device=device)
    with torch.inference_mode():
        def call(k: int) -> None:
            model(user.expand(candidates, -1), table[index[k % 64]], signals).float().cpu()
        timed(call, 1.0)
        sync(device)
        calls, wall = timed(call, seconds)
        sync(device)
    return calls * candidates / wall


def bare_model_py(folder: Path, device: str, requests: list[dict[str, np.ndarray]], seconds: float) -> float:
    from devtools.python_backend import load_model

    model = load_model(MODEL_PY, folder, "GPU" if device.startswith("cuda") else "CPU", int(device.split(":")[1]) if ":" in device else 0)
    tensors = [{k: torch.from_numpy(v) for k, v in r.items()} for r in requests]
    call = lambda k: model.execute([tensors[k % len(tensors)]])  # noqa: E731
    timed(call, 1.0)
    calls, wall = timed(call, seconds)
    return calls * units(requests[0]) / wall


def encoder_throughput(folder: Path, device: str, dtype: torch.dtype, seconds: float, batch: int = 256, length: int = 32) -> float:
    model = torch.jit.load(str(folder / "model.pt"), map_location=device).eval().to(dtype)
    ids = torch.randint(1000, 30000, (batch, length), device=device)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        timed(lambda k: model.encode(ids, mask), 1.0)
        sync(device)
        calls, wall = timed(lambda k: model.encode(ids, mask).float().cpu(), seconds)
        sync(device)
    return calls * batch / wall


def through_triton(repo: Path, requests: list[dict[str, np.ndarray]], clients: int, seconds: float, out: Path) -> dict:
    import tritonclient.grpc as grpcclient

    from devtools.triton_launcher import start

    server = start(repo, out / "tritonserver.log", models=("fusion_click",), timeout=300)
    try:
        latencies: list[float] = []
        lock, stop = threading.Lock(), threading.Event()
        per_request = units(requests[0])
        output = "probability" if "signals" in requests[0] else "shopper_vector"

        def client(c: int) -> None:
            conn = grpcclient.InferenceServerClient(server.grpc_url)
            k = c
            while not stop.is_set():
                inputs = []
                for name, array in requests[k % len(requests)].items():
                    t = grpcclient.InferInput(name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64")
                    t.set_data_from_numpy(array)
                    inputs.append(t)
                t0 = time.perf_counter()
                conn.infer("fusion_click", inputs, outputs=[grpcclient.InferRequestedOutput(output)])
                with lock:
                    latencies.append(time.perf_counter() - t0)
                k += clients
            conn.close()

        warm = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in warm:
            t.start()
        time.sleep(2.0)
        stop.set()
        for t in warm:
            t.join()
        latencies.clear()
        stop.clear()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        start_t = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start_t
        ordered = sorted(latencies)
        return {"candidates_per_s": len(latencies) * per_request / wall, "requests_per_s": len(latencies) / wall,
                "p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))]}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--candidates", default="100,500")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--pretrained", action="store_true")
    parser.add_argument("--state-shoppers", type=int, default=256, help="shoppers per shopper-state request")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "bench" / "results")))
    args = parser.parse_args()
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[args.dtype]
    if args.device == "cpu":
        dtype = torch.float32  # model.py serves float32 on CPU whatever RECSYS_INFERENCE_DTYPE says
        torch.set_num_threads(1)  # as each Triton CPU instance runs (model.py), so every arm is alike
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none"
    log(f"device {args.device} ({gpu}), {dtype}, {args.items} items, torch {torch.__version__}")
    from core.triton_config import parse_config, with_instances, write_config

    results: dict = {"device": args.device, "gpu": gpu, "dtype": str(dtype), "items": args.items, "clients": args.clients,
                     "instances": args.instances, "torch": torch.__version__, "arms": []}
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        repo = Path(tmp) / "repo"
        folder = repo / "fusion_click" / "1"
        log("building the version (TorchScript, catalogue table) ...")
        rows = build_version(folder, args.device, args.pretrained, args.items)["rows"]
        kind = "KIND_GPU" if args.device.startswith("cuda") else "KIND_CPU"
        # the committed config (the ranker's builder wrote it; CI checks it is current), on this device's instances
        committed = parse_config(ROOT / "triton_models" / "fusion_click" / "config.pbtxt")
        write_config(repo / "fusion_click" / "config.pbtxt", with_instances(committed, kind, args.instances))
        os.environ["RECSYS_INFERENCE_DTYPE"] = args.dtype
        log("encoder throughput ...")
        results["encoder_sequences_per_s"] = encoder_throughput(folder, args.device, dtype, args.seconds / 3)
        logs = args.out if os.environ.get("OUT") else Path(tmp)  # the device tool brings $OUT back; keep bench/results clean
        for c in [int(x) for x in args.candidates.split(",")]:
            requests = make_requests(rows, c, 64)
            log(f"{c} candidates: bare TorchScript ...")
            bare = bare_torchscript(folder, args.device, dtype, c, args.seconds / 3)
            log(f"{c} candidates: bare model.py ...")
            model_py = bare_model_py(folder, args.device, requests, args.seconds / 3)
            log(f"{c} candidates: Triton, {args.clients} clients ...")
            served = through_triton(repo, requests, args.clients, args.seconds, logs)
            results["arms"].append({"candidates": c, "bare_torchscript_candidates_per_s": bare,
                                    "bare_model_py_candidates_per_s": model_py, "triton": served})
        states = make_state_requests(rows, args.state_shoppers, 50, 16)
        log(f"shopper states, {args.state_shoppers} shoppers x 50 items per request: bare model.py ...")
        bare_states = bare_model_py(folder, args.device, states, args.seconds / 3)
        log(f"shopper states: Triton, {args.clients} clients ...")
        served_states = through_triton(repo, states, args.clients, args.seconds, logs)
        results["states"] = {"shoppers_per_request": args.state_shoppers, "history": 50, "bare_model_py_shoppers_per_s": bare_states,
                             "triton_shoppers_per_s": served_states["candidates_per_s"], "triton_p50_ms": served_states["p50_ms"],
                             "triton_p99_ms": served_states["p99_ms"]}
    (args.out / f"gpu-bench-{args.device.split(':')[0]}.json").write_text(json.dumps(results, indent=1))
    lines = table(results)
    (args.out / f"gpu-bench-{args.device.split(':')[0]}.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


def table(results: dict) -> list[str]:
    gpu = results["gpu"]
    lines = [f"fusion_click on {gpu if gpu != 'none' else 'CPU'} ({results['dtype']}, {results['items']} items, {results['instances']} instances, "
             f"{results['clients']} client threads); encoder {results['encoder_sequences_per_s']:,.0f} sequences/s at batch 256 x 32", "",
             "| candidates | bare TorchScript cand/s | bare model.py cand/s | Triton cand/s | Triton req/s | p50 ms | p99 ms | Triton / model.py | Triton / TorchScript |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm in results["arms"]:
        t = arm["triton"]
        lines.append(f"| {arm['candidates']} | {arm['bare_torchscript_candidates_per_s']:,.0f} | {arm['bare_model_py_candidates_per_s']:,.0f} | "
                     f"{t['candidates_per_s']:,.0f} | {t['requests_per_s']:,.0f} | {t['p50_ms']:.1f} | {t['p99_ms']:.1f} | "
                     f"{t['candidates_per_s'] / arm['bare_model_py_candidates_per_s']:.0%} | {t['candidates_per_s'] / arm['bare_torchscript_candidates_per_s']:.0%} |")
    if st := results.get("states"):
        lines += ["", f"Shopper states ({st['shoppers_per_request']} shoppers x {st['history']} history items per request): bare model.py "
                  f"{st['bare_model_py_shoppers_per_s']:,.0f} shoppers/s; Triton {st['triton_shoppers_per_s']:,.0f} shoppers/s "
                  f"(p50 {st['triton_p50_ms']:.1f} ms, p99 {st['triton_p99_ms']:.1f} ms per request)"]
    return lines


if __name__ == "__main__":
    main()
