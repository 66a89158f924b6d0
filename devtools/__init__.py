"""Local stack helpers shared by `make dev`, the tests and the benchmarks (never deployed)."""
