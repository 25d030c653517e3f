"""A storefront's day with shoprank_client, against a running suite (`make up` prints the addresses):

    python -m shoprank_client.example --ca var/secrets/ca.pem --key "$(cat var/secrets/storefront.key)" --user C15444
"""
from __future__ import annotations

import argparse
import time
import uuid

from shoprank_client import Event, Rules, ShopRankClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feedback", default="127.0.0.1:50051")
    parser.add_argument("--scoring", default="127.0.0.1:50052")
    parser.add_argument("--profile", default="127.0.0.1:50053")
    parser.add_argument("--ca", default="var/secrets/ca.pem", help="the deployment's CA (PEM)")
    parser.add_argument("--plaintext", action="store_true", help="connect without TLS (a suite run with RECSYS_TLS=false)")
    parser.add_argument("--key", required=True, help="the storefront's API key")
    parser.add_argument("--user", default="C15444")
    args = parser.parse_args()
    with ShopRankClient(args.feedback, args.scoring, args.profile, ca=None if args.plaintext else args.ca,
                        api_key=args.key, timeout_s=5.0, plaintext=args.plaintext) as shop:
        page = shop.recommend(args.user, k=5, rules=Rules(exclude_purchased=True, distinct_titles=True), explain=True)
        for item in page.items:
            why = "; ".join(f"{r.kind} {r.attribution:+.3f}: {r.text}" for r in item.reasons[:2])
            print(f"{item.rank}. {item.item_id} p={item.probability:.3f} ({why})")
        if page.items:
            clicked = page.items[0].item_id
            result = shop.record_events([Event(f"example-{uuid.uuid4().hex}", args.user, clicked, "click", time.time(), page.request_id)])
            print(f"click recorded: {result.accepted} new, {result.duplicates} duplicate")
            print("similar:", [i.item_id for i in shop.similar_items(clicked, k=5).items])
        profile = shop.get_profile(args.user)
        print(f"activity {profile.activity}, drift {profile.drift:.2f}, segment {profile.segment.name or '-'}")


if __name__ == "__main__":
    main()
