"""The benchmarks' metrics are the production ones (rankers.metrics): one implementation."""
from rankers.metrics import auc, hit_recall_ndcg, list_ndcg

__all__ = ["auc", "hit_recall_ndcg", "list_ndcg"]
