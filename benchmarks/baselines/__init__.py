"""Reference-style baselines, written only for the benchmarks: how the design this project comes from serves a read."""
