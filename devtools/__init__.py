"""Dev tooling: the suite runner behind `make up`, the demo and the tests, the Triton launcher, a client."""
