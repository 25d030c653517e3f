"""`python -m rankers.triton_configs`: rewrite triton_models/<model>/config.pbtxt of every registered
ranker (each ranker describes its model; core.triton_config builds and writes the protobuf)."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.triton_config import write_config
from rankers import get_ranker, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / "triton_models")
    parser.add_argument("--kind", default="KIND_CPU", choices=["KIND_CPU", "KIND_GPU"])
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    for name in names():
        ranker = get_ranker(name)
        out = args.root / ranker.model_name / "config.pbtxt"
        write_config(out, ranker.triton_config(args.kind, args.instances))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
