"""The benchmarks' metrics are the production ones (clickmodel.metrics): one implementation."""
from clickmodel.metrics import auc, hit_recall_ndcg, list_ndcg

__all__ = ["auc", "hit_recall_ndcg", "list_ndcg"]
