"""Benchmarks: each module prints figures (ratios against a baseline measured in the same process)."""
