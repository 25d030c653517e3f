"""Recommendation quality measured as ../shared/EVAL.md defines: monthly test-then-train."""
