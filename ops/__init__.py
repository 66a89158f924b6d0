"""Operators' tooling: not part of the functions' package."""
