"""Online experiments: arms of model versions with traffic shares, sticky assignment, attribution of
what shoppers did to the served list that preceded it, per-arm metrics with always-valid tests, and
the decisions (promote, keep, roll back) that canaries take by themselves.

definition.py (what an experiment is, assignment), attribution.py (events -> served lists),
metrics.py and stats.py (per-arm estimates, the sequential test), control.py (starting and ending an
experiment in the model repository and Triton), report.py (Markdown and PNG)."""
