"""The click model, shared by serving and training: text featurisation, tokenisation, network, training.

Serving (the scoring service) and training (the Celery worker) both import this package, so the way a
shopper and a product become model text exists exactly once.
"""
