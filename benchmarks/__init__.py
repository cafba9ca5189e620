"""Benchmarks: the micro suite (Rust core), the Python-client suite and the load suite (`python -m benchmarks.run`)."""
