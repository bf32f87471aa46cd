"""Benchmarks: each measures knownfix against a reference run in the same process and prints ratios."""
