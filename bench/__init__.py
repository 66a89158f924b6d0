"""Benchmarks: create_session against the design document's algorithm on the same local stack."""
