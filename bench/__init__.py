"""Benchmarks, run on demand (`python -m bench`); figures go to bench/README.md, never into test assertions."""
