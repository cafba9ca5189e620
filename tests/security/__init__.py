"""The attack suite (issue 10, point 10; SRS-110): each attack tried against live servers, over REST and gRPC."""
