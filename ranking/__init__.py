"""The ranking pipeline as plain domain code (no protobuf, no gRPC): `pipeline` turns a shopper and
candidates into a `Ranking` (retrieve → features → rules → infer → arrange → explain) with the
configured ranker and Triton; `routing` decides which served version answers a shopper (experiment
arms) and lets shadow arms score the same request in the background. The scoring servicer validates,
routes and converts to protobuf at the edge; the served benchmarks call the same pipeline in process."""
