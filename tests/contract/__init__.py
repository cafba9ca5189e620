"""Cross-protocol contract suite: every REST scenario, run over REST and gRPC against one live server."""
