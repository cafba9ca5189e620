"""Ceilings: trivial handlers on the service's own stacks, serving the benchmark user's record from memory."""
