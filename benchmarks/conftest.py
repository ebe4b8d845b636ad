"""Benchmarks run only when asked: `pytest benchmarks/ --benchmark-enable` (timings need a quiet machine)."""
